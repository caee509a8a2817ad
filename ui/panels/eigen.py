"""W's eigenvalues in the complex plane against the unit circle, with the spectral radius."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

from explorer.analysis import MAX_SLOPE, step_gain_bound

from .base import COLORS, Panel, fmt, still_plot
from .flow import radius_text
from .loss import COMPACT_HEIGHT, KEY_FONT
from .output import LABEL_STYLE, title_label

# One colour per recurrent block (the rnn has one: W).
BLOCK_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
HOVER_PIXELS = 8


class EigenPanel(Panel):
    title = "Eigenvalues of W"
    name = "eigen"
    tooltip = ("Eigenvalues λ of the recurrent matrix W against the unit circle: ρ = max |λ| > 1 "
               "lets gradients grow where f′ ≈ 1, ρ < 1 makes them fade (at every step once "
               "‖W‖₂·max f′ < 1); the Flow panel measures what they do (gated cells: one colour "
               "per gate block).")

    def __init__(self, ctl, selection, parent=None):
        super().__init__(ctl, selection, parent)
        self.header = title_label()
        self.widget, plot = still_plot()
        self.plot = plot
        plot.setAspectLocked(True)
        plot.setLabel("bottom", "Re λ", **LABEL_STYLE)
        plot.setLabel("left", "Im λ", **LABEL_STYLE)
        angle = np.linspace(0, 2 * np.pi, 361)
        self.circle = plot.plot(np.cos(angle), np.sin(angle),
                                pen=pg.mkPen(COLORS["text"], width=3))
        self.radius_circle = plot.plot(pen=pg.mkPen(COLORS["accent"], width=2,
                                                    style=QtCore.Qt.DashLine))
        self._angle = angle
        plot.addItem(pg.InfiniteLine(angle=0, pen=pg.mkPen(COLORS["muted"], width=1)))
        plot.addItem(pg.InfiniteLine(angle=90, pen=pg.mkPen(COLORS["muted"], width=1)))
        self.scatters = {}
        self._eig = None
        self._compact = False
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(self.widget, 1)
        self.widget.scene().sigMouseMoved.connect(self._hover)
        self._bind()

    def _bind(self):
        for scatter in self.scatters.values():
            self.plot.removeItem(scatter)
        self.scatters = {}
        names = list(self.ctl.eigenvalues())
        gated = len(names) > 1
        for k, name in enumerate(names):
            color = BLOCK_COLORS[k % len(BLOCK_COLORS)]
            label = f"{name} (gate {name.split('_')[-1]})" if gated else f"eigenvalues of {name}"
            scatter = pg.ScatterPlotItem(size=11, pen=pg.mkPen("#ffffff", width=1),
                                         brush=pg.mkBrush(color), name=label)
            self.plot.addItem(scatter)
            self.scatters[name] = scatter
        # The key sits in the header: a legend inside the plot covers eigenvalues.
        self._circles = ("━ |λ| = 1 &nbsp; "
                         f"<span style='color:{COLORS['accent']}'>- - - ρ = max&nbsp;|λ|</span>")
        self._eig = None

    def refresh(self):
        eig = self.ctl.eigenvalues()
        # The controller caches them per cycle: a new dict means new parameters.
        if eig is self._eig:
            return
        self._eig = eig
        radii = {name: float(np.max(np.abs(lam))) for name, lam in eig.items()}
        for name, lam in eig.items():
            self.scatters[name].setData(lam.real, lam.imag)
        rho = max(radii.values())
        self.radius_circle.setData(rho * np.cos(self._angle), rho * np.sin(self._angle))
        extent = max(1.15, 1.1 * rho)
        self.plot.setXRange(-extent, extent, padding=0)
        self.plot.setYRange(-extent, extent, padding=0)
        self.header.setText(self._title(radii))

    def _title(self, radii):
        if len(radii) == 1:
            (name, rho), = radii.items()
            head = verdict(rho, step_gain_bound(self.ctl.net), self.ctl.net.activation)
            key = (f"<span style='{KEY_FONT}'><span style='color:{BLOCK_COLORS[0]}'>● "
                   f"λ of {name}</span> &nbsp;{self._circles}</span>")
            # In a low dock the key moves to the plot's tooltip, leaving the height to the plot.
            self.widget.setToolTip(key)
            return head + ("" if self._compact else "<br>" + key)
        # Gated cells: the gate names in their colours are the key; one short line.
        head = "ρ per gate: " + " ".join(
            f"<span style='color:{BLOCK_COLORS[k % len(BLOCK_COLORS)]}'>●&nbsp;"
            f"{name.split('_')[-1]}&nbsp;{radius_text(rho)}</span>"
            for k, (name, rho) in enumerate(radii.items()))
        circles = ("━ |λ| = 1 &nbsp; "
                   f"<span style='color:{COLORS['accent']}'>- - - largest&nbsp;ρ</span>")
        note = "the gates also set the flow" + (" (see Flow)" if self._compact else "")
        self.widget.setToolTip(f"{circles} · {note}")
        key = note if self._compact else f"{circles} · {note}"
        return f"{head}<br><span style='{KEY_FONT}'>{key}</span>"

    def resizeEvent(self, event):
        compact = event.size().height() < COMPACT_HEIGHT
        if compact != self._compact:
            self._compact = compact
            self._eig = None
            self.refresh()
        super().resizeEvent(event)

    # ----------------------------------------------------------------- hover

    def point_text(self, name, k):
        """What hovering eigenvalue k of block ``name`` shows."""
        lam = complex(self._eig[name][k])
        sign = "−" if lam.imag < 0 else "+"
        return (f"λ = {fmt(lam.real)} {sign} {fmt(abs(lam.imag))}i, |λ| = {fmt(abs(lam))}"
                + (f"  ({name})" if len(self._eig) > 1 else ""))

    def _hover(self, scene_pos):
        if self._eig is None or not self.plot.sceneBoundingRect().contains(scene_pos):
            return
        vb = self.plot.vb
        best = None
        for name, lam in self._eig.items():
            for k, value in enumerate(lam):
                p = vb.mapViewToScene(QtCore.QPointF(value.real, value.imag))
                dist = math.hypot(p.x() - scene_pos.x(), p.y() - scene_pos.y())
                if dist <= HOVER_PIXELS and (best is None or dist < best[0]):
                    best = (dist, name, k)
        if best is None:
            self.widget.setToolTip(self.tooltip)
            return
        text = self.point_text(best[1], best[2])
        self.widget.setToolTip(text)
        QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), text, self.widget)

    def export_items(self):
        return [("eigenvalues of W", self.plot)]


# The largest slope of each activation, as a key says it.
_SLOPE_TEXT = {1.0: "1", 0.25: "¼"}


def verdict(rho, bound, activation):
    """The rnn's header: what ρ(W) (and the bound max f′ · ‖W‖₂) lets gradients do.

    A condition, not a measurement: how the gradients do behave depends on the mask f′(a_t)
    and on their direction too, and the Flow panel measures it. Only ``bound`` < 1 (see
    `explorer.analysis.step_gain_bound`) ensures that they shrink at every step.
    """
    slope = _SLOPE_TEXT.get(MAX_SLOPE[activation], f"{MAX_SLOPE[activation]:g}")
    rho_text = f"ρ(W) = {radius_text(rho)}"
    if not math.isfinite(rho):
        return f"<b>{rho_text}: W has overflowed</b>"
    near = abs(rho - 1) < 0.005
    side = "≈ 1" if near else "&lt; 1" if rho < 1 else "&gt; 1"
    if bound < 1:
        # ρ ≤ ‖W‖₂, so ρ ≥ 1 with a bound below 1 needs a slope below 1 (sigmoid).
        but = f", but f′ ≤ {slope}" if rho >= 1 else ""
        return (f"<b>{rho_text} {side}{but}: gradients fade</b> — every step back keeps "
                f"≤&nbsp;{fmt(100 * bound)}% of them (‖W‖₂·max&nbsp;f′)")
    if near:
        if activation == "identity":
            return f"<b>{rho_text} ≈ 1: gradients keep their size</b> (f′ = 1; see Flow)"
        return f"<b>{rho_text} ≈ 1: gradients keep their size at most</b> (see Flow)"
    if rho < 1:
        how = "fade over many steps" if activation == "identity" else "tend to fade"
        return (f"<b>{rho_text} &lt; 1: gradients {how}</b> — not surely: "
                f"‖W‖₂·max&nbsp;f′ = {radius_text(bound)} ≥ 1 (see Flow)")
    if activation == "identity":
        return (f"<b>{rho_text} &gt; 1: gradients grow</b> ×{radius_text(rho)} per step back "
                "in the long run (f′ = 1; see Flow)")
    return f"<b>{rho_text} &gt; 1: gradients can grow</b> where f′ ≈ {slope} (see Flow)"
