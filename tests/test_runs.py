"""Runs and metrics round-trip through the store."""
from ssl_core.results import runs


def test_run_metrics_and_summary(project):
    s = project.store
    first = runs.create_run(s, "baseline", {"epochs": 3}, n_labels=50)
    second = runs.create_run(s, "vae", {"z": 16}, n_labels=60)
    for step in range(3):
        runs.log_metrics(s, first, step, {"loss": 1.0 / (step + 1), "val_acc": 0.5 + step / 10})
    assert runs.metric_series(s, first, "loss") == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert runs.metric_series(s, second, "loss") == []
    runs.finish_run(s, first, {"val_accuracy": 0.7})
    listed = runs.list_runs(s)
    assert [r.id for r in listed] == [second, first]
    assert listed[1].summary == {"val_accuracy": 0.7} and listed[1].config == {"epochs": 3}
    assert listed[0].summary is None and listed[0].n_labels == 60
