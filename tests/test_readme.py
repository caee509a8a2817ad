"""The README's promises: its Python example runs, and it lists every preset."""

import re
import subprocess
import sys
from pathlib import Path

from explorer.presets import PRESETS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_python_example_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "the README has no Python example"
    result = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, text=True,
                            capture_output=True, timeout=120,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "loss" in result.stdout


def test_every_preset_is_in_the_readme():
    for name in PRESETS:
        assert f"| `{name}` |" in README, name


def test_the_readme_shows_screenshots_that_exist():
    for path in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (ROOT / path).is_file(), path
