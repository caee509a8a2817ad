"""What the views measure: gradient flow ‖∂L_s/∂h_t‖ through time, and the spectrum of W."""

from __future__ import annotations

import numpy as np


def gradient_flow(net, tape, seq=0):
    """G[s, t] = ‖∂L_s/∂h_t‖ for s ≥ t (NaN above the diagonal), for sequence ``seq`` of a tape.

    How much of the loss at step s still reaches the hidden state t steps earlier: each loss
    term is carried back on its own (one row per term, as truncated BPTT does), so vanishing
    and exploding gradients show as rows that fall or grow geometrically with s − t.
    Needs the tape's forward pass only; it writes nothing into the tape.
    """
    T, H = tape.T, tape.H
    cell, p = net._cell, net.params
    flow = np.full((T, T), np.nan)
    dh = np.zeros((T, 1, H), tape.dtype)        # row s: ∂L_s/∂h_t as it travels back
    dc = np.zeros((T, 1, H), tape.dtype) if cell.has_cell_state else None
    for t in range(T - 1, -1, -1):
        dh[t, 0] = tape.dh_out[t, seq]            # the loss term of step t enters at h_t
        flow[t:, t] = np.linalg.norm(dh[t:, 0], axis=-1)
        if t > 0:
            _, _, dh, dc = cell.backward_step(p, _OneSequence(tape, seq), t, dh, dc)
    return flow


class _OneSequence:
    """A tape seen through one of its sequences, so that per-row gradients broadcast."""

    def __init__(self, tape, seq):
        self._tape, self._seq = tape, seq
        self.H, self.dtype = tape.H, tape.dtype

    def __getattr__(self, name):
        arr = getattr(self._tape, name)
        return None if arr is None else arr[:, self._seq:self._seq + 1]


def flow_by_distance(flow):
    """Mean, min and max of ‖∂L_s/∂h_{s−d}‖ over s, for each distance d = 0..T−1."""
    T = flow.shape[0]
    mean, low, high = np.empty(T), np.empty(T), np.empty(T)
    for d in range(T):
        diag = np.diagonal(flow, offset=-d)     # entries (s, s − d)
        mean[d], low[d], high[d] = diag.mean(), diag.min(), diag.max()
    return mean, low, high


def decades_per_step(mean):
    """How fast a flow curve changes with the distance: (log10 factor per step, steps).

    The median of the per-step factors of the positive, finite part of ``mean`` (see
    `flow_by_distance`), so that the last distances — averages over a single loss term — do
    not decide the verdict. (nan, 0) when nothing can be measured.
    """
    values = np.asarray(mean, dtype=float)
    values = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        steps = np.diff(np.log10(values))
    steps = steps[np.isfinite(steps)]
    if len(steps) == 0:
        return float("nan"), 0
    return float(np.median(steps)), int(len(steps))


def recurrent_blocks(net):
    """The square H×H blocks of W whose spectrum governs the flow: W itself for the rnn,
    one block per gate for the lstm (i, f, g, o) and gru (r, z, n)."""
    W, H = net.params["W"], net.hidden_size
    names = {"rnn": ("W",), "lstm": ("W_i", "W_f", "W_g", "W_o"), "gru": ("W_r", "W_z", "W_n")}
    return {name: W[k * H:(k + 1) * H] for k, name in enumerate(names[net.cell])}


def eigenvalues(net):
    """Eigenvalues of each recurrent block (complex arrays), keyed as in `recurrent_blocks`."""
    out = {}
    for name, block in recurrent_blocks(net).items():
        block = block.astype(np.float64)
        # A broken (NaN/inf) W has no spectrum to show: NaNs say so without an exception.
        out[name] = (np.linalg.eigvals(block) if np.isfinite(block).all()
                     else np.full(block.shape[0], np.nan, dtype=complex))
    return out


def spectral_radius(net, eig=None):
    """max |λ| of the rnn's W (of the candidate block g / n for the gated cells).

    ``eig``: the network's `eigenvalues`, if already computed."""
    eig = eigenvalues(net) if eig is None else eig
    key = {"rnn": "W", "lstm": "W_g", "gru": "W_n"}[net.cell]
    return float(np.abs(eig[key]).max())
