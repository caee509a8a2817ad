"""Recurrent cells (vanilla RNN, LSTM, GRU): one time step forward and one time step backward.

Every cell works on a `Tape` (see tape.py) that holds the arrays of one sequence, indexed by time
first: the input-side pre-activations ``xa[t] = U x_t + b`` are filled in by the network before
the recurrence runs, then ``forward_step(t)`` reads ``h[t]`` (that is h_{t-1}: ``h[0]`` is h0)
and writes ``h[t+1]`` (h_t) and the cell's own records.

``backward_step`` takes the gradient arriving at h_t (and c_t for the LSTM) and returns

* ``dax``: ∂L/∂(input-side pre-activation) — for the vanilla RNN this is δ_t = ∂L/∂a_t;
* ``dah``: ∂L/∂(hidden-side pre-activation W h_{t-1} (+ bh)) — the same array except for the
  GRU, whose candidate gate multiplies its hidden side by r_t;
* ``dh_prev`` (and ``dc_prev``): the gradient passed on to h_{t-1} (and c_{t-1}).

The incoming gradients may carry extra leading axes (one per loss term still travelling back,
used by truncated BPTT); the cell's records broadcast against them.
"""

from __future__ import annotations

import numpy as np

ACTIVATIONS = ("tanh", "relu", "identity", "sigmoid")


def sigmoid(x, out=None):
    """Logistic function, computed as (1 + tanh(x/2)) / 2 so that it never overflows."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


_ACTIVATE = {
    "tanh": np.tanh,
    "relu": lambda a, out: np.maximum(a, 0.0, out=out),
    "sigmoid": lambda a, out: sigmoid(a, out=out),
    "identity": lambda a, out: np.copyto(out, a),
}


def _activation_slope(name, a, h, out):
    """f'(a), written from the output h where that is cheaper (tanh' = 1 − h², σ' = h(1 − h))."""
    if name == "tanh":
        np.multiply(h, h, out=out)
        np.subtract(1.0, out, out=out)
    elif name == "relu":
        np.greater(a, 0.0, out=out)
    elif name == "sigmoid":
        np.subtract(1.0, h, out=out)
        out *= h
    else:
        out.fill(1.0)
    return out


class RNNCell:
    """h_t = f(a_t),  a_t = U x_t + W h_{t−1} + b."""

    name = "rnn"
    gates = 1
    has_cell_state = False
    bias_names = ("b",)

    def __init__(self, activation="tanh"):
        self.activation = activation

    def forward_steps(self, p, tape, t0, t1):
        """Steps t0..t1−1 of the recurrence; the loop holds nothing but the recurrence itself."""
        a, h, xa, act = tape.a, tape.h, tape.xa, _ACTIVATE[self.activation]
        if tape.B == 1:
            # One sequence: matrix-vector products on (H,) rows are the cheapest call, on
            # row views the tape keeps. (The method W.dot skips np.dot's dispatch: it is
            # called T times per sequence.)
            W, add = p["W"], np.add
            a, xa, h = tape.rows("a"), tape.rows("xa"), tape.rows("h")
            for a_t, x_t, h_prev, h_t in zip(a[t0:t1], xa[t0:t1], h[t0:t1], h[t0 + 1:t1 + 1],
                                             strict=True):
                W.dot(h_prev, a_t)
                add(a_t, x_t, a_t)
                act(a_t, h_t)
        else:
            WT = p["W"].T
            for t in range(t0, t1):
                a_t = a[t]
                np.matmul(h[t], WT, out=a_t)
                a_t += xa[t]
                act(a_t, h[t + 1])
        # f'(a_t) for the whole range at once: backward needs it, the δ-split view shows it.
        _activation_slope(self.activation, tape.a[t0:t1], tape.h[t0 + 1:t1 + 1],
                          tape.fprime[t0:t1])

    def backward_steps(self, p, tape, t1, t0, carry):
        """Steps t1−1 down to t0 of full BPTT: δ_t = f'(a_t) ⊙ (Vᵀ(ŷ_t − y_t) + Wᵀδ_{t+1}).

        ``carry.dh`` holds Wᵀδ_{t+1} (dhnext) on entry and Wᵀδ_{t0} on return.
        """
        W, dhnext = p["W"], carry.dh
        dh, dh_out, fprime, delta = tape.dh, tape.dh_out, tape.fprime, tape.dax
        if tape.B == 1:
            dhnext, add, multiply = dhnext[0], np.add, np.multiply
            rows = (tape.rows(x)[t0:t1][::-1] for x in ("dh", "dh_out", "fprime", "dax"))
            for dh_t, dh_out_t, fprime_t, delta_t in zip(*rows, strict=True):
                add(dh_out_t, dhnext, dh_t)
                multiply(dh_t, fprime_t, delta_t)
                delta_t.dot(W, dhnext)                  # Wᵀδ_t, as the row δ_t W
        else:
            for t in range(t1 - 1, t0 - 1, -1):
                dh_t = dh[t]
                np.add(dh_out[t], dhnext, out=dh_t)
                np.multiply(dh_t, fprime[t], out=delta[t])
                np.matmul(delta[t], W, out=dhnext)

    def backward_step(self, p, tape, t, dh, dc=None):
        """One step for gradients with extra leading axes (truncated BPTT's loss terms)."""
        delta = dh * tape.fprime[t]
        return delta, delta, delta @ p["W"], None


