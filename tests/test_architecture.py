"""House rules that keep the core a library: no Streamlit, no unsafe loading, layers that only
look down, modules of a readable size, and a clean lint."""
import ast
import importlib.util
import re
import subprocess
import sys

from conftest import REPO, require

CORE = REPO / "ssl_core"
# Lowest layer first: a module may import its own package and packages of a lower rank only
# (the same table as ssl_core/__init__.py's docstring).
RANKS = {"progress": 0, "threads": 0, "project": 0, "neighbours": 1,
         "training": 1, "data": 1, "features": 1,
         "labeling": 2, "models": 2, "latentmap": 2,
         "results": 3, "export": 4, "quality": 4, "jobs": 5, "cli": 6, "__main__": 7, "__init__": 7}
LONG_MODULE_LINES = 320        # beyond this a module says at its top why it is long


def core_modules():
    """Every .py file under ssl_core, sub-packages included, with its dotted name."""
    for path in sorted(CORE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        yield path, ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """'ssl_core.models.vae' -> 'models'; 'ssl_core' itself -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported_modules(path):
    """Every module a file imports, at any depth (function-level imports included)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import (use absolute ssl_core.* imports)"
            yield node.module
            if node.module == "ssl_core":        # from ssl_core import x: x is the module
                yield from (f"ssl_core.{alias.name}" for alias in node.names)


def test_every_core_module_is_in_a_layer():
    for _, module in core_modules():
        assert layer_of(module) in RANKS, f"{module}: add its package to RANKS (and to the docs)"


def test_layers_only_import_downwards():
    wrong = []
    for path, module in core_modules():
        mine = layer_of(module)
        for imported in imported_modules(path):
            top = imported.split(".")[0]
            if top in ("streamlit", "ui", "pages", "benchmarks"):
                wrong.append(f"{module} imports {imported} (the library never imports the app)")
            if top != "ssl_core" or imported == "ssl_core":
                continue
            theirs = layer_of(imported)
            if theirs != mine and RANKS[theirs] >= RANKS[mine]:
                wrong.append(f"{module} ({mine}, rank {RANKS[mine]}) imports {imported} "
                             f"({theirs}, rank {RANKS[theirs]})")
    assert not wrong, "\n".join(wrong)


def test_core_imports_no_streamlit():
    modules = [m for _, m in core_modules() if not m.endswith("__main__")]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_core_source_has_no_unsafe_loading():
    paths = [p for p, _ in core_modules()] + sorted((REPO / "benchmarks").rglob("*.py"))
    assert any("models" in p.parts for p in paths)             # the walk reaches sub-packages
    for path in paths:
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+streamlit", text, re.M), path
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)
        assert "allow_pickle=True" not in text, path
        assert "pickle.load(" not in text and "pickle.loads(" not in text, path


def test_long_modules_say_why():
    for path, module in core_modules():
        lines = path.read_text().splitlines()
        if len(lines) > LONG_MODULE_LINES:
            head = "\n".join(lines[:40]).lower()
            assert "why this module is long" in head, \
                f"{module} has {len(lines)} lines: split it, or say at its top why it is long"


def test_lint_is_clean():
    require(importlib.util.find_spec("ruff") is not None, "ruff (requirements-dev.txt)")
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
