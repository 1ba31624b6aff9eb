"""Rewrite every generated block of README.md, and assets/results.svg, from benchmarks/*.jsonl.

    .venv/bin/python scripts/readme_tables.py           # rewrite README.md and the svg
    .venv/bin/python scripts/readme_tables.py --check   # exit 1 with a diff when they are stale

Blocks (between `<!-- name:start -->` and `<!-- name:end -->`): photos, small-project, browser,
results, reliability, gen-augment, quality; the code of each table family is in scripts/readme/. Every number in them
comes from a JSONL row a script wrote; cells are medians with their range and run count, and a
run over its time budget is named, never dropped. The output depends on the rows only (sorted,
no clock), so tests/test_readme_tables.py can compare it with the committed README.
"""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme import benchmarks_section, gen_augment, photos, quality, reliability, results  # noqa: E402
from readme.common import README, ROOT, SVG, replace_block  # noqa: E402


def render(text: str) -> tuple[str, str]:
    """(README text with every block regenerated, the results svg)."""
    body, svg = results.render()
    for name, block in (("photos", photos.block()),
                        ("small-project", benchmarks_section.small_project_block()),
                        ("browser", benchmarks_section.browser_block()),
                        ("results", body), ("reliability", reliability.block()),
                        ("gen-augment", gen_augment.block()), ("quality", quality.block())):
        text = replace_block(text, name, block)
    return text, svg


def stale() -> list[str]:
    """Unified diff lines of every generated file that differs from what it would be."""
    readme, svg = render(README.read_text())
    diff = []
    for path, new in ((README, readme), (SVG, svg)):
        old = path.read_text() if path.is_file() else ""
        if old != new:
            name = str(path.relative_to(ROOT))
            diff += difflib.unified_diff(old.splitlines(), new.splitlines(), name, name + " (generated)",
                                         lineterm="")
    return diff


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 with a diff if stale")
    args = ap.parse_args()
    if args.check:
        diff = stale()
        print("\n".join(diff) if diff else "README.md and assets/results.svg are up to date")
        return 1 if diff else 0
    readme, svg = render(README.read_text())
    README.write_text(readme)
    SVG.write_text(svg)
    print(f"wrote {README.relative_to(ROOT)} and {SVG.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
