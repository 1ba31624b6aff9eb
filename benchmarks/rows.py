"""What every benchmark row shares: the commit it measured, and appending rows to a JSONL file."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path


def current_commit() -> str:
    """The short hash of HEAD (the code a row measured)."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent).stdout.strip()


def code_changed() -> bool:
    """True when the engine's code (ssl_core/, benchmarks/*.py) differs from HEAD: such a row
    did not measure the commit it names. (Rows files themselves do not count.)"""
    out = subprocess.run(["git", "status", "--porcelain", "--", "ssl_core", "benchmarks"],
                         capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout  # the repository root:
    # pathspecs are relative to cwd (from benchmarks/ they matched nothing, so it was never set)
    out = "\n".join(line for line in out.splitlines() if not line.endswith(".jsonl"))
    return bool(out.strip())


def append_rows(path: str | Path | None, rows: list[dict]) -> None:
    """Append each row as one JSON line to `path` (nothing when path is None)."""
    if path:
        with open(path, "a") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
