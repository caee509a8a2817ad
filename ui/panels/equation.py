"""The equation panel: the current step's equations with the live numbers of one hidden unit."""

from __future__ import annotations

import math

from PyQt5 import QtCore, QtGui, QtWidgets

from explorer.optim import global_norm

from .base import COLORS, FONT_SIZE, Panel, fmt
from .sequence import show_token

# Background of the equations of the phase being run, and of the others.
HIGHLIGHT = {"forward": "#dbe9f6", "backward": "#f9dcdc", "update": "#fbe6cf"}
PHASE_COLOURS = {"forward": COLORS["forward"], "backward": COLORS["backward"],
                 "update": COLORS["accent"]}
ACTIVATION = {"tanh": "tanh", "relu": "relu", "identity": "", "sigmoid": "σ"}
# f′ written out in terms of what is on the screen, so the number can be checked by hand.
FPRIME = {"tanh": "1 − h<sub>t</sub>[j]<sup>2</sup>",
          "sigmoid": "h<sub>t</sub>[j] (1 − h<sub>t</sub>[j])",
          "relu": "1 if a<sub>t</sub>[j] &gt; 0, else 0", "identity": "1"}


def num(x, digits=3):
    """A number for the equations: '–' when not computed yet."""
    return fmt(float(x), digits) if x is not None else "–"


def term(x, digits=3):
    """A number that is added to others: negative ones in parentheses, as on a blackboard."""
    text = num(x, digits)
    return f"({text})" if text.startswith("−") else text


class _Document(QtWidgets.QWidget):
    """Rich text laid out once per change and painted from its layout.

    A QLabel lays rich text out several times per change (size hints, height for width) and
    makes every layout around it redo its geometry; this widget sets its own height and
    leaves the layouts alone.
    """

    def __init__(self, font, margin, parent=None):
        super().__init__(parent)
        self.doc = QtGui.QTextDocument(self)
        self.doc.setDefaultFont(font)
        self.doc.setDocumentMargin(margin)
        self.doc.setUndoRedoEnabled(False)
        option = self.doc.defaultTextOption()
        option.setWrapMode(QtGui.QTextOption.WordWrap)      # as a label: whole words only
        self.doc.setDefaultTextOption(option)

    def set_html(self, html):
        self.doc.setHtml(html)
        self.fit(self.width())
        self.update()

    def fit(self, width):
        """Wrap the text to ``width`` pixels and take the height it needs."""
        width = max(int(width), 50)
        if self.doc.textWidth() != width:
            self.doc.setTextWidth(width)
        height = math.ceil(self.doc.size().height())
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)

    def paintEvent(self, event):
        p = QtGui.QPainter(self)
        p.fillRect(event.rect(), QtCore.Qt.white)
        p.setPen(self.palette().color(QtGui.QPalette.WindowText))
        self.doc.drawContents(p, QtCore.QRectF(event.rect()))
        p.end()


class _Scroll(QtWidgets.QScrollArea):
    """Scrolls the document when the dock is short; wraps it to the visible width."""

    def __init__(self, view, parent=None):
        super().__init__(parent)
        self.setWidget(view)
        self.setWidgetResizable(False)
        self.setFrameShape(QtWidgets.QFrame.NoFrame)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        viewport = self.viewport()
        palette = viewport.palette()
        palette.setColor(viewport.backgroundRole(), QtGui.QColor("#ffffff"))
        viewport.setPalette(palette)
        viewport.setAutoFillBackground(True)

    def viewportEvent(self, event):
        # The viewport narrows when the scroll bar appears: wrap the text again.
        if event.type() == QtCore.QEvent.Resize:
            self.widget().fit(event.size().width())
        return super().viewportEvent(event)


