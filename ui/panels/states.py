"""The hidden-state and BPTT-delta heatmaps: H × T pictures that fill in step by step."""

from __future__ import annotations

import numpy as np
from PyQt5 import QtWidgets

from .base import COLORS, Bars, Heatmap, Panel, cache_axes, fmt, nice_limit, still_plot


def _open_levels(data):
    """Colour levels for values with no fixed bound (relu states, LSTM cells): ± a round number
    above every value computed so far (at least 1). Only computed values count, so a step
    shows the same picture every time it is revisited."""
    seen = np.nanmax(np.abs(data)) if np.isfinite(data).any() else 0.0
    limit = max(1.0, nice_limit(seen))
    return (-limit, limit)


class HiddenPanel(Panel):
    title = "Hidden states h_t"
    name = "hidden"
    tooltip = ("Hidden states h_t: one column per time step, one row per unit; "
               "they fill in left to right during the forward phase (an LSTM's cell states "
               "c_t below them).")

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        self.heatmap = Heatmap(self._label, on_click=self._clicked, parent=self)
        # The LSTM's memory: c_t, the state its forget gate carries from step to step.
        self.cell_heatmap = Heatmap(self._cell_label, on_click=self._clicked, parent=self)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.heatmap, 1)
        layout.addWidget(self.cell_heatmap, 1)
        self._bind()

    def _bind(self):
        ctl = self.ctl
        lstm = ctl.net.cell == "lstm"
        self.heatmap.set_shape(ctl.T, ctl.net.hidden_size)
        self.heatmap.plot.setLabel("left", "unit (h_t)" if lstm else "unit")
        self.cell_heatmap.setVisible(lstm)
        if lstm:
            self.cell_heatmap.set_shape(ctl.T, ctl.net.hidden_size)
            self.cell_heatmap.plot.setLabel("left", "unit (c_t)")

    def _levels(self, data):
        net = self.ctl.net
        if net.cell != "rnn" or net.activation in ("tanh", "sigmoid"):
            return (-1.0, 1.0)                  # bounded states: one fixed scale
        return _open_levels(data)

    def refresh(self):
        if self.unchanged():
            return
        ctl = self.ctl
        phase = "forward" if ctl.position <= ctl.T else "backward"
        self.heatmap.set_data(ctl.hidden, self._levels(ctl.hidden), ctl.current,
                              self.selection.unit, phase)
        if ctl.net.cell == "lstm":
            c = ctl.trace.cell_state
            self.cell_heatmap.set_data(c, _open_levels(c), ctl.current,
                                       self.selection.unit, phase)

    def _label(self, t, k, value):
        if np.isnan(value):
            return f"h_{t}[{k}]: not computed yet"
        return f"h_{t}[{k}] = {fmt(value)}  (hidden unit {k} after step {t})"

    def _cell_label(self, t, k, value):
        if np.isnan(value):
            return f"c_{t}[{k}]: not computed yet"
        return f"c_{t}[{k}] = {fmt(value)}  (the cell state of unit {k} after step {t})"

    def _clicked(self, t, k):
        self.selection.select_unit(k)

    def export_items(self):
        items = [("hidden states", self.heatmap.plot)]
        if self.ctl.net.cell == "lstm":
            items.append(("cell states", self.cell_heatmap.plot))
        return items


class DeltaPanel(Panel):
    title = "BPTT deltas δ_t"
    name = "deltas"
    tooltip = ("BPTT deltas δ_t = ∂L/∂a_t: they fill in right to left during the backward "
               "phase; below, their norm ‖δ_t‖ per step.")

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        self.heatmap = Heatmap(self._label, on_click=self._clicked, parent=self)
        self.norm_plot, _ = still_plot(grid_x=False, grid_y=False)
        self.norm_plot.setLabel("left", "‖δ_t‖")
        self.norm_plot.setLabel("bottom", "time step t")
        self.norm_bars = Bars(x=[0], height=[0], width=0.8, brush=COLORS["backward"], pen=None)
        self.norm_plot.addItem(self.norm_bars)
        cache_axes(self.norm_plot.getPlotItem())
        self.norm_plot.setMaximumHeight(150)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.heatmap, 3)
        layout.addWidget(self.norm_plot, 1)
        self._bind()

    def _bind(self):
        T = self.ctl.T
        self.heatmap.set_shape(T, self.ctl.net.hidden_size)
        rnn = self.ctl.net.cell == "rnn"
        self.heatmap.plot.setLabel("left", "unit" if rnn else "unit (∂L/∂h_t)")
        self.norm_plot.setLabel("left", "‖δ_t‖" if rnn else "‖∂L/∂h_t‖")
        self.norm_plot.setXRange(-0.5, T - 0.5, padding=0.01)
        self._x = np.arange(T)
        self._heights = None
        self._top = None

    def refresh(self):
        if self.unchanged():
            return
        ctl = self.ctl
        scales = ctl.scales
        key = "delta" if ctl.net.cell == "rnn" else "dh"
        limit = nice_limit(scales[key]) if scales else 1.0
        current = ctl.current if ctl.phase != "forward" and ctl.position > ctl.T else None
        self.heatmap.set_data(ctl.deltas, (-limit, limit), current, self.selection.unit,
                              "backward")
        heights = np.nan_to_num(ctl.delta_norms(), nan=0.0)
        # The bars and the axis are rebuilt only when they change (most steps add one bar).
        if not np.array_equal(heights, self._heights):
            self._heights = heights
            self.norm_bars.setOpts(x=self._x, height=heights, width=0.8)
        # The largest ‖δ_t‖ this window will reach, known when the forward phase ends.
        top = nice_limit(scales["delta_norm"]) if scales else 1.0
        if top != self._top:
            self._top = top
            self.norm_plot.setYRange(0, top, padding=0.02)
            # Three labels: the plot is short, and more would run together.
            self.norm_plot.getAxis("left").setTicks(
                [[(v, fmt(v, 2)) for v in (0.0, top / 2, top)], []])

    def _label(self, t, k, value):
        name = "δ" if self.ctl.net.cell == "rnn" else "∂L/∂h"
        if np.isnan(value):
            return f"{name}_{t}[{k}]: not computed yet (the backward phase reaches it later)"
        return f"{name}_{t}[{k}] = {fmt(value)}"

    def _clicked(self, t, k):
        self.selection.select_unit(k)

    def export_items(self):
        return [("deltas", self.heatmap.plot), ("delta norms", self.norm_plot.getPlotItem())]
