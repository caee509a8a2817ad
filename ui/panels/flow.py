"""Gradient flow: ‖∂L_s/∂h_t‖ against the distance s − t on a log scale (vanishing, exploding)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

from explorer.analysis import decades_per_step

from .base import COLORS, FONT_SIZE, Panel, fmt
from .loss import COMPACT_HEIGHT, KEY_FONT, log_ticks
from .output import LABEL_STYLE, title_label

N_TERMS = 5             # single loss terms L_s drawn as thin lines: the last few steps
TERM_COLOR = "#b08fc7"
BAND_COLOR = (214, 39, 40, 50)


def _positive(values):
    """Zeros (and overflowed numbers) cannot be drawn on a log axis: they become gaps."""
    values = np.array(values, dtype=float)
    values[~(np.isfinite(values) & (values > 0))] = np.nan
    return values


def radius_text(rho):
    """A spectral radius for a label: 1.20, or 3.8e+18 once the network has blown up."""
    return f"{rho:.2f}" if rho < 100 else fmt(rho)


def rate_caption(mean):
    """In words, how fast the mean gradient falls or grows with the distance (for the caption)."""
    per_step, n = decades_per_step(mean)
    if n == 0:
        return ""
    if abs(per_step * n) < 1:
        word = "falls" if per_step < 0 else "grows"
        return (f"{word} less than 10× over {n} steps: the gradient reaches back "
                "across the window")
    every = 1 / abs(per_step)
    if per_step < 0:
        return f"falls 10× every {every:.2g} steps: vanishing"
    return f"grows 10× every {every:.2g} steps: exploding"


class FlowPanel(Panel):
    title = "Gradient flow"
    name = "flow"
    tooltip = ("Gradient flow: how much of the loss at step s still reaches the hidden state "
               "s − t steps earlier, ‖∂L_s/∂h_t‖, on a log scale.")

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        self.header = title_label()
        self.widget = pg.PlotWidget()
        plot = self.plot = self.widget.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setLogMode(x=False, y=True)
        plot.getAxis("left").enableAutoSIPrefix(False)
        plot.setLabel("left", "‖∂L_s/∂h_t‖ (log)", **LABEL_STYLE)
        plot.setLabel("bottom", "distance s − t (steps back from L_s)", **LABEL_STYLE)
        # The band first, so the lines draw over it.
        self.low = plot.plot(pen=pg.mkPen(BAND_COLOR[:3], width=1))
        self.high = plot.plot(pen=pg.mkPen(BAND_COLOR[:3], width=1))
        self.band = pg.FillBetweenItem(self.low, self.high, brush=pg.mkBrush(BAND_COLOR))
        plot.addItem(self.band)
        self.mean = plot.plot(pen=pg.mkPen(COLORS["backward"], width=5), symbol="o",
                              symbolSize=6, symbolBrush=COLORS["backward"], symbolPen=None)
        # The single terms over the mean: where they coincide with it, they show as one.
        self.terms = [plot.plot(pen=pg.mkPen(TERM_COLOR, width=1.5)) for _ in range(N_TERMS)]
        self.cut = pg.InfiniteLine(angle=90, pen=pg.mkPen(COLORS["text"], width=3,
                                                          style=QtCore.Qt.DashLine))
        self.cut_label = pg.TextItem(color=COLORS["text"], anchor=(0, 0))
        font = QtGui.QFont()
        font.setPointSize(FONT_SIZE)
        self.cut_label.setFont(font)
        self.cut_region = pg.LinearRegionItem(movable=False, brush=(120, 120, 120, 40),
                                              pen=pg.mkPen(None))
        for item in (self.cut_region, self.cut, self.cut_label):
            plot.addItem(item, ignoreBounds=True)

        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)
        self.message.setAlignment(QtCore.Qt.AlignCenter)
        self.message.setStyleSheet(f"font-size: {FONT_SIZE + 2}pt; color: {COLORS['muted']};"
                                   "padding: 20px;")
        page = QtWidgets.QWidget()
        page_layout = QtWidgets.QVBoxLayout(page)
        page_layout.setContentsMargins(0, 0, 0, 0)
        page_layout.setSpacing(0)
        page_layout.addWidget(self.header)
        page_layout.addWidget(self.widget, 1)
        self.stack = QtWidgets.QStackedWidget()
        self.stack.addWidget(self.message)
        self.stack.addWidget(page)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self.widget.scene().sigMouseMoved.connect(self._hover)
        self.plot.vb.sigYRangeChanged.connect(self._place_cut_label)
        self._compact = False
        self.plot.vb.sigYRangeChanged.connect(
            lambda _, r: self.plot.getAxis("left").setTicks(log_ticks(*r)))
        self._bind()

    def _bind(self):
        T = self.ctl.T
        self._d = np.arange(T)
        self.plot.setXRange(0, max(T - 1, 1), padding=0.02)
        every = 1 if T <= 12 else 2 if T <= 24 else 5 if T <= 60 else 10
        self.plot.getAxis("bottom").setTicks([[(d, str(d)) for d in range(0, T, every)]])
        self._key = None
        self._overflow = False
        self._mean = np.full(T, np.nan)
        self._low = self._high = self._mean

    def refresh(self):
        ctl = self.ctl
        if ctl.scales is None:          # the flow is known once the forward phase has ended
            left = ctl.T - ctl.position
            self.message.setText(
                "Gradient flow ‖∂L_s/∂h_t‖ needs the whole forward pass.\n\n"
                f"Step forward to the end of the window ({left} more step"
                f"{'s' if left != 1 else ''}): then this shows how the gradient of each loss "
                "term L_s shrinks or grows as it travels back s − t steps.")
            self.stack.setCurrentIndex(0)
            self._key = None
            return
        flow = ctl.trace.flow
        # The flow only changes with a new forward pass (a new window or new parameters).
        key = (ctl.iteration, ctl.window_index, ctl.truncate, float(np.nansum(flow[-1])))
        if key != self._key:
            self._key = key
            self._redraw(flow)
        self.stack.setCurrentIndex(0 if self._overflow else 1)

    def _redraw(self, flow):
        ctl = self.ctl
        mean, low, high = ctl.flow_by_distance()
        self._mean, self._low, self._high = mean, low, high
        self._overflow = not np.isfinite(_positive(mean)).any()
        if self._overflow:
            self.message.setText(
                "The gradients overflowed (∞ or NaN): this network has exploded.\n\n"
                "Go back before the last update, lower the learning rate or clip the "
                "gradients.")
            return
        d = self._d
        self.low.setData(d, _positive(low))
        self.high.setData(d, _positive(high))
        self.mean.setData(d, _positive(mean))
        T = ctl.T
        for k, curve in enumerate(self.terms):
            s = T - 1 - k
            if s < 1:
                curve.setData([], [])
                continue
            t = np.arange(s + 1)
            curve.setData(s - t, _positive(flow[s, :s + 1]))
        self._truncation(T)
        self.header.setText(self._title(mean))

    def _truncation(self, T):
        k = self.ctl.truncate
        if k is None or k >= T - 1:
            for item in (self.cut, self.cut_label, self.cut_region):
                item.hide()
            return
        self.cut.setValue(k)
        self.cut_region.setRegion((k, T - 1))
        self.cut_label.setText(f" truncate = {k}:\n gradients stop here")
        self._place_cut_label()
        for item in (self.cut, self.cut_label, self.cut_region):
            item.show()

    def _place_cut_label(self, *_):
        if self.ctl.truncate is not None:
            self.cut_label.setPos(self.ctl.truncate, self.plot.vb.viewRange()[1][1])

    def _title(self, mean):
        ctl = self.ctl
        eig = ctl.eigenvalues()
        if ctl.net.cell == "rnn":
            rho = float(np.max(np.abs(eig["W"])))
            side = "≈" if abs(rho - 1) < 0.005 else "&gt;" if rho > 1 else "&lt;"
            radius = f"ρ(W) = {radius_text(rho)} {side} 1"
        else:
            # The gates scale the flow too; the largest block radius is only a hint.
            rho = max(float(np.max(np.abs(lam))) for lam in eig.values())
            radius = f"largest ρ of W's gate blocks = {radius_text(rho)}"
        key = (f"<span style='{KEY_FONT}'>"
               f"<span style='color:{COLORS['backward']}'><b>━ mean over s</b></span> &nbsp; "
               f"<span style='color:{COLORS['backward']}'>▒ min–max over s</span> &nbsp; "
               f"<span style='color:{TERM_COLOR}'>━ single terms L_s, last {N_TERMS} s</span>"
               "</span>")
        # In a low dock the key moves to the plot's tooltip, leaving the height to the plot.
        self.widget.setToolTip(key)
        return (f"‖∂L_s/∂h_t‖ <b>{rate_caption(mean)}</b> &nbsp; ({radius})"
                + ("" if self._compact else "<br>" + key))

    def resizeEvent(self, event):
        compact = event.size().height() < COMPACT_HEIGHT
        if compact != self._compact:
            self._compact = compact
            self.plot.setLabel("left", "‖∂L_s/∂h_t‖" if compact else "‖∂L_s/∂h_t‖ (log)",
                               **LABEL_STYLE)
            self._key = None
            self.refresh()
        super().resizeEvent(event)

    # ----------------------------------------------------------------- hover

    def distance_text(self, d):
        """What hovering distance d shows."""
        if not 0 <= d < len(self._mean) or math.isnan(self._mean[d]):
            return f"distance {d}: not computed yet"
        return (f"s − t = {d}: mean ‖∂L_s/∂h_t‖ = {fmt(self._mean[d])} "
                f"(min {fmt(self._low[d])}, max {fmt(self._high[d])}, over "
                f"{len(self._mean) - d} loss terms)")

    def _hover(self, scene_pos):
        if self.stack.currentIndex() != 1 or \
                not self.plot.sceneBoundingRect().contains(scene_pos):
            return
        x = self.plot.vb.mapSceneToView(scene_pos).x()
        d = int(round(x))
        if 0 <= d < len(self._mean):
            text = self.distance_text(d)
            self.widget.setToolTip(text)
            QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), text, self.widget)

    def export_items(self):
        return [("gradient flow", self.plot)]
