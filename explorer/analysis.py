"""What the views measure: gradient flow ‖∂L_s/∂h_t‖ through time, and the spectrum of W."""

from __future__ import annotations

import math

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


def flow_by_distance(flow, normalise=False, min_terms=1):
    """Mean, min and max over s of ‖∂L_s/∂h_{s−d}‖, for each distance d = 0..T−1.

    ``normalise``: divide each loss term's row by its own ‖∂L_s/∂h_s‖ first, so the curves say
    what fraction of each term's gradient survives d steps back (1 at d = 0). Loss terms differ
    in size by orders of magnitude, and only T − d of them reach d steps back: without this,
    the min–max band spans the terms' sizes and the last distances show whichever single term
    happens to reach that far. Terms whose ‖∂L_s/∂h_s‖ is 0 or not finite are left out.
    ``min_terms``: distances with fewer loss terms than this are NaN (too few to average).
    Without ``normalise``, a NaN entry makes its distance NaN (nothing computed yet).
    """
    flow = np.asarray(flow, dtype=float)
    if flow.ndim != 2 or flow.shape[0] != flow.shape[1]:
        raise ValueError(f"flow must be a square (T, T) array, got shape {flow.shape}")
    if isinstance(min_terms, bool) or not isinstance(min_terms, (int, np.integer)) \
            or min_terms < 1:
        raise ValueError(f"min_terms must be a positive integer, got {min_terms!r}")
    T = flow.shape[0]
    values = flow
    if normalise:
        own = np.diagonal(flow).copy()                  # ‖∂L_s/∂h_s‖, one per loss term
        own[~(np.isfinite(own) & (own > 0))] = np.nan
        with np.errstate(invalid="ignore"):
            values = flow / own[:, None]
    # by_d[d, s] = values[s, s − d]: one row per distance, NaN where s − d < 0.
    s = np.arange(T)
    t = s[None, :] - s[:, None]
    inside = t >= 0
    by_d = np.where(inside, values[s[None, :], np.maximum(t, 0)], np.nan)
    used = inside & ~np.isnan(by_d) if normalise else inside
    count = used.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(used, by_d, 0.0).sum(axis=1) / count
    low = np.where(used, by_d, np.inf).min(axis=1)
    high = np.where(used, by_d, -np.inf).max(axis=1)
    # A mean lies between the min and the max; a sum of equal terms over their count can
    # round a last bit outside them.
    with np.errstate(invalid="ignore"):
        mean = np.clip(mean, low, high)
    few = count < min_terms
    for arr in (mean, low, high):
        arr[few] = np.nan
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


# The largest slope f′ of each activation (sigmoid′ peaks at ¼ where a = 0).
MAX_SLOPE = {"tanh": 1.0, "relu": 1.0, "identity": 1.0, "sigmoid": 0.25}


def step_gain_bound(net):
    """max f′ · ‖W‖₂ for the rnn: no step back h_t → h_{t−1} stretches ∂L/∂h by more.

    One step back multiplies the gradient by Wᵀ diag(f′(a_t)), whose norm is at most the
    largest singular value ‖W‖₂ times the largest slope f′. Below 1, every loss term's
    gradient shrinks at every step, whatever the inputs. ρ(W) < 1 alone does not ensure that:
    ‖W‖₂ ≥ ρ(W), and the mask f′(a_t) can turn a shrinking W into a growing Wᵀ diag(f′).
    NaN when W holds NaN or ∞.
    """
    if net.cell != "rnn":
        raise ValueError(f"step_gain_bound needs an rnn cell (the gated cells' gates scale the "
                         f"flow too), got cell={net.cell!r}")
    W = net.params["W"].astype(np.float64)
    if not np.isfinite(W).all():
        return float("nan")
    # ‖W‖₂² is the largest eigenvalue of WᵀW: a symmetric eigensolver is ~10× faster than
    # the SVD behind np.linalg.norm(W, 2), and this runs at every update.
    sigma = math.sqrt(max(float(np.linalg.eigvalsh(W.T @ W)[-1]), 0.0))
    return MAX_SLOPE[net.activation] * sigma


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
