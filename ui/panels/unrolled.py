"""The unrolled network: x_t → h_t → o_t per step, lit forward, then gradient arrows backward."""

from __future__ import annotations

import math

import numpy as np
from PyQt5 import QtCore, QtGui, QtWidgets

from .base import COLORS, FONT_SIZE, Panel, PictureCache, fmt
from .sequence import show_token

GREY = "#b4b4b4"
# What one forward step computes, per cell (the Equations panel has the gates in full).
STEP_RULE = {
    "rnn": "h<sub>t</sub> = f(U x<sub>t</sub> + W h<sub>t−1</sub> + b)",
    "lstm": "gates from x<sub>t</sub> and h<sub>t−1</sub>; c<sub>t</sub> = f<sub>t</sub> "
            "c<sub>t−1</sub> + i<sub>t</sub> g<sub>t</sub>; h<sub>t</sub> = o<sub>t</sub> "
            "tanh(c<sub>t</sub>)",
    "gru": "gates from x<sub>t</sub> and h<sub>t−1</sub>; h<sub>t</sub> = (1 − z<sub>t</sub>) "
           "n<sub>t</sub> + z<sub>t</sub> h<sub>t−1</sub>",
}
DONE_FILL = "#deebf7"       # a computed forward node
CURRENT_FILL = "#9ecae1"    # the step just computed
MUTED_BLUE = "#9db9d3"      # forward structure while the backward phase runs
GRAD_FILL = "#fde0dd"       # a node the gradient has reached


def _font(points, bold=False):
    font = QtGui.QFont()
    font.setPointSizeF(points)
    font.setBold(bold)
    return font