class _StepLoops:
    """The range loops of the gated cells, around their one-step forward and backward."""

    def forward_steps(self, p, tape, t0, t1):
        for t in range(t0, t1):
            self.forward_step(p, tape, t)

    def backward_steps(self, p, tape, t1, t0, carry):
        """Steps t1−1 down to t0 of full BPTT; ``carry`` holds dhnext (and dcnext)."""
        for t in range(t1 - 1, t0 - 1, -1):
            dh_t = tape.dh[t]
            np.add(tape.dh_out[t], carry.dh, out=dh_t)
            dax, dah, carry.dh, carry.dc = self.backward_step(p, tape, t, dh_t, carry.dc)
            tape.dax[t] = dax
            if dah is not dax:
                tape.dah[t] = dah


class LSTMCell(_StepLoops):
    """torch.nn.LSTM: gates i, f, g, o stacked; c_t = f c_{t−1} + i g; h_t = o tanh(c_t)."""

    name = "lstm"
    gates = 4
    has_cell_state = True
    bias_names = ("b",)

    def __init__(self, activation="tanh"):
        self.activation = activation

    def forward_step(self, p, tape, t):
        H = tape.H
        a = tape.a[t]
        np.matmul(tape.h[t], p["W"].T, out=a)
        a += tape.xa[t]
        gate = tape.gate[t]
        sigmoid(a, out=gate)
        np.tanh(a[..., 2 * H:3 * H], out=gate[..., 2 * H:3 * H])
        i, f, g, o = gate[..., :H], gate[..., H:2 * H], gate[..., 2 * H:3 * H], gate[..., 3 * H:]
        c = tape.c[t + 1]
        np.multiply(f, tape.c[t], out=c)
        c += i * g
        np.tanh(c, out=tape.tanh_c[t])
        np.multiply(o, tape.tanh_c[t], out=tape.h[t + 1])

    def backward_step(self, p, tape, t, dh, dc):
        H = tape.H
        gate = tape.gate[t]
        i, f, g, o = gate[..., :H], gate[..., H:2 * H], gate[..., 2 * H:3 * H], gate[..., 3 * H:]
        tc = tape.tanh_c[t]
        # Gradient reaching c_t: directly from c_{t+1} and through h_t = o tanh(c_t).
        dc_t = dh * o * (1.0 - tc * tc)
        dc_t += dc
        shape = np.broadcast_shapes(dh.shape, gate.shape[:-1] + (H,))[:-1] + (4 * H,)
        da = np.empty(shape, dtype=tape.dtype)
        np.multiply(dc_t * g, i * (1.0 - i), out=da[..., :H])
        np.multiply(dc_t * tape.c[t], f * (1.0 - f), out=da[..., H:2 * H])
        np.multiply(dc_t * i, 1.0 - g * g, out=da[..., 2 * H:3 * H])
        np.multiply(dh * tc, o * (1.0 - o), out=da[..., 3 * H:])
        dh_prev = da @ p["W"]
        dc_prev = dc_t * f
        return da, da, dh_prev, dc_prev


class GRUCell(_StepLoops):
    """torch.nn.GRU: gates r, z, n; n = tanh(U_n x + b_n + r (W_n h + bh_n)); h = (1−z) n + z h."""

    name = "gru"
    gates = 3
    has_cell_state = False
    bias_names = ("b", "bh")

    def __init__(self, activation="tanh"):
        self.activation = activation

    def forward_step(self, p, tape, t):
        H = tape.H
        hh = tape.hh[t]                       # W h_{t−1} + bh, kept: r multiplies its n part
        np.matmul(tape.h[t], p["W"].T, out=hh)
        hh += p["bh"]
        a = tape.a[t]                         # pre-activations of r, z, n
        np.add(tape.xa[t][..., :2 * H], hh[..., :2 * H], out=a[..., :2 * H])
        gate = tape.gate[t]
        sigmoid(a[..., :2 * H], out=gate[..., :2 * H])
        r, z = gate[..., :H], gate[..., H:2 * H]
        np.multiply(r, hh[..., 2 * H:], out=a[..., 2 * H:])
        a[..., 2 * H:] += tape.xa[t][..., 2 * H:]
        n = np.tanh(a[..., 2 * H:], out=gate[..., 2 * H:])
        # h_t = n + z (h_{t−1} − n): the same as (1 − z) n + z h_{t−1}, one product fewer.
        h = tape.h[t + 1]
        np.subtract(tape.h[t], n, out=h)
        h *= z
        h += n

    def backward_step(self, p, tape, t, dh, dc=None):
        H = tape.H
        gate = tape.gate[t]
        r, z, n = gate[..., :H], gate[..., H:2 * H], gate[..., 2 * H:]
        h_prev = tape.h[t]
        shape = np.broadcast_shapes(dh.shape, gate.shape[:-1] + (H,))[:-1] + (3 * H,)
        dax = np.empty(shape, dtype=tape.dtype)
        dan = dax[..., 2 * H:]
        np.multiply(dh * (1.0 - z), 1.0 - n * n, out=dan)
        np.multiply(dan * tape.hh[t][..., 2 * H:], r * (1.0 - r), out=dax[..., :H])
        np.multiply(dh * (h_prev - n), z * (1.0 - z), out=dax[..., H:2 * H])
        dah = dax.copy()
        dah[..., 2 * H:] *= r
        dh_prev = dah @ p["W"]
        dh_prev += dh * z
        return dax, dah, dh_prev, None


CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}
