"""What every panel shares: the Panel base class, the colour maps, and the Heatmap widget."""

from __future__ import annotations

import collections
import functools
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
NOT_YET = "#dcdcdc"     # the background of numbers not computed yet (NaN)


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


class PictureCache(collections.OrderedDict):
    """Pictures kept by what they show; beyond ``size`` the least recently used go."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def find(self, key):
        picture = self.get(key)
        if picture is not None:
            self.move_to_end(key)
        return picture

    def keep(self, key, picture):
        self[key] = picture
        if len(self) > self.size:
            self.popitem(last=False)
        return picture


class Bars(pg.BarGraphItem):
    """A BarGraphItem that keeps its bounding rectangle until its bars or its view change:
    a view asks for it many times per repaint, and working it out takes pixel arithmetic."""

    _bounds = None

    def setOpts(self, **opts):
        self._bounds = None
        super().setOpts(**opts)

    def viewTransformChanged(self):
        self._bounds = None
        super().viewTransformChanged()

    def viewRangeChanged(self):
        self._bounds = None
        super().viewRangeChanged()

    def boundingRect(self):
        if self._bounds is None:
            self._bounds = super().boundingRect()
        return self._bounds


def still_plot(grid_x=True, grid_y=True, axis_items=None):
    """A PlotWidget and its PlotItem for a panel that sets its own ranges: no mouse zoom,
    context menu or auto-range button; a light grid; plain numbers on the axes (a "×1e−3"
    beside an axis title is easy to miss from the back of the room)."""
    widget = pg.PlotWidget(axisItems=axis_items)
    plot = widget.getPlotItem()
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.setMouseEnabled(x=False, y=False)
    plot.showGrid(x=grid_x, y=grid_y, alpha=0.25)
    for side in ("left", "bottom"):
        plot.getAxis(side).enableAutoSIPrefix(False)
    return widget, plot


def cache_axes(*plots):
    """Keep the axes of these PlotItems as pictures: a view repaints its axes with every
    change inside it, and replaying an axis costs more than copying its picture."""
    for plot in plots:
        for side in ("left", "bottom", "right", "top"):
            plot.getAxis(side).setCacheMode(QtWidgets.QGraphicsItem.DeviceCoordinateCache)


def set_axis_text(axis, text):
    """Replace the title of a bottom (or top) axis that has one, without redrawing the axis.

    pyqtgraph's setLabel throws the axis's picture away and lays the plot out again; a title
    that changes at every step only needs its text replaced and centred again (as the axis
    centres it). The title's style and its room under the axis stay as setLabel made them.
    """
    if text == axis.labelText:
        return
    axis.labelText = text
    axis.label.setHtml(axis.labelString())
    width = axis.label.boundingRect().width()
    axis.label.setPos(int(axis.size().width() / 2 - width / 2), axis.label.pos().y())


_ALIVE = set()          # panels whose Qt object is alive (see Panel.__init__)


def _forget(panel, *_destroyed):
    _ALIVE.discard(panel)


class _ChangeCount:
    """A controller listener that counts its changes. The controller holds only this, not
    the panel: a panel that its controller kept alive, or that a training thread's event
    briefly held, would end at a moment the panel cannot choose."""

    __slots__ = ("n",)

    def __init__(self):
        self.n = 0

    def __call__(self, event):
        self.n += 1


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
        # The controller tells its listeners after every change: counting them lets a
        # refresh that would redraw the same picture return at once (see unchanged()).
        self._changes = _ChangeCount()
        self._seen = None
        ctl.subscribe(self._changes)
        # A panel without a parent (in a test, a script) that is part of a reference cycle
        # would be freed by the garbage collector at any moment, even while Qt paints it or
        # still shows items it owns: held until Qt destroys it, its end is Qt's to decide.
        _ALIVE.add(self)
        self.destroyed.connect(functools.partial(_forget, self))

    def set_controller(self, ctl):
        """Point the panel at another controller (a new lesson), then redraw."""
        self.ctl.unsubscribe(self._changes)
        self.ctl = ctl
        ctl.subscribe(self._changes)
        self._seen = None
        self._bind()
        self.refresh()

    def unchanged(self):
        """True when nothing the panel shows can have changed since the last refresh that
        asked: no controller change, the same selection, the same size. (A redraw request
        often follows the refresh that already showed the change.)"""
        key = (self._changes.n, self.selection.unit, self.selection.step, self.width(),
               self.height())
        if key == self._seen:
            return True
        self._seen = key
        return False

    def _bind(self):
        """Resize items to the controller's shapes (T, H, vocabulary …). Optional."""

    def refresh(self):
        raise NotImplementedError

    def export_items(self):
        """(label, pyqtgraph PlotItem or GraphicsScene) pairs that File ▸ Export can save."""
        return []


