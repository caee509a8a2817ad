"""The weights U, W, V as heatmaps, each above its gradient as the backward phase accumulates it."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtGui, QtWidgets

from .base import DIVERGING, FONT_SIZE, Panel, cache_axes, fmt, nice_limit
from .output import LABEL_STYLE, title_label, token_label

MATRICES = ("U", "W", "V")
GATE_NAMES = {"lstm": "ifgo", "gru": "rzn"}
COMPACT_WIDTH = 640        # below this panel width the axis titles are left out
MAX_TOKEN_TICKS = 30        # label U's columns and V's rows with tokens up to this vocabulary


def _key(name, grad):
    """The items' key: "W" for the weights, "dW" for their gradient."""
    return f"d{name}" if grad else name


class _Title(pg.LabelItem):
    """A heatmap's title that may overhang its column instead of widening it (a pyqtgraph
    title keeps its whole width and would push the last matrix out of a narrow dock)."""

    def updateMin(self):
        super().updateMin()
        self.setMinimumWidth(0)


def _shape_text(name, G):
    """The matrix's shape in the textbook's letters: H×I, 4H×H, O×H."""
    rows = "O" if name == "V" else "H" if G == 1 else f"{G}H"
    cols = {"U": "I", "W": "H", "V": "H"}[name]
    return f"{rows}×{cols}"


def _level_text(x):
    """A colour-bar end as written by hand: 0.05, 100, 2e+06."""
    return f"{x:g}".replace("-", "−") if 1e-3 <= abs(x) < 1e5 else fmt(x, 2)


def index_ticks(n):
    """Ticks at the centres of rows or columns 0 … n−1 (a cell spans [i, i + 1])."""
    step = 1 if n <= 5 else next((s for s in (2, 5, 10, 20, 50, 100) if n / s <= 3.5), 200)
    return [[(i + 0.5, str(i)) for i in range(0, n, step)], []]


