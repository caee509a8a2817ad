"""The δ split: a step's δ_t as its own output's gradient plus the future's, times the mask."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

from explorer.analysis import step_gain_bound

from .base import (
    COLORS,
    FONT_SIZE,
    Bars,
    Panel,
    RichLabel,
    cache_axes,
    fmt,
    nice_limit,
    set_axis_text,
)

# One colour per source, used for the chart, its header and the caption.
SOURCE_COLOURS = {"own": COLORS["good"], "future": "#9467bd", "mask": "#8c8c8c",
                  "delta": COLORS["backward"], "dh": COLORS["backward"]}
# (key, header, second header line) per chart; the trace array each one shows is in _rows().
CHARTS = {
    "own": ("Vᵀ(ŷ<sub>t</sub> − y<sub>t</sub>)", "from its own output"),
    "future": ("Wᵀδ<sub>t+1</sub>", "from the future"),
    "mask": ("f′(a<sub>t</sub>)", "the mask"),
    "delta": ("δ<sub>t</sub>", "= ∂L/∂a<sub>t</sub>"),
    "dh": ("∂L/∂h<sub>t</sub>", "what reaches h<sub>t</sub>"),
}


class DeltaSplitPanel(Panel):
    title = "δ split"
    name = "delta_split"
    tooltip = ("δ_t split into its two sources: Vᵀ(ŷ_t − y_t) from its own output plus "
               "Wᵀδ_{t+1} from the future, times the mask f′(a_t); one row per hidden unit.")

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        # Rich labels that change at every step without laying the panel out again.
        self.explanation = RichLabel(align=QtCore.Qt.AlignCenter, margin=24, rich=True,
                                     parent=self)
        font = QtGui.QFont()
        font.setPointSizeF(FONT_SIZE + 3)
        self.explanation.setFont(font)

        small = QtGui.QFont()
        small.setPointSizeF(FONT_SIZE)
        self.header = RichLabel(rich=True, parent=self)
        self.header.setFont(small)
        self.caption = RichLabel(align=QtCore.Qt.AlignTop | QtCore.Qt.AlignLeft, rich=True,
                                 parent=self)
        self.caption.setFont(small)

        self.charts = pg.GraphicsLayoutWidget(self)
        self.charts.setBackground("w")
        self.charts.ci.setContentsMargins(2, 2, 14, 2)     # room for the last label
        self.plots, self.bars, self.regions = {}, {}, {}
        for key in CHARTS:
            self._make_chart(key)
        self.operators = {op: pg.LabelItem(op, size="26pt", bold=True, color=COLORS["text"])
                          for op in ("+", "⊙", "=")}
        for label in self.operators.values():
            label.setFixedWidth(44)

        page = QtWidgets.QWidget(self)
        col = QtWidgets.QVBoxLayout(page)
        col.setContentsMargins(4, 2, 4, 2)
        col.setSpacing(2)
        col.addWidget(self.header)
        col.addWidget(self.charts, 1)
        col.addWidget(self.caption)
        self.stack = QtWidgets.QStackedWidget(self)
        self.stack.addWidget(self.explanation)
        self.stack.addWidget(page)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self._texts = {}
        self._bind()
        self.refresh()

    def _make_chart(self, key):
        plot = pg.PlotItem()
        cache_axes(plot)
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.showGrid(x=True, y=False, alpha=0.25)
        symbol, second = CHARTS[key]
        plot.setTitle(f"<span style='color:{SOURCE_COLOURS[key]}; font-size:{FONT_SIZE + 2}pt'>"
                      f"<b>{symbol}</b></span><br><span style='color:{COLORS['muted']}; "
                      f"font-size:{FONT_SIZE - 1}pt'>{second}</span>")
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setTextPen(COLORS["text"])
            axis.setPen(COLORS["muted"])
            font = QtGui.QFont()
            font.setPointSizeF(FONT_SIZE - 1)
            axis.setTickFont(font)
            axis.enableAutoSIPrefix(False)      # plain numbers: a "×0.001" is easy to miss
        region = pg.LinearRegionItem(values=(-0.5, 0.5), orientation="horizontal",
                                     movable=False, brush=pg.mkBrush(255, 127, 14, 70),
                                     pen=pg.mkPen(COLORS["current"], width=1))
        region.setZValue(-10)
        plot.addItem(region)
        plot.addItem(pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen(COLORS["text"], width=1)))
        bars = Bars(x0=[0.0], y=[0.0], height=0.8, width=[0.0], brush=SOURCE_COLOURS[key],
                    pen=None)
        plot.addItem(bars)
        self.plots[key], self.bars[key], self.regions[key] = plot, bars, region

    # ----------------------------------------------------------------- sizing

    def chart_keys(self):
        """The charts shown, left to right, for this cell."""
        if self.ctl.net.cell == "rnn":
            return ("own", "future", "mask", "delta")
        return ("own", "future", "dh")

    NARROW = 640            # px: below this the charts go on two rows (one row needs ~580)

    def sizeHint(self):
        # Four charts side by side need room; a smaller dock gets the two-row layout.
        return QtCore.QSize(700, 400)

    def _bind(self):
        ctl = self.ctl
        H = ctl.net.hidden_size
        self.future_title("Wᵀδ<sub>t+1</sub>" if ctl.net.cell == "rnn"
                          else "∂L<sub>&gt;t</sub>/∂h<sub>t</sub>")
        self._y = np.arange(H, dtype=float)
        # Many units: bars touch, so they read as a profile instead of flickering thin lines.
        self._bar_height = 0.8 if H <= 40 else 1.0
        for key in CHARTS:
            self.plots[key].setYRange(-0.5, H - 0.5, padding=0.01)
        self.plots["mask"].setXRange(0, 1.05, padding=0)
        self.plots["mask"].getAxis("bottom").setTicks([[(v, fmt(v)) for v in (0, 0.5, 1)]])
        self._narrow = None
        self._arrange()
        self._limit = None
        self._scales_seen = object()
        self._rho = self._bound = None
        self._widths = {}               # the bars' lengths drawn last, per chart

    def _arrange(self):
        """Place the charts: in one row, or (a narrow panel) own + future over mask = δ."""
        narrow = self.width() < self.NARROW
        if narrow == self._narrow:
            return
        self._narrow = narrow
        keys = self.chart_keys()
        rnn = self.ctl.net.cell == "rnn"
        if not narrow:
            operators = ("+", "⊙", "=") if rnn else ("+", "=")
            places = [(key, 0, 2 * i) for i, key in enumerate(keys)]
            places += [(op, 0, 2 * i + 1) for i, op in enumerate(operators)]
        elif rnn:
            places = [("own", 0, 0), ("+", 0, 1), ("future", 0, 2), ("⊙", 1, 1),
                      ("mask", 2, 0), ("=", 2, 1), ("delta", 2, 2)]
        else:
            places = [("own", 0, 0), ("+", 0, 1), ("future", 0, 2), ("=", 1, 1), ("dh", 2, 0)]
        layout = self.charts.ci
        layout.clear()
        grid = layout.layout
        for name, row, col in places:
            item = self.plots[name] if name in self.plots else self.operators[name]
            layout.addItem(item, row=row, col=col)
        if narrow:
            grid.setRowFixedHeight(1, 40)       # the operator between the two rows
        row_first = {}
        for name, row, col in places:
            if name in self.plots:
                row_first.setdefault(row, name)
                grid.setColumnStretchFactor(col, 1)
        first = self.plots["own"]
        for name, _row, _col in places:
            if name not in self.plots:
                continue
            plot = self.plots[name]
            # Equal widths whatever the headers' lengths (labels would ask for more).
            plot.titleLabel.setSizePolicy(QtWidgets.QSizePolicy.Ignored,
                                          QtWidgets.QSizePolicy.Preferred)
            if plot is not first:
                plot.setYLink(first)
            # The same least and preferred widths for every chart (plus the axis for the first
            # of a row): a squeezed panel then shrinks them alike instead of the last one.
            axis = 55 if name in row_first.values() else 0
            plot.setMinimumWidth(90 + axis)
            plot.setPreferredWidth(150 + axis)
            if axis:
                plot.showAxis("left")
                plot.setLabel("left", "unit j" if narrow else "hidden unit j",
                              **{"font-size": f"{FONT_SIZE}pt"})
            else:
                plot.hideAxis("left")

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._arrange()
        self._fit_caption()

    def future_title(self, symbol):
        plot = self.plots["future"]
        plot.setTitle(f"<span style='color:{SOURCE_COLOURS['future']}; "
                      f"font-size:{FONT_SIZE + 2}pt'><b>{symbol}</b></span><br>"
                      f"<span style='color:{COLORS['muted']}; font-size:{FONT_SIZE - 1}pt'>"
                      "from the future</span>")

    # ----------------------------------------------------------------- refresh

    def shows_charts(self):
        """True when the step looked at has its backward numbers (else: the explanation)."""
        ctl = self.ctl
        t = self.selection.step_for(ctl)
        return ctl.phase != "forward" and not math.isnan(ctl.trace.dh[t, 0])

    def _rows(self, t):
        tr = self.ctl.trace
        rows = {"own": tr.dh_out[t], "future": tr.dh_future[t], "dh": tr.dh[t]}
        if self.ctl.net.cell == "rnn":
            rows["mask"] = tr.fprime[t]
            rows["delta"] = tr.delta[t]
        return rows

    def refresh(self):
        if self.unchanged():
            return
        ctl = self.ctl
        t = self.selection.step_for(ctl)
        if not self.shows_charts():
            self._set_text(self.explanation, self.explanation_text(t))
            self.stack.setCurrentIndex(0)
            return
        self.stack.setCurrentIndex(1)
        if ctl.scales is not self._scales_seen:
            self._new_scales()
        j = min(self.selection.unit, ctl.net.hidden_size - 1)
        for key, row in self._rows(t).items():
            if key not in self.chart_keys():
                continue
            widths = np.nan_to_num(row)
            shown = self._widths.get(key)
            if shown is None or not np.array_equal(shown, widths):
                self._widths[key] = widths          # setOpts rebuilds the bars: only if new
                self.bars[key].setOpts(x0=0.0, y=self._y, height=self._bar_height,
                                       width=widths)
            self.regions[key].setRegion((j - 0.5, j + 0.5))
            self._set_bottom(key, f"j = {j}: {fmt(float(row[j]))}")
        self._set_text(self.header, self.header_text(t, j))
        self._show_caption(t)

    def _new_scales(self):
        """One x range per backward phase for the signed charts: the steps then compare."""
        ctl = self.ctl
        self._scales_seen = ctl.scales
        s = ctl.scales or {}
        # Own, future, their sum and δ share one range, so their lengths compare directly.
        top = max(s.get("dh", 0.0), s.get("dh_out", 0.0), s.get("delta", 0.0))
        self._limit = nice_limit(top)
        L = self._limit
        # Labels at ±L/2 (the edges' labels would be clipped), plain ticks at ±L and at 0 (a
        # line marks 0; three labels in a narrow chart run together).
        ticks = [[(v, fmt(v, 2)) for v in (-L / 2, L / 2)], [(-L, ""), (0.0, ""), (L, "")]]
        for key in ("own", "future", "dh", "delta"):
            self.plots[key].setXRange(-L, L, padding=0.02)
            self.plots[key].getAxis("bottom").setTicks(ticks)
        self._rho = self._bound = None
        if ctl.net.cell == "rnn":
            # W's spectral radius, and the bound ‖W‖₂ · max f′ on what one step back can do.
            self._rho = ctl.spectral_radius()
            self._bound = step_gain_bound(ctl.net)

    def _set_bottom(self, key, text):
        old = self._texts.get(key)
        if old == text:
            return
        self._texts[key] = text
        html = f"<span style='color:{COLORS['current']}'>{text}</span>"
        if old is None:
            self.plots[key].setLabel("bottom", html, **{"font-size": f"{FONT_SIZE}pt"})
        else:
            # The value changes at every step: replace the text, keep the axis's picture.
            set_axis_text(self.plots[key].getAxis("bottom"), html)

    def _set_text(self, label, text):
        if label.text() != text:
            label.setText(text)
            if label is self.caption:
                self._fit_caption()

    def _show_caption(self, t):
        """The full caption when it leaves the charts room, else its short form (the full
        one is then the caption's tooltip)."""
        full = self.caption_text(t)
        key = (full, self.width(), self.height())
        if key != getattr(self, "_caption_key", None):
            self._caption_key = key
            doc = QtGui.QTextDocument()
            doc.setDefaultFont(self.caption.font())
            doc.setHtml(full)
            doc.setTextWidth(max(self.width() - 8, 200))
            fits = doc.size().height() <= max(64, 0.22 * self.height())
            self._caption = full if fits else self.caption_text(t, short=True)
            self.caption.setToolTip(doc.toPlainText())
        self._set_text(self.caption, self._caption)

    def _fit_caption(self):
        """A wrapped label gets the height its lines need (layouts tend to squeeze it)."""
        # QLabel's own heightForWidth overestimates wrapped rich text; a document measures it.
        doc = QtGui.QTextDocument()
        doc.setDefaultFont(self.caption.font())
        doc.setHtml(self.caption.text())
        doc.setTextWidth(max(self.width() - 8, 100))
        self.caption.setFixedHeight(int(doc.size().height()) + 4)



    # ----------------------------------------------------------------- texts

    def explanation_text(self, t):
        ctl = self.ctl
        what = ("δ<sub>t</sub> split into its two sources: Vᵀ(ŷ<sub>t</sub> − y<sub>t</sub>) "
                "from step t's own output and Wᵀδ<sub>t+1</sub> from the future, times the "
                "mask f′(a<sub>t</sub>)" if ctl.net.cell == "rnn" else
                "∂L/∂h<sub>t</sub> split into its two sources: Vᵀ(ŷ<sub>t</sub> − y<sub>t</sub>)"
                " from step t's own output and the gradient from the future")
        if ctl.phase == "forward":
            where = (f"The forward phase is at step {ctl.current} of 0…{ctl.T - 1}."
                     if ctl.current is not None else "The forward phase has not started.")
            return (f"<p>Step into the backward phase to see {what}.</p>"
                    f"<p style='color:{COLORS['muted']}'>{where} The backward phase starts "
                    f"after step T−1 = {ctl.T - 1} and goes back down to 0.</p>")
        if ctl.position == ctl.T:
            return (f"<p>The forward phase is done. Step once more: the backward phase starts "
                    f"at t = {ctl.T - 1} and shows {what}.</p>")
        return (f"<p>Step {t} is not reached yet: the backward phase goes from "
                f"t = {ctl.T - 1} down to 0 and is at t = {ctl.current}.</p>"
                f"<p style='color:{COLORS['muted']}'>Keep stepping (or click a step to the "
                f"right in the sequence strip) to see {what}.</p>")

    def header_text(self, t, j):
        ctl = self.ctl
        sentence = ("δ<sub>t</sub> = f′(a<sub>t</sub>) ⊙ (Vᵀ(ŷ<sub>t</sub> − y<sub>t</sub>) + "
                    "Wᵀδ<sub>t+1</sub>)" if ctl.net.cell == "rnn" else
                    "∂L/∂h<sub>t</sub> = Vᵀ(ŷ<sub>t</sub> − y<sub>t</sub>) + (from the future)")
        unit = f"<span style='color:{COLORS['current']}'>unit j = {j} highlighted</span>"
        if self.width() < self.NARROW:
            return f"<b>Step t = {t}</b> · {unit}"
        return f"<b>Step t = {t}</b> · {sentence} · {unit}"

    def caption_text(self, t, short=False):
        """Why the gradient fades or grows (``short``: one line for a small panel)."""
        ctl = self.ctl
        parts = []
        if t == ctl.T - 1:
            parts.append("t = T−1: nothing comes from the future." if short else
                         "At t = T−1 nothing comes from the future: only its own output "
                         "sends gradient.")
        if ctl.net.cell == "rnn":
            parts.append(self._rnn_reason(short))
        elif short:
            gate = "forget gate f<sub>t</sub>" if ctl.net.cell == "lstm" else \
                "update gate z<sub>t</sub>"
            parts.append(f"The gates take the place of the mask: the {gate} carries it back.")
        elif ctl.net.cell == "lstm":
            parts.append("For the LSTM there is no single mask: the gates take its place. "
                         "Going back, the gradient reaches c<sub>t−1</sub> multiplied by the "
                         "forget gate f<sub>t</sub>, so units whose forget gate is near 1 carry "
                         "it far back without fading.")
        else:
            parts.append("For the GRU there is no single mask: the gates take its place. "
                         "The gradient reaches h<sub>t−1</sub> directly multiplied by the "
                         "update gate z<sub>t</sub>, so units with z<sub>t</sub> near 1 carry "
                         "it far back without fading.")
        if ctl.truncate is not None:
            parts.append(f"Truncated BPTT, k = {ctl.truncate}." if short else
                         f"Truncated BPTT (k = {ctl.truncate}): the part from the future "
                         f"carries only the losses of the next {ctl.truncate} steps.")
        return " ".join(parts)

    def _rnn_reason(self, short=False):
        act = self.ctl.net.activation
        rho = self._rho
        bound = self._bound
        rho_text = f" (ρ(W) = {fmt(rho, 2)})" if rho is not None else ""
        # A verdict only where the maths guarantees it: ‖W‖₂ · max f′ < 1 shrinks every step.
        # Otherwise a condition; the Gradient flow panel shows what actually happens.
        if bound is not None and bound < 1:
            verdict = (f"and ‖W‖₂ · max f′ = {bound:.3g} &lt; 1: each step back keeps at most "
                       f"{bound:.3g}× of it, it fades (vanishing)")
            if short:
                verdict = f"‖W‖₂ · max f′ = {bound:.3g} &lt; 1: it fades (vanishing)"
        elif rho is not None and rho > 1:
            verdict = ("so it can grow where the mask is near 1 (exploding): see Gradient flow")
        else:
            verdict = "so it tends to fade, not surely: see Gradient flow"
        if short:
            mask = "= 1" if act == "identity" else "≤ 1"
            return f"Each step back: × Wᵀ{rho_text} and × the mask f′ {mask}; {verdict}."
        mask = {"tanh": "between 0 and 1 for tanh, near 0 where a unit saturates",
                "sigmoid": "at most 0.25 for the sigmoid",
                "relu": "0 or 1 for relu: it switches units off",
                "identity": "1 everywhere for the identity: it damps nothing"}[act]
        return ("Each step back, the part from the future is multiplied by Wᵀ"
                f"{rho_text} and by the mask f′(a<sub>t</sub>) — {mask} — {verdict}.")

    def export_items(self):
        return [(f"δ split: {key}", self.plots[key]) for key in self.chart_keys()]
