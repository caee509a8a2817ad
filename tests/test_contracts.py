"""The project's contracts: the engine never imports Qt, and the code passes ruff."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRONT_END = {"PyQt5", "PyQt6", "PySide2", "PySide6", "pyqtgraph", "ui"}


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("path", sorted((ROOT / "explorer").glob("*.py")), ids=lambda p: p.name)
def test_engine_never_imports_the_front_end(path):
    assert not FRONT_END & set(imported_modules(path))


def test_importing_the_engine_loads_no_qt():
    code = ("import sys, explorer, explorer.controller, explorer.cli, explorer.presets; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('PyQt5', 'pyqtgraph', 'ui')]; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_ruff_is_clean():
    # ruff comes with the test extra, beside this interpreter.
    beside = Path(sys.executable).parent / "ruff"
    ruff = str(beside) if beside.exists() else shutil.which("ruff")
    assert ruff, "ruff is missing: install the project with its test extra"
    result = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
