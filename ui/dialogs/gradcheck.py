"""The gradient-check dialog: BPTT's gradients against finite differences, one row per parameter."""

from __future__ import annotations

import threading

from PyQt5 import QtCore, QtGui, QtWidgets

from explorer.gradcheck import gradcheck
from explorer.network import Network

from ..panels.base import fmt

# Above this many entries in some parameter, a random sample of each parameter is checked: two
# forward passes per entry add up (a 100-unit RNN has 10,000 entries in W alone).
MAX_FULL_ENTRIES = 400
SAMPLED_CHECKS = 30
TOLERANCE = 1e-6                # ParamCheck.passed's default: what "pass" means
EPS = 1e-5                      # gradcheck's default step ε

PASS_COLORS = ("#1a7a1a", "#d9f2d9")       # text, background
FAIL_COLORS = ("#b00000", "#f9d0d0")

COLUMNS = ("parameter", "shape", "entries checked", "max relative error", "where",
           "analytic", "numerical", "result")

EXPLANATION = (
    "<b>How to read it.</b> For each weight θ checked, the <i>numerical</i> gradient is "
    "(L(θ + ε) − L(θ − ε)) / 2ε with ε = 10<sup>−5</sup>, where L is the loss of this window; "
    "the <i>analytic</i> gradient is the one BPTT computes. "
    "<b>Relative error</b> = |analytic − numerical| / (|analytic| + |numerical|), the largest "
    "over the entries checked (<i>where</i> says which entry). "
    "Below 10<sup>−6</sup> the two agree: BPTT is right. Around 10<sup>−2</sup> or more, the "
    "gradient code has a bug. <i>pass (round-off)</i>: the gradient there is so small that "
    "finite differences cannot resolve it; the difference is within their round-off.")


def _result_text(check):
    if not check.passed(TOLERANCE):
        return "FAIL"
    return "pass (round-off)" if check.within_round_off else "pass"


# The gate blocks stacked in U, W, b (and bh) of the gated cells, in PyTorch's order.
GATES = {"lstm": "ifgo", "gru": "rzn"}


def _where(net, name, index):
    """'W[107, 22]', with the gate and unit for a gated cell: 'W[107, 22] (o gate, unit 11)'."""
    text = f"{name}[{', '.join(str(i) for i in index)}]"
    gates = GATES.get(net.cell)
    if gates and name in ("U", "W", "b", "bh"):
        block, unit = divmod(index[0], net.hidden_size)
        text += f" ({gates[block]} gate, unit {unit})"
    return text


def _sci(x):
    """A relative error as a teacher writes it: 3.2e−10."""
    return f"{x:.1e}".replace("-", "−")


class _Relay(QtCore.QObject):
    """Carries the result from the worker thread to the GUI thread (a queued signal)."""

    done = QtCore.pyqtSignal(object)
    failed = QtCore.pyqtSignal(str)