def _esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class EquationPanel(Panel):
    title = "Equations"
    name = "equation"
    tooltip = ("The equations of the step being looked at, with the live numbers of the "
               "selected hidden unit j (click a unit in a heatmap to change it); the current "
               "phase's part is highlighted.")

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        font = QtGui.QFont()
        font.setPointSizeF(FONT_SIZE + 2)
        self.view = _Document(font, margin=6, parent=self)
        self.view.setToolTip(self.tooltip)
        self.scroll = _Scroll(self.view, self)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll)
        copy = QtWidgets.QAction("Copy the equations as text", self)
        copy.triggered.connect(self._copy)
        self.view.addAction(copy)
        self.view.setContextMenuPolicy(QtCore.Qt.ActionsContextMenu)
        self._html = ""
        self._bind()
        self.refresh()

    def refresh(self):
        if self.unchanged():
            return
        html = self.html()
        if html != self._html:          # a new layout costs: skip it when nothing changed
            self._html = html
            self.view.set_html(html)

    def _copy(self):
        QtWidgets.QApplication.clipboard().setText(self.plain_text())

    def plain_text(self):
        """What the panel shows, without the markup (for tests and copying)."""
        doc = QtGui.QTextDocument()
        doc.setHtml(self._html)
        return doc.toPlainText()

    # ----------------------------------------------------------------- the text

    def html(self):
        ctl = self.ctl
        t = self.selection.step_for(ctl)
        j = min(self.selection.unit, ctl.net.hidden_size - 1)
        e = ctl.explain(t, j)
        e = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in e.items()}
        phase = self._phase_of(t)
        cell = ctl.net.cell
        # Past the forward phase the forward part shrinks to one line: the backward part, the
        # one being explained, stays in view in a short dock.
        brief = phase != "forward"
        if cell == "rnn":
            forward, backward = self._rnn_forward(e, brief), self._rnn_backward(e, t)
        else:
            forward = (self._lstm_forward(e, brief) if cell == "lstm"
                       else self._gru_forward(e, brief))
            backward = self._gated_backward(e, t)
        if brief:
            symbols, numbers, note = forward[0]
            forward[0] = (symbols + f"; ŷ<sub>t</sub>[y<sub>t</sub>] = {num(e['p_target'], 2)},"
                          f" L<sub>t</sub> = {num(e['loss'], 2)}", numbers, note)
        else:
            forward.append(self._output(e))
        sections = {"forward": ("Forward", forward), "backward": ("Backward", backward)}
        if ctl.phase == "update":
            sections["update"] = ("Update", [self._update_line()])
        # The part being explained comes first, where a short dock shows it.
        order = [phase] + [name for name in sections if name != phase]
        rows = [self._section(*sections[name], name == phase, name) for name in order]
        return self._header(e, t, j, phase) + "<table cellspacing='0' cellpadding='5' " \
            "width='100%'>" + "".join(rows) + "</table>"

    def _update_line(self):
        ctl = self.ctl
        name = _esc(ctl.optimizer.name)
        if name == "sgd":
            rule = "every parameter θ ← θ − η · ∂L/∂θ"
        else:
            rule = f"every parameter θ ← θ − η · ({name}'s rescaled ∂L/∂θ)"
        note = "∂L/∂θ sums the contributions of all T steps; the next window starts after it"
        clipping = []
        if ctl.clip_value is not None:
            clipping.append(f"each entry to ±{num(ctl.clip_value)}")
        if ctl.clip_norm is not None:
            clipping.append(f"the global norm ‖∂L/∂θ‖ = {num(self._grad_norm())} to at most "
                            f"{num(ctl.clip_norm)}")
        if clipping:
            note = "first clipped: " + " and ".join(clipping) + "<br>" + note
        return (f"{rule}, &nbsp;η = {num(ctl.lr)}", None, note)

    def _grad_norm(self):
        """The global norm of the gradient the update is about to use, before clipping."""
        return global_norm(self.ctl.grads)

    def _phase_of(self, t):
        """Which phase the step being looked at is in: the part to highlight."""
        ctl = self.ctl
        if ctl.phase == "update":
            return "update"
        if ctl.phase == "backward" and not math.isnan(ctl.trace.dh[t, 0]):
            return "backward"
        return "forward"

    def _header(self, e, t, j, phase):
        ctl = self.ctl
        name = {"forward": "Forward phase", "backward": "Backward phase (BPTT)",
                "update": "Update"}[ctl.phase]
        colour = PHASE_COLOURS[ctl.phase]
        if ctl.position == ctl.T:
            name, colour = "Forward phase done (backward next)", PHASE_COLOURS["forward"]
        x = _esc(show_token(ctl.token(e["x"])))
        y = _esc(show_token(ctl.token(e["y"])))
        chosen = "" if self.selection.step is None else " (clicked)"
        # Compact: the dock is often narrow; how to change the unit is in the tooltip.
        return (f"<p style='margin:0 0 6px 0'><b style='color:{colour}'>{name}</b> · "
                f"step <b>t = {t}</b>{chosen} · x<sub>t</sub> = '<b>{x}</b>' → "
                f"y<sub>t</sub> = '<b>{y}</b>' · unit <b>j = {j}</b></p>")

    def _section(self, title, lines, active, phase):
        """Rows of (symbols, numbers or None, note or None); long ones put numbers below."""
        bg = f" style='background:{HIGHLIGHT[phase]}'" if active else ""
        colour = PHASE_COLOURS[phase] if active else COLORS["muted"]
        out = []
        for i, (symbols, numbers, note) in enumerate(lines):
            head = (f"<td width='90' valign='top' style='color:{colour}'><b>{title}</b></td>"
                    if i == 0 else "<td></td>")
            body = symbols
            if numbers is not None:
                body += f"<br>&nbsp;&nbsp;&nbsp;&nbsp;{numbers}"
            if note:
                body += (f"<br><span style='color:{COLORS['muted']}; font-size:small'>"
                         f"{note}</span>")
            out.append(f"<tr{bg}>{head}<td>{body}</td></tr>")
        return "".join(out)

    def _output(self, e):
        p = num(e["p_target"], 2)
        return (f"ŷ<sub>t</sub>[y<sub>t</sub>] = {p},&nbsp;&nbsp; L<sub>t</sub> = "
                f"−ln ŷ<sub>t</sub>[y<sub>t</sub>] = −ln {p} = <b>{num(e['loss'], 2)}</b>",
                None, "the probability the model gives the target, and the step's loss")

    def _rnn_forward(self, e, brief=False):
        f = ACTIVATION[e["activation"]]
        f_of_a = f"{f}(a<sub>t</sub>[j])" if f else "a<sub>t</sub>[j]"
        if brief:
            return [(f"a<sub>t</sub>[j] = {num(e['a'])}, h<sub>t</sub>[j] = {f_of_a} = "
                     f"{num(e['h'])}", None, None)]
        return [
            ("a<sub>t</sub>[j] = (U x<sub>t</sub>)[j] + (W h<sub>t−1</sub>)[j] + b[j]",
             f"= {num(e['Ux'])} + {term(e['Wh'])} + {term(e['b'])} = <b>{num(e['a'])}</b>",
             f"U x<sub>t</sub> is column x<sub>t</sub> of U (x<sub>t</sub> is one-hot); "
             f"h<sub>t−1</sub>[j] = {num(e['h_prev'])}"),
            (f"h<sub>t</sub>[j] = {f_of_a} = <b>{num(e['h'])}</b>", None,
             f"f = {e['activation']}"),
        ]

    def _future_note(self, t):
        if t == self.ctl.T - 1:
            return "t = T−1: nothing comes from the future (δ<sub>T</sub> = 0)"
        if self.ctl.truncate is not None:
            return (f"truncated BPTT: the future part carries only the losses of the next "
                    f"{self.ctl.truncate} steps")
        return ""

    def _rnn_backward(self, e, t):
        note = (f"f′(a<sub>t</sub>[j]) = {FPRIME[e['activation']]} (the mask) · "
                "Vᵀ(ŷ<sub>t</sub> − y<sub>t</sub>): from its own output · "
                "Wᵀδ<sub>t+1</sub>: from the future")
        extra = self._future_note(t)
        if extra:
            note += "<br>" + extra
        return [("δ<sub>t</sub>[j] = f′(a<sub>t</sub>[j]) · (Vᵀ(ŷ<sub>t</sub> − y<sub>t</sub>) "
                 "+ Wᵀδ<sub>t+1</sub>)[j]",
                 f"= {num(e['fprime'])} · ({num(e['own'])} + {term(e['future'])}) = "
                 f"<b>{num(e['delta'])}</b>", note)]

    def _lstm_forward(self, e, brief=False):
        if brief:
            return [(", ".join(f"{g}<sub>t</sub>[j] = {num(e[g])}" for g in "ifgo")
                     + f"; c<sub>t</sub>[j] = {num(e['c'])}, h<sub>t</sub>[j] = "
                     f"{num(e['h'])}", None, "the gates (input, forget, candidate, output), "
                     "cell state and hidden state of the forward phase")]
        gate = "(U<sub>{g}</sub> x<sub>t</sub> + W<sub>{g}</sub> h<sub>t−1</sub> + b<sub>{g}</sub>)"
        lines = []
        for g, fn, what in (("i", "σ", "input gate"), ("f", "σ", "forget gate"),
                            ("g", "tanh", "candidate"), ("o", "σ", "output gate")):
            lines.append((f"{g}<sub>t</sub>[j] = {fn}{gate.format(g=g)}[j] = "
                          f"<b>{num(e[g])}</b> &nbsp;<span style='color:{COLORS['muted']}'>"
                          f"{what}</span>", None, None))
        lines.append(("c<sub>t</sub>[j] = f<sub>t</sub>[j] c<sub>t−1</sub>[j] + i<sub>t</sub>[j] "
                      "g<sub>t</sub>[j]",
                      f"= {num(e['f'])} · {term(e['c_prev'])} + {num(e['i'])} · {term(e['g'])}"
                      f" = <b>{num(e['c'])}</b>", "the cell state"))
        lines.append(("h<sub>t</sub>[j] = o<sub>t</sub>[j] tanh(c<sub>t</sub>[j]) = "
                      f"{num(e['o'])} · tanh({num(e['c'])}) = <b>{num(e['h'])}</b>", None, None))
        return lines

    def _gru_forward(self, e, brief=False):
        if brief:
            return [(", ".join(f"{g}<sub>t</sub>[j] = {num(e[g])}" for g in "rzn")
                     + f"; h<sub>t</sub>[j] = {num(e['h'])}", None,
                     "the gates (reset, update), candidate and hidden state of the forward "
                     "phase")]
        lines = []
        for g, what in (("r", "reset gate"), ("z", "update gate")):
            lines.append((f"{g}<sub>t</sub>[j] = σ(U<sub>{g}</sub> x<sub>t</sub> + W<sub>{g}</sub>"
                          f" h<sub>t−1</sub> + b<sub>{g}</sub> + bh<sub>{g}</sub>)[j] = "
                          f"<b>{num(e[g])}</b> &nbsp;<span style='color:{COLORS['muted']}'>"
                          f"{what}</span>", None, None))
        lines.append(("n<sub>t</sub>[j] = tanh(U<sub>n</sub> x<sub>t</sub> + b<sub>n</sub> + "
                      "r<sub>t</sub> ⊙ (W<sub>n</sub> h<sub>t−1</sub> + bh<sub>n</sub>))[j] = "
                      f"<b>{num(e['n'])}</b>", None, "the candidate state"))
        lines.append(("h<sub>t</sub>[j] = (1 − z<sub>t</sub>[j]) n<sub>t</sub>[j] + "
                      "z<sub>t</sub>[j] h<sub>t−1</sub>[j]",
                      f"= (1 − {num(e['z'])}) · {term(e['n'])} + {num(e['z'])} · "
                      f"{term(e['h_prev'])} = <b>{num(e['h'])}</b>", None))
        return lines

    def _gated_backward(self, e, t):
        if self.ctl.net.cell == "lstm":
            how = (f"it goes on to c<sub>t</sub> through o<sub>t</sub> and tanh′, and back to "
                   f"c<sub>t−1</sub> through the forget gate f<sub>t</sub>[j] = {num(e['f'])}: "
                   "the gates take the place of the mask f′")
        else:
            how = ("it goes back to h<sub>t−1</sub> directly through the update gate "
                   f"z<sub>t</sub>[j] = {num(e['z'])}: the gates take the place of the mask f′")
        extra = self._future_note(t)
        if extra:
            how += "<br>" + extra
        return [("∂L/∂h<sub>t</sub>[j] = [Vᵀ(ŷ<sub>t</sub> − y<sub>t</sub>)][j] + "
                 "[from step t+1][j]",
                 f"= {num(e['own'])} + {term(e['future'])} = <b>{num(e['dh'])}</b>", how)]
