"""Network: a recurrent cell under a softmax output layer; forward, BPTT and gradients in NumPy.

The same per-step pieces serve both ways of running a sequence:

* the whole-sequence call (`loss_and_grads`, `forward`) projects the inputs of every step at
  once, runs only the recurrence step by step on preallocated buffers, and does the output layer
  and the parameter gradients as whole-sequence matrix products (a big batch computes the ones
  that need no BPTT on a second core while BPTT runs) — the fast path for training;
* the step-by-step lesson (`explorer.Controller`) calls `forward_range(tape, t, t + 1)`, one
  `BPTT.step(t)` and `param_grads(tape, t, t + 1)` per step — the same functions on one step.
"""

from __future__ import annotations

import functools
import json
import math
import os
import threading
from concurrent import futures
from dataclasses import dataclass

import numpy as np

from .cells import ACTIVATIONS, CELLS
from .tape import Tape

INITS = ("uniform", "xavier", "orthogonal", "identity")
DTYPES = ("float64", "float32")

# Big batches share their matrix products with a second core (see _run_on_two_cores); below
# this many hidden numbers per call the hand-over costs more than it saves.
_OVERLAP_SIZE = 64 * 1024
_HELPER = futures.ThreadPoolExecutor(1, "explorer-grads") if (os.cpu_count() or 1) > 1 else None


def _on_helper(fn, *args):
    """Run fn(*args) on the second core under the caller's floating-point error settings
    (np.errstate holds for one thread only)."""
    settings = np.geterr()

    def call():
        with np.errstate(**settings):
            return fn(*args)

    return _HELPER.submit(call)


@dataclass
class State:
    """The recurrent state carried between sequences: h (and c for the LSTM), (H,) or (B, H)."""

    h: np.ndarray
    c: np.ndarray | None = None

    def copy(self):
        return State(self.h.copy(), None if self.c is None else self.c.copy())


@dataclass
class ForwardResult:
    """What `Network.forward` returns: probabilities, hidden states and the final state."""

    probs: np.ndarray       # (T, O) or (T, B, O): ŷ_t
    hidden: np.ndarray      # (T, H) or (T, B, H): h_t
    state: State            # the state after the last step, to carry into the next window


