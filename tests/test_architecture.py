"""House rules that keep the core a library: no Streamlit, no unsafe loading."""
import re
import subprocess
import sys

from conftest import REPO

CORE = REPO / "ssl_core"


def test_core_imports_no_streamlit():
    modules = [f"ssl_core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__main__"]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_core_source_has_no_unsafe_loading():
    for path in CORE.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+streamlit", text, re.M), path
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)
        assert "allow_pickle=True" not in text, path
        assert "pickle.load(" not in text and "pickle.loads(" not in text, path
