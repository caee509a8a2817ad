"""Bridge: turns the controller's plain-Python events into Qt signals, and trains off-thread."""

from __future__ import annotations

import threading

from PyQt5 import QtCore


class Bridge(QtCore.QObject):
    """Subscribes to a controller; re-emits its events as ``notified`` (queued onto the GUI thread)
    and asks for a redraw at most ``max_fps`` times a second (``redraw``)."""

    notified = QtCore.pyqtSignal(object)     # (not "event": that name is QObject.event())
    redraw = QtCore.pyqtSignal()
    progress = QtCore.pyqtSignal(object)        # TrainProgress, from the training thread
    trained = QtCore.pyqtSignal(object)         # TrainResult
    failed = QtCore.pyqtSignal(str)             # an exception's message from the training thread

    def __init__(self, ctl, max_fps=30, parent=None):
        super().__init__(parent)
        self.ctl = None
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(1000 / max_fps))
        self._timer.timeout.connect(self._fire)
        self._worker = None
        self._stop = threading.Event()
        # Events may come from the training thread: a queued connection brings them over.
        self.notified.connect(self._on_event, QtCore.Qt.QueuedConnection)
        self.attach(ctl)

    def attach(self, ctl):
        """Follow another controller (a new lesson)."""
        if self.ctl is not None:
            self.ctl.unsubscribe(self.notified.emit)
        self.ctl = ctl
        ctl.subscribe(self.notified.emit)

    def detach(self):
        """Stop listening and drawing (the window is closing): a controller that outlives the
        window must not reach a deleted bridge."""
        self._timer.stop()
        if self.ctl is not None:
            self.ctl.unsubscribe(self.notified.emit)
        self.ctl = None

    def _fire(self):
        if self.ctl is not None:
            self.redraw.emit()

    def _on_event(self, event):
        if self.ctl is not None:
            self.request_redraw()

    def request_redraw(self):
        """Coalesce: many changes within one frame give one redraw."""
        if not self._timer.isActive():
            self._timer.start()

    # ----------------------------------------------------------------- training

    @property
    def training(self):
        return self._worker is not None and self._worker.is_alive()

    def train(self, iterations, batch_size=1):
        """Start training in a worker thread; progress and the result come back as signals."""
        if self.training:
            return False
        self._stop.clear()
        ctl = self.ctl

        def run():
            try:
                result = ctl.train(iterations=iterations, batch_size=batch_size,
                                   on_progress=self.progress.emit,
                                   should_stop=self._stop.is_set, report_every=1 / 30)
            except Exception as exc:          # reported in the window, never a traceback
                self.failed.emit(f"training failed: {exc}")
                return
            self.trained.emit(result)

        self._worker = threading.Thread(target=run, name="rnn-explorer-training", daemon=True)
        self._worker.start()
        return True

    def stop(self, wait=True):
        """Ask training to stop between iterations (at once: an iteration takes milliseconds)."""
        self._stop.set()
        if wait and self._worker is not None:
            self._worker.join(timeout=5.0)
