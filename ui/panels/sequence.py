"""The sequence strip: each step's input, target and prediction, tinted by the step's loss."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

from .base import COLORS, FONT_SIZE, Panel, PictureCache, fmt

# White (no loss) to a warm red: a one-sided scale, because a loss is never negative.
LOSS_MAP = pg.ColorMap([0.0, 0.5, 1.0], ["#ffffff", "#fdae6b", "#d94801"])
NOT_COMPUTED = QtGui.QColor("#eeeeee")
# The rows of a cell: (key, row label as rich text, height in units of the small font's height).
ROWS = (
    ("t", "step t", 1.0),
    ("x", "input x<sub>t</sub>", 1.9),
    ("y", "target y<sub>t</sub>", 1.15),
    ("pred", "predicted", 1.15),
    ("p", "p(target)", 1.15),         # ŷ_t[y_t]: the loss below is −ln of it
    ("loss", "loss L<sub>t</sub>", 1.15),
)


def show_token(text):
    """A token as it reads on screen: visible space, newline and tab marks."""
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")


def _font(scale=1.0, bold=False):
    font = QtGui.QFont()
    font.setPointSizeF(FONT_SIZE * scale)
    font.setBold(bold)
    return font


class _Layout:
    """Row geometry shared by the row labels and the strip, from the fonts."""

    def __init__(self):
        self.small = _font(11 / FONT_SIZE)
        self.index_font = _font(10 / FONT_SIZE)
        line = QtGui.QFontMetrics(self.small).height()
        self.tops, y = {}, 4
        for key, _label, rows in ROWS:
            self.tops[key] = (y, int(round(line * rows)))
            y += int(round(line * rows))
        self.height = y + 6


class _RowLabels(QtWidgets.QWidget):
    """The fixed column that names the strip's rows (it does not scroll with the cells)."""

    def __init__(self, layout, parent=None):
        super().__init__(parent)
        self._layout = layout
        self._texts = []
        width = 0
        for key, label, _rows in ROWS:
            text = QtGui.QStaticText(label)
            text.setTextFormat(QtCore.Qt.RichText)
            text.prepare(font=layout.small)
            self._texts.append((key, text))
            width = max(width, int(text.size().width()))
        self.setFixedWidth(width + 14)
        self.setFixedHeight(layout.height)

    def paintEvent(self, event):
        p = QtGui.QPainter(self)
        p.setFont(self._layout.small)
        p.setPen(QtGui.QColor(COLORS["muted"]))
        for key, text in self._texts:
            top, h = self._layout.tops[key]
            y = top + (h - text.size().height()) / 2
            p.drawStaticText(QtCore.QPointF(self.width() - 8 - text.size().width(), y), text)
        p.end()


