"""What every panel shares: the Panel base class, the colour maps, and the Heatmap widget."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

# Signed quantities use a diverging map centred on zero (blue < 0 < red, white at 0).
DIVERGING = pg.colormap.get("CET-D1")
# Projector-friendly palette for lines and highlights.
COLORS = {
    "forward": "#1f77b4", "backward": "#d62728", "accent": "#ff7f0e", "good": "#2ca02c",
    "muted": "#7f7f7f", "target": "#2ca02c", "current": "#ff7f0e", "text": "#202020",
}
FONT_SIZE = 12          # points; the window scales panels' fonts from this


def nice_limit(value, floor=1e-12):
    """A round number ≥ |value| (1, 2 or 5 × 10^k) for colour levels that read well."""
    value = abs(float(value))
    if not math.isfinite(value) or value <= floor:
        return 1.0
    exp = math.floor(math.log10(value))
    for m in (1, 2, 5, 10):
        if m * 10 ** exp >= value:
            return m * 10 ** exp
    return 10 ** (exp + 1)


def fmt(x, digits=3):
    """A number as a teacher writes it: NaN as '–', else `digits` significant digits."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}".replace("-", "−")


def centred_ticks(n, most=8):
    """Tick (position, label) pairs at cell centres 0.5, 1.5, …, at most ``most`` of them."""
    step = 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000):
        if n / step <= most:
            break
    return [(k + 0.5, str(k)) for k in range(0, n, step)]


class Panel(QtWidgets.QWidget):
    """A view of the controller: built once, then ``refresh()`` updates its items in place.

    Subclasses set ``title``, ``tooltip`` (one line: what it shows) and ``name`` (a stable id for
    the dock layout), build their items in ``__init__``, size them in ``_bind()`` (called when the
    controller is replaced: a new preset or model) and redraw in ``refresh()``.
    """

    title = "Panel"
    name = "panel"
    tooltip = ""

    def __init__(self, ctl, selection, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.selection = selection
        self.setToolTip(self.tooltip)
        self.setObjectName(self.name)

    def set_controller(self, ctl):
        """Point the panel at another controller (a new lesson), then redraw."""
        self.ctl = ctl
        self._bind()
        self.refresh()

    def _bind(self):
        """Resize items to the controller's shapes (T, H, vocabulary …). Optional."""

    def refresh(self):
        raise NotImplementedError

    def export_items(self):
        """(label, pyqtgraph PlotItem or GraphicsScene) pairs that File ▸ Export can save."""
        return []


class Heatmap(pg.GraphicsLayoutWidget):
    """A (T, n) array drawn as an n × T heatmap: time along x, units along y.

    One ImageItem, updated in place with fixed, zero-centred levels; NaN (not computed yet)
    is transparent. Hovering shows what a cell is (``label(t, k, value)``); clicking a cell
    calls ``on_click(t, k)``.
    """

    def __init__(self, label, on_click=None, x_title="time step t", y_title="unit",
                 parent=None):
        super().__init__(parent)
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.plot = self.addPlot()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", x_title)
        self.plot.setLabel("left", y_title)
        # col-major: data[t, k] puts t on x and k on y, no transposes.
        self.image = pg.ImageItem(axisOrder="col-major")
        self.image.setColorMap(DIVERGING)
        self.plot.addItem(self.image)
        self.marker = pg.QtWidgets.QGraphicsRectItem(0, 0, 1, 1)
        self.marker.setPen(pg.mkPen(COLORS["current"], width=3))
        self.marker.setBrush(QtGui.QBrush(QtCore.Qt.NoBrush))
        self.plot.addItem(self.marker)
        self.unit_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("#000000", width=1,
                                                              style=QtCore.Qt.DashLine))
        self.plot.addItem(self.unit_line)
        self.bar = pg.ColorBarItem(colorMap=DIVERGING, interactive=False, width=14)
        self.bar.setImageItem(self.image)
        self.addItem(self.bar)
        self.label = label
        self.on_click = on_click
        self._data = np.zeros((1, 1))
        self._levels = (-1.0, 1.0)
        self.setMouseTracking(True)
        self.scene().sigMouseMoved.connect(self._hover)
        self.scene().sigMouseClicked.connect(self._click)

    def set_shape(self, T, n):
        self.plot.setXRange(0, T, padding=0.01)
        self.plot.setYRange(0, n, padding=0.02)
        # Labels sit in the middle of their cells: cell t spans [t, t + 1).
        self.plot.getAxis("bottom").setTicks([centred_ticks(T)])
        self.plot.getAxis("left").setTicks([centred_ticks(n)])

    def set_data(self, data, levels, current=None, unit=None):
        """Draw ``data`` (T, n) with colour ``levels`` (lo, hi); frame step ``current``."""
        self._data = data
        self._levels = levels
        self.image.setImage(data, levels=levels, autoLevels=False)
        self.bar.setLevels(levels)
        if current is None:
            self.marker.hide()
        else:
            self.marker.setRect(QtCore.QRectF(current, 0, 1, data.shape[1]))
            self.marker.show()
        if unit is None:
            self.unit_line.hide()
        else:
            self.unit_line.setValue(unit + 0.5)
            self.unit_line.show()

    def _cell_at(self, scene_pos):
        if not self.plot.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.plot.vb.mapSceneToView(scene_pos)
        t, k = int(math.floor(p.x())), int(math.floor(p.y()))
        if 0 <= t < self._data.shape[0] and 0 <= k < self._data.shape[1]:
            return t, k
        return None

    def _hover(self, scene_pos):
        cell = self._cell_at(scene_pos)
        if cell is None:
            self.setToolTip(self.parent().toolTip() if self.parent() else "")
            return
        t, k = cell
        text = self.label(t, k, float(self._data[t, k]))
        self.setToolTip(text)
        QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), text, self)

    def _click(self, event):
        cell = self._cell_at(event.scenePos())
        if cell is not None and self.on_click is not None:
            self.on_click(*cell)

    def value_text(self, t, k):
        """What hovering cell (t, k) shows (for tests and for the keyboard)."""
        return self.label(t, k, float(self._data[t, k]))