class GradcheckDialog(QtWidgets.QDialog):
    """Runs explorer.gradcheck on the controller's network and current window, in a thread.

    ``run()`` starts the check (the dialog runs it when first shown); ``results`` holds
    {name: ParamCheck} once it is done, ``error`` the message if it failed.
    """

    def __init__(self, ctl, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Gradient check")
        self.setToolTip("BPTT's gradient of every parameter against finite differences, "
                        "on the current window.")
        self.ctl = ctl
        self.results = None
        self.error = None
        self._thread = None
        self._relay = _Relay(self)
        self._relay.done.connect(self._finished)
        self._relay.failed.connect(self._failed)

        self.header = QtWidgets.QLabel()
        self.header.setWordWrap(True)
        self.busy = QtWidgets.QProgressBar()
        self.busy.setRange(0, 0)                # no known length: an indeterminate bar
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(14)
        self.busy.hide()
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.NoSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setAlternatingRowColors(False)
        tips = ("", "the array's shape", "entries perturbed (a random sample of big arrays)",
                "largest |a − n| / (|a| + |n|) over the entries checked",
                "the entry with the largest relative error", "BPTT's gradient there",
                "(L(θ+ε) − L(θ−ε)) / 2ε there", "pass: relative error below 1e−6")
        for column, tip in enumerate(tips):
            self.table.horizontalHeaderItem(column).setToolTip(tip)
        self.summary = QtWidgets.QLabel()
        self.summary.setWordWrap(True)
        font = self.summary.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.summary.setFont(font)
        self.explanation = QtWidgets.QLabel(EXPLANATION)
        self.explanation.setWordWrap(True)
        self.explanation.setTextFormat(QtCore.Qt.RichText)
        self.explanation.setStyleSheet("color: #404040;")

        self.run_button = QtWidgets.QPushButton("Run again")
        self.run_button.setToolTip("Check again with the network's current weights.")
        self.run_button.clicked.connect(self.run)
        close = QtWidgets.QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        buttons.addWidget(close)

        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(self.busy)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        layout.addWidget(self.explanation)
        layout.addLayout(buttons)
        self.resize(900, 520)
        self._started = False
        self._pending = False       # a check started and its result not shown yet

    # ----------------------------------------------------------------- running

    @property
    def running(self):
        """True from run() until its result is shown."""
        return self._pending

    def showEvent(self, event):
        super().showEvent(event)
        if not self._started:
            self.run()

    def plan(self):
        """(network copy to check, max_checks, note) for the controller's current network.

        The check runs on a copy of the weights, so that nothing the window draws or trains
        meanwhile can touch it (and it cannot touch them)."""
        net = self.ctl.net
        config = net.config()
        notes = []
        max_checks = None
        if net.dtype.name != "float64":
            # float32 round-off (1e−7) swamps the differences at ε = 1e−5: a float32 check
            # reports nothing but noise. The same weights in float64 test the same equations.
            config["dtype"] = "float64"
            max_checks = SAMPLED_CHECKS
            notes.append(f"The network computes in {net.dtype.name}, whose round-off swamps "
                         "finite differences: its weights are checked in float64.")
        largest = max(p.size for p in net.params.values())
        if largest > MAX_FULL_ENTRIES:
            max_checks = SAMPLED_CHECKS
            notes.append(f"Big model ({largest:,} entries in the largest parameter): "
                         f"{SAMPLED_CHECKS} random entries per parameter are checked.")
        copy = Network(**config)
        for name, value in net.params.items():
            copy.params[name][...] = value
        return copy, max_checks, " ".join(notes)

    def run(self):
        """Start the check in a worker thread; False if one is running already."""
        if self.running:
            return False
        self._started = True
        ctl = self.ctl
        try:
            net, max_checks, note = self.plan()
        except ValueError as exc:
            self._failed(f"the gradient check cannot start: {exc}")
            return False
        self._pending = True
        inputs, targets = ctl.inputs.copy(), ctl.targets.copy()
        truncate = ctl.truncate
        bptt = "full BPTT" if truncate is None else f"truncated BPTT (k = {truncate})"
        window = "The current window"
        if getattr(ctl, "n_windows", 1) > 1:
            window = f"Window {ctl.window_index + 1} of {ctl.n_windows}"
        self.header.setText(
            f"{window} (T = {ctl.T} steps), {bptt}, zero initial state, the network's current "
            f"weights. {note}".strip())
        self.results = None
        self.error = None
        self.table.setRowCount(0)
        self.summary.setText("Checking …")
        self.summary.setStyleSheet("")
        self.busy.show()
        self.run_button.setEnabled(False)

        relay = self._relay

        def work():
            try:
                results = gradcheck(net, inputs, targets, truncate=truncate,
                                    max_checks=max_checks)
            except Exception as exc:            # shown in the dialog, never a traceback
                message = f"the gradient check failed: {exc}"
                try:
                    relay.failed.emit(message)
                except RuntimeError:            # the dialog was closed and deleted meanwhile
                    pass
                return
            try:
                relay.done.emit(results)
            except RuntimeError:
                pass

        self._thread = threading.Thread(target=work, name="rnn-explorer-gradcheck",
                                        daemon=True)
        self._thread.start()
        return True

    def wait(self, timeout=30.0):
        """Block until the worker is done (for scripts; the GUI uses the signal)."""
        if self._thread is not None:
            self._thread.join(timeout)

    # ----------------------------------------------------------------- showing

    def _finished(self, results):
        self._pending = False
        self.busy.hide()
        self.run_button.setEnabled(True)
        self.results = results
        params = self.ctl.net.params
        self.table.setRowCount(len(results))
        for row, (name, check) in enumerate(results.items()):
            shape = params[name].shape
            size = params[name].size
            entries = (f"all {size:,}" if check.checked >= size
                       else f"{check.checked} of {size:,}")
            where = _where(self.ctl.net, name, check.index)
            cells = (name, " × ".join(str(s) for s in shape), entries,
                     _sci(check.max_rel_error), where, fmt(check.analytic, 5),
                     fmt(check.numerical, 5), _result_text(check))
            for column, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                align = QtCore.Qt.AlignLeft if column in (0, 4, 7) else QtCore.Qt.AlignRight
                item.setTextAlignment(int(align | QtCore.Qt.AlignVCenter))
                self.table.setItem(row, column, item)
            self._colour(self.table.item(row, 7), check.passed(TOLERANCE))
            self._colour(self.table.item(row, 3), check.passed(TOLERANCE), background=False)
        self.table.resizeColumnsToContents()
        self._fit_table()
        failed = [name for name, check in results.items() if not check.passed(TOLERANCE)]
        worst = max(results.values(), key=lambda c: c.max_rel_error)
        if failed:
            self.summary.setText(
                f"FAIL: {len(failed)} of {len(results)} parameters ({', '.join(failed)}) — "
                "the BPTT gradient disagrees with finite differences.")
            self.summary.setStyleSheet(f"color: {FAIL_COLORS[0]};")
        else:
            round_off = [name for name, check in results.items() if check.within_round_off]
            note = ""
            if round_off:
                note = (f" {', '.join(round_off)} pass{'es' if len(round_off) == 1 else ''} "
                        "within round-off: gradients too small to resolve to 1e−6.")
            self.summary.setText(
                f"All {len(results)} parameters pass: BPTT agrees with finite differences "
                f"(largest relative error {_sci(worst.max_rel_error)}, in {worst.name}).{note}")
            self.summary.setStyleSheet(f"color: {PASS_COLORS[0]};")

    def _fit_table(self):
        """Size the table to its rows and columns, and widen the dialog to show them all."""
        header = self.table.horizontalHeader()
        width = header.length() + 2 * self.table.frameWidth() + 4
        # Room for a horizontal scroll bar too, in case the screen is too narrow for the columns.
        height = (self.table.verticalHeader().length() + header.height()
                  + 2 * self.table.frameWidth() + 4
                  + self.table.horizontalScrollBar().sizeHint().height())
        self.table.setMinimumHeight(min(height, 400))
        self.table.setMaximumHeight(height)
        screen = self.screen().availableGeometry().width() if self.screen() else 1600
        margins = self.layout().contentsMargins()
        wanted = width + margins.left() + margins.right()
        if wanted > self.width():
            self.resize(max(self.width(), min(wanted, screen - 40)), self.height())

    def _failed(self, message):
        self._pending = False
        self.busy.hide()
        self.run_button.setEnabled(True)
        self.error = message
        self.summary.setText("⚠ " + message)
        self.summary.setStyleSheet(f"color: {FAIL_COLORS[0]};")

    @staticmethod
    def _colour(item, passed, background=True):
        text, fill = PASS_COLORS if passed else FAIL_COLORS
        item.setForeground(QtGui.QBrush(QtGui.QColor(text)))
        if background:
            item.setBackground(QtGui.QBrush(QtGui.QColor(fill)))
            font = item.font()
            font.setBold(True)
            item.setFont(font)

    def row(self, name):
        """The texts shown in the row of parameter ``name`` (for tests and scripts)."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == name:
                return [self.table.item(row, c).text() for c in range(len(COLUMNS))]
        raise KeyError(name)