class RichLabel(QtWidgets.QWidget):
    """A word-wrapped (rich) text label that is cheap to change.

    A QLabel asks every layout around it to redo its geometry on each new text, and lays the
    text out several times over; a panel's title changes at every step. This label lays its
    text out once per change and asks for room only when the height it needs changes.
    """

    def __init__(self, text="", align=QtCore.Qt.AlignLeft | QtCore.Qt.AlignVCenter,
                 colour=None, margin=0, rich=None, parent=None):
        super().__init__(parent)
        self._doc = QtGui.QTextDocument(self)
        self._doc.setDocumentMargin(0)
        self._doc.setUndoRedoEnabled(False)
        option = QtGui.QTextOption()
        option.setWrapMode(QtGui.QTextOption.WordWrap)
        option.setAlignment(QtCore.Qt.Alignment(int(align) & int(QtCore.Qt.AlignHorizontal_Mask)))
        self._doc.setDefaultTextOption(option)
        self._align = int(align)
        self._colour = QtGui.QColor(colour) if colour else None
        self._margin = margin
        self._rich = rich               # None: rich text if it looks like it (as a QLabel)
        self._doc.setDefaultFont(self.font())
        self._text = None
        self._height = None             # the height the text needs at the current width
        self._hints = {}                # width -> height, for the layouts
        policy = QtWidgets.QSizePolicy(QtWidgets.QSizePolicy.Preferred,
                                       QtWidgets.QSizePolicy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setText(text)

    def text(self):
        return self._text

    def setText(self, text):
        if text == self._text:
            return
        self._text = text
        if self._rich or (self._rich is None and QtCore.Qt.mightBeRichText(text)):
            self._doc.setHtml(text)
        else:
            self._doc.setPlainText(text)
        self._hints = {}
        self._fit()
        self.update()

    def _layout_at(self, width):
        """Lay the text out for ``width`` pixels; the height it takes (margins included)."""
        inner = max(width - 2 * self._margin, 1)
        if self._doc.textWidth() != inner:
            self._doc.setTextWidth(inner)
        return math.ceil(self._doc.size().height()) + 2 * self._margin

    def _fit(self):
        height = self._layout_at(self.width())
        if height != self._height:
            self._height = height
            self.updateGeometry()

    def hasHeightForWidth(self):
        return True

    def heightForWidth(self, width):
        height = self._hints.get(width)
        if height is None:
            height = self._hints[width] = self._layout_at(width)
        return height

    def sizeHint(self):
        # As a QLabel: the text on one line, up to about 80 characters.
        self._doc.setTextWidth(-1)
        width = min(math.ceil(self._doc.idealWidth()),
                    80 * QtGui.QFontMetrics(self.font()).averageCharWidth())
        width += 2 * self._margin
        return QtCore.QSize(width, self.heightForWidth(width))

    def minimumSizeHint(self):
        # As a QLabel: as narrow as the longest word, as low as one line.
        self._doc.setTextWidth(0)
        width = math.ceil(self._doc.size().width()) + 2 * self._margin
        self._doc.setTextWidth(-1)
        height = min(math.ceil(self._doc.size().height()) + 2 * self._margin,
                     self.heightForWidth(self.sizeHint().width()))
        return QtCore.QSize(width, height)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._fit()

    def changeEvent(self, event):
        if event.type() == QtCore.QEvent.FontChange:
            self._doc.setDefaultFont(self.font())
            self._hints = {}
            self._fit()
        super().changeEvent(event)

    def paintEvent(self, event):
        height = self._layout_at(self.width())
        m = self._margin
        y = m
        if self._align & QtCore.Qt.AlignVCenter:
            y = (self.height() - height) / 2 + m
        elif self._align & QtCore.Qt.AlignBottom:
            y = self.height() - height + m
        p = QtGui.QPainter(self)
        p.setPen(self._colour or self.palette().color(QtGui.QPalette.WindowText))
        p.translate(m, y)
        self._doc.drawContents(p, QtCore.QRectF(event.rect()).translated(-m, -y))
        p.end()


def message_or_plot(panel, message, header, widget):
    """Lay ``panel`` out as a stack of two pages — an explanation (``message``) for when there
    is nothing to draw yet, and ``header`` over ``widget`` — and return the stack (page 0: the
    message, page 1: the plot)."""
    page = QtWidgets.QWidget()
    page_layout = QtWidgets.QVBoxLayout(page)
    page_layout.setContentsMargins(0, 0, 0, 0)
    page_layout.setSpacing(0)
    page_layout.addWidget(header)
    page_layout.addWidget(widget, 1)
    stack = QtWidgets.QStackedWidget()
    stack.addWidget(message)
    stack.addWidget(page)
    layout = QtWidgets.QVBoxLayout(panel)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(stack)
    return stack


class Heatmap(pg.GraphicsLayoutWidget):
    """A (T, n) array drawn as an n × T heatmap: time along x, units along y.

    One ImageItem, updated in place with fixed, zero-centred levels; NaN (not computed yet)
    is transparent. Hovering shows what a cell is (``label(t, k, value)``); clicking a cell
    calls ``on_click(t, k)``.
    """

    _shape = None           # (T, n) of set_shape
    _ticks = None           # the tick labels set last
    _tab = 0.6              # the height of the current-step marker's tabs, in rows

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
        # Not computed yet (NaN, transparent) shows this grey: white means 0 on the map.
        self.plot.vb.setBackgroundColor(NOT_YET)
        # The current step is marked by tabs above and below its column, outside the data: a
        # frame around a narrow column would hide its numbers.
        self.marker = QtWidgets.QGraphicsPathItem()
        self.marker.setPen(QtGui.QPen(QtCore.Qt.NoPen))
        self.marker.setBrush(pg.mkBrush(COLORS["forward"]))
        self._marker_phase = "forward"
        self.plot.addItem(self.marker)
        self.unit_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(COLORS["current"], width=2,
                                                              style=QtCore.Qt.DashLine))
        self.plot.addItem(self.unit_line)
        self.bar = pg.ColorBarItem(colorMap=DIVERGING, interactive=False, width=14)
        self.bar.setImageItem(self.image)
        self.addItem(self.bar)
        cache_axes(self.plot)
        self.bar.axis.setCacheMode(QtWidgets.QGraphicsItem.DeviceCoordinateCache)
        self.label = label
        self.on_click = on_click
        self._data = np.zeros((1, 1))
        self._shown = None              # a copy of the data drawn last
        self._levels = None
        self.setMouseTracking(True)
        self.scene().sigMouseMoved.connect(self._hover)
        self.scene().sigMouseClicked.connect(self._click)

    def set_shape(self, T, n):
        self.plot.setXRange(0, T, padding=0.01)
        self._tab = max(0.6, 0.05 * n)     # the marker's tabs, in units of rows
        self.plot.setYRange(-self._tab, n + self._tab, padding=0)
        self._shape = (T, n)
        self._ticks = None
        self._set_ticks()

    def _set_ticks(self):
        """Labels in the middle of their cells (cell t spans [t, t + 1)), as many as fit: a
        narrow heatmap of a long window would run its step numbers together."""
        if self._shape is None:             # (Qt resizes the view while it is being built)
            return
        T, n = self._shape
        # The axes and the colour bar take about 90 px across and 60 px down.
        ticks = (centred_ticks(T, max(2, (self.width() - 90) // 40)),
                 centred_ticks(n, max(3, (self.height() - 60) // 24)))
        if ticks != self._ticks:
            self._ticks = ticks
            self.plot.getAxis("bottom").setTicks([ticks[0]])
            self.plot.getAxis("left").setTicks([ticks[1]])

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._set_ticks()

    def set_data(self, data, levels, current=None, unit=None, phase="forward"):
        """Draw ``data`` (T, n) with colour ``levels`` (lo, hi); frame step ``current`` in the
        colour of the ``phase`` it belongs to (as the sequence strip and unrolled net do)."""
        levels = (float(levels[0]), float(levels[1]))
        # Only what changed is redrawn: a new image and colour bar cost more than comparing.
        if levels != self._levels:
            self._levels = levels
            self.bar.setLevels(levels)
            self._shown = None
        if self._shown is None or self._shown.shape != data.shape or \
                not np.array_equal(self._shown, data, equal_nan=True):
            self._shown = np.array(data, copy=True)
            self.image.setImage(data, levels=levels, autoLevels=False)
        self._data = data
        if current is None:
            self.marker.hide()
        else:
            if phase != self._marker_phase:
                self._marker_phase = phase
                self.marker.setBrush(pg.mkBrush(COLORS["backward" if phase != "forward"
                                                       else "forward"]))
            n, tab = data.shape[1], self._tab
            path = QtGui.QPainterPath()
            path.addRect(QtCore.QRectF(current, -tab, 1, tab))
            path.addRect(QtCore.QRectF(current, n, 1, tab))
            self.marker.setPath(path)
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
