"""The hidden-state and BPTT-delta heatmaps: H × T pictures that fill in step by step."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtWidgets

from .base import COLORS, Bars, Heatmap, Panel, cache_axes, fmt, nice_limit


class HiddenPanel(Panel):
    title = "Hidden states h_t"
    name = "hidden"
    tooltip = ("Hidden states h_t: one column per time step, one row per unit; "
               "they fill in left to right during the forward phase.")

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        self.heatmap = Heatmap(self._label, on_click=self._clicked, parent=self)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.heatmap)
        self._bind()

    def _bind(self):
        self._limit = 1.0
        self.heatmap.set_shape(self.ctl.T, self.ctl.net.hidden_size)

    def _levels(self, data):
        bounded = self.ctl.net.cell != "rnn" or self.ctl.net.activation in ("tanh", "sigmoid")
        if not bounded:
            # Unbounded states (relu, identity): within a window the scale only grows, so its
            # frames stay comparable; a new window starts from its own scale again.
            window = (self.ctl.iteration, self.ctl.window_index)
            if window != getattr(self, "_scale_window", None):
                self._scale_window, self._limit = window, 1.0
            seen = np.nanmax(np.abs(data)) if np.isfinite(data).any() else 0.0
            self._limit = max(self._limit, nice_limit(seen))
        return (-self._limit, self._limit)

    def refresh(self):
        if self.unchanged():
            return
        data = self.ctl.hidden
        ctl = self.ctl
        phase = "forward" if ctl.position <= ctl.T else "backward"
        self.heatmap.set_data(data, self._levels(data), ctl.current, self.selection.unit, phase)

    def _label(self, t, k, value):
        if np.isnan(value):
            return f"h_{t}[{k}]: not computed yet"
        return f"h_{t}[{k}] = {fmt(value)}  (hidden unit {k} after step {t})"

    def _clicked(self, t, k):
        self.selection.select_unit(k)

    def export_items(self):
        return [("hidden states", self.heatmap.plot)]


class DeltaPanel(Panel):
    title = "BPTT deltas δ_t"
    name = "deltas"
    tooltip = ("BPTT deltas δ_t = ∂L/∂a_t: they fill in right to left during the backward "
               "phase; below, their norm ‖δ_t‖ per step.")

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        self.heatmap = Heatmap(self._label, on_click=self._clicked, parent=self)
        self.norm_plot = pg.PlotWidget()
        self.norm_plot.setMenuEnabled(False)
        self.norm_plot.setMouseEnabled(x=False, y=False)
        self.norm_plot.hideButtons()
        self.norm_plot.setLabel("left", "‖δ_t‖")
        self.norm_plot.getAxis("left").enableAutoSIPrefix(False)   # no "(×1e-3)": cut off
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
        self.heatmap.plot.setLabel("left", "unit" if self.ctl.net.cell == "rnn"
                                   else "unit (∂L/∂h_t)")
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

    def _label(self, t, k, value):
        name = "δ" if self.ctl.net.cell == "rnn" else "∂L/∂h"
        if np.isnan(value):
            return f"{name}_{t}[{k}]: not computed yet (the backward phase reaches it later)"
        return f"{name}_{t}[{k}] = {fmt(value)}"

    def _clicked(self, t, k):
        self.selection.select_unit(k)

    def export_items(self):
        return [("deltas", self.heatmap.plot), ("delta norms", self.norm_plot.getPlotItem())]
