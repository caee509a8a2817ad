"""Smoke test: the app in a real X window (Xvfb), driven by real key presses (xdotool)."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The app under test: the real window on the xcb platform; it prints its timeline position
# whenever it changes, so the test can read what the key presses did.
APP = r"""
import sys
from PyQt5 import QtCore, QtWidgets
app = QtWidgets.QApplication(sys.argv[:1])
from ui.app import _configure_pyqtgraph
_configure_pyqtgraph()
from ui.main_window import MainWindow
window = MainWindow("hello", settings=None, restore_layout=False)
window.show()
window.raise_()
window.activateWindow()
last = [None]
def report():
    state = (window.ctl.timeline_index, window.ctl.phase, window.playing)
    if state != last[0]:
        last[0] = state
        print("STATE", *state, app.platformName(), flush=True)
timer = QtCore.QTimer()
timer.timeout.connect(report)
timer.start(50)
print("READY", flush=True)
sys.exit(app.exec_())
"""


def _free_display():
    for n in range(90, 140):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise RuntimeError("no free X display number")


@pytest.fixture
def xserver():
    xvfb, xdotool = shutil.which("Xvfb"), shutil.which("xdotool")
    assert xvfb and xdotool, "Xvfb and xdotool are needed: the README's test command installs them"
    n = _free_display()
    proc = subprocess.Popen([xvfb, f":{n}", "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        assert proc.poll() is None and time.time() < deadline, "Xvfb did not start"
        time.sleep(0.05)
    yield f":{n}"
    proc.terminate()
    proc.wait(timeout=10)


def _read_until(proc, predicate, timeout=30):
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if predicate(line):
            return line.split()
    raise AssertionError("the app never reported the expected state; it printed:\n"
                         + "\n".join(lines) + "\n" + proc.stderr.read())


def _xdotool(display, *args):
    return subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display},
                          capture_output=True, text=True, timeout=30, check=True).stdout


def test_the_window_answers_real_key_presses(xserver):
    env = {**os.environ, "DISPLAY": xserver, "QT_QPA_PLATFORM": "xcb",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", APP], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _read_until(proc, lambda line: line.startswith("READY"))
        state = _read_until(proc, lambda line: line.startswith("STATE"))
        assert state[1:3] == ["0", "forward"] and state[-1] == "xcb"
        window = _xdotool(xserver, "search", "--sync", "--name", "RNN Explorer").split()[0]
        _xdotool(xserver, "windowfocus", "--sync", window)
        # → four times: the forward phase over "hell" is done, the backward phase is next.
        _xdotool(xserver, "key", "--delay", "80", "Right", "Right", "Right", "Right")
        state = _read_until(proc, lambda line: line.startswith("STATE 4 "))
        assert state[2] == "backward"
        # ← once: back to step 3 of the forward phase.
        _xdotool(xserver, "key", "Left")
        state = _read_until(proc, lambda line: line.startswith("STATE 3 "))
        assert state[2] == "forward"
        # Space plays, Space pauses; Home resets to the start.
        _xdotool(xserver, "key", "space")
        _read_until(proc, lambda line: line.split()[3:4] == ["True"])
        _xdotool(xserver, "key", "space")
        _read_until(proc, lambda line: line.split()[3:4] == ["False"])
        _xdotool(xserver, "key", "Home")
        _read_until(proc, lambda line: line.startswith("STATE 0 forward False"))
        _xdotool(xserver, "key", "ctrl+q")
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
