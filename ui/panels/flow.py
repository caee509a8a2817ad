"""Gradient flow: the fraction of each loss term's gradient that reaches d steps back (log)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

from explorer.analysis import decades_per_step, flow_by_distance

from .base import COLORS, FONT_SIZE, Panel, RichLabel, fmt, message_or_plot, still_plot
from .loss import KEY_FONT, log_ticks
from .output import LABEL_STYLE, title_label

# A distance reached by fewer loss terms than this is drawn grey: too few terms to average.
MIN_TERMS = 3
# A rate measured over fewer distance steps than this gets no verdict.
MIN_STEPS = 3
BAND_COLOR = (214, 39, 40, 50)
TAIL_COLOR = "#9a9a9a"
# The y axis title, longest first: the longest that fits the plot's height is shown.
# Longest first: the widest that fits the plot's height is shown. "Relative", not "fraction":
# exploding gradients grow beyond 1.
Y_TITLES = ("‖∂L<sub>s</sub>/∂h<sub>s−d</sub>‖ / ‖∂L<sub>s</sub>/∂h<sub>s</sub>‖ (log)",
            "relative size at h<sub>s−d</sub> (log)",
            "relative size at h<sub>s−d</sub>",
            "relative size")
WIDE = 640          # from this panel width, the header names ρ(W) too


def _positive(values):
    """Zeros (and overflowed numbers) cannot be drawn on a log axis: they become gaps."""
    values = np.array(values, dtype=float)
    values[~(np.isfinite(values) & (values > 0))] = np.nan
    return values


def radius_text(rho):
    """A spectral radius for a label: 1.20, or 3.8e+18 once the network has blown up."""
    return f"{rho:.2f}" if rho < 100 else fmt(rho)


def rate_caption(mean):
    """In words, how fast the mean gradient falls or grows with the distance (for the caption).

    Only a steady trend over at least `MIN_STEPS` distances, changing the gradient at least
    10× in all, is called vanishing or exploding: the rate is the median step (see
    `decades_per_step`), so that no single noisy distance decides the verdict.
    """
    per_step, n = decades_per_step(mean)
    if n == 0:
        return ""
    measured = _positive(mean)
    measured = measured[np.isfinite(measured)]
    change = math.log10(measured[-1] / measured[0])     # decades from the first to the last
    word = "falls" if change < 0 else "grows"
    steps = f"{n} step{'s' if n != 1 else ''}"
    if n < MIN_STEPS:
        return f"{word} {10 ** abs(change):.2g}× in {steps}: too few to judge"
    if abs(change) < 1:
        return (f"{word} less than 10× over {steps}: the gradient reaches back "
                "across the window")
    if per_step * change > 0 and abs(per_step) * n >= 1:
        every = 1 / abs(per_step)
        if per_step < 0:
            return f"falls 10× every {every:.2g} steps: vanishing"
        return f"grows 10× every {every:.2g} steps: exploding"
    return f"{word} {fmt(10 ** abs(change), 2)}× over {steps}, unevenly"


class FlowPanel(Panel):
    title = "Gradient flow"
    name = "flow"
    tooltip = ("Gradient flow: for each loss term L_s, the fraction of its gradient ‖∂L_s/∂h_s‖ "
               "that still reaches the hidden state d steps earlier, ‖∂L_s/∂h_{s−d}‖ / "
               "‖∂L_s/∂h_s‖, averaged over s, on a log scale.")

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        self.header = title_label()
        self.widget, plot = still_plot()
        self.plot = plot
        plot.setLogMode(x=False, y=True)
        font = QtGui.QFont()
        font.setPointSize(FONT_SIZE)
        metrics = QtGui.QFontMetrics(font)
        self._y_titles = [
            (title, metrics.horizontalAdvance(
                QtGui.QTextDocumentFragment.fromHtml(title).toPlainText()))
            for title in Y_TITLES]
        self._y_title = None
        self._fit_y_title()
        plot.setLabel("bottom", "steps back d = s − t",
                      **LABEL_STYLE)
        # The band first, so the lines draw over it.
        self.low = plot.plot(pen=pg.mkPen(BAND_COLOR[:3], width=1))
        self.high = plot.plot(pen=pg.mkPen(BAND_COLOR[:3], width=1))
        self.band = pg.FillBetweenItem(self.low, self.high, brush=pg.mkBrush(BAND_COLOR))
        plot.addItem(self.band)
        # The longest distances, reached by one or two loss terms only: grey, not averaged.
        self.tail = plot.plot(pen=pg.mkPen(TAIL_COLOR, width=3, style=QtCore.Qt.DotLine),
                              symbol="o", symbolSize=6, symbolBrush=TAIL_COLOR, symbolPen=None)
        self.mean = plot.plot(pen=pg.mkPen(COLORS["backward"], width=5), symbol="o",
                              symbolSize=6, symbolBrush=COLORS["backward"], symbolPen=None)
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

        # Its text counts the forward steps left: a RichLabel asks for no new layout on each.
        self.message = RichLabel(align=QtCore.Qt.AlignCenter, colour=COLORS["muted"],
                                 margin=20, rich=False)
        font = self.message.font()
        font.setPointSize(FONT_SIZE + 2)
        self.message.setFont(font)
        self.stack = message_or_plot(self, self.message, self.header, self.widget)
        self.widget.scene().sigMouseMoved.connect(self._hover)
        self.plot.vb.sigYRangeChanged.connect(self._place_cut_label)
        self._wide = False
        self.plot.vb.sigResized.connect(self._fit_y_title)
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
        nothing = np.full(T, np.nan)
        self._raw = self._mean = self._low = self._high = self._all = nothing

    def refresh(self):
        ctl = self.ctl
        if ctl.scales is None:          # the flow is known once the forward phase has ended
            left = ctl.T - ctl.position
            self.message.setText(
                "Gradient flow ‖∂L_s/∂h_t‖ needs the whole forward pass.\n\n"
                f"Step forward to the end of the window ({left} more step"
                f"{'s' if left != 1 else ''}): then this shows how much of the gradient of "
                "each loss term L_s is left after travelling back s − t steps.")
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
        self._raw = ctl.flow_by_distance()[0]
        self._overflow = not np.isfinite(_positive(self._raw)).any()
        if self._overflow:
            self.message.setText(
                "The gradients overflowed (∞ or NaN): this network has exploded.\n\n"
                "Go back before the last update, lower the learning rate or clip the "
                "gradients.")
            return
        # Each loss term as a fraction of its own size: terms of any size compare, and the
        # band shows how the terms differ in flow, not in size.
        mean, low, high = flow_by_distance(flow, normalise=True, min_terms=MIN_TERMS)
        self._mean, self._low, self._high = mean, low, high
        self._all = flow_by_distance(flow, normalise=True)[0]
        d = self._d
        self.low.setData(d, _positive(low))
        self.high.setData(d, _positive(high))
        self.mean.setData(d, _positive(mean))
        # The grey tail starts at the last averaged distance, so the two lines join.
        averaged = np.flatnonzero(np.isfinite(mean))
        first = averaged[-1] if len(averaged) else 0
        self.tail.setData(d[first:], _positive(self._all[first:]))
        self._truncation(ctl.T)
        self.header.setText(self._title(mean))

    def _truncation(self, T):
        k = self.ctl.truncate
        if k is None or k >= T - 1:
            for item in (self.cut, self.cut_label, self.cut_region):
                item.hide()
            return
        self.cut.setValue(k)
        self.cut_region.setRegion((k, T - 1))
        # The curve is the network's own flow; the shaded part is what truncation leaves out.
        self.cut_label.setText(f" k = {k}: truncated BPTT\n stops here (shaded:\n"
                               " what it leaves out)")
        self._place_cut_label()
        for item in (self.cut, self.cut_label, self.cut_region):
            item.show()

    def _place_cut_label(self, *_):
        if self.ctl.truncate is not None:
            self.cut_label.setPos(self.ctl.truncate, self.plot.vb.viewRange()[1][1])

    def _title(self, mean):
        verdict = rate_caption(mean) or "too few loss terms to measure a rate"
        radius = ""
        if self._wide:
            ctl = self.ctl
            if ctl.net.cell == "rnn":
                radius = f"ρ(W) = {radius_text(ctl.spectral_radius())}"
            else:
                # The gates scale the flow too; the largest block radius is only a hint.
                rho = max(float(np.max(np.abs(lam))) for lam in ctl.eigenvalues().values())
                radius = f"largest gate-block ρ = {radius_text(rho)}"
            radius = f" &nbsp;<span style='white-space: nowrap'>({radius})</span>"
        # The key is short enough for a tab: it always says what each line is.
        key = (f"<span style='{KEY_FONT}'>"
               f"<span style='color:{COLORS['backward']}'><b>━ mean over L<sub>s</sub></b>"
               f" &nbsp; ▒ min–max</span> &nbsp; "
               f"<span style='color:{TAIL_COLOR}'><b>┅ &lt; {MIN_TERMS} terms</b></span></span>")
        return f"Measured: <b>{verdict}</b>{radius}<br>{key}"

    def _fit_y_title(self, *_):
        # A title longer than the plot is high is cut off at both ends: take one that fits.
        room = self.plot.vb.height()
        title = next((t for t, width in self._y_titles if width + 10 <= room), Y_TITLES[-1])
        if title != self._y_title:
            self._y_title = title
            axis = self.plot.getAxis("left")
            axis.setLabel(title, **LABEL_STYLE)
            axis.resizeEvent()          # centre the new title along the axis

    def resizeEvent(self, event):
        wide = event.size().width() >= WIDE
        if wide != self._wide:
            self._wide = wide
            self._key = None
            self.refresh()
        super().resizeEvent(event)

    # ----------------------------------------------------------------- hover

    def distance_text(self, d):
        """What hovering distance d shows."""
        T = len(self._all)
        if not 0 <= d < T or math.isnan(self._all[d]):
            return f"distance {d}: not computed yet"
        n = T - d
        text = (f"d = {d}: on average {fmt(self._all[d])} of ‖∂L_s/∂h_s‖ reaches h_(s−{d}), "
                f"over {n} loss term{'s' if n != 1 else ''}")
        if math.isnan(self._mean[d]):
            text += f" (fewer than {MIN_TERMS}: too few to average)"
        else:
            text += f" (min {fmt(self._low[d])}, max {fmt(self._high[d])})"
        return text + f"; mean ‖∂L_s/∂h_(s−{d})‖ = {fmt(self._raw[d])}"

    def _hover(self, scene_pos):
        if self.stack.currentIndex() != 1 or \
                not self.plot.sceneBoundingRect().contains(scene_pos):
            return
        x = self.plot.vb.mapSceneToView(scene_pos).x()
        d = int(round(x))
        if 0 <= d < len(self._all):
            text = self.distance_text(d)
            self.widget.setToolTip(text)
            QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), text, self.widget)

    def export_items(self):
        return [("gradient flow", self.plot)]
