"""Starting the window: Qt and pyqtgraph set-up, the --screenshot mode, and error reporting."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def _configure_pyqtgraph():
    import pyqtgraph as pg

    # Dark lines on white read best on a projector; antialiased lines look less jagged there.
    pg.setConfigOptions(background="w", foreground="k", antialias=True)


def _install_excepthook(window_getter):
    """Unexpected errors become a message in the window (and one line on stderr)."""
    from PyQt5 import QtWidgets

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            QtWidgets.QApplication.quit()
            return
        message = f"{exc_type.__name__}: {exc}"
        print(f"rnn-explorer: error: {message}", file=sys.stderr)
        window = window_getter()
        if window is not None:
            window.show_message(f"Something went wrong: {message}", error=True, dialog=True)

    sys.excepthook = hook


def save_screenshot(window, path):
    """Save the whole window as a PNG, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"the screenshot must be a .png file, got {str(path)!r}")
    if not path.parent.exists():
        raise ValueError(f"the folder {str(path.parent)!r} does not exist")
    image = window.grab()
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        if not image.save(tmp, "PNG"):
            raise ValueError(f"could not write {str(path)!r}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(preset="hello", steps=0, screenshot=None, argv=None):
    """Open the window on ``preset``; with ``screenshot``, save it after ``steps`` and exit."""
    if screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt5 import QtCore, QtWidgets

    QtCore.QCoreApplication.setAttribute(QtCore.Qt.AA_EnableHighDpiScaling, True)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(
        argv if argv is not None else sys.argv[:1])
    app.setApplicationName("RNN Explorer")
    app.setOrganizationName("rnn-explorer")
    app.setDesktopFileName("rnn-explorer")
    font = app.font()
    font.setPointSize(11)
    app.setFont(font)
    _configure_pyqtgraph()

    from .main_window import MainWindow, app_icon

    app.setWindowIcon(app_icon())
    settings = None if screenshot is not None else QtCore.QSettings()
    window = MainWindow(preset, settings=settings, restore_layout=screenshot is None)
    _install_excepthook(lambda: window)
    window.show()
    app.processEvents()
    window._default_sizes() if screenshot is not None else None
    for _ in range(steps):
        window.ctl.step()
    window.refresh()
    if screenshot is not None:
        for _ in range(3):
            app.processEvents()
        window.refresh()
        app.processEvents()
        save_screenshot(window, screenshot)
        print(f"saved {screenshot}")
        window.close()
        return 0
    return app.exec_()
