"""Shared by every table family: where the rows are, loading JSONL, and the one cell format
"median (min–max, N runs)" with runs over their time budget marked, never dropped."""
from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH = ROOT / "benchmarks"
README = ROOT / "README.md"
SVG = ROOT / "assets" / "results.svg"


def load_jsonl(name: str | Path) -> list[dict]:
    """Every row of benchmarks/<name> (or a path), in file order; [] when the file is missing.
    A line that is not JSON raises: every figure must come from a parseable row."""
    path = name if isinstance(name, Path) else BENCH / name
    if not path.is_file():
        return []
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.name} line {i} is not JSON: {exc}") from exc
    return out


def pct(decimals: int = 1) -> Callable[[float], str]:
    return lambda v: f"{100 * v:.{decimals}f}"


def num(decimals: int = 0) -> Callable[[float], str]:
    return lambda v: f"{v:,.{decimals}f}"


def summary(values: Iterable[float], fmt: Callable[[float], str] = pct(), unit: str = "%",
            over: Iterable[float] = ()) -> str:
    """'98.5% (98.0–98.9, 3 runs)'; '97.4% (1 run)'; runs over their budget are counted in the
    median and named: '98.5% (98.0–98.9, 3 runs; 1 over budget: 183 s)'."""
    values, over = list(values), sorted(over)
    if not values:
        return "not run yet"
    med = f"{fmt(statistics.median(values))}{unit}"
    inner = (f"{len(values)} run" if len(values) == 1 else
             f"{fmt(min(values))}–{fmt(max(values))}, {len(values)} runs")
    if over:
        inner += f"; {len(over)} over budget: {', '.join(f'{s:.0f} s' for s in over)}"
    return f"{med} ({inner})"


def over_budget(runs: list[dict]) -> list[float]:
    """Seconds of the runs that took longer than their budget."""
    return [r["seconds"] for r in runs if r.get("budget_s") is not None
            and r.get("seconds") is not None and r["seconds"] > r["budget_s"]]


def run_cell(runs: list[dict], key: str, decimals: int = 1, seconds: bool = True) -> str:
    """Accuracy cell of benchmark runs: median (min–max, N runs[; k over budget: …]), median s."""
    if not runs:
        return "not run yet"
    cell = summary([r[key] for r in runs], pct(decimals), "%", over_budget(runs))
    if seconds:
        cell += f", {statistics.median(r['seconds'] for r in runs):.0f} s"
    return cell


def span(values: Iterable[float], fmt: Callable[[float], str] = num(1)) -> str:
    """'1.5–4.2' (or one value)."""
    values = list(values)
    lo, hi = fmt(min(values)), fmt(max(values))
    return lo if lo == hi else f"{lo}–{hi}"


def replace_block(text: str, name: str, body: str) -> str:
    """Put body between <!-- name:start --> and <!-- name:end --> (which must exist)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise ValueError(f"README.md has no {start} … {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n\n{body.strip()}\n\n{end}{tail}"
