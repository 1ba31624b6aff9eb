"""README figures are generated: the committed README.md and assets/results.svg must be what
scripts/readme_tables.py writes from benchmarks/*.jsonl, every benchmark row must parse, and a
run over its budget must show in its cell, counted, never dropped."""
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import readme_tables  # noqa: E402
from readme import results  # noqa: E402
from readme.common import summary  # noqa: E402


def test_readme_is_what_the_generator_writes():
    diff = readme_tables.stale()
    assert not diff, ("README.md or assets/results.svg differ from the rows; run "
                      "`.venv/bin/python scripts/readme_tables.py`:\n" + "\n".join(diff[:80]))


@pytest.mark.parametrize("path", sorted((REPO / "benchmarks").glob("*.jsonl")), ids=lambda p: p.name)
def test_every_benchmark_line_is_json(path):
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            assert isinstance(json.loads(line), dict), f"{path.name} line {i}"


def _run(seed, acc, seconds, **extra):
    return {"dataset": "mnist", "method": "default", "labels_per_class": 10, "budget_s": 180.0,
            "seed": seed, "seconds": seconds, "test_accuracy": acc, "peak_rss_mb": 2048.0, **extra}


def test_an_over_budget_run_is_marked_and_still_counted():
    rows = [_run(0, 0.980, 170.0), _run(1, 0.985, 183.0), _run(2, 0.989, 150.0)]
    cell = results.cell(results.select(rows, "mnist", "default", 10, 180.0))
    assert cell == "98.50% (98.00–98.90, 3 runs; 1 over budget: 183 s), 170 s"
    target = "\n".join(results.target_table(rows))
    assert "3 runs; 1 over budget: 183 s" in target and "over** the budget" in target
    assert summary([0.9]) == "90.0% (1 run)"


def test_protocols_and_splits_are_kept_apart():
    rows = [_run(0, 0.98, 170.0),
            {**_run(0, None, 90.0), "test_accuracy": None, "protocol": "inductive",
             "test_accuracy_inductive": 0.97},
            {**_run(1, 0.5, 90.0), "split": "dev"}]
    del rows[1]["test_accuracy"]
    table = "\n".join(results.protocol_table(rows))
    assert "| default (graph → CNN) | 98.00% (1 run), 170 s | 97.00% (1 run), 90 s |" in table
    assert "SSL-GAN | not run yet | not run yet |" in table
    dev = "\n".join(results.dev_table(rows))
    assert "Development split" in dev and "50.00% (1 run)" in dev
    assert "50.00%" not in "\n".join(results.sweep_table(rows, "mnist"))
