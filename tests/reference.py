"""A deliberately plain reference for the loss and (truncated) BPTT gradients, to test the engine.

Written from the equations alone (the design's section 2 and PyTorch's LSTM/GRU documentation),
not from the engine: one time step at a time, column vectors, one-hot x_t as vectors, dicts of
per-step values keyed by t (t = -1 holds the start state), in the style of min-char-rnn.

Backpropagation through time follows the classic tutorial literally: for every loss term L_t,
start from its output and walk back ``for step in range(t, max(0, t - k) - 1, -1)``, adding each
step's contribution to the gradients. Full BPTT is the same walk with no limit, so this file
never uses the engine's running "dhnext" shortcut; the two agree only if both are right.
It is slow (O(T²) per sequence) on purpose: it is meant to be obviously correct, not fast.
"""

from __future__ import annotations

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def activate(activation, a):
    """h = f(a) for the vanilla RNN's activations."""
    if activation == "tanh":
        return np.tanh(a)
    if activation == "relu":
        return np.maximum(a, 0.0)
    if activation == "identity":
        return a.copy()
    if activation == "sigmoid":
        return sigmoid(a)
    raise ValueError(f"unknown activation {activation!r}")


def slope(activation, a):
    """f'(a), written from a (not from h) so that it shares no shortcut with the engine."""
    if activation == "tanh":
        return 1.0 - np.tanh(a) ** 2
    if activation == "relu":
        return (a > 0).astype(float)
    if activation == "identity":
        return np.ones_like(a)
    if activation == "sigmoid":
        return sigmoid(a) * (1.0 - sigmoid(a))
    raise ValueError(f"unknown activation {activation!r}")


def one_hot(index, size):
    x = np.zeros((size, 1))
    x[index] = 1.0
    return x


def column(v):
    return np.asarray(v, dtype=float).reshape(-1, 1)


# --------------------------------------------------------------------- vanilla RNN


def rnn_forward(P, xs, h0, activation):
    """a_t = U x_t + W h_{t-1} + b, h_t = f(a_t)."""
    s = {"x": xs, "a": {}, "h": {-1: h0}}
    for t in range(len(xs)):
        s["a"][t] = P["U"] @ xs[t] + P["W"] @ s["h"][t - 1] + P["b"]
        s["h"][t] = activate(activation, s["a"][t])
    return s


def rnn_back(P, s, step, dh, dc, g, activation):
    """One step back: delta = f'(a_t) * dL/dh_t; returns dL/dh_{t-1}."""
    delta = slope(activation, s["a"][step]) * dh
    g["U"] += delta @ s["x"][step].T
    g["W"] += delta @ s["h"][step - 1].T
    g["b"] += delta
    return P["W"].T @ delta, None


# --------------------------------------------------------------------- LSTM (torch.nn.LSTM)


def lstm_forward(P, xs, h0, c0, H):
    """i, f, g, o = σ, σ, tanh, σ of U x + W h + b; c = f c_prev + i g; h = o tanh(c)."""
    s = {"x": xs, "i": {}, "f": {}, "g": {}, "o": {}, "h": {-1: h0}, "c": {-1: c0}}
    for t in range(len(xs)):
        z = P["U"] @ xs[t] + P["W"] @ s["h"][t - 1] + P["b"]
        s["i"][t] = sigmoid(z[0:H])
        s["f"][t] = sigmoid(z[H:2 * H])
        s["g"][t] = np.tanh(z[2 * H:3 * H])
        s["o"][t] = sigmoid(z[3 * H:4 * H])
        s["c"][t] = s["f"][t] * s["c"][t - 1] + s["i"][t] * s["g"][t]
        s["h"][t] = s["o"][t] * np.tanh(s["c"][t])
    return s


def lstm_back(P, s, step, dh, dc, g, H):
    """One step back; dc is the gradient reaching c_t from c_{t+1} (zero at the loss's own step).

    A loss term reaches c_t both through h_t = o tanh(c_t) and, from later steps, through
    c_{t+1} = f c_t + ...; both paths stop where the term's walk stops.
    """
    i, f, gg, o = s["i"][step], s["f"][step], s["g"][step], s["o"][step]
    tanh_c = np.tanh(s["c"][step])
    dc = dc + dh * o * (1.0 - tanh_c ** 2)
    di = dc * gg
    df = dc * s["c"][step - 1]
    dg = dc * i
    do = dh * tanh_c
    dz = np.vstack([di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - gg ** 2),
                    do * o * (1.0 - o)])
    g["U"] += dz @ s["x"][step].T
    g["W"] += dz @ s["h"][step - 1].T
    g["b"] += dz
    return P["W"].T @ dz, dc * f


# --------------------------------------------------------------------- GRU (torch.nn.GRU)


def gru_forward(P, xs, h0, H):
    """r, z = σ(U x + b + W h + bh) (their blocks); n = tanh(U_n x + b_n + r (W_n h + bh_n));
    h = (1 - z) n + z h_prev."""
    s = {"x": xs, "r": {}, "z": {}, "n": {}, "hn": {}, "h": {-1: h0}}
    for t in range(len(xs)):
        gx = P["U"] @ xs[t] + P["b"]
        gh = P["W"] @ s["h"][t - 1] + P["bh"]
        s["r"][t] = sigmoid(gx[0:H] + gh[0:H])
        s["z"][t] = sigmoid(gx[H:2 * H] + gh[H:2 * H])
        s["hn"][t] = gh[2 * H:3 * H]                    # W_n h_{t-1} + bh_n
        s["n"][t] = np.tanh(gx[2 * H:3 * H] + s["r"][t] * s["hn"][t])
        s["h"][t] = (1.0 - s["z"][t]) * s["n"][t] + s["z"][t] * s["h"][t - 1]
    return s