class _Strip(QtWidgets.QWidget):
    """The cells themselves: painted from strings the panel prepared in refresh()."""

    def __init__(self, panel, layout):
        super().__init__(panel)
        self.panel = panel
        self._layout = layout
        self.cell_w = 0
        self._tiles = PictureCache(160)     # the cells' pictures, by what they show
        self.setMouseTracking(True)
        self.setFixedHeight(layout.height)

    def cell_at(self, x):
        t = int(x // self.cell_w)
        return t if 0 <= t < self.panel.ctl.T else None

    def mouseMoveEvent(self, event):
        t = self.cell_at(event.pos().x())
        text = self.panel.tooltip_for(t) if t is not None else self.panel.tooltip
        self.setToolTip(text)
        QtWidgets.QToolTip.showText(event.globalPos(), text, self)

    def mousePressEvent(self, event):
        t = self.cell_at(event.pos().x())
        if t is not None and event.button() == QtCore.Qt.LeftButton:
            self.panel.click_step(t)

    def paintEvent(self, event):
        # Each cell is painted once into a picture kept for as long as what it shows stays the
        # same: a step changes one or two cells of the ~30 on screen.
        panel, w = self.panel, self.cell_w
        cells = panel._cells
        first = max(0, int(event.rect().left() // w))
        last = min(len(cells), int(event.rect().right() // w) + 1)
        frames = {}
        for t, colour, style in panel._frames:
            frames.setdefault(t, []).append((colour, int(style)))
        ratio = self.devicePixelRatioF()
        background = self.palette().color(self.backgroundRole())
        style = (w, self._layout.height, panel.big_font.key(), ratio, background.rgba())
        p = QtGui.QPainter(self)
        for t in range(first, last):
            cell = cells[t]
            key = (style, cell["key"], tuple(frames.get(t, ())))
            pixmap = self._tiles.find(key)
            if pixmap is None:
                pixmap = self._paint_cell(cell, frames.get(t, ()), ratio, background)
                self._tiles.keep(key, pixmap)
            p.drawPixmap(t * w, 0, pixmap)
        p.end()

    def _paint_cell(self, c, frames, ratio, background):
        panel, lay, w = self.panel, self._layout, self.cell_w
        pixmap = QtGui.QPixmap(int(math.ceil(w * ratio)), int(math.ceil(lay.height * ratio)))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(background)
        p = QtGui.QPainter(pixmap)
        p.setRenderHint(QtGui.QPainter.Antialiasing, False)
        text_pen = QtGui.QPen(QtGui.QColor(COLORS["text"]))
        muted_pen = QtGui.QPen(QtGui.QColor(COLORS["muted"]))
        good_pen = QtGui.QPen(QtGui.QColor(COLORS["good"]))
        body_top = lay.tops["x"][0]
        height = lay.height - body_top - 4
        if c["t"] != "0":
            # The previous cell's right edge; its fill hides all but the bottom pixel.
            p.setPen(QtGui.QPen(QtGui.QColor("#c8c8c8")))
            p.drawLine(0, body_top, 0, lay.height - 4)
        p.fillRect(QtCore.QRect(0, body_top, w, height), c["color"])
        for key, font, pen in (("t", lay.index_font, muted_pen),
                               ("x", panel.big_font, text_pen),
                               ("y", lay.small, text_pen),
                               ("pred", lay.small, good_pen if c["correct"] else text_pen),
                               ("p", lay.small, text_pen), ("loss", lay.small, text_pen)):
            top, h = lay.tops[key]
            p.setFont(font)
            p.setPen(pen)
            p.drawText(QtCore.QRect(2, top, w - 4, h), QtCore.Qt.AlignCenter, c[key])
        # Frames last, over the cell.
        for colour, style in frames:
            pen = QtGui.QPen(QtGui.QColor(colour), 4, QtCore.Qt.PenStyle(style))
            pen.setJoinStyle(QtCore.Qt.MiterJoin)
            p.setPen(pen)
            p.setBrush(QtCore.Qt.NoBrush)
            p.drawRect(QtCore.QRect(2, body_top + 1, w - 4, height - 2))
        p.end()
        return pixmap


class _Legend(QtWidgets.QWidget):
    """The loss colour scale and what the frames mean; wraps onto a second line if narrow."""

    BAR_W = 110

    def __init__(self, panel):
        super().__init__(panel)
        self.panel = panel
        self.font_ = _font(11 / FONT_SIZE)
        self.line_h = QtGui.QFontMetrics(self.font_).height() + 10
        self.setFixedHeight(self.line_h)
        self._key = None
        self._picture = None

    def _texts(self):
        return ("loss L_t:  0", f"{fmt(self.panel.loss_max, 2)}   (| = ln V, a uniform guess)")

    def _frames(self):
        return ((COLORS["forward"], QtCore.Qt.SolidLine, "forward step"),
                (COLORS["backward"], QtCore.Qt.SolidLine, "backward step"),
                (COLORS["current"], QtCore.Qt.DashLine, "clicked step"))

    def _widths(self):
        fm = QtGui.QFontMetrics(self.font_)
        first = sum(fm.horizontalAdvance(t) for t in self._texts()) + self.BAR_W + 24
        second = sum(fm.horizontalAdvance(t) + 38 for *_c, t in self._frames())
        second += fm.horizontalAdvance("green prediction = the target")
        return first, second

    def resizeEvent(self, event):
        super().resizeEvent(event)
        first, second = self._widths()
        lines = 1 if first + second <= self.width() else 2
        if self.height() != lines * self.line_h:
            self.setFixedHeight(lines * self.line_h)

    def paintEvent(self, event):
        # The legend changes only with the lesson and the width: its picture is kept.
        ratio = self.devicePixelRatioF()
        background = self.palette().color(self.backgroundRole())
        key = (self.width(), self.height(), ratio, background.rgba(), self._texts())
        if key != self._key:
            self._key = key
            self._picture = QtGui.QPixmap(int(math.ceil(self.width() * ratio)),
                                          int(math.ceil(self.height() * ratio)))
            self._picture.setDevicePixelRatio(ratio)
            self._picture.fill(background)
            self._paint(QtGui.QPainter(self._picture))
        p = QtGui.QPainter(self)
        p.drawPixmap(0, 0, self._picture)
        p.end()

    def _paint(self, p):
        p.setFont(self.font_)
        fm = p.fontMetrics()
        h = self.line_h
        first, second = self._widths()
        label, rest = self._texts()

        def text(x, y, s, colour=COLORS["text"]):
            p.setPen(QtGui.QColor(colour))
            p.drawText(x, y, fm.horizontalAdvance(s), h, QtCore.Qt.AlignVCenter, s)
            return x + fm.horizontalAdvance(s)

        x = text(4, 0, label) + 6
        gradient = QtGui.QLinearGradient(x, 0, x + self.BAR_W, 0)
        for pos, colour in zip(LOSS_MAP.pos, LOSS_MAP.getColors(mode="qcolor"), strict=True):
            gradient.setColorAt(float(pos), colour)
        p.fillRect(QtCore.QRect(x, 5, self.BAR_W, h - 10), QtGui.QBrush(gradient))
        p.setPen(QtGui.QColor(COLORS["muted"]))
        p.drawRect(QtCore.QRect(x, 5, self.BAR_W, h - 10))
        # Chance level (ln V: a uniform guess) sits at 1/1.5 of the scale.
        chance_x = x + int(self.BAR_W / 1.5)
        p.setPen(QtGui.QPen(QtGui.QColor(COLORS["text"]), 2))
        p.drawLine(chance_x, 3, chance_x, h - 3)
        x = text(x + self.BAR_W + 6, 0, rest) + 18
        y = 0
        if first + second > self.width():
            x, y = 4, h
        for colour, style, label in self._frames():
            p.setPen(QtGui.QPen(QtGui.QColor(colour), 3, style))
            p.drawRect(QtCore.QRect(x, y + 5, 18, h - 10))
            x = text(x + 24, y, label) + 14
        text(x, y, "green prediction = the target", COLORS["good"])
        p.end()


class _Scroll(QtWidgets.QScrollArea):
    """The strip's scroll area: re-fits the cells whenever its visible width changes."""

    def __init__(self, panel):
        super().__init__(panel)
        self.panel = panel

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self.panel._fit()
        self.panel._keep_in_view(force=True)


class SequencePanel(Panel):
    title = "Sequence"
    name = "sequence"
    tooltip = ("The window's steps: input x_t, target y_t, the model's top prediction and its "
               "probability, each cell tinted by its loss L_t; click a step to look at it.")

    MIN_CELL = 54          # px: a character token and "0.025" still fit at 11 pt
    MIN_WORD_CELL = 76     # px: word tokens get a little more before they are elided
    MAX_CELL = 120         # px: longer word tokens are elided (the tooltip has them whole)

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        self._layout = _Layout()
        self.legend = _Legend(self)
        self.labels = _RowLabels(self._layout, self)
        self.strip = _Strip(self, self._layout)
        self.scroll = _Scroll(self)
        self.scroll.setWidget(self.strip)
        self.scroll.setWidgetResizable(False)
        self.scroll.setFrameShape(QtWidgets.QFrame.NoFrame)
        self.scroll.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        self.scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAsNeeded)
        bar = self.scroll.horizontalScrollBar().sizeHint().height()
        self.scroll.setFixedHeight(self._layout.height + bar + 2)
        row = QtWidgets.QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.labels, 0, QtCore.Qt.AlignTop)
        row.addWidget(self.scroll, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.legend)
        layout.addLayout(row)
        layout.addStretch(1)
        self._cells = []
        self._frames = []
        self._focus = None
        self._bind()
        self.refresh()

    # ----------------------------------------------------------------- sizing

    def _bind(self):
        ctl = self.ctl
        V = ctl.net.output_size
        self.loss_max = 1.5 * math.log(V) if V > 1 else 1.0
        self._lut = [QtGui.QColor(c) for c in LOSS_MAP.getLookupTable(nPts=256, mode="qcolor")]
        self._shown = {}                 # token id -> elided display text (cache)
        self._cell_cache = {}            # what a step's cell shows, by its numbers
        self._drawn = None               # the cells and frames painted last
        self.legend.update()
        # Word tokens are long: a smaller (still bold) font fits more of each word.
        words = ctl.vocab is not None and max(len(tok) for tok in ctl.vocab.tokens) > 3
        self.big_font = _font(1.3 if words else 1.6, bold=True)
        big = QtGui.QFontMetrics(self.big_font)
        if ctl.vocab is not None:
            widest = max(big.horizontalAdvance(show_token(tok)) for tok in ctl.vocab.tokens)
        else:
            widest = big.horizontalAdvance(str(V - 1))
        self._natural = int(min(max(widest + 12, self.MIN_CELL), self.MAX_CELL))
        self._min_w = min(self._natural, self.MIN_WORD_CELL) if words else self.MIN_CELL
        self._focus = None
        self._fit()

    def _fit(self):
        """Cells share the width (up to twice their natural size); below a minimum, scroll."""
        T = self.ctl.T
        avail = max(self.scroll.viewport().width(), 100)
        w = int(max(self._min_w, min(avail // max(T, 1), 2 * self._natural)))
        changed = w != self.strip.cell_w
        self.strip.cell_w = w
        self.strip.setFixedWidth(w * T)
        if changed and self._cells:
            self.refresh()          # the tokens are elided to the new width

    # ----------------------------------------------------------------- text

    def _token(self, i, font_metrics, width):
        key = (int(i), width)
        text = self._shown.get(key)
        if text is None:
            text = font_metrics.elidedText(show_token(self.ctl.token(i)), QtCore.Qt.ElideRight,
                                           width)
            self._shown[key] = text
        return text

    def tooltip_for(self, t):
        """What hovering over step t's cell says."""
        ctl = self.ctl
        x, y = show_token(ctl.token(ctl.inputs[t])), show_token(ctl.token(ctl.targets[t]))
        top, prob = ctl.predictions()
        loss = float(ctl.trace.loss[t])
        if top[t] < 0:
            return (f"t = {t}: input '{x}', target '{y}'; not computed yet "
                    "(the forward phase reaches it later)")
        pred = show_token(ctl.token(top[t]))
        return (f"t = {t}: input '{x}', target '{y}', predicted '{pred}' "
                f"(p = {fmt(float(prob[t]), 2)}), L_{t} = {fmt(loss, 2)}")

    def cell_texts(self, t):
        """The texts shown in step t's cell (keys t, x, y, pred, p, loss)."""
        return {k: self._cells[t][k] for k in ("t", "x", "y", "pred", "p", "loss")}

    def cell_color(self, t):
        return self._cells[t]["color"]

    # ----------------------------------------------------------------- refresh

    def refresh(self):
        if self.unchanged():
            return
        ctl = self.ctl
        if len(self._cells) != ctl.T or self.strip.width() != self.strip.cell_w * ctl.T:
            self._fit()
        top, _ = ctl.predictions()
        loss, probs = ctl.trace.loss, ctl.trace.probs
        inputs, targets = ctl.inputs, ctl.targets
        width = self.strip.cell_w - 12
        big = QtGui.QFontMetrics(self.big_font)
        small = QtGui.QFontMetrics(self._layout.small)
        cells = []
        scale = 255.0 / self.loss_max
        cache = self._cell_cache
        if len(cache) > 4 * ctl.T:
            cache.clear()
        for t in range(ctl.T):
            done = top[t] >= 0
            L = float(loss[t])
            p_target = float(probs[t, targets[t]]) if done else None
            # What the cell shows depends on these alone: unchanged cells are reused.
            key = (t, int(inputs[t]), int(targets[t]), int(top[t]), p_target,
                   L if done and L == L else None, width)
            cell = cache.get(key)
            if cell is None:
                if done and math.isfinite(L):
                    color = self._lut[min(255, max(0, int(L * scale)))]
                else:
                    color = NOT_COMPUTED
                cell = {
                    "t": str(t),
                    "x": self._token(inputs[t], big, width),
                    "y": self._token(targets[t], small, width),
                    "pred": self._token(top[t], small, width) if done else "·",
                    "p": fmt(p_target, 2) if done else "·",
                    "loss": fmt(L, 2) if done else "·",
                    "correct": bool(done and top[t] == targets[t]),
                    "color": color,
                }
                cell["key"] = (cell["t"], cell["x"], cell["y"], cell["pred"], cell["p"],
                               cell["loss"], cell["correct"], color.rgba())
                cache[key] = cell
            cells.append(cell)
        self._cells = cells
        self._frames = []
        if ctl.current is not None and ctl.phase != "update":
            colour = COLORS["forward"] if ctl.position <= ctl.T else COLORS["backward"]
            self._frames.append((ctl.current, colour, QtCore.Qt.SolidLine))
        chosen = self.selection.step
        if chosen is not None and 0 <= chosen < ctl.T:
            self._frames.append((chosen, COLORS["current"], QtCore.Qt.DashLine))
        self._keep_in_view()
        # Repaint only when a cell or a frame changed (the legend changes with the lesson).
        shown = (tuple(map(id, cells)), tuple(self._frames))
        if shown != self._drawn:
            self._drawn = shown
            self.strip.update()

    def _keep_in_view(self, force=False):
        """Scroll so that the step being looked at stays visible (only when it changes)."""
        if not self._cells:
            return
        focus = self.selection.step_for(self.ctl)
        if focus == self._focus and not force:
            return
        self._focus = focus
        w = self.strip.cell_w
        self.scroll.ensureVisible(int(focus * w + w / 2), self._layout.height // 2,
                                  int(2 * w), 0)

    def click_step(self, t):
        """Clicking a step looks at it; clicking it again goes back to following the cycle."""
        self.selection.select_step(None if self.selection.step == t else t)

    def export_items(self):
        return []

