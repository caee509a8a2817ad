"""Tape: the preallocated arrays of one sequence's forward and backward pass, indexed time first."""

from __future__ import annotations

import numpy as np


class Tape:
    """Every number the forward and backward passes produce for a (T, B) batch of sequences.

    A ``lean`` tape (for training) keeps only ∂L/∂o_t in ``logits``/``probs``/``dlogits``.

    Shapes (T steps, B sequences, H hidden units, G gates: 1 rnn, 4 lstm, 3 gru, O outputs):

    ========  ==============  ==========================================================
    X, Y      (T, B)          input and target token ids
    xa        (T, B, G·H)     input side of the pre-activations, U x_t + b
    a         (T, B, G·H)     pre-activations (rnn: a_t; lstm: i f g o; gru: r z n)
    h         (T+1, B, H)     h[0] = h0, h[t+1] = h_t
    c         (T+1, B, H)     lstm only: cell states, c[0] = c0
    gate      (T, B, G·H)     lstm/gru: the gates after their nonlinearity
    tanh_c    (T, B, H)       lstm only: tanh(c_t)
    hh        (T, B, 3H)      gru only: W h_{t−1} + bh
    fprime    (T, B, H)       rnn only: f'(a_t)
    logits    (T, B, O)       o_t = V h_t + c
    probs     (T, B, O)       ŷ_t = softmax(o_t)
    loss      (T, B)          L_t = −ln ŷ_t[y_t]
    dlogits   (T, B, O)       ∂L/∂o_t = ŷ_t − onehot(y_t)
    dh_out    (T, B, H)       Vᵀ(ŷ_t − y_t): the gradient h_t receives from its own output
    dh        (T, B, H)       ∂L/∂h_t: from the own output plus from the future (as truncated)
    dax       (T, B, G·H)     ∂L/∂(input-side pre-activation); rnn: δ_t = ∂L/∂a_t
    dah       (T, B, G·H)     ∂L/∂(hidden-side pre-activation W h_{t−1} (+ bh))
    ========  ==============  ==========================================================
    """

    def __init__(self, cell, T, B, H, O, dtype=np.float64, lean=False):
        self.T, self.B, self.H, self.O = T, B, H, O
        self.dtype = np.dtype(dtype)
        GH = cell.gates * H

        def buf(*shape):
            return np.zeros(shape, dtype=self.dtype)

        self.X = np.zeros((T, B), dtype=np.intp)
        self.Y = np.zeros((T, B), dtype=np.intp)
        self.xa = buf(T, B, GH)
        self.a = buf(T, B, GH)
        self.h = buf(T + 1, B, H)
        self.c = buf(T + 1, B, H) if cell.name == "lstm" else None
        self.gate = buf(T, B, GH) if cell.name in ("lstm", "gru") else None
        self.tanh_c = buf(T, B, H) if cell.name == "lstm" else None
        self.hh = buf(T, B, GH) if cell.name == "gru" else None
        self.fprime = buf(T, B, H) if cell.name == "rnn" else None
        self.logits = buf(T, B, O)
        # lean: training needs only the loss and ∂L/∂o, so o, ŷ and ŷ − y share one buffer
        # (each overwrites the last): less memory to stream through for big batches.
        self.probs = self.logits if lean else buf(T, B, O)
        self.loss = buf(T, B)
        self.dlogits = self.logits if lean else buf(T, B, O)
        self.dh_out = buf(T, B, H)
        self.dh = buf(T, B, H)
        self.dax = buf(T, B, GH)
        # The rnn and lstm share one array: their input and hidden sides get the same gradient.
        self.dah = buf(T, B, GH) if cell.name == "gru" else self.dax
        self._rows = {}

    def rows(self, name):
        """A batch-1 array's per-step rows as a list of views (item t is ``array[t, 0]``), made
        once per tape: a loop over a list of views costs a fraction of slicing them out anew
        on every step."""
        rows = self._rows.get(name)
        if rows is None:
            if self.B != 1:
                raise ValueError(f"rows() serves batch-1 tapes; this one holds {self.B} "
                                 f"sequences: index {name}[t] instead")
            rows = self._rows[name] = list(getattr(self, name)[:, 0])
        return rows

    def copy(self):
        """An independent copy (the rnn/lstm's shared dax/dah stay shared in the copy)."""
        new = object.__new__(Tape)
        for name, value in vars(self).items():
            setattr(new, name, value.copy() if isinstance(value, np.ndarray) else value)
        if self.dah is self.dax:
            new.dah = new.dax
        new._rows = {}                      # views of this tape's arrays, not of the copy's
        return new
