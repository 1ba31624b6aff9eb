"""Copy the fault, load and soak tests' figures from test-artifacts/*.json into committed rows.

    nice -n 10 .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_load.py tests/test_faults.py
    nice -n 5 .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_soak.py
    .venv/bin/python scripts/reliability_rows.py --note "nice 10, beside the MNIST grid"

tests/test_faults.py writes test-artifacts/faults.json, tests/test_load.py
test-artifacts/load.json and tests/test_soak.py test-artifacts/soak.json (git-ignored,
overwritten by each run; a missing one is reported and skipped). Each becomes one row of
benchmarks/reliability.jsonl: the test, the artifact's date (UTC, its modification time), the
commit that was HEAD then, the load average when copied (the tests record none), a note (how
the tests ran), and the test's figures unchanged. A figure set
already in the file is not appended twice; `--only soak` copies one test's figures. scripts/readme_tables.py builds the README's
Reliability table from these rows.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.rows import append_rows  # noqa: E402

ARTIFACTS = ROOT / "test-artifacts"
OUT = ROOT / "benchmarks" / "reliability.jsonl"
TESTS = {"faults": "tests/test_faults.py", "load": "tests/test_load.py", "soak": "tests/test_soak.py"}


def commit_at(when: dt.datetime) -> str:
    """The short hash of the last commit made before `when` (HEAD when the test wrote its
    figures; uncommitted changes in the working tree at that time are not recorded)."""
    return subprocess.run(["git", "log", "-1", "--format=%h", f"--before={when.isoformat()}"],
                          capture_output=True, text=True, cwd=ROOT).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", type=Path, default=ARTIFACTS)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--note", default="", help="how the tests ran (nice level, what else ran)")
    ap.add_argument("--only", nargs="+", choices=sorted(TESTS), default=sorted(TESTS),
                    help="copy only these tests' figures (the note is about how *they* ran)")
    args = ap.parse_args()
    have = [json.loads(line) for line in args.out.read_text().splitlines()
            if line.strip()] if args.out.is_file() else []
    seen = {json.dumps(r["figures"], sort_keys=True) for r in have}
    new = []
    for test, source in TESTS.items():
        if test not in args.only:
            continue
        path = args.artifacts / f"{test}.json"
        if not path.is_file():
            print(f"{path} missing: run {source} first", file=sys.stderr)
            continue
        figures = json.loads(path.read_text())
        if json.dumps(figures, sort_keys=True) in seen:
            print(f"{path.name}: already in {args.out.name}")
            continue
        when = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
        new.append({"test": test, "source": source, "date": when.strftime("%Y-%m-%d"),
                    "finished_utc": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": commit_at(when),
                    "load_avg_when_copied": round(os.getloadavg()[0], 2), "note": args.note, "figures": figures})
    append_rows(args.out, new)
    for r in new:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
