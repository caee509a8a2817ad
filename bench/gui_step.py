"""Benchmark: from a step to the finished repaint, and from launch to the first painted window.

All panels visible at T = 100, H = 128, V = 65 in a 1920×1080 window. A step's time runs from
the controller's step to the end of a synchronous repaint of the whole window (every panel
redrawn and painted). Launch time runs from starting a new Python process to the first paint
of the main window. Run:  python bench/gui_step.py [--steps N] [--launches N]
"""

from __future__ import annotations

import argparse
import os
import string
import subprocess
import sys
import time

import numpy as np

LAUNCH = r"""
import time
t0 = time.perf_counter()
import sys
from PyQt5 import QtCore, QtWidgets
app = QtWidgets.QApplication(sys.argv[:1])
from ui.app import _configure_pyqtgraph
_configure_pyqtgraph()
from ui.main_window import MainWindow

class FirstPaint(QtCore.QObject):
    def eventFilter(self, obj, event):
        if event.type() == QtCore.QEvent.Paint:
            print("PAINTED", time.perf_counter() - t0, flush=True)
            QtCore.QTimer.singleShot(0, app.quit)
        return False

window = MainWindow("hello", settings=None, restore_layout=False)
first = FirstPaint()
window.installEventFilter(first)
window.show()
app.exec_()
"""


def lesson(T=100, H=128, V=65, seed=0):
    """A preset with a 65-symbol vocabulary, windows of T steps and H hidden units."""
    from explorer.presets import Preset

    symbols = (string.ascii_letters + string.digits + " .,")[:V]
    rng = np.random.default_rng(seed)
    text = "".join(rng.choice(list(symbols), size=20 * T))
    text = symbols + text                          # every symbol at least once
    return Preset("bench", "benchmark lesson", text=text, window=T, hidden=H, seed=seed)


def time_steps(n_steps):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt5 import QtWidgets

    from ui.app import _configure_pyqtgraph
    from ui.main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    _configure_pyqtgraph()
    window = MainWindow(lesson(), settings=None, restore_layout=False)
    window.show()
    app.processEvents()
    window._default_sizes()
    app.processEvents()
    ctl = window.ctl
    times = {"forward": [], "backward": [], "update": []}
    refresh_only = []
    for _ in range(n_steps):
        phase = ctl.phase
        t0 = time.perf_counter()
        window.step()
        window.refresh()
        window.repaint()                  # paints every visible panel, synchronously
        app.processEvents()
        times[phase].append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        window.refresh()
        refresh_only.append(time.perf_counter() - t1)
    window.close()
    return times, refresh_only, ctl


def time_launches(n):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    wall, inside = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", LAUNCH], env=env, capture_output=True,
                             text=True, timeout=120)
        line = [x for x in out.stdout.splitlines() if x.startswith("PAINTED")]
        if not line:
            raise RuntimeError("the window never painted:\n" + out.stderr)
        wall.append(time.perf_counter() - t0)
        inside.append(float(line[0].split()[1]))
    # The process ends right after the first paint, so its wall time bounds launch → paint.
    return wall, inside


def ms(values, q):
    return 1000 * float(np.percentile(values, q))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=402, help="steps to time (2T+1 a cycle)")
    parser.add_argument("--launches", type=int, default=5)
    args = parser.parse_args()
    times, refresh_only, ctl = time_steps(args.steps)
    every = [t for v in times.values() for t in v]
    print(f"step → repaint at T={ctl.T}, H={ctl.net.hidden_size}, V={ctl.net.input_size}, "
          f"all panels visible, {len(every)} steps:")
    print(f"  all steps   median {ms(every, 50):6.1f} ms   95th percentile {ms(every, 95):6.1f} ms")
    for phase, values in times.items():
        if values:
            print(f"  {phase:9s}   median {ms(values, 50):6.1f} ms   95th percentile "
                  f"{ms(values, 95):6.1f} ms   ({len(values)} steps)")
    print(f"  refresh of all panels alone: median {ms(refresh_only, 50):.1f} ms")
    wall, inside = time_launches(args.launches)
    print(f"launch → first painted window ({args.launches} launches): median "
          f"{np.median(wall):.2f} s (process start to paint, imports included: "
          f"{np.median(inside):.2f} s after the interpreter was up)")


if __name__ == "__main__":
    main()
