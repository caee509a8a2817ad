"""The loss: per step L_t within the window, and per window over the updates and training."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

from .base import COLORS, FONT_SIZE, Bars, Panel, cache_axes, fmt, still_plot
from .output import LABEL_STYLE, title_label, token_label

RAW_COLOR = "#8fbfe0"
KEY_FONT = f"font-size: {FONT_SIZE - 1}pt"       # the keys under the titles
COMPACT_HEIGHT, COMPACT_WIDTH = 280, 640          # smaller docks leave the keys out
# Training records up to ~10^5 updates: the history curves draw at most this many points.
MAX_POINTS = 1000


def decimate(x, y, max_points, peaks=False):
    """At most ``max_points`` points of the curve (x, y) for drawing.

    Long curves are cut into equal buckets; each bucket gives its first point, or with
    ``peaks`` its lowest and highest value, so spikes (exploding gradients) stay visible;
    the points after the last whole bucket are kept as they are.
    """
    n = len(x)
    if n <= max_points:
        return x, y
    k = math.ceil(n / (max_points // 2 if peaks else max_points))
    if not peaks:
        # Every k-th point, and always the newest one: the curve ends where training is.
        idx = np.append(np.arange(0, n, k), n - 1) if (n - 1) % k else np.arange(0, n, k)
        return x[idx], y[idx]
    m = n - n % k
    buckets = y[:m].reshape(-1, k)
    xs = np.repeat(x[:m:k], 2)
    ys = np.empty(len(xs))
    ys[0::2] = buckets.min(axis=1)
    ys[1::2] = buckets.max(axis=1)
    return np.append(xs, x[m:]), np.append(ys, y[m:])


def round_up(value):
    """A round axis top ≥ value: 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^k."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * exp >= value * (1 - 1e-12):
            return m * exp
    return 10 * exp


SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def log_ticks(lo, hi):
    """Ticks for a log axis whose view runs from 10^lo to 10^hi: the decades, and 2 and 5 ×
    them when the range is short; labels 0.01, 1, 100, 10⁻⁶ (pyqtgraph labels every minor
    tick and adds an SI factor, which is hard to read on a projector)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo > 400:
        return None
    span = hi - lo
    step = 1 if span <= 8 else 2 if span <= 16 else 5 if span <= 40 else 10
    mantissas = (1, 2, 5) if span < 2.5 else (1,)
    major, minor = [], []
    for k in range(math.floor(lo), math.ceil(hi) + 1):
        for m in mantissas:
            v = k + math.log10(m)
            if lo <= v <= hi:
                (major if k % step == 0 else minor).append((v, _power_text(m, k)))
    return [major, [(v, "") for v, _ in minor]]


def _power_text(m, k):
    if -3 <= k <= 3:
        return f"{m * 10.0 ** k:.{max(0, -k)}f}"
    head = "" if m == 1 else f"{m}·"
    return f"{head}10{str(k).translate(SUPERSCRIPT)}"


def _plot_widget():
    widget, plot = still_plot(grid_x=False)
    cache_axes(plot)
    return widget, plot


class LossPanel(Panel):
    title = "Loss"
    name = "loss"
    tooltip = ("Loss: L_t = −ln ŷ_t[target] for each step of this window, and the loss per "
               "window after every update and training iteration.")

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        # (a) per-step loss in this window
        self.step_title = title_label()
        self.step_widget, self.step_plot = _plot_widget()
        self.step_plot.setMouseEnabled(x=False, y=False)
        self.step_plot.setLabel("left", "L_t", **LABEL_STYLE)
        self.step_plot.setLabel("bottom", "time step t", **LABEL_STYLE)
        self.step_bars = Bars(x=[0], height=[0], width=0.8, brush=COLORS["forward"])
        self.step_plot.addItem(self.step_bars)
        # Made once: pens and brushes from colour names cost more than the bars themselves.
        self._pens = {True: pg.mkPen("#404040", width=1), False: pg.mkPen(None)}
        self._brushes = {True: pg.mkBrush(COLORS["current"]), False: pg.mkBrush(COLORS["forward"])}
        chance_pen = pg.mkPen(COLORS["muted"], width=2, style=QtCore.Qt.DashLine)
        self.step_chance = pg.InfiniteLine(angle=0, pen=chance_pen)
        self.step_chance.setZValue(10)          # over the bars: most sit near chance at first
        self.step_plot.addItem(self.step_chance)

        # (b) loss per window over the updates
        self.hist_title = title_label()
        self.hist_widget, self.hist_plot = _plot_widget()
        self.hist_plot.setMouseEnabled(x=False, y=False)
        self.hist_plot.setLabel("left", "L per window", **LABEL_STYLE)
        self.hist_plot.setLabel("bottom", "update", **LABEL_STYLE)
        self.history_curve = self.hist_plot.plot(pen=pg.mkPen(RAW_COLOR, width=1.5))
        self.smooth_curve = self.hist_plot.plot(pen=pg.mkPen(COLORS["forward"], width=4))
        self.hist_chance = pg.InfiniteLine(angle=0, pen=chance_pen)
        self.hist_plot.addItem(self.hist_chance)
        self.empty_text = pg.TextItem(color=COLORS["muted"], anchor=(0.5, 0.5))
        font = QtGui.QFont()
        font.setPointSize(FONT_SIZE)
        self.empty_text.setFont(font)
        self.hist_plot.addItem(self.empty_text, ignoreBounds=True)

        # the gradient norm, on a right axis of its own (log scale), shown on demand
        self.norm_view = pg.ViewBox()
        self.norm_view.setMouseEnabled(x=False, y=False)
        self.hist_plot.scene().addItem(self.norm_view)
        right = self.hist_plot.getAxis("right")
        right.linkToView(self.norm_view)
        right.setLabel("‖∇L‖", color=COLORS["accent"], **LABEL_STYLE)
        right.setLogMode(True)
        right.enableAutoSIPrefix(False)
        self.norm_view.setXLink(self.hist_plot.vb)
        self.norm_curve = pg.PlotDataItem(pen=pg.mkPen(COLORS["accent"], width=2))
        self.norm_curve.setLogMode(False, True)
        self.norm_view.addItem(self.norm_curve)
        self.norm_view.sigYRangeChanged.connect(self._norm_ticks)
        self.hist_plot.vb.sigResized.connect(self._sync_views)
        # Short: a check box does not wrap, and its text would set the dock's least width.
        self.show_norm = QtWidgets.QCheckBox("gradient norm ‖∇L‖ (right axis)")
        self.show_norm.setToolTip("Show the global norm of each window's gradient before "
                                  "clipping, on a log scale at the right: spikes are "
                                  "exploding gradients.")
        self.show_norm.toggled.connect(self._norm_toggled)

        # The two plots sit one above the other, or side by side in a wide, low dock.
        self.plots_box = QtWidgets.QBoxLayout(QtWidgets.QBoxLayout.TopToBottom)
        self.plots_box.setSpacing(4)
        for title, widget in ((self.step_title, self.step_widget),
                              (self.hist_title, self.hist_widget)):
            column = QtWidgets.QVBoxLayout()
            column.setSpacing(0)
            column.addWidget(title)
            column.addWidget(widget, 1)
            self.plots_box.addLayout(column, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(self.plots_box, 1)
        layout.addWidget(self.show_norm)
        self.step_widget.scene().sigMouseMoved.connect(self._hover_step)
        self._compact = False
        self._hist_key = None
        self._step_key = self.tooltip
        self._norm_toggled(False)
        self._bind()

    def _bind(self):
        ctl = self.ctl
        T, O = ctl.T, ctl.net.output_size
        self._x = np.arange(T)
        # The chance level: a model that knows nothing gives every token 1/O, so L_t = ln O.
        self._chance = math.log(O)
        self.step_chance.setValue(self._chance)
        self.hist_chance.setValue(T * self._chance)
        self.step_plot.setXRange(-0.6, T - 0.4, padding=0)
        # The plot is often a third of a narrow dock: at most about 6 labels.
        every = 1 if T <= 6 else 2 if T <= 12 else 5 if T <= 30 else 10 if T <= 60 else 20
        self.step_plot.getAxis("bottom").setTicks([[(t, str(t)) for t in range(0, T, every)]])
        self._step_top = round_up(1.5 * self._chance)
        self.step_plot.setYRange(0, self._step_top, padding=0)
        self._hist_key = None
        self._bars_key = None

    # ----------------------------------------------------------------- refresh

    def refresh(self):
        if self.unchanged():
            return
        self._refresh_steps()
        self._refresh_history()

    def _refresh_steps(self):
        ctl = self.ctl
        loss = ctl.trace.loss
        done = ~np.isnan(loss)
        current = ctl.current
        heights = np.where(done, loss, 0.0)
        key = (heights.tobytes(), done.tobytes(), current)
        if key != self._bars_key:           # the bars' picture is rebuilt on every setOpts
            self._bars_key = key
            brushes = [self._brushes[t == current] for t in range(len(heights))]
            pens = [self._pens[d] for d in done.tolist()]
            self.step_bars.setOpts(x=self._x, height=heights, width=0.8, brushes=brushes,
                                   pens=pens)
        if done.any():
            # Only ever grows within a lesson, so the bars of consecutive frames compare.
            highest = float(np.max(loss[done]))
            if highest > self._step_top:
                self._step_top = round_up(highest)
                self.step_plot.setYRange(0, self._step_top, padding=0)
        n = int(done.sum())
        key = (f"<span style='{KEY_FONT}'>L_t = −ln ŷ_t[target] &nbsp; "
               f"<span style='color:{COLORS['muted']}'>- - - uniform guess "
               f"ln {ctl.net.output_size} = {self._chance:.2f}</span></span>")
        self._step_key = key
        self.step_widget.setToolTip(key)
        self.step_title.setText(
            f"L_t per step: L = Σ L_t = <b>{fmt(ctl.window_loss)}</b> ({n} of {ctl.T})"
            + ("" if self._compact else "<br>" + key))

    def _refresh_history(self):
        ctl = self.ctl
        h = ctl.history
        n = len(h)
        key = (n, float(h.loss[-1]) if n else None, self.show_norm.isChecked())
        if key == self._hist_key:
            return
        self._hist_key = key
        if n == 0:
            self.history_curve.setData([], [])
            self.smooth_curve.setData([], [])
            self.norm_curve.setData([], [])
            self.hist_plot.setXRange(0, 10, padding=0)
            self.hist_plot.setYRange(0, 1.2 * ctl.T * self._chance, padding=0)
            self.empty_text.setText("No update yet" if self._compact else
                                    "No update yet: one point per update\n"
                                    "(→ after the backward phase, or Train)")
            self.empty_text.setPos(5, 0.5 * ctl.T * self._chance)
            self.empty_text.show()
            self.hist_title.setText("L per window, over the updates" + self._key_line())
            return
        self.empty_text.hide()
        x = h.iteration
        # A few points are dots as well, so that the first update is visible on its own.
        symbol = "o" if n <= 30 else None
        raw_x, raw_y = decimate(x, h.loss, MAX_POINTS, peaks=True)
        self.history_curve.setData(raw_x, raw_y, symbol=symbol, symbolSize=7, symbolPen=None,
                               symbolBrush=RAW_COLOR)
        self.smooth_curve.setData(*decimate(x, h.smooth_loss, MAX_POINTS), symbol=symbol,
                                  symbolSize=9, symbolPen=None, symbolBrush=COLORS["forward"])
        if self.show_norm.isChecked():
            self.norm_curve.setData(*decimate(x, h.grad_norm, MAX_POINTS, peaks=True),
                                    symbol=symbol, symbolSize=7, symbolPen=None,
                                    symbolBrush=COLORS["accent"])
        # From 0, and at least 10 wide: few updates still get whole-number ticks.
        self.hist_plot.setXRange(0, max(10.0, float(x[-1])), padding=0.02)
        finite = raw_y[np.isfinite(raw_y)]
        top = max(float(finite.max()) if len(finite) else 0.0, ctl.T * self._chance)
        self.hist_plot.setYRange(0, 1.05 * top, padding=0)
        self.hist_title.setText(
            f"L per window: last <b>{fmt(float(h.loss[-1]))}</b>, smoothed "
            f"{fmt(float(h.smooth_loss[-1]))} ({n} update{'s' if n != 1 else ''})"
            + self._key_line())

    def _key_line(self):
        """The key under the title; in a small dock it moves to the plot's tooltip."""
        key = self._key()
        self.hist_widget.setToolTip(key)
        return "" if self._compact else "<br>" + key

    def _key(self):
        """What the lines are, in their colours (a legend that never covers the curves)."""
        T, O = self.ctl.T, self.ctl.net.output_size
        return (f"<span style='{KEY_FONT}'><span style='color:{RAW_COLOR}'>━ each</span>"
                f" &nbsp; <span style='color:{COLORS['forward']}'><b>━ smoothed</b></span>"
                f" &nbsp; <span style='color:{COLORS['muted']}'>- - - uniform "
                f"T·ln {O} = {T * self._chance:.3g}</span>"
                + (f" &nbsp; <span style='color:{COLORS['accent']}'>━ ‖∇L‖</span>"
                   if self.show_norm.isChecked() else "") + "</span>")

    def resizeEvent(self, event):
        size = event.size()
        wide = size.width() > 1.4 * size.height()
        self.plots_box.setDirection(QtWidgets.QBoxLayout.LeftToRight if wide
                                    else QtWidgets.QBoxLayout.TopToBottom)
        # A small dock gives the plots the room: the keys under the titles become tooltips.
        compact = size.height() < COMPACT_HEIGHT or (wide and size.width() < COMPACT_WIDTH)
        if compact != self._compact:
            self._compact = compact
            self._hist_key = None
            self.refresh()
        super().resizeEvent(event)

    # ----------------------------------------------------------------- right axis

    def _sync_views(self):
        self.norm_view.setGeometry(self.hist_plot.vb.sceneBoundingRect())
        self.norm_view.linkedViewChanged(self.hist_plot.vb, self.norm_view.XAxis)

    def _norm_ticks(self, view, y_range):
        self.hist_plot.getAxis("right").setTicks(log_ticks(*y_range))

    def _norm_toggled(self, on):
        self.hist_plot.showAxis("right", on)
        self.norm_view.setVisible(on)
        if on:
            self._sync_views()
        self._hist_key = None
        if on:
            self._refresh_history()

    # ----------------------------------------------------------------- hover

    def step_text(self, t):
        """What hovering the bar of step t shows."""
        ctl = self.ctl
        value = float(ctl.trace.loss[t])
        target = token_label(ctl.token(ctl.trace.y[t]), limit=40)
        if math.isnan(value):
            return f"L_{t}: not computed yet (the forward phase reaches step {t} later)"
        p = float(ctl.trace.probs[t, ctl.trace.y[t]])
        return f"L_{t} = −ln ŷ_{t}['{target}'] = −ln {p:.3g} = {fmt(value)}"

    def _hover_step(self, scene_pos):
        plot = self.step_plot
        if not plot.sceneBoundingRect().contains(scene_pos):
            return
        x = plot.vb.mapSceneToView(scene_pos).x()
        t = int(round(x))
        if 0 <= t < self.ctl.T and abs(x - t) <= 0.45:
            text = self.step_text(t)
            self.step_widget.setToolTip(text)
            QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), text, self.step_widget)
        else:
            self.step_widget.setToolTip(self._step_key)

    def export_items(self):
        return [("loss per step", self.step_plot), ("loss over updates", self.hist_plot)]