def gru_back(P, s, step, dh, dc, g, H):
    r, z, n, hn = s["r"][step], s["z"][step], s["n"][step], s["hn"][step]
    h_prev = s["h"][step - 1]
    dn = dh * (1.0 - z)
    dz = dh * (h_prev - n)
    dan = dn * (1.0 - n ** 2)                          # gradient of n's pre-activation
    dar = dan * hn * r * (1.0 - r)
    daz = dz * z * (1.0 - z)
    # The input side of n's pre-activation is U_n x + b_n; its hidden side is r * (W_n h + bh_n).
    d_input = np.vstack([dar, daz, dan])
    d_hidden = np.vstack([dar, daz, dan * r])
    g["U"] += d_input @ s["x"][step].T
    g["b"] += d_input
    g["W"] += d_hidden @ h_prev.T
    g["bh"] += d_hidden
    return P["W"].T @ d_hidden + dh * z, None


# --------------------------------------------------------------------- the whole sequence


def softmax(o):
    e = np.exp(o - np.max(o))
    return e / np.sum(e)


def one_sequence(P, cell, activation, inputs, targets, h0, c0, truncate, dh_seen=None):
    """Loss and gradients (dict of column-shaped arrays) of one sequence.

    dh_seen: if a dict, dh_seen[t] collects the gradient that reaches h_t, summed over the loss
    terms whose walk passes step t (∂L/∂h_t for full BPTT).
    """
    I, H = P["U"].shape[1], P["W"].shape[1]
    T = len(inputs)
    xs = {t: one_hot(inputs[t], I) for t in range(T)}
    if cell == "rnn":
        s = rnn_forward(P, xs, h0, activation)

        def back(step, dh, dc):
            return rnn_back(P, s, step, dh, dc, g, activation)
    elif cell == "lstm":
        s = lstm_forward(P, xs, h0, c0, H)

        def back(step, dh, dc):
            return lstm_back(P, s, step, dh, dc, g, H)
    elif cell == "gru":
        s = gru_forward(P, xs, h0, H)

        def back(step, dh, dc):
            return gru_back(P, s, step, dh, dc, g, H)
    else:
        raise ValueError(f"unknown cell {cell!r}")

    g = {name: np.zeros_like(value) for name, value in P.items()}
    k = T if truncate is None else truncate          # full BPTT: walk all the way back
    loss = 0.0
    for t in range(T):
        o = P["V"] @ s["h"][t] + P["c"]
        p = softmax(o)
        loss += -np.log(p[targets[t], 0])
        dy = p.copy()
        dy[targets[t]] -= 1.0                            # dL_t/do_t = ŷ_t - y_t
        g["V"] += dy @ s["h"][t].T
        g["c"] += dy
        dh = P["V"].T @ dy
        dc = np.zeros((H, 1))
        for step in range(t, max(0, t - k) - 1, -1):
            if dh_seen is not None:
                dh_seen[step] = dh_seen.get(step, 0.0) + dh
            dh, dc = back(step, dh, dc)
    return loss, g


def reference_loss_and_grads(params, cell, activation, inputs, targets, h0=None, c0=None,
                             truncate=None, hidden_grads=False):
    """L = Σ_t -ln ŷ_t[y_t] and its gradients, for a sequence (T,) or a batch (T, B) (summed).

    params: the engine's dict (U, W, b, [bh,] V, c) in float64; h0, c0: (H,) or (B, H).
    Returns (loss, grads) with grads shaped like params; with ``hidden_grads`` also the
    gradient reaching each h_t (as truncated), shaped (T, H) or (T, B, H).
    """
    P = {name: np.array(value, dtype=float) for name, value in params.items()}
    for name in ("b", "bh", "c"):
        if name in P:
            P[name] = column(P[name])
    H = P["W"].shape[1]
    X, Y = np.asarray(inputs), np.asarray(targets)
    batched = X.ndim == 2
    if not batched:
        X, Y = X[:, None], Y[:, None]
    B = X.shape[1]

    def start(v):
        if v is None:
            return np.zeros((B, H))
        return np.asarray(v, dtype=float).reshape(B, H)

    h0s, c0s = start(h0), start(c0)
    loss = 0.0
    grads = {name: np.zeros_like(value) for name, value in P.items()}
    dh = np.zeros((X.shape[0], B, H))
    for j in range(B):
        seen = {}
        loss_j, g_j = one_sequence(P, cell, activation, list(X[:, j]), list(Y[:, j]),
                                   column(h0s[j]), column(c0s[j]), truncate, seen)
        loss += loss_j
        for name in grads:
            grads[name] += g_j[name]
        for t, d in seen.items():
            dh[t, j] = d[:, 0]
    grads = {name: grads[name].reshape(np.shape(params[name])) for name in grads}
    if hidden_grads:
        return loss, grads, (dh if batched else dh[:, 0])
    return loss, grads


# --------------------------------------------------------------------- test problems


CELL_KINDS = [("rnn", "tanh"), ("rnn", "relu"), ("rnn", "identity"), ("rnn", "sigmoid"),
              ("lstm", "tanh"), ("gru", "tanh")]


def redraw_params(net, rng, std=1.0):
    """Replace every parameter (biases too) by N(0, std²) draws, in place, in the net's dtype.

    The engine's own inits set the biases to zero; random biases exercise every gradient.
    """
    for value in net.params.values():
        value[...] = rng.normal(0.0, std, value.shape)
