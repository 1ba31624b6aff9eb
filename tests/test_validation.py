"""Validation splits and confidence intervals."""
import numpy as np

from ssl_core.training.validation import (
    accuracy,
    stratified_folds,
    stratified_holdout,
    wilson_interval,
)


def test_wilson_interval_is_sane_at_the_edges():
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and 0.65 < lo < 0.75          # 10/10 is not proof of 100%
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and 0.25 < hi < 0.35
    lo, hi = wilson_interval(950, 1000)
    assert 0.93 < lo < 0.95 < hi < 0.97
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_accuracy_carries_interval_and_count():
    acc = accuracy(np.array([1, 1, 2, 2]), np.array([1, 2, 2, 2]))
    assert acc.value == 0.75 and acc.n == 4 and acc.low < 0.75 < acc.high
    assert "75.0%" in str(acc) and "n=4" in str(acc)


def test_holdout_is_stratified_and_keeps_a_training_label_per_class():
    y = np.full(100, -1)
    y[:10], y[10:15], y[15] = 0, 1, 2                  # 10, 5 and 1 labels
    train, val = stratified_holdout(y, 0.2, seed=0)
    assert set(train) | set(val) == set(range(16)) and not set(train) & set(val)
    assert (y[val] == 0).sum() == 2 and (y[val] == 1).sum() == 1 and (y[val] == 2).sum() == 0
    assert all((y[train] == c).any() for c in (0, 1, 2))
    assert (stratified_holdout(y, 0.2, seed=0)[1] == val).all()


def test_folds_partition_the_labels_by_class():
    y = np.array([0] * 7 + [1] * 3 + [-1] * 5)
    folds = stratified_folds(y, n_folds=3, seed=1)
    assert sorted(np.concatenate(folds)) == list(range(10))
    assert all(abs((y[f] == 0).sum() - 7 / 3) <= 1 for f in folds)