class WeightsPanel(Panel):
    title = "Weights and gradients"
    name = "weights"
    tooltip = ("The weight matrices U, W, V (top) and their gradients ∂L/∂U, ∂L/∂W, ∂L/∂V "
               "(below), which the backward phase accumulates step by step on a colour scale "
               "fixed for the whole phase; before it, the lower row shows what the last update "
               "changed.")
    showing_update = False      # the lower row shows the last update's Δθ, not ∂L/∂θ

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        self.header = title_label()
        self.view = pg.GraphicsLayoutWidget()
        self.view.ci.setContentsMargins(2, 2, 2, 2)
        self.plots, self.images, self.bars, self.gate_lines = {}, {}, {}, {}
        self.titles = {}
        for c, name in enumerate(MATRICES):
            for row, grad in enumerate((False, True)):
                key = _key(name, grad)
                title = _Title(size=f"{FONT_SIZE}pt")
                self.view.addItem(title, row=2 * row, col=c)
                plot = self.view.addPlot(row=2 * row + 1, col=c)
                plot.setMenuEnabled(False)
                plot.setMouseEnabled(x=False, y=False)
                plot.hideButtons()
                plot.invertY(True)          # row 0 at the top, as a matrix is written
                image = pg.ImageItem(axisOrder="row-major")
                image.setColorMap(DIVERGING)
                plot.addItem(image)
                # Inside the plot's own layout: the bar is as tall as the image, and its end
                # labels have the title and the axis around them.
                bar = pg.ColorBarItem(colorMap=DIVERGING, interactive=False, width=10)
                bar.setImageItem(image, insert_in=plot)
                bar.axis.enableAutoSIPrefix(False)
                bar.axis.setStyle(hideOverlappingLabels=False)   # keep the end labels
                cache_axes(plot)
                bar.axis.setCacheMode(QtWidgets.QGraphicsItem.DeviceCoordinateCache)
                self.plots[key], self.images[key], self.bars[key] = plot, image, bar
                self.titles[key] = title
                self.gate_lines[key] = []
        self.view.scene().sigMouseMoved.connect(self._hover)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(self.view, 1)
        self._bind()

    def _bind(self):
        ctl = self.ctl
        net = ctl.net
        H, cell = net.hidden_size, net.cell
        self._gates = GATE_NAMES.get(cell, "")
        G = max(len(self._gates), 1)
        self._data = {}
        self._levels_key = None
        self._grads_key = None
        self._limits = {}
        for key, plot in self.plots.items():
            name, grad = key.lstrip("d"), key.startswith("d")
            rows, cols = net.params[name].shape
            self._data[key] = np.zeros((rows, cols))
            plot.setXRange(0, cols, padding=0)
            plot.setYRange(0, rows, padding=0)
            self._axes(plot, name, rows, cols, H, G)
            for line in self.gate_lines[key]:
                plot.removeItem(line)
            self.gate_lines[key] = []
            if G > 1 and name in ("U", "W"):
                for k in range(1, G):
                    line = pg.InfiniteLine(pos=k * H, angle=0,
                                           pen=pg.mkPen("#000000", width=2))
                    plot.addItem(line)
                    self.gate_lines[key].append(line)
            self.titles[key].setText(
                f"∂L/∂{name}" if grad else f"{name} ({_shape_text(name, G)})")

    def _axes(self, plot, name, rows, cols, H, G):
        """Axis titles and ticks: tokens where a row or column is a token, gate blocks."""
        ctl = self.ctl
        left, bottom = plot.getAxis("left"), plot.getAxis("bottom")
        left.setTicks(index_ticks(rows))
        bottom.setTicks(index_ticks(cols))
        if name in ("U", "W"):
            if G > 1:
                left.setTicks([[((k + 0.5) * H, g) for k, g in enumerate(self._gates)], []])
                plot.setLabel("left", "gate", **LABEL_STYLE)
            else:
                plot.setLabel("left", "unit (row)", **LABEL_STYLE)
            if name == "U":
                plot.setLabel("bottom", "input token", **LABEL_STYLE)
                if cols <= MAX_TOKEN_TICKS:
                    bottom.setTicks([[(j + 0.5, token_label(ctl.token(j), 3))
                                      for j in range(cols)], []])
            else:
                plot.setLabel("bottom", "unit of h_{t−1}", **LABEL_STYLE)
        else:
            plot.setLabel("left", "output token", **LABEL_STYLE)
            plot.setLabel("bottom", "unit of h_t", **LABEL_STYLE)
            if rows <= MAX_TOKEN_TICKS:
                left.setTicks([[(i + 0.5, token_label(ctl.token(i), 3))
                                for i in range(rows)], []])

    # ----------------------------------------------------------------- refresh

    def refresh(self):
        if self.unchanged():
            return
        ctl = self.ctl
        params = ctl.net.params
        # Weight levels change only with the parameters (after an update or training), so that
        # within a cycle the colours mean the same numbers from frame to frame.
        if self._levels_key != ctl.iteration:
            self._levels_key = ctl.iteration
            for name in MATRICES:
                self._limits[name] = nice_limit(np.max(np.abs(params[name])))
        for name in MATRICES:
            # The parameters change only with an update (or going back over one).
            shown = self._data.get(name)
            if shown is None or shown.shape != params[name].shape or \
                    not np.array_equal(shown, params[name]):
                self._show(name, params[name].copy(), self._limits[name])
        done = ctl.position - ctl.T          # backward steps done
        # Before the backward phase the gradients are all zero: the lower row shows instead
        # what the last update did to each matrix, Δθ = θ_after − θ_before.
        self.showing_update = done <= 0 and ctl.last_update is not None
        # Δθ stays the same through a forward phase: only the gradients change with each step.
        key = ((ctl.iteration, ctl.window_index) if self.showing_update else
               (ctl.iteration, ctl.window_index, ctl.position, ctl.truncate))
        key += (self.showing_update,)
        if key != self._grads_key:
            self._grads_key = key
            if self.showing_update:
                for name in MATRICES:
                    change = ctl.last_update[name]
                    self._show("d" + name, change, nice_limit(np.max(np.abs(change))))
            else:
                grads = ctl.grads
                scales = ctl.scales
                for name in MATRICES:
                    limit = nice_limit(scales["grads"][name]) if scales else 1.0
                    self._show("d" + name, grads[name], limit)
            for name in MATRICES:
                self.titles["d" + name].setText(f"Δ{name}" if self.showing_update
                                                else f"∂L/∂{name}")
        self.header.setText(self._header(done))

    def _show(self, key, data, limit):
        self._data[key] = data
        self.images[key].setImage(data, levels=(-limit, limit), autoLevels=False)
        bar = self.bars[key]
        if bar.levels() != (-limit, limit):
            bar.setLevels((-limit, limit))
            # A hair inside the ends: a tick exactly at the end can round out of the axis.
            end = limit * (1 - 1e-6)
            low, high = _level_text(-limit), _level_text(limit)
            bar.axis.setTicks([[(-end, low), (0.0, "0"), (end, high)], []])
            # Wide enough for "−0.05": the axis drops a label that does not fit.
            font = bar.axis.style["tickFont"] or QtGui.QFont()
            bar.axis.setWidth(QtGui.QFontMetrics(font).horizontalAdvance(low) + 16)

    def _header(self, done):
        ctl = self.ctl
        T = ctl.T
        if self.showing_update:
            return (f"Below: Δθ of update {ctl.iteration} = −η · {self._step_name()}, "
                    f"η = {fmt(ctl.lr)}")
        if done <= 0:
            return (f"Weights above, gradients ∂L/∂θ below: 0 until the backward phase adds "
                    f"steps {T - 1} … 0")
        if done < T:
            return (f"∂L/∂θ so far: steps T−1…t = <b>{T - 1}…{T - done}</b> "
                    f"({done} of {T})")
        return (f"∂L/∂θ complete: steps <b>{T - 1}…0</b>; the update is next: θ ← θ − η · "
                f"{self._step_name()}")

    def _step_name(self):
        """What the optimiser multiplies by η: the gradient itself for plain SGD."""
        name = self.ctl.optimizer.name
        return "∂L/∂θ" if name == "sgd" else f"({name}'s rescaled ∂L/∂θ)"

    def resizeEvent(self, event):
        # A narrow dock keeps the images and drops the axis titles (the hover names cells).
        compact = event.size().width() < COMPACT_WIDTH
        for plot in self.plots.values():
            for side in ("left", "bottom"):
                plot.getAxis(side).showLabel(not compact)
        super().resizeEvent(event)

    # ----------------------------------------------------------------- hover

    def cell_text(self, name, grad, i, j):
        """What hovering cell (i, j) of matrix ``name`` (or its lower row) shows."""
        value = float(self._data[_key(name, grad)][i, j])
        lower = f"Δ{name}" if self.showing_update else f"∂L/∂{name}"
        label = f"{lower}[{i}, {j}]" if grad else f"{name}[{i}, {j}]"
        text = f"{label} = {fmt(value)}"
        H = self.ctl.net.hidden_size
        if self._gates and name in ("U", "W"):
            text += f"  (gate {self._gates[i // H]}, unit {i % H})"
        if name == "U":
            text += f"  (input '{token_label(self.ctl.token(j), 20)}')"
        elif name == "V":
            text += f"  (output '{token_label(self.ctl.token(i), 20)}')"
        return text

    def _hover(self, scene_pos):
        for key, plot in self.plots.items():
            if plot.sceneBoundingRect().contains(scene_pos):
                p = plot.vb.mapSceneToView(scene_pos)
                i, j = int(math.floor(p.y())), int(math.floor(p.x()))
                rows, cols = self._data[key].shape
                if 0 <= i < rows and 0 <= j < cols:
                    text = self.cell_text(key.lstrip("d"), key.startswith("d"), i, j)
                    self.view.setToolTip(text)
                    QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), text, self.view)
                    return
        self.view.setToolTip(self.tooltip)

    def export_items(self):
        return list(self.plots.items())
