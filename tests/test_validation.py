"""Validation splits and confidence intervals."""
import numpy as np
import pytest

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


# --- issue 14: validation that means what it says -------------------------------------------

def _nodes(n: int):
    """A stand-in graph: only its node count is read when the propagator is faked."""
    import scipy.sparse as sp
    return sp.csr_matrix((n, n))


def _two_class_codes(n_labels_per_class: int = 10, n: int = 200) -> np.ndarray:
    codes = np.full(n, -1, np.int64)
    codes[:n_labels_per_class] = 0
    codes[100:100 + n_labels_per_class] = 1
    return codes


def test_the_propagator_choice_is_nested_inside_the_validation(monkeypatch):
    """Each held-out fold's labels are hidden from the choice that decides how it is predicted,
    so the reported score is not the winner's own selection score."""
    from ssl_core.models import graph_classifier as gc

    codes = _two_class_codes()
    choices = []
    real_choose = gc._choose_propagator

    def spy_choose(W, c, k, cfg, methods, folds):
        choices.append(np.flatnonzero(c >= 0))
        return real_choose(W, c, k, cfg, methods, folds)

    truth = np.r_[np.zeros(100, np.int64), np.ones(100, np.int64)]

    def fake_propagator(method, W, labeled, c, k, max_iter):     # laplace right, poisson wrong
        right = np.eye(2)[truth]
        return right if method == "laplace" else 1 - right

    monkeypatch.setattr(gc, "_choose_propagator", spy_choose)
    monkeypatch.setattr(gc, "run_propagator", fake_propagator)
    cfg = gc.GraphConfig(small_data=10_000, cv_folds=5)
    method, val = gc.validate_propagation(_nodes(200), codes, 2, cfg, seed=0)
    assert method == "laplace" and val.value == 1.0 and val.n == 20
    assert val.protocol == "5-fold cross-validation (seed 0)"
    all_labeled = set(np.flatnonzero(codes >= 0).tolist())
    outer = choices[1:]                                          # choices[0]: on every label
    assert set(choices[0].tolist()) == all_labeled and len(outer) == 5
    folds = gc._validation_folds(200, codes, cfg, 0)[0]
    for seen, held in zip(outer, folds):
        assert not set(held.tolist()) & set(seen.tolist())      # hidden from its own choice


def test_a_lucky_pick_is_not_reported(monkeypatch):
    """Two propagators that are right at random (independently, 50%): picking the better one on
    the same folds it is scored on reports more than 50% on average; nested does not."""
    from ssl_core.models import graph_classifier as gc

    codes = _two_class_codes(20, 400)
    truth = np.r_[np.zeros(200, np.int64), np.ones(200, np.int64)]
    rng = np.random.default_rng(0)

    def coin(method, W, labeled, c, k, max_iter):
        right = rng.random(len(truth)) < 0.5
        return np.eye(2)[np.where(right, truth, 1 - truth)]

    monkeypatch.setattr(gc, "run_propagator", coin)
    cfg = gc.GraphConfig(small_data=10_000, cv_folds=5)
    values = [gc.validate_propagation(_nodes(400), codes, 2, cfg, seed=s)[1].value for s in range(60)]
    assert abs(np.mean(values) - 0.5) < 0.035                     # no selection bonus


def test_gain_compares_like_with_like_only():
    from ssl_core.results.report import gain

    def acc(value, protocol):
        return {"value": value, "low": 0, "high": 1, "n": 10, "protocol": protocol}

    def report(value, digest):
        return {"accuracy": {"value": value}, "ids_digest": digest}

    hold = "hold-out 20% of each class's labels (seed 0)"
    run = {"validation": acc(0.9, hold), "test_report": report(0.95, "a")}
    assert gain(run, {"validation": acc(0.8, hold), "test_report": report(0.85, "a")}) == \
        {"test": pytest.approx(10.0), "validation": pytest.approx(10.0)}
    other = {"validation": acc(0.8, "5-fold cross-validation (seed 0)"), "test_report": report(0.8, "b")}
    assert gain(run, other) is None                               # different labels, other images
    assert gain(run, None) is None
