"""The output distribution ŷ_t at one step: a bar per token, the target marked, the top labelled."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

from .base import (
    COLORS,
    FONT_SIZE,
    Bars,
    Panel,
    RichLabel,
    cache_axes,
    fmt,
    message_or_plot,
    still_plot,
)

# Above this many characters the panel shows the most likely ones (and the target), sorted.
MAX_BARS = 24
CHAR_TOP_K = 20
# Words are long labels: above TOP_K + 1 of them, the TOP_K most likely (and the target).
TOP_K = 10
MAX_LABEL = 8           # characters of a token label before it is shortened with "…"
COMPACT_HEIGHT = 330    # below this panel height the x axis title is left out
LABEL_STYLE = {"font-size": f"{FONT_SIZE}pt"}


def title_label():
    """A plot's title above it: wraps in a narrow dock instead of widening the plot (a
    pyqtgraph title keeps its whole width and pushes the plot out of the panel)."""
    label = RichLabel(align=QtCore.Qt.AlignCenter, colour=COLORS["text"])
    font = label.font()
    font.setPointSizeF(FONT_SIZE)
    label.setFont(font)
    return label


# The word-level markers are long; on an axis they read better short.
SHORT = {"SENTENCE_START": "⟨start⟩", "SENTENCE_END": "⟨end⟩", "UNKNOWN_TOKEN": "⟨unk⟩"}


def token_label(text, limit=MAX_LABEL):
    """A token as it can be read on an axis: visible space and newline, long words shortened."""
    if limit <= MAX_LABEL:
        text = SHORT.get(text, text)
    text = text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return text


def _prob(p):
    """A probability short enough for a bar label: 0.29, 0.0063."""
    return f"{p:.2f}" if p >= 0.1 else f"{p:.2g}"


class TokenAxis(pg.AxisItem):
    """A bottom axis of token labels that can stand upright, so that whole words fit."""

    def __init__(self):
        super().__init__("bottom")
        self._labels = []           # (x, text)
        self.vertical = False
        self.marked = None          # the x whose label is drawn in the target's colour
        self._marked_pen = pg.mkPen(COLORS["target"])
        self._height = None
        self._sizes = {}            # (font, text) -> the size the base class would measure

    def set_labels(self, labels, vertical, marked=None):
        self._labels = list(labels)
        self.vertical = bool(vertical)
        self.marked = marked
        self.setTicks([self._labels])
        if self.vertical:
            font = self.style["tickFont"] or QtGui.QFont()
            metrics = QtGui.QFontMetrics(font)
            longest = max((metrics.horizontalAdvance(t) for _, t in self._labels), default=0)
            label = self.label.boundingRect().height() if self.label.isVisible() else 0
            height = int(longest + 14 + label)
        else:
            height = None
        if height != self._height:           # a new height lays the plot out again
            self._height = height
            self.setHeight(height)
        self.picture = None
        self.update()

    def generateDrawSpecs(self, p):
        # The labels change with every step, and the base class's general case costs about a
        # millisecond: the axis line, the ticks and the labels (as the base class places
        # them; upright ones by hand) are worked out here, with the labels' sizes cached.
        bounds = self.mapRectFromParent(self.geometry())
        lo, hi = self.range
        width = bounds.width()
        if hi <= lo or width <= 0:
            return None
        if self.style["tickFont"] is not None:
            p.setFont(self.style["tickFont"])
        scale = width / (hi - lo)
        top = bounds.top()
        axis_spec = (self.pen(), QtCore.QPointF(bounds.left() - 1, top + 1),
                     QtCore.QPointF(bounds.right() + 1, top + 1))
        tick_pen = self.tickPen()
        tick_length = self.style["tickLength"]
        offset = max(0, tick_length) + self.style["tickTextOffset"][1]
        flags = QtCore.Qt.AlignHCenter | QtCore.Qt.AlignTop | QtCore.Qt.TextDontClip
        outer = self.boundingRect()
        font = p.font().key()
        ticks, texts, tallest = [], [], 0.0
        for x, text in self._labels:
            px = (x - lo) * scale
            if px < 0 or px > width:
                continue
            ticks.append((tick_pen, QtCore.QPointF(px, top),
                          QtCore.QPointF(px, top + tick_length)))
            if self.vertical:
                texts.append((px, max(0, tick_length) + 4, text, x == self.marked))
                continue
            size = self._sizes.get((font, text))
            if size is None:
                br = p.boundingRect(QtCore.QRectF(0, 0, 100, 100), QtCore.Qt.AlignCenter, text)
                size = self._sizes[(font, text)] = (br.width(), br.height() * 0.8)
            rect = QtCore.QRectF(px - size[0] / 2, top + offset, size[0], size[1])
            if outer & rect == rect:
                texts.append((rect, flags, text, x == self.marked))
                tallest = max(tallest, size[1])
        if not self.vertical:
            self._updateMaxTextSize(tallest)
        return axis_spec, ticks, texts

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):
        if not self.vertical:
            super().drawPicture(p, axisSpec, tickSpecs, [spec[:3] for spec in textSpecs
                                                         if not spec[3]])
            for rect, flags, text, marked in textSpecs:
                if marked:
                    p.setPen(self._marked_pen)
                    p.drawText(rect, int(flags), text)
            return None
        super().drawPicture(p, axisSpec, tickSpecs, [])
        if self.style["tickFont"] is not None:
            p.setFont(self.style["tickFont"])
        height = self.boundingRect().height()
        metrics = QtGui.QFontMetrics(p.font())
        line = metrics.height()
        for px, top, text, marked in textSpecs:
            p.setPen(self._marked_pen if marked else self.textPen())
            p.save()
            p.translate(px, top)
            p.rotate(-90)
            # After the rotation, −x points down the axis: the label ends at the tick.
            p.drawText(QtCore.QRectF(-(height - top), -line / 2, height - top, line),
                       int(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter), text)
            p.restore()


class OutputPanel(Panel):
    title = "Output distribution ŷ_t"
    name = "output"
    tooltip = ("Output distribution ŷ_t = softmax(V h_t + c) at the selected step: one bar per "
               "next token; the target's bar is green; L_t = −ln ŷ_t[target].")

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        self.axis = TokenAxis()
        self.plot_widget, self.plot = still_plot(grid_x=False, axis_items={"bottom": self.axis})
        cache_axes(self.plot)
        # The token labels change with almost every step: a kept picture would only add a copy.
        self.axis.setCacheMode(QtWidgets.QGraphicsItem.NoCache)
        self.plot.setLabel("left", "ŷ_t[token]", **LABEL_STYLE)
        # The scale is set per window from what it has computed (see _scale), with room above
        # for the labels: the same picture for the same step, every time it is shown.
        self._y_top = None
        self.bars = Bars(x=[0], height=[0], width=0.75, brush=COLORS["forward"])
        # Made once: the target's bar is green, the top one framed.
        self._brushes = {True: pg.mkBrush(COLORS["target"]), False: pg.mkBrush(COLORS["forward"])}
        self._pens = {True: pg.mkPen("#000000", width=3), False: pg.mkPen(None)}
        self.plot.addItem(self.bars)
        # The chance level: what a model that knows nothing would give every token.
        self.uniform = pg.InfiniteLine(angle=0, pen=pg.mkPen(COLORS["muted"], width=2,
                                                             style=QtCore.Qt.DashLine))
        self.plot.addItem(self.uniform)
        # Between the most likely tokens and a target that is not among them.
        self.separator = pg.InfiniteLine(angle=90, pen=pg.mkPen(COLORS["target"], width=1,
                                                                style=QtCore.Qt.DotLine))
        self.separator.hide()
        self.plot.addItem(self.separator)
        font = QtGui.QFont()
        font.setPointSize(FONT_SIZE)
        font.setBold(True)
        self.target_label = pg.TextItem(color=COLORS["target"], anchor=(0.5, 1))
        self.target_label.setFont(font)
        self.top_label = pg.TextItem(color=COLORS["text"], anchor=(0.5, 1))
        self.top_label.setFont(font)
        self.plot.addItem(self.target_label)
        self.plot.addItem(self.top_label)

        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)
        self.message.setAlignment(QtCore.Qt.AlignCenter)
        self.message.setStyleSheet(f"font-size: {FONT_SIZE + 2}pt; color: {COLORS['muted']};"
                                   "padding: 20px;")
        self.header = title_label()
        self.stack = message_or_plot(self, self.message, self.header, self.plot_widget)
        self.plot_widget.scene().sigMouseMoved.connect(self._hover)
        self._compact = False
        self._key = self.tooltip
        self._bind()

    def _bind(self):
        O = self.ctl.net.output_size
        vocab = getattr(self.ctl, "vocab", None)
        self._words = vocab is not None and vocab.level == "word"
        self._k = TOP_K if self._words else CHAR_TOP_K
        self._top_only = O > (TOP_K + 1 if self._words else MAX_BARS)
        self._n = self._k + 1 if self._top_only else O
        self._shown = np.arange(min(self._n, O))
        self._heights = np.zeros(len(self._shown))
        self._labels_key = None
        self._bars_key = None
        self._n_shown = None
        self._y_top = None
        self._step = None
        self.uniform.setValue(1.0 / O)
        self.plot.setXRange(-0.6, self._n - 0.4, padding=0)
        self.plot.setLabel("bottom", "next token", **LABEL_STYLE)

    def refresh(self):
        if self.unchanged():
            return
        ctl = self.ctl
        t = self.selection.step_for(ctl)
        self._step = t
        probs = ctl.trace.probs[t]
        if np.isnan(probs[0]):
            self._show_message(t)
            return
        self.stack.setCurrentIndex(1)
        self._scale()
        target = int(ctl.trace.y[t])
        if self._top_only:
            order = np.argsort(-probs, kind="stable")
            shown = order[:self._k]
            if target not in shown:
                shown = np.append(shown, target)
        else:
            shown = np.arange(len(probs))
        self._shown = shown
        heights = probs[shown]
        self._heights = heights
        x = np.arange(len(shown))
        if len(shown) != self._n_shown:         # a new range redraws the axes: only if needed
            self._n_shown = len(shown)
            self.plot.setXRange(-0.6, len(shown) - 0.4, padding=0)
        top = int(np.argmax(probs))
        bars_key = (shown.tobytes(), heights.tobytes(), target, top)
        if bars_key != self._bars_key:          # the bars' picture is rebuilt on every setOpts
            self._bars_key = bars_key
            brushes = [self._brushes[i == target] for i in shown]
            pens = [self._pens[i == top] for i in shown]
            self.bars.setOpts(x=x, height=heights, width=0.75, brushes=brushes, pens=pens)
        xt = int(np.flatnonzero(shown == target)[0])
        key = (tuple(shown.tolist()), target)
        if key != self._labels_key:
            self._labels_key = key
            labels = [token_label(ctl.token(i)) for i in shown]
            # Among many words the target's bar is easy to lose: its word is green too, and
            # when it is not in the top k, the extra bar at the right is set apart.
            self.axis.set_labels(list(zip(x.tolist(), labels, strict=True)),
                                 vertical=max(len(s) for s in labels) > 2,
                                 marked=xt if self._words else None)
            extra = self._top_only and self._words and xt == self._k
            if extra:
                self.separator.setValue(xt - 0.5)
            self.separator.setVisible(extra)
        xp = int(np.flatnonzero(shown == top)[0])
        p_target, p_top = float(probs[target]), float(probs[top])
        if top == target:
            self.target_label.setText(f"target, top: {_prob(p_target)}")
            self.top_label.hide()
        else:
            self.target_label.setText(f"target {_prob(p_target)}")
            self.top_label.setText(f"top: {_prob(p_top)}")
            self._place(self.top_label, xp, p_top)
            self.top_label.show()
        lift = p_target
        # Two labels on neighbouring bars of similar height would overlap: lift the target's.
        y_top = self._y_top
        if top != target and abs(xt - xp) <= 3 and abs(p_target - p_top) < 0.12 * y_top:
            lift = p_top + 0.12 * y_top
        self._place(self.target_label, xt, lift)
        self.header.setText(self._title(t, target))

    def _scale(self):
        """The y axis up to the smallest of 0.05, 0.1, 0.2, 0.5, 1 above every probability of
        this window computed so far: an untrained model's 1/V bars are visible, and within a
        phase the frames compare (every step of the backward phase has the same scale)."""
        probs = self.ctl.trace.probs
        seen = float(np.nanmax(probs)) if np.isfinite(probs).any() else 1.0
        y_top = next((v for v in (0.05, 0.1, 0.2, 0.5) if seen <= v), 1.0)
        if y_top != self._y_top:
            self._y_top = y_top
            # Room above the bars for the labels (two rows of them when lifted).
            self.plot.setYRange(0, 1.3 * y_top, padding=0)
            self.plot.getAxis("left").setTicks(
                [[(v * y_top, f"{v * y_top:g}") for v in (0, 0.5, 1)],
                 [(v * y_top, "") for v in (0.25, 0.75)]])

    def _place(self, label, x, height):
        """Put a label over bar x, kept inside the plot at the left and right edges."""
        n = len(self._shown)
        ax = 0.0 if x < 2 else 1.0 if x > n - 3 else 0.5
        label.setAnchor((ax, 1))
        label.setPos(x - 0.4 if ax == 0 else x + 0.4 if ax == 1 else x,
                     min(height, 1.15 * self._y_top) + 0.01 * self._y_top)

    def _title(self, t, target):
        ctl = self.ctl
        x_tok = token_label(ctl.token(ctl.trace.x[t]))
        y_tok = token_label(ctl.token(target))
        loss = float(ctl.trace.loss[t])
        # The dashed line is the chance level: a model that knows nothing gives every token 1/O.
        O = ctl.net.output_size
        key = (f"<span style='color:{COLORS['muted']}; font-size:{FONT_SIZE - 1}pt'>"
               + (f"the {self._k} most likely of {O} tokens and the target "
                  "&nbsp; " if self._top_only and not self._words else "")
               + (f"green: the target (after the dotted line if not in the top {self._k}) "
                  "&nbsp; " if self._top_only and self._words else "")
               + f"- - - uniform guess 1/{O}</span>")
        # In a low dock the key moves to the plot's tooltip, leaving the height to the bars.
        self.plot_widget.setToolTip(key)
        self._key = key
        # Which bars these are belongs in the title: a compact dock drops the key.
        top = f", top {self._k} of {O} words" if self._top_only and self._words else ""
        return (f"ŷ_t at t = {t}{top} (input '{x_tok}', target '{y_tok}'): "
                f"L_t = −ln ŷ_t[{y_tok}] = <b>{fmt(loss)}</b>"
                + ("" if self._compact else " &nbsp; " + key))

    def _show_message(self, t):
        ctl = self.ctl
        if ctl.phase == "forward" and ctl.t is not None and ctl.t <= t:
            steps = t - ctl.t + 1
            more = f" ({steps} more forward step{'s' if steps > 1 else ''})" if steps > 1 else ""
            text = (f"ŷ_t at t = {t} is not computed yet.\n\nThe forward phase computes it "
                    f"when it reaches step {t}{more}: then this shows the probability the "
                    "model gives each next token, with the target marked.")
        else:
            text = f"ŷ_t at t = {t} is not computed yet."
        self.message.setText(text)
        self.stack.setCurrentIndex(0)

    def resizeEvent(self, event):
        # A low dock keeps the bars tall: the axis title and the key go.
        compact = event.size().height() < COMPACT_HEIGHT
        self.plot.getAxis("bottom").showLabel(not compact)
        if compact != self._compact:
            self._compact = compact
            self._labels_key = None          # the upright labels' room changes with it
            self.refresh()
        super().resizeEvent(event)

    # ----------------------------------------------------------------- hover

    def bar_text(self, i):
        """What hovering bar i (from the left) shows."""
        ctl, t = self.ctl, self._step
        token_id = int(self._shown[i])
        tok = token_label(ctl.token(token_id), limit=40)
        p = float(self._heights[i])
        text = f"ŷ_{t}['{tok}'] = {p:.4g}"
        if t is not None and token_id == int(ctl.trace.y[t]):
            text += f"  (the target: L_{t} = −ln {p:.3g} = {fmt(float(ctl.trace.loss[t]))})"
        return text

    def _hover(self, scene_pos):
        if self.stack.currentIndex() != 1 or \
                not self.plot.sceneBoundingRect().contains(scene_pos):
            self.plot_widget.setToolTip(self._key)
            return
        x = self.plot.vb.mapSceneToView(scene_pos).x()
        i = int(round(x))
        if 0 <= i < len(self._shown) and abs(x - i) <= 0.4:
            text = self.bar_text(i)
            self.plot_widget.setToolTip(text)
            QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), text, self.plot_widget)
        else:
            self.plot_widget.setToolTip(self._key)

    def export_items(self):
        return [("output distribution", self.plot)]