def _aligned(values, dtype):
    """A C-ordered copy of values that starts on a cache line (64 bytes).

    NumPy's allocations are only sure to start on 16 bytes, and BLAS's vector loads then may
    straddle cache lines: W starting 16 or 48 bytes past a cache line made a batch-1 training
    step at (T, V, H) = (25, 65, 100) about 7% slower than at 0 or 32 (bench/engine.py's
    shape). Parameters are updated in place, so they keep this start for good.
    """
    values = np.asarray(values, dtype=dtype)
    raw = np.empty(values.nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    out = raw[start:start + values.nbytes].view(dtype).reshape(values.shape)
    out[...] = values
    return out


@functools.lru_cache(maxsize=16)
def _ones(n, dtype):
    ones = np.ones(n, dtype)
    ones.flags.writeable = False
    return ones


# Sums over the rows or columns of a short matrix as one BLAS product with a vector of ones:
# numpy's own reductions run an inner loop per row, three times slower at 25 × 65.
def _row_sums(m):
    """Σ_j m[i, j] for each row i."""
    return m.dot(_ones(m.shape[1], m.dtype))


def _column_sums(m):
    """Σ_i m[i, j] for each column j."""
    return _ones(m.shape[0], m.dtype).dot(m)


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Network:
    """A recurrent network: cell (rnn | lstm | gru) → h_t → softmax(V h_t + c).

    Parameters live in ``params`` (name → ndarray, the live arrays). For the vanilla RNN:
    U (H, I), W (H, H), b (H,), V (O, H), c (O,). LSTM: U (4H, I), W (4H, H), b (4H,) with the
    gates stacked i, f, g, o. GRU: U (3H, I), W (3H, H), b (3H,), bh (3H,) stacked r, z, n.

    ``init``: "uniform" (±1/√fan-in, the classic tutorial's), "xavier" (Glorot uniform),
    "orthogonal" (orthogonal recurrent blocks) or "identity" (IRNN: W = I, small inputs; rnn
    only). ``init_scale`` multiplies the recurrent matrix W after initialisation, which sets its
    spectral radius — the knob of the vanishing and exploding gradient demos.
    """

    def __init__(self, input_size, hidden_size, output_size=None, cell="rnn", activation="tanh",
                 init="uniform", init_scale=1.0, seed=None, dtype="float64"):
        self.input_size = _positive_int("input_size", input_size)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.output_size = (self.input_size if output_size is None
                            else _positive_int("output_size", output_size))
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {activation!r}")
        if cell != "rnn" and activation != "tanh":
            raise ValueError(f"activation applies to the rnn cell only; the {cell} cell uses its "
                             f"own gates (leave activation='tanh')")
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        if init == "identity" and cell != "rnn":
            raise ValueError("init='identity' (IRNN) is for the rnn cell; choose another init "
                             f"for the {cell} cell")
        try:
            init_scale = float(init_scale)
        except (TypeError, ValueError):
            raise ValueError(f"init_scale must be a number, got {init_scale!r}") from None
        if not math.isfinite(init_scale) or init_scale <= 0:
            raise ValueError(f"init_scale must be a finite positive number, got {init_scale!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        try:
            dt = None if dtype is None else np.dtype(dtype)
        except TypeError:
            dt = None
        if dt is None or dt.name not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.cell = cell
        self.activation = activation
        self.init = init
        self.init_scale = init_scale
        self.seed = None if seed is None else int(seed)
        self.dtype = dt
        self._cell = CELLS[cell](activation)
        self.params = self._initial_params()
        self._workspaces = {}

    # ----------------------------------------------------------------- construction

    def config(self):
        """The constructor's arguments, JSON-serialisable: ``Network(**net.config())``."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "output_size": self.output_size, "cell": self.cell,
                "activation": self.activation, "init": self.init,
                "init_scale": self.init_scale, "seed": self.seed, "dtype": str(self.dtype)}

    def __repr__(self):
        return "Network(" + ", ".join(f"{k}={v!r}" for k, v in self.config().items()) + ")"

    @property
    def gates(self):
        """How many H-sized blocks the cell stacks: 1 (rnn), 4 (lstm), 3 (gru)."""
        return self._cell.gates

    def param_shapes(self):
        I, H, O, G = self.input_size, self.hidden_size, self.output_size, self._cell.gates
        shapes = {"U": (G * H, I), "W": (G * H, H), "b": (G * H,)}
        if self.cell == "gru":
            shapes["bh"] = (G * H,)
        shapes.update({"V": (O, H), "c": (O,)})
        return shapes

    def _initial_params(self):
        rng = np.random.default_rng(self.seed)
        I, H, O, G = self.input_size, self.hidden_size, self.output_size, self._cell.gates

        def uniform(rows, cols, limit):
            return rng.uniform(-limit, limit, (rows, cols))

        def blocks(make):
            # Gated cells initialise each gate's H×· block on its own, as PyTorch does.
            return np.concatenate([make() for _ in range(G)], axis=0)

        if self.init == "uniform":
            U = uniform(G * H, I, 1 / math.sqrt(I))
            W = uniform(G * H, H, 1 / math.sqrt(H))
            V = uniform(O, H, 1 / math.sqrt(H))
        elif self.init == "xavier":
            U = blocks(lambda: uniform(H, I, math.sqrt(6 / (I + H))))
            W = blocks(lambda: uniform(H, H, math.sqrt(6 / (2 * H))))
            V = uniform(O, H, math.sqrt(6 / (H + O)))
        elif self.init == "orthogonal":
            U = blocks(lambda: uniform(H, I, math.sqrt(6 / (I + H))))
            W = blocks(lambda: np.linalg.qr(rng.standard_normal((H, H)))[0])
            V = uniform(O, H, math.sqrt(6 / (H + O)))
        else:  # identity: Le, Jaitly & Hinton's IRNN
            U = rng.normal(0.0, 0.001, (H, I))
            W = np.eye(H)
            V = rng.normal(0.0, 0.001, (O, H))
        W *= self.init_scale
        params = {"U": U, "W": W, "b": np.zeros(G * H)}
        if self.cell == "gru":
            params["bh"] = np.zeros(G * H)
        params.update({"V": V, "c": np.zeros(O)})
        return {k: _aligned(v, self.dtype) for k, v in params.items()}

    # ----------------------------------------------------------------- checking arguments

    def check_sequences(self, inputs, targets=None):
        """Validate token sequences: returns (X, Y) as (T, B) int arrays and whether batched."""
        X = self._ids("inputs", inputs, self.input_size)
        batched = X.ndim == 2
        if targets is None:
            return (X if batched else X[:, None]), None, batched
        Y = self._ids("targets", targets, self.output_size)
        if X.shape != Y.shape:
            raise ValueError(f"inputs and targets must have the same shape, got {X.shape} and "
                             f"{Y.shape}")
        if not batched:
            X, Y = X[:, None], Y[:, None]
        return X, Y, batched

    @staticmethod
    def _ids(name, seq, size):
        arr = np.asarray(seq)
        if arr.dtype.kind not in "iub":
            if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) \
                    and np.all(arr == np.round(arr)):
                arr = arr.astype(np.intp)
            elif arr.size:
                raise ValueError(f"{name} must be integer token ids, got dtype {arr.dtype}")
            else:
                arr = arr.astype(np.intp)
        if arr.ndim not in (1, 2):
            raise ValueError(f"{name} must be a 1-D sequence (T,) or a batch (T, B), "
                             f"got shape {arr.shape}")
        if arr.shape[0] < 1 or arr.size == 0:
            raise ValueError(f"{name} must hold at least one time step; the sequence is empty")
        # Seen as unsigned, a negative id is huge: one pass finds any id out of range.
        if arr.dtype == np.intp and int(np.maximum.reduce(arr.view(np.uintp), axis=None)) < size:
            return arr
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= size:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} holds token id {bad}, out of range: ids must be in "
                             f"0..{size - 1}")
        return arr.astype(np.intp, copy=False)

    def _check_truncate(self, truncate):
        if truncate is None:
            return None
        if isinstance(truncate, bool) or not isinstance(truncate, (int, np.integer)) \
                or truncate < 0:
            raise ValueError(f"truncate must be None (full BPTT) or an integer >= 0, "
                             f"got {truncate!r}")
        return int(truncate)

    def initial_state(self, batch=None):
        """A zero state: h (and c) of shape (H,), or (batch, H)."""
        shape = (self.hidden_size,) if batch is None else (_positive_int("batch", batch),
                                                           self.hidden_size)
        c = np.zeros(shape, self.dtype) if self._cell.has_cell_state else None
        return State(np.zeros(shape, self.dtype), c)

    def _start_state(self, h0, B, batched):
        """Normalise h0 (None, an array h, a (h, c) pair or a State) to (B, H) arrays."""
        if h0 is None:
            return None, None
        if isinstance(h0, State):
            h, c = h0.h, h0.c
        elif isinstance(h0, tuple):
            h, c = h0
        else:
            h, c = h0, None
        H = self.hidden_size

        def shaped(name, v):
            v = np.asarray(v, dtype=self.dtype)
            want = (B, H) if batched else (H,)
            if v.shape != want and not (not batched and v.shape == (1, H)):
                raise ValueError(f"{name} must have shape {want}, got {v.shape}")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"{name} holds NaN or infinite values")
            return v.reshape(B, H)

        h = shaped("h0", h)
        if c is not None and not self._cell.has_cell_state:
            raise ValueError(f"the {self.cell} cell has no cell state; pass h0 alone")
        return h, (None if c is None else shaped("c0", c))

    # ----------------------------------------------------------------- the per-step pieces

    def new_tape(self, T, B=1):
        """Fresh preallocated arrays for a (T, B) batch (see `Tape`)."""
        return Tape(self._cell, T, B, self.hidden_size, self.output_size, self.dtype)

    def _workspace(self, T, B, lean=False):
        # The whole-sequence path reuses one tape per shape: training calls it thousands of
        # times. One set per thread, so sampling beside a training thread is safe.
        key = (T, B, lean, threading.get_ident())
        tape = self._workspaces.get(key)
        if tape is None:
            if len(self._workspaces) > 8:
                self._workspaces.clear()
            tape = self._workspaces[key] = Tape(self._cell, T, B, self.hidden_size,
                                                self.output_size, self.dtype, lean=lean)
        return tape

    def begin(self, tape, X, Y, h0=None, c0=None):
        """Load a (T, B) sequence and its start state into a tape."""
        tape.X[...] = X
        tape.Y[...] = Y if Y is not None else 0
        tape.h[0] = 0.0 if h0 is None else h0
        if tape.c is not None:
            tape.c[0] = 0.0 if c0 is None else c0

    def forward_range(self, tape, t0, t1):
        """Forward through steps t0..t1−1: input projection, recurrence, output layer, loss."""
        self._project_inputs(tape, t0, t1)
        self._cell.forward_steps(self.params, tape, t0, t1)
        self.output_range(tape, t0, t1)

    def _project_inputs(self, tape, t0, t1):
        """xa_t = U x_t + b for steps t0..t1−1."""
        p = self.params
        # U x_t for one-hot x_t is column x_t of U: one gather of rows of Uᵀ serves every step
        # at once. Uᵀ is copied first (a blocked transpose): gathering rows of a C-ordered
        # matrix is a few memcpy, where gathering from the transposed view reads one number
        # per cache line. ("clip": the ids are checked already, and numpy buffers the output
        # of the default mode.) b is added to whichever is smaller, Uᵀ or the gathered rows.
        ids, xa = tape.X[t0:t1], tape.xa[t0:t1]
        UT = p["U"].T.copy()                 # a copy: b may be added to it
        if ids.size > self.input_size:
            UT += p["b"]
            UT.take(ids, axis=0, out=xa, mode="clip")
        else:
            UT.take(ids, axis=0, out=xa, mode="clip")
            xa += p["b"]

    def output_range(self, tape, t0, t1):
        """o_t = V h_t + c, ŷ_t = softmax(o_t), L_t, ∂L/∂o_t and Vᵀ(ŷ_t − y_t) for t0..t1−1."""
        V = self.params["V"]
        n, H, O = (t1 - t0) * tape.B, tape.H, tape.O
        # Steps and sequences flattened to rows: one matrix product serves them all (with Vᵀ
        # copied to C order, which BLAS multiplies about twice as fast as the transposed view).
        o = tape.logits[t0:t1].reshape(n, O)
        np.matmul(tape.h[t0 + 1:t1 + 1].reshape(n, H), np.ascontiguousarray(V.T), out=o)
        o += self.params["c"]
        top = np.maximum.reduce(o, axis=1, keepdims=True)
        # Where each row's target sits in the flattened rows: one 1-D gather or scatter
        # reaches them all. (The tape's arrays are contiguous, so reshape(-1) is a view.)
        at_target = np.arange(t0 * tape.B * O, t1 * tape.B * O, O)
        at_target += tape.Y[t0:t1].reshape(n)
        # L_t = −ln ŷ_t[y_t] = ln Σ exp(o − max) − (o[y_t] − max): exact even where ŷ
        # underflows. o[y_t] is read first: a lean tape overwrites o with ŷ.
        shifted_target = tape.logits.reshape(-1)[at_target]
        shifted_target -= top[:, 0]
        y = tape.probs[t0:t1].reshape(n, O)
        np.subtract(o, top, out=y)                  # softmax subtracts the max
        np.exp(y, out=y)
        total = _row_sums(y)
        y /= total[:, None]
        loss = tape.loss[t0:t1].reshape(n)
        np.log(total, out=loss)
        loss -= shifted_target
        d = tape.dlogits[t0:t1].reshape(n, O)
        if tape.dlogits is not tape.probs:
            d[...] = y
        tape.dlogits.reshape(-1)[at_target] -= 1.0
        np.matmul(d, V, out=tape.dh_out[t0:t1].reshape(n, H))

    def bptt(self, tape, truncate=None):
        """A `BPTT` walker over this tape; call ``.step(t)`` for t = T−1 down to 0."""
        return BPTT(self, tape, self._check_truncate(truncate))

    def param_grads(self, tape, t0, t1):
        """The parameter gradients contributed by steps t0..t1−1, as a fresh dict.

        dV = Σ (ŷ_t − y_t) h_tᵀ, dc = Σ (ŷ_t − y_t), dW = Σ δ_t h_{t−1}ᵀ, dU = Σ δ_t x_tᵀ,
        db = Σ δ_t (the gated cells: their pre-activation gradients in place of δ_t).
        """
        grads = self._output_grads(tape, t0, t1)
        grads.update(self._input_grads(tape, t0, t1))
        grads.update(self._recurrent_grads(tape, t0, t1))
        return self._in_param_order(grads)

    def _in_param_order(self, grads):
        return {name: grads[name] for name in self.params}

    def _output_grads(self, tape, t0, t1):
        """dV and dc: they need only the output layer, not BPTT."""
        n = (t1 - t0) * tape.B
        dlogits = tape.dlogits[t0:t1].reshape(n, tape.O)
        return {"V": dlogits.T @ tape.h[t0 + 1:t1 + 1].reshape(n, tape.H),
                "c": _column_sums(dlogits)}

    def _input_grads(self, tape, t0, t1):
        """dU = Σ δ_t x_tᵀ and db = Σ δ_t (for many steps, dU's row sums: each one-hot x_t
        sums to one)."""
        n, GH, I = (t1 - t0) * tape.B, tape.dax.shape[-1], self.input_size
        dax = tape.dax[t0:t1].reshape(n, GH)
        ids = tape.X[t0:t1].reshape(n)
        if n < 256:
            # δ_t lands in column x_t: a product with the one-hot rows.
            onehot = np.zeros(n * I, dtype=tape.dtype)
            at_id = np.arange(0, n * I, I)
            at_id += ids
            onehot[at_id] = 1.0
            dU = dax.T @ onehot.reshape(n, I)
        else:
            # Many rows (batches): sum the rows of each token id (sorted together, a small
            # unsigned key sorts by radix), with no one-hot matrix.
            key = ids.astype(np.uint16 if self.input_size <= 1 << 16 else np.intp)
            order = np.argsort(key, kind="stable")
            counts = np.bincount(ids, minlength=self.input_size)
            present = np.flatnonzero(counts)
            starts = (np.cumsum(counts) - counts)[present]
            dUT = np.zeros((self.input_size, GH), dtype=tape.dtype)
            dUT[present] = np.add.reduceat(np.take(dax, order, axis=0, mode="clip"), starts,
                                           axis=0)
            dU = np.ascontiguousarray(dUT.T)
        return {"U": dU, "b": _column_sums(dax) if n <= I else _row_sums(dU)}

    def _recurrent_grads(self, tape, t0, t1):
        """dW = Σ δ_t h_{t−1}ᵀ (and the GRU's dbh = Σ its hidden-side gradients)."""
        n, GH = (t1 - t0) * tape.B, tape.dah.shape[-1]
        dah = tape.dah[t0:t1].reshape(n, GH)
        grads = {"W": dah.T @ tape.h[t0:t1].reshape(n, tape.H)}
        if self.cell == "gru":
            grads["bh"] = _column_sums(dah)
        return grads

    # ----------------------------------------------------------------- whole sequences

    def loss_and_grads(self, inputs, targets, h0=None, truncate=None, return_state=False):
        """L = Σ_t −ln ŷ_t[y_t] (summed over the batch too) and its gradients, by BPTT.

        inputs, targets: int sequences of shape (T,) or a batch (T, B); h0: None (zeros), an
        array h0, a (h0, c0) pair or a `State`; truncate: None for full BPTT, or k so that the
        loss at step t reaches back through at most k earlier steps (0: the step itself).
        Returns (loss, grads) with grads a fresh dict of the keys and shapes of ``params``;
        with ``return_state=True``, (loss, grads, state) where state is the `State` after the
        last step, to carry into the next window.
        """
        X, Y, batched = self.check_sequences(inputs, targets)
        truncate = self._check_truncate(truncate)
        T, B = X.shape
        h, c = self._start_state(h0, B, batched)
        tape = self._workspace(T, B, lean=True)
        self.begin(tape, X, Y, h, c)
        if _HELPER is not None and T * B * self.hidden_size >= _OVERLAP_SIZE:
            grads = self._run_on_two_cores(tape, truncate)
        else:
            self.forward_range(tape, 0, T)
            BPTT(self, tape, truncate).run(T, 0)
            grads = self.param_grads(tape, 0, T)
        loss = float(tape.loss.sum())
        if return_state:
            state = self.state_after(tape, T - 1)
            if not batched:
                state = State(state.h[0], None if state.c is None else state.c[0])
            return loss, grads, state
        return loss, grads

    def _run_on_two_cores(self, tape, truncate):
        """`loss_and_grads`'s forward, BPTT and gradients for a big batch, with the products
        that need not wait for the recurrence handed to a second core: the output layer of the
        first steps while the recurrence runs through the others, dV and dc while BPTT runs,
        dU while dW is computed here. The same products as on one core (the output layer's in
        two parts, which may round a last bit differently)."""
        p, T = self.params, tape.T
        # The output layer of the steps before `split` goes to the second core while this one
        # runs the recurrence through the rest. Both cores then run slower than alone, the
        # second more so: a split at 4/7 of the steps has them finish about together.
        split = (4 * T) // 7
        submitted = []
        try:
            self._project_inputs(tape, 0, T)
            self._cell.forward_steps(p, tape, 0, split)
            if split:
                submitted.append(_on_helper(self.output_range, tape, 0, split))
            self._cell.forward_steps(p, tape, split, T)
            self.output_range(tape, split, T)
            if split:
                submitted[0].result()
            output = _on_helper(self._output_grads, tape, 0, T)
            submitted.append(output)
            BPTT(self, tape, truncate).run(T, 0)
            inputs = _on_helper(self._input_grads, tape, 0, T)
            submitted.append(inputs)
            grads = self._recurrent_grads(tape, 0, T)
            grads.update(output.result())
            grads.update(inputs.result())
            return self._in_param_order(grads)
        finally:
            # Even after an error here (under np.errstate(all="raise"), say), the second core
            # must be done with the tape before the next call reuses it.
            futures.wait(submitted)

    def loss(self, inputs, targets, h0=None):
        """The loss alone (a forward pass)."""
        X, Y, batched = self.check_sequences(inputs, targets)
        T, B = X.shape
        h, c = self._start_state(h0, B, batched)
        tape = self._workspace(T, B, lean=True)
        self.begin(tape, X, Y, h, c)
        self.forward_range(tape, 0, T)
        return float(tape.loss.sum())

    def forward(self, inputs, h0=None):
        """Run a sequence (T,) or batch (T, B): probabilities, hidden states and final state."""
        X, _, batched = self.check_sequences(inputs)
        T, B = X.shape
        h, c = self._start_state(h0, B, batched)
        tape = self._workspace(T, B)
        self.begin(tape, X, None, h, c)
        self.forward_range(tape, 0, T)
        probs, hidden = tape.probs.copy(), tape.h[1:].copy()
        state = State(tape.h[T].copy(), None if tape.c is None else tape.c[T].copy())
        if not batched:
            probs, hidden = probs[:, 0], hidden[:, 0]
            state = State(state.h[0], None if state.c is None else state.c[0])
        return ForwardResult(probs, hidden, state)

    def step(self, x, state=None):
        """One step of generation: token id x (or ids (B,)) → (ŷ over the next token, new state)."""
        x_arr = np.asarray(x)
        batched = x_arr.ndim == 1
        X = self._ids("x", x_arr.reshape(1, -1), self.input_size)
        B = X.shape[1]
        h, c = self._start_state(state, B, batched)
        tape = self._workspace(1, B)
        self.begin(tape, X, None, h, c)
        self.forward_range(tape, 0, 1)
        probs = tape.probs[0].copy()
        new = State(tape.h[1].copy(), None if tape.c is None else tape.c[1].copy())
        if not batched:
            probs = probs[0]
            new = State(new.h[0], None if new.c is None else new.c[0])
        return probs, new

    def state_after(self, tape, t):
        """The recurrent state after step t of a tape (to carry into the next window)."""
        return State(tape.h[t + 1].copy(), None if tape.c is None else tape.c[t + 1].copy())

    def description(self):
        """A one-line summary, e.g. 'rnn tanh, 65→100→65, 23,165 parameters'."""
        count = sum(v.size for v in self.params.values())
        kind = f"{self.cell} {self.activation}" if self.cell == "rnn" else self.cell
        return (f"{kind}, {self.input_size}→{self.hidden_size}→{self.output_size}, "
                f"{count:,} parameters")

    def to_json(self):
        return json.dumps(self.config(), sort_keys=True)


class BPTT:
    """Walks back through time, carrying the gradients that travel back from later steps.

    Full BPTT carries one running gradient, ``dh`` (min-char-rnn's dhnext: Wᵀδ_{t+1}, the part
    of ∂L/∂h_t that comes from the future) and, for the LSTM, ``dc`` (∂L/∂c_t from the future).
    Truncated BPTT (truncate = k) must stop each loss term k steps back, so it carries one
    gradient per loss term still on its way: k + 1 slots, the loss term of step t taking slot
    t mod (k + 1) just as the term of step t + k + 1, which has gone its k steps, leaves it.
    Each step records dh[t], dax[t] (δ_t) and dah[t] in the tape.
    """

    def __init__(self, net, tape, truncate=None):
        self.net, self.tape, self.truncate = net, tape, truncate
        lead = () if truncate is None else (truncate + 1,)
        shape = lead + (tape.B, tape.H)
        self.dh = np.zeros(shape, tape.dtype)
        self.dc = np.zeros(shape, tape.dtype) if net._cell.has_cell_state else None

    def step(self, t):
        """Backward through step t (steps go T−1, T−2, …, 0)."""
        self.run(t + 1, t)

    def run(self, t1, t0):
        """Backward through steps t1−1 down to t0."""
        cell, p, tape = self.net._cell, self.net.params, self.tape
        if self.truncate is None:
            cell.backward_steps(p, tape, t1, t0, self)
            return
        slots = self.truncate + 1
        for t in range(t1 - 1, t0 - 1, -1):
            slot = t % slots
            self.dh[slot] = tape.dh_out[t]
            if self.dc is not None:
                self.dc[slot] = 0.0
            self.dh.sum(axis=0, out=tape.dh[t])
            dax, dah, self.dh, self.dc = cell.backward_step(p, tape, t, self.dh, self.dc)
            dax.sum(axis=0, out=tape.dax[t])
            if dah is not dax:
                dah.sum(axis=0, out=tape.dah[t])


__all__ = ["Network", "State", "ForwardResult", "BPTT"]
