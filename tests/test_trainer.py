"""The model-agnostic trainer: epochs, time budget, callbacks, cancel."""
import time

import pytest
import torch

from ssl_core.training.trainer import STOP, Trainer, TrainerConfig, epoch_order


class LinearTask:
    """Least squares on a fixed random problem: small, deterministic, with a real loss."""
    steps_per_epoch = 4

    def __init__(self, seed=0, sleep_s=0.0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(64, 3, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5])
        self.w = torch.zeros(3, requires_grad=True)
        self.opt = torch.optim.SGD([self.w], lr=0.1)
        self.sleep_s = sleep_s
        self.seen = []

    def epoch_size(self):
        return 64

    def train_step(self, step, order):
        ids = torch.from_numpy(order[step * 16:(step + 1) * 16])
        self.seen.append(ids.tolist())
        loss = ((self.x[ids] @ self.w - self.y[ids]) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        time.sleep(self.sleep_s)
        return {"loss": loss.item()}

    def evaluate(self):
        return {"mse": ((self.x @ self.w.detach() - self.y) ** 2).mean().item()}


def test_epochs_callbacks_and_evaluation():
    seen = []
    progress = Trainer(TrainerConfig(max_epochs=5),
                       [lambda p: seen.append((p.step, p.epoch))]).fit(task := LinearTask())
    assert progress.step == 20 and progress.stopped_by == "epochs"
    assert [s for s, _ in seen] == list(range(1, 21))
    assert [e for _, e in seen] == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4
    assert progress.metrics["mse"] < 0.1 < LinearTask().evaluate()["mse"]
    assert progress.fraction == 1.0
    assert sorted(sum(task.seen[:4], [])) == list(range(64))  # one epoch = every example once


def test_time_budget_stops_training():
    t0 = time.monotonic()
    progress = Trainer(TrainerConfig(max_epochs=1000, time_budget_s=0.3)).fit(LinearTask(sleep_s=0.01))
    assert progress.stopped_by == "budget" and progress.step < 4000
    assert time.monotonic() - t0 < 2.0
    assert progress.eta_s(0.3) is not None


def test_callback_can_stop_or_cancel():
    progress = Trainer(TrainerConfig(max_epochs=100),
                       [lambda p: STOP if p.step == 7 else None]).fit(LinearTask())
    assert progress.step == 7 and progress.stopped_by == "callback"

    class Cancelled(Exception):
        pass

    def cancel(p):
        if p.step == 3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        Trainer(TrainerConfig(max_epochs=100), [cancel]).fit(LinearTask())


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    assert (epoch_order(1, 2, 50) == epoch_order(1, 2, 50)).all()
    assert not (epoch_order(1, 2, 50) == epoch_order(1, 3, 50)).all()
    assert sorted(epoch_order(0, 0, 50)) == list(range(50))