class UnrolledPanel(Panel):
    title = "Unrolled network"
    name = "unrolled"
    tooltip = ("The network unrolled in time: x_t → h_t → o_t for every step and h_{t−1} → h_t; "
               "forward lights the steps left to right, backward sends the gradient (red, "
               "width ∝ its norm) right to left.")

    MIN_COLUMN = 66          # px per step; below this a window of steps around the focus is shown
    MAX_WIDTH = 16.0         # px: the widest gradient arrow (wider ones are clipped, drawn darker)
    FULL_WIDTH = 10.0        # px: the width of the largest own-output gradient of the window

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        self.setMouseTracking(True)
        self.setMinimumSize(300, 220)
        self.f_label = _font(FONT_SIZE)
        self.f_small = _font(11)
        self.f_sub = _font(9)
        self.f_node = _font(FONT_SIZE + 1, bold=True)
        self._fonts = {"node": self.f_node, "sub": self.f_sub, "small": self.f_small}
        self._metrics = None            # font metrics for the node size in use
        # A few windows' worth of pictures (a column is about 70 × 220 pixels).
        self._tiles = PictureCache(120)     # column pictures by the groups they show
        self._overview_key = None
        self._groups = PictureCache(160)    # groups' pictures by what they show
        self._style = None              # the geometry the pictures were made for
        self._x0 = 0
        self._bind()
        self.refresh()

    # ----------------------------------------------------------------- state

    def _bind(self):
        # A new lesson: other tokens, cell and sizes.
        self._tiles.clear()
        self._groups.clear()
        self._drawn = None
        self._scales_seen = None
        self._ref = 1.0
        T = self.ctl.T
        self.fwd_done = np.zeros(T, bool)
        self.bwd_done = np.zeros(T, bool)
        self.own_norm = np.full(T, np.nan)
        self.future_norm = np.full(T, np.nan)
        self.clipped = False

    def refresh(self):
        if self.unchanged():
            return
        ctl, tr = self.ctl, self.ctl.trace
        if len(self.fwd_done) != ctl.T:
            self._bind()
        self.fwd_done = ~np.isnan(tr.hidden[:, 0])
        self.bwd_done = ~np.isnan(tr.dh[:, 0])
        # Norms of single rows set the arrows' widths (a drawing choice, not a result).
        self.own_norm = np.linalg.norm(tr.dh_out, axis=1)
        self.future_norm = np.linalg.norm(tr.dh_future, axis=1)
        if ctl.scales is not self._scales_seen:
            # One width scale per backward phase: the own-output gradients (all known once the
            # forward phase ends) set it, so widths compare across steps and frames.
            self._scales_seen = ctl.scales
            own = self.own_norm[np.isfinite(self.own_norm)]
            self._ref = float(own.max()) if own.size and own.max() > 0 else 1.0
        # The picture is the forward one until a backward step has been done (position T is
        # "forward finished, backward next", though the controller's phase is then backward).
        self.phase = "forward" if ctl.position <= ctl.T else ctl.phase
        with np.errstate(invalid="ignore"):
            self.clipped = bool(np.any(self.FULL_WIDTH * self.future_norm / self._ref
                                       >= self.MAX_WIDTH))
        self.current = ctl.current
        self.focus = self.selection.step_for(ctl)
        # Repaint only when the picture changes (a redraw request often follows a refresh).
        shown = (self.phase, self.current, self.focus, self.clipped, self._ref, ctl.truncate,
                 self.fwd_done.tobytes(), self.bwd_done.tobytes(), self.own_norm.tobytes(),
                 self.future_norm.tobytes(), tr.loss.tobytes(), np.asarray(ctl.inputs).tobytes())
        if shown != self._drawn:
            self._drawn = shown
            self.update()

    def arrow_width(self, norm):
        """The drawn width of a gradient arrow carrying a gradient of norm ``norm``."""
        if not math.isfinite(norm):
            return 0.0
        return float(min(self.FULL_WIDTH * norm / self._ref, self.MAX_WIDTH))

    def step_state(self, t):
        """'current', 'done' or 'pending' for the forward picture of step t."""
        if self.phase == "forward" and t == self.current:
            return "current"
        return "done" if self.fwd_done[t] else "pending"

    def gradient_arrows(self, t):
        """(own, future) widths of step t's gradient arrows, or None where none is drawn."""
        if not self.bwd_done[t]:
            return None, None
        own = self.arrow_width(float(self.own_norm[t]))
        future = None if t == self.ctl.T - 1 else self.arrow_width(float(self.future_norm[t]))
        return own, future

    # ----------------------------------------------------------------- geometry

    def visible_steps(self):
        """(first, last + 1) of the steps drawn; the rest are '…' at either end."""
        T = self.ctl.T
        fits = max(int(self.width() // self.MIN_COLUMN) - 1, 1)     # one column for h0 / '…'
        if T <= fits:
            return 0, T
        n = max(fits - 1, 1)                                          # one for the right '…'
        first = min(max(self.focus - n // 2, 0), T - n)
        return first, first + n

    def _geometry(self):
        first, last = self.visible_steps()
        T = self.ctl.T
        columns = (last - first) + 1 + (1 if last < T else 0)
        # Two header lines, and one line of room for the truncation note above the nodes.
        header = self._prepared_header()[1] + 6
        header += QtGui.QFontMetrics(self.f_sub).height() + 4 if self.ctl.truncate is not None \
            else 0
        overview = 22 if (first > 0 or last < T) else 0
        top, bottom = header + 6, self.height() - overview - 6
        area = bottom - top
        # Whole-pixel columns, centred: a column's picture is then the same wherever the
        # window of steps puts it, so it can be drawn once and reused (see paintEvent).
        cw = max(int(self.width() // columns), 1)
        self._x0 = (self.width() - cw * columns) // 2
        r = max(11.0, min(cw * 0.26, area * 0.1, 24.0))
        rows = {"o": top + area * 0.2, "h": top + area * 0.55, "x": top + area * 0.86}
        return first, last, cw, r, rows, header, overview

    def column_x(self, t, first, cw):
        """Centre x of step t's column (t = first − 1 is the h0 / '…' column)."""
        return self._x0 + (t - first + 1.5) * cw

    def step_at(self, x):
        first, last, cw, *_ = self._geometry()
        t = int((x - self._x0) // cw) - 1 + first
        return t if first <= t < last else None

    # ----------------------------------------------------------------- painting
    #
    # The picture is made of groups of drawing commands (arrows, nodes, texts): a step's
    # forward picture, its gradient arrows, the focus band, the h0 and '…' columns. A group's
    # commands are worked out once, relative to its own column, and kept by what it shows.
    # The picture is cut into one tile per column; a tile is painted once for the groups that
    # reach into it and then reused, so a step repaints only the few columns that changed,
    # however many steps are on screen.

    def paintEvent(self, event):
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), QtGui.QColor("#ffffff"))
        first, last, cw, r, rows, header, overview = self._geometry()
        backward = self.phase != "forward"
        # The node labels follow the node size, so that a short panel stays legible.
        size = max(9.0, min(FONT_SIZE + 1.0, r * 0.62))
        if size != self.f_node.pointSizeF() or self._metrics is None:
            self.f_node.setPointSizeF(size)
            self._metrics = {"node": QtGui.QFontMetrics(self.f_node),
                             "sub": QtGui.QFontMetrics(self.f_sub),
                             "small": QtGui.QFontMetrics(self.f_small)}
            self._widths = {}
        ratio = self.devicePixelRatioF()
        style = (cw, r, rows["o"], rows["h"], rows["x"], header, self.height(), overview,
                 self.compact(), size, ratio)
        if style != self._style:
            self._style = style
            self._tiles.clear()
            self._groups.clear()
        self._geo = (cw, r, rows, header, overview)
        self._paint_tiles(p, first, last, cw, backward, ratio)
        self._paint_matrix_names(p, first, cw, r, rows)
        self._paint_header(p)
        if backward:
            self._paint_truncation(p, first, last, cw, r, rows, header)
        if overview:
            self._paint_overview(p, first, last, overview)
        p.end()

    def _paint_matrix_names(self, p, first, cw, r, rows):
        """U, V and W beside the first column's arrows (on top: the column changes)."""
        x = self.column_x(first, first, cw)
        p.setFont(self.f_small)
        p.setPen(QtGui.QColor(COLORS["muted"]))
        p.drawText(QtCore.QPointF(x - r * 0.2 - 14, (rows["x"] + rows["h"]) / 2 + 4), "U")
        p.drawText(QtCore.QPointF(x - r * 0.2 - 14, (rows["h"] + rows["o"]) / 2 + 4), "V")
        p.drawText(QtCore.QPointF(x - cw / 2 - 6, rows["h"] - 8), "W")

    def _column_groups(self, first, last, backward):
        """Per column (the h0 / '…' column first): its groups as (order, step, key)."""
        T = self.ctl.T
        columns = [[] for _ in range(last - first + 1 + (1 if last < T else 0))]
        # Painting order: band, h0 / '…', per step the arrow in and its picture, gradients.
        if first <= self.focus < last and self.current is not None:
            columns[self.focus - first + 1].append(((0, 0), self.focus, ("band", backward)))
        columns[0].append(((1, 0), first - 1, ("h0", backward) if first == 0 else ("dots",)))
        if last < T:
            columns[-1].append(((1, 0), last, ("dots",)))
        for t in range(first, last + 1 if last < T else last):
            # The arrow into the step (for t = last: into the steps off to the right).
            colour = self._forward_colour(self.step_state(t), backward)
            columns[t - first + 1].append(((2, t, 0), t, ("in",) + colour))
            if t < last:
                columns[t - first + 1].append(((2, t, 1), t, self._forward_key(t, backward)))
        if backward:
            for t in range(first, last):
                key = self._gradient_key(t)
                if key is not None:
                    columns[t - first + 1].append(((4, t), t, key))
        return columns

    def _forward_key(self, t, backward):
        ctl = self.ctl
        loss = float(ctl.trace.loss[t])
        return ("forward", t, self.step_state(t), backward, bool(backward and self.bwd_done[t]),
                int(ctl.inputs[t]), fmt(loss, 2) if math.isfinite(loss) else None)

    def _gradient_key(self, t):
        own, future = self.gradient_arrows(t)
        if own is None:
            return None
        return ("gradient", own, future, t == self.focus)

    def _group(self, t, key):
        """The group's picture (transparent, from x = left), drawn relative to the left edge
        of step t's column, and its horizontal extent."""
        group = self._groups.find(key)      # relative: the same wherever the column is
        if group is None:
            cw = self._geo[0]
            out = []
            self._group_commands(out, t, key, lambda s: (s - t + 0.5) * cw)
            lo = min((lo for lo, _hi, _c in out), default=0.0)
            hi = max((hi for _lo, hi, _c in out), default=0.0)
            # Painted once: a tile is then put together from a few pictures.
            left = math.floor(lo)
            ratio = self.devicePixelRatioF()
            pixmap = QtGui.QPixmap(max(int(math.ceil((math.ceil(hi) - left) * ratio)), 1),
                                   int(math.ceil(self.height() * ratio)))
            pixmap.setDevicePixelRatio(ratio)
            pixmap.fill(QtCore.Qt.transparent)
            q = QtGui.QPainter(pixmap)
            q.setRenderHint(QtGui.QPainter.Antialiasing, True)
            q.translate(-left, 0)
            for _lo, _hi, command in out:
                self._draw(q, command)
            q.end()
            group = self._groups.keep(key, ((pixmap, left), lo, hi))
        return group

    def _paint_tiles(self, p, first, last, cw, backward, ratio):
        groups = self._column_groups(first, last, backward)
        n = len(groups)
        # Room for what a frame shows and a few steps' changes (a wide window shows more).
        self._groups.size, self._tiles.size = max(160, 6 * n), max(120, 4 * n)
        # Per column: its groups with their pictures and extents.
        columns = [[(order, key) + self._group(t, key) for order, t, key in column]
                   for column in groups]
        x0, height = self._x0, self.height()
        for c in range(n):
            # The groups of this column and its neighbours that reach into it.
            parts = []
            for d in (-1, 0, 1):
                if 0 <= c + d < n:
                    shift = d * cw
                    for order, key, picture, lo, hi in columns[c + d]:
                        if lo + shift < cw and hi + shift > 0:
                            parts.append((order, d, key, picture))
            parts.sort(key=lambda part: part[0])
            tile_key = tuple((d, key) for _order, d, key, _picture in parts)
            pixmap = self._tiles.find(tile_key)
            if pixmap is None:
                pixmap = QtGui.QPixmap(int(math.ceil(cw * ratio)), int(math.ceil(height * ratio)))
                pixmap.setDevicePixelRatio(ratio)
                pixmap.fill(QtGui.QColor("#ffffff"))
                q = QtGui.QPainter(pixmap)
                q.setRenderHint(QtGui.QPainter.Antialiasing, True)
                for _order, d, _key, (picture, left) in parts:
                    q.drawPixmap(d * cw + left, 0, picture)
                q.end()
                self._tiles.keep(tile_key, pixmap)
            p.drawPixmap(x0 + c * cw, 0, pixmap)

    def _group_commands(self, out, t, key, col):
        """The drawing commands of one group, each as (x_lo, x_hi, command); ``col(s)`` is
        the centre x of step s's column."""
        cw, r, rows, header, overview = self._geo
        kind = key[0]
        if kind == "band":
            # The focus column gets a light band in the phase's colour.
            band = COLORS["backward"] if key[1] else COLORS["forward"]
            out.append(self._cmd("band", col(t) - cw / 2 + 2, header, cw - 4,
                                 self.height() - header - overview - 2, band))
        elif kind == "h0":
            x = col(t)
            out.append(self._cmd("node", x, rows["h"], r, "h", "−1", "done", True, key[1], None,
                                 None, None))
            out.append(self._cmd("text", x - cw / 2, rows["h"] + r + 2, cw, 18,
                                 int(QtCore.Qt.AlignHCenter), "initial", "sub",
                                 COLORS["muted"]))
        elif kind == "dots":
            out.append(self._cmd("dots", col(t), rows["h"]))
        elif kind == "in":
            # h_{t−1} → h_t (W); at the right end, into the steps off to the right.
            out.append(self._cmd("arrow", col(t - 1) + r, rows["h"], col(t) - r - 1, rows["h"],
                                 key[1], key[2], False))
        elif kind == "forward":
            self._step_commands(out, t, key[2], key[3], key[4], key[6], col)
        else:
            self._gradient_commands(out, t, key[1], key[2], key[3], col)

    def _step_commands(self, out, t, state, backward, reached, loss, col):
        ctl = self.ctl
        cw, r, rows, _header, _overview = self._geo
        x = col(t)
        colour, width = self._forward_colour(state, backward)
        # Forward arrows: x_t → h_t (U), h_t → o_t (V); h_{t−1} → h_t is a group of its own.
        out.append(self._cmd("arrow", x, rows["x"] - r, x, rows["h"] + r + 1, colour, width,
                             False))
        out.append(self._cmd("arrow", x, rows["h"] - r, x, rows["o"] + r + 1, colour, width,
                             False))
        token = show_token(ctl.token(ctl.inputs[t]))
        metrics = self._metrics["node"]
        box_w = min(cw - 10, max(2 * r, metrics.horizontalAdvance(token) + 14))
        text = metrics.elidedText(token, QtCore.Qt.ElideRight, int(box_w - 8))
        out.append(self._cmd("node", x, rows["x"], r, "x", str(t), state, False, backward, box_w,
                             text, None))
        if not self.compact():
            out.append(self._cmd("text", x - cw / 2, rows["x"] + r + 1, cw, 16,
                                 int(QtCore.Qt.AlignHCenter), f"x{_sub(t)}", "sub",
                                 COLORS["muted"] if state != "pending" else GREY))
        fill = GRAD_FILL if reached else None
        out.append(self._cmd("node", x, rows["h"], r, "h", str(t), state, True, backward, None,
                             None, fill))
        out.append(self._cmd("node", x, rows["o"], r, "o", str(t), state, True, backward, None,
                             None, fill))
        if loss is not None:
            out.append(self._cmd("text", x - cw / 2, rows["o"] - r - 20, cw, 18,
                                 int(QtCore.Qt.AlignHCenter), f"L={loss}", "small",
                                 COLORS["text"]))

    def _gradient_commands(self, out, t, own, future, focus, col):
        cw, r, rows, _header, _overview = self._geo
        red = COLORS["backward"]
        x = col(t)
        dx = r * 0.75
        # o_t → h_t: this step's own output gradient Vᵀ(ŷ_t − y_t), beside the forward arrow.
        out.append(self._grad_arrow(x + dx, rows["o"] + r * 0.75, x + dx, rows["h"] - r * 0.75,
                                    own, red))
        if future is not None:
            # h_{t+1} → h_t: the gradient from the future, under the forward arrow.
            y = rows["h"] + r * 0.7
            out.append(self._grad_arrow(col(t + 1) - r * 0.75, y, x + r * 0.75, y, future, red))
        if focus:
            if cw >= 100:           # room beside the arrow (the tooltip names it anyway)
                out.append(self._cmd("point", x + dx + 6, (rows["o"] + rows["h"]) / 2 + 4,
                                     "Vᵀ(ŷ−y)", "sub", red))
            if future is not None:
                label = "Wᵀδ" if self.ctl.net.cell == "rnn" else "from t+1"
                out.append(self._cmd("point", x + r * 0.9, rows["h"] + r * 0.7 + 26, label,
                                     "sub", red))

    def _grad_arrow(self, x1, y1, x2, y2, width, colour):
        if width <= 0:
            return self._cmd("arrow", x1, y1, x2, y2, colour, 1.0, True)
        if width >= self.MAX_WIDTH:
            colour = "#7f0000"       # beyond the scale: drawn darker
        return self._cmd("arrow", x1, y1, x2, y2, colour, max(width, 1.0), False)

    def _advance(self, font, text):
        key = (font, text)
        width = self._widths.get(key)
        if width is None:
            width = self._widths[key] = self._metrics[font].horizontalAdvance(text)
        return width

    def _cmd(self, kind, x, *rest):
        """A drawing command (kind, x, …) with the horizontal extent of what it paints."""
        if kind == "arrow":
            # Stored with the run x2 − x1 rather than x2: every x but the first is relative.
            y1, x2, y2, colour, width, dashed = rest
            rest = (y1, x2 - x, y2, colour, width, dashed)
            if y1 == y2:                    # horizontal: flat ends, a head no wider than it
                pad = 2.0
            else:
                pad = min(max(5.0, 1.4 * width), 16.0) + width + 2
            lo, hi = min(x, x2) - pad, max(x, x2) + pad
        elif kind == "node":
            y, r, name, sub, state, circle, backward, width, text, fill = rest
            half = r if circle else width / 2
            if text is not None:
                half = max(half, min(self._advance("node", text) / 2, 3 * r))
            else:
                half = max(half, (self._advance("node", name) + self._advance("sub", sub)) / 2)
            lo, hi = x - half - 4, x + half + 4
        elif kind == "text":
            y, w, h, flags, text, font, colour = rest
            half = min(self._advance(font, text) / 2 + 2, w / 2)
            lo, hi = x + w / 2 - half, x + w / 2 + half
        elif kind == "point":
            lo, hi = x - 2, x + self._advance(rest[2], rest[1]) + 2
        elif kind == "band":
            lo, hi = x, x + rest[1]
        else:                               # dots
            half = self._advance("node", "…") / 2 + 2
            lo, hi = x - half, x + half
        return lo, hi, (kind, x, *rest)

    def _draw(self, p, command):
        kind, x, *rest = command
        if kind == "arrow":
            y1, run, y2, colour, width, dashed = rest
            self._arrow(p, x, y1, x + run, y2, colour, width, dashed)
        elif kind == "node":
            self._node(p, x, *rest)
        elif kind == "text":
            y, w, h, flags, text, font, colour = rest
            p.setFont(self._fonts[font])
            p.setPen(QtGui.QColor(colour))
            p.drawText(QtCore.QRectF(x, y, w, h), flags, text)
        elif kind == "point":
            y, text, font, colour = rest
            p.setFont(self._fonts[font])
            p.setPen(QtGui.QColor(colour))
            p.drawText(QtCore.QPointF(x, y), text)
        elif kind == "band":
            y, w, h, colour = rest
            band = QtGui.QColor(colour)
            band.setAlpha(28)
            p.fillRect(QtCore.QRectF(x, y, w, h), band)
        else:
            y, = rest
            p.setFont(self.f_node)
            p.setPen(QtGui.QColor(COLORS["muted"]))
            p.drawText(QtCore.QRectF(x - 30, y - 14, 60, 28), QtCore.Qt.AlignCenter, "…")

    def header_lines(self):
        """The two header lines (rich text): what the phase does, and the legend."""
        ctl = self.ctl
        T = ctl.T
        if self.phase == "forward":
            if self.current is None:
                first = ("<b>Forward phase</b> · nothing computed yet: each step computes "
                         "h<sub>t</sub> from x<sub>t</sub> and h<sub>t−1</sub>, left to right")
            elif ctl.position == T:
                first = ("<b>Forward phase done</b> · every h<sub>t</sub> and L<sub>t</sub> is "
                         f"known; next: backward through time from t = {T - 1}")
            else:
                first = (f"<b>Forward phase</b> · step t = {self.current} of 0…{T - 1} done: "
                         + STEP_RULE[ctl.net.cell])
        elif self.phase == "backward":
            first = (f"<b>Backward through time</b> · step t = {self.current}, going from "
                     f"t = {T - 1} down to 0")
        else:
            first = ("<b>Backward phase done</b> · every step's gradient is known; "
                     "the update is next")
        legend = (f"<span style='color:{COLORS['forward']}'>blue: forward</span> · "
                  f"<span style='color:{COLORS['backward']}'>red: gradient ∂L/∂h<sub>t</sub>, "
                  "width ∝ its norm</span>")
        if self.phase != "forward" and self.clipped:
            legend += " · <span style='color:#7f0000'>dark red: beyond the scale</span>"
        if ctl.net.cell == "lstm":
            legend += " · LSTM: it also flows through the cell state c<sub>t</sub>"
        if ctl.truncate is not None:
            legend += f" · truncated BPTT, k = {ctl.truncate}"
        return first, legend

    def compact(self):
        """A short panel: one header line (the legend goes to the tooltip), smaller labels."""
        return self.height() < 320

    def _prepared_header(self):
        """The header lines as laid-out text (wrapped to the width), and their height."""
        lines = self.header_lines()
        if self.compact():
            short = "" if self.phase == "forward" else (
                f" · <span style='color:{COLORS['backward']}'>red: gradient, width ∝ norm</span>")
            lines = (lines[0] + short,)
        key = (lines, self.width())
        if key != getattr(self, "_header_key", None):
            self._header_key = key
            self._header = []
            for text in key[0]:
                static = QtGui.QStaticText(text)
                static.setTextFormat(QtCore.Qt.RichText)
                static.setTextWidth(max(self.width() - 12, 100))
                static.prepare(font=self.f_label)
                self._header.append(static)
        return self._header, sum(s.size().height() + 2 for s in self._header) + 4

    def _paint_header(self, p):
        p.setFont(self.f_label)
        p.setPen(QtGui.QColor(COLORS["text"]))
        y = 4.0
        for static in self._prepared_header()[0]:
            p.drawStaticText(QtCore.QPointF(6, y), static)
            y += static.size().height() + 2

    def _colours(self, state, backward):
        """(outline, fill, text) for a node in this state."""
        if state == "pending":
            return GREY, "#f7f7f7", GREY
        if backward:
            return MUTED_BLUE, "#f3f7fb", COLORS["text"]
        if state == "current":
            return COLORS["forward"], CURRENT_FILL, COLORS["text"]
        return COLORS["forward"], DONE_FILL, COLORS["text"]

    def _node(self, p, x, y, r, name, sub, state, circle=True, backward=False, width=None,
              text=None, fill=None):
        outline, bg, fg = self._colours(state, backward)
        pen_w = 4 if state == "current" else 2
        p.setPen(QtGui.QPen(QtGui.QColor(outline), pen_w))
        p.setBrush(QtGui.QColor(fill or bg))
        if circle:
            p.drawEllipse(QtCore.QPointF(x, y), r, r)
        else:
            w = width or 2 * r
            p.drawRoundedRect(QtCore.QRectF(x - w / 2, y - r, w, 2 * r), 6, 6)
        p.setPen(QtGui.QColor(fg))
        if text is not None:
            p.setFont(self.f_node)
            p.drawText(QtCore.QRectF(x - r * 3, y - r, r * 6, 2 * r), QtCore.Qt.AlignCenter, text)
            return
        # A symbol with its time index as a subscript, centred in the node.
        fm_n, fm_s = self._metrics["node"], self._metrics["sub"]
        total = fm_n.horizontalAdvance(name) + fm_s.horizontalAdvance(sub)
        x0 = x - total / 2
        p.setFont(self.f_node)
        base = y + fm_n.ascent() / 2 - 1
        p.drawText(QtCore.QPointF(x0, base), name)
        p.setFont(self.f_sub)
        p.drawText(QtCore.QPointF(x0 + fm_n.horizontalAdvance(name), base + 4), sub)

    def _arrow(self, p, x1, y1, x2, y2, colour, width, dashed=False):
        """A line from (x1, y1) to (x2, y2) with a filled head at the end."""
        length = math.hypot(x2 - x1, y2 - y1)
        if length < 1:
            return
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        head = min(max(9.0, 2.2 * width), 22.0)
        head = min(head, length * 0.6)
        bx, by = x2 - ux * head, y2 - uy * head
        pen = QtGui.QPen(QtGui.QColor(colour), max(width, 0.8))
        pen.setCapStyle(QtCore.Qt.FlatCap)
        if dashed:
            pen.setStyle(QtCore.Qt.DotLine)
        p.setPen(pen)
        p.drawLine(QtCore.QPointF(x1, y1), QtCore.QPointF(bx, by))
        half = min(max(5.0, 1.4 * width), 16.0)
        poly = QtGui.QPolygonF([QtCore.QPointF(x2, y2),
                                QtCore.QPointF(bx - uy * half, by + ux * half),
                                QtCore.QPointF(bx + uy * half, by - ux * half)])
        p.setPen(QtCore.Qt.NoPen)
        p.setBrush(QtGui.QColor(colour))
        p.drawPolygon(poly)

    def _forward_colour(self, state, backward):
        if state == "pending":
            return GREY, 2.0
        if backward:
            return MUTED_BLUE, 2.0
        return COLORS["forward"], 4.0 if state == "current" else 2.5

    def truncation_cut(self):
        """The step boundary where L_focus's gradient stops (None: it reaches h0)."""
        k = self.ctl.truncate
        if k is None or self.focus - k <= 0:
            return None
        return self.focus - k

    def _paint_truncation(self, p, first, last, cw, r, rows, header):
        cut = self.truncation_cut()
        if cut is None or not first <= cut <= last:
            return
        x = self.column_x(cut, first, cw) - cw / 2
        pen = QtGui.QPen(QtGui.QColor(COLORS["backward"]), 3, QtCore.Qt.DashLine)
        p.setPen(pen)
        top = header - QtGui.QFontMetrics(self.f_sub).height() - 2
        p.drawLine(QtCore.QPointF(x, top), QtCore.QPointF(x, rows["x"] + r))
        p.setFont(self.f_sub)
        text = (f"◀ the gradient of L{_sub(self.focus)} stops here: it reaches back "
                f"k = {self.ctl.truncate} steps")
        fm = QtGui.QFontMetrics(self.f_sub)
        width = fm.horizontalAdvance(text)
        left = x + 4 if x + 4 + width < self.width() else x - 4 - width
        p.drawText(QtCore.QRectF(left, top - 2, width + 2, fm.height()), QtCore.Qt.AlignLeft,
                   text.replace("◀ ", "") if left < x else text)

    def _paint_overview(self, p, first, last, height):
        """All T steps as a thin bar, so the window shown can be placed in the whole."""
        T = self.ctl.T
        y0 = self.height() - height + 4
        p.setFont(self.f_sub)
        label = f"all {T} steps"
        left, right = QtGui.QFontMetrics(self.f_sub).horizontalAdvance(label) + 14.0, \
            self.width() - 8.0
        w = (right - left) / T
        p.setPen(QtGui.QColor(COLORS["muted"]))
        p.drawText(QtCore.QRectF(4, y0, left - 8, height - 6), QtCore.Qt.AlignVCenter,
                   label)
        p.setPen(QtCore.Qt.NoPen)
        key = (T, left, w, y0, height)
        if key != self._overview_key:       # one rectangle per step, made once
            self._overview_key = key
            self._overview = [QtCore.QRectF(left + t * w, y0 + 3, max(w - 1, 1), height - 12)
                              for t in range(T)]
        colours = np.where(self.bwd_done, 2, np.where(self.fwd_done, 1, 0))
        for k, colour in enumerate(("#dddddd", COLORS["forward"], COLORS["backward"])):
            rects = [self._overview[t] for t in np.flatnonzero(colours == k).tolist()]
            if rects:
                p.setBrush(QtGui.QColor(colour))
                p.drawRects(rects)
        p.setPen(QtGui.QPen(QtGui.QColor(COLORS["text"]), 2))
        p.setBrush(QtCore.Qt.NoBrush)
        p.drawRect(QtCore.QRectF(left + first * w, y0, (last - first) * w, height - 6))

    # ----------------------------------------------------------------- mouse

    def tooltip_for(self, t):
        ctl = self.ctl
        x, y = show_token(ctl.token(ctl.inputs[t])), show_token(ctl.token(ctl.targets[t]))
        text = f"step {t}: x_{t} = '{x}', target y_{t} = '{y}'"
        if not self.fwd_done[t]:
            return text + "; not computed yet"
        if not self.bwd_done[t]:
            return text + f"; h_{t} computed, gradient not yet (backward reaches it later)"
        future = "Wᵀδ" if ctl.net.cell == "rnn" else "from the future"
        return (text + f"; gradient ‖Vᵀ(ŷ_{t} − y_{t})‖ = {fmt(float(self.own_norm[t]))}, "
                f"‖{future}‖ = {fmt(float(self.future_norm[t]))}")

    def mouseMoveEvent(self, event):
        t = self.step_at(event.pos().x())
        text = self.tooltip if t is None else self.tooltip_for(t)
        if self.compact():
            doc = QtGui.QTextDocument()
            doc.setHtml(self.header_lines()[1])
            text += "\n" + doc.toPlainText()
        self.setToolTip(text)
        QtWidgets.QToolTip.showText(event.globalPos(), text, self)

    def mousePressEvent(self, event):
        t = self.step_at(event.pos().x())
        if t is not None and event.button() == QtCore.Qt.LeftButton:
            self.selection.select_step(None if self.selection.step == t else t)


def _sub(n):
    """n as Unicode subscript digits (x₁₂)."""
    return str(n).translate(str.maketrans("0123456789−-", "₀₁₂₃₄₅₆₇₈₉₋₋"))
