"""Benchmark: from a step to the finished repaint, and from launch to the first painted window.

At T = 100, H = 128, V = 65 in a 1920×1080 window, with every panel on screen (the analysis
tabs taken apart), then in the default layout (the panels behind tabs are not drawn). A step's
time runs from the controller's step to the end of the repaint: of what the step changed, as
the app does, and (with every panel on screen) of the whole window, static parts included.
Launch time runs from starting a new Python process to the first paint of the main window.
Run:  python bench/gui_step.py [--steps N] [--launches N]
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


def show_every_panel(window):
    """Take the analysis tabs apart into a 2 × 2 grid: every panel on screen at once."""
    from PyQt5 import QtCore

    d = window.docks
    for name in ("flow", "eigen", "weights"):
        window.addDockWidget(QtCore.Qt.BottomDockWidgetArea, d[name])
    window.splitDockWidget(d["loss"], d["flow"], QtCore.Qt.Horizontal)
    window.splitDockWidget(d["loss"], d["eigen"], QtCore.Qt.Vertical)
    window.splitDockWidget(d["flow"], d["weights"], QtCore.Qt.Vertical)


def time_steps(n_steps, every_panel, whole_window):
    """Step times, in seconds, per phase. ``whole_window``: each step repaints the whole window
    (the static settings form and toolbars too); else what the app itself repaints: the
    widgets the step changed, painted when the event loop runs."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt5 import QtCore, QtWidgets

    class PaintCounter(QtCore.QObject):
        count = 0

        def eventFilter(self, obj, event):
            if event.type() == QtCore.QEvent.Paint:
                self.count += 1
            return False

    from ui.app import _configure_pyqtgraph
    from ui.main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    _configure_pyqtgraph()
    window = MainWindow(lesson(), settings=None, restore_layout=False)
    window.show()
    app.processEvents()
    window._default_sizes()
    if every_panel:
        show_every_panel(window)
    app.processEvents()
    hidden = [name for name, panel in window.panels.items() if not window._on_screen(panel)]
    if every_panel and hidden:
        raise RuntimeError(f"panels not on screen: {hidden}")
    ctl = window.ctl
    times = {"forward": [], "backward": [], "update": []}
    paints = PaintCounter()
    app.installEventFilter(paints)
    for _ in range(n_steps):
        phase = ctl.phase
        t0 = time.perf_counter()
        window.step()
        window.refresh()
        if whole_window:
            window.repaint()              # every widget of the window, synchronously
        # Posted updates, and the updates a graphics scene posts once it has seen its items
        # change, are painted within these passes of the event loop.
        for _ in range(3):
            app.processEvents()
        times[phase].append(time.perf_counter() - t0)
    app.removeEventFilter(paints)
    window.close()
    return times, hidden, ctl, paints.count / n_steps


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
    for every_panel, whole_window in ((True, False), (True, True), (False, False)):
        times, hidden, ctl, paints = time_steps(args.steps, every_panel, whole_window)
        every = [t for v in times.values() for t in v]
        layout = ("every panel on screen (the analysis tabs split 2 × 2)" if every_panel else
                  f"the default layout ({', '.join(hidden)} behind their tabs, not drawn)")
        what = ("the whole window repainted" if whole_window else
                "what the step changed repainted")
        print(f"step → repaint at T={ctl.T}, H={ctl.net.hidden_size}, V={ctl.net.input_size}, "
              f"{layout}, {what} ({paints:.0f} paint events a step), {len(every)} steps:")
        print(f"  all steps   median {ms(every, 50):6.1f} ms   95th percentile "
              f"{ms(every, 95):6.1f} ms")
        for phase, values in times.items():
            if values:
                print(f"  {phase:9s}   median {ms(values, 50):6.1f} ms   95th percentile "
                      f"{ms(values, 95):6.1f} ms   ({len(values)} steps)")
    wall, inside = time_launches(args.launches)
    print(f"launch → first painted window ({args.launches} launches): median "
          f"{np.median(wall):.2f} s (process start to paint, imports included: "
          f"{np.median(inside):.2f} s after the interpreter was up)")


if __name__ == "__main__":
    main()
