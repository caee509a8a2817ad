"""Controller: the lesson's forward / BPTT / update cycle, one step at a time, with its history.

The cycle over one window of T steps has 2T + 1 positions:

    position 0            nothing computed yet (h0 set)
    position 1 … T        forward steps t = 0 … T−1 done
    position T+1 … 2T     backward steps t = T−1 … 0 done
    (update)              applies the optimiser and moves to position 0 of the next window

Inside a cycle the tape *is* the history: every array is a function of the parameters, the
window and h0, so going back only marks entries as not computed (NaN) and stepping again
recomputes them bit for bit. Across updates the controller keeps a snapshot of what an update
changes (parameters, optimiser and schedule state, window, h0, counters), so ``back()`` can
cross the last ``history_size`` updates exactly, and a training run is one such step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import analysis
from .data import SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN
from .data import windows as make_windows
from .network import State
from .optim import (
    HalveOnLossIncrease,
    Optimizer,
    clip_by_global_norm,
    clip_by_value,
    global_norm,
    make_optimizer,
)

PHASES = ("forward", "backward", "update")
EVENT_KINDS = ("step", "phase", "update", "reset", "history", "settings", "progress", "error",
               "trained")


@dataclass(frozen=True)
class Event:
    """What changed: listeners get one after every change of the controller."""

    kind: str                  # one of EVENT_KINDS
    phase: str                 # the phase after the change
    t: int | None = None       # the step just processed (forward or backward), if any
    message: str = ""
    progress: TrainProgress | None = None


@dataclass(frozen=True)
class TrainProgress:
    """A training run's progress report."""

    iteration: int             # iterations done in this run
    total: int                 # iterations this run will do
    loss: float                # loss per window of the latest iteration
    smooth_loss: float
    chars_per_second: float
    eta_seconds: float
    lr: float


@dataclass
class TrainResult:
    """How a training run ended."""

    iterations: int
    stopped: bool = False          # should_stop() asked for it
    diverged: bool = False         # NaN/inf: the last good parameters were restored
    message: str = ""
    losses: list = field(default_factory=list)


class Trace:
    """Read-only views of everything the lesson records for the current window (sequence 0).

    Entries not computed yet are NaN. Shapes: T steps, H hidden units, G·H stacked gates,
    O outputs, P parameter arrays (in ``param_names`` order).
    """

    def __init__(self, ctl):
        tape, H = ctl.tape, ctl.net.hidden_size

        def view(arr):
            if arr is None:
                return None
            v = arr[:, 0] if arr.ndim >= 2 else arr
            v = v.view()
            v.flags.writeable = False
            return v

        self.x = view(tape.X)                 # (T,) input ids
        self.y = view(tape.Y)                 # (T,) target ids
        self.h0 = view(tape.h[:1])[0]         # (H,)
        self.hidden = view(tape.h[1:])        # (T, H)   h_t
        self.pre = view(tape.a)               # (T, G·H) a_t (gated: the gates' pre-activations)
        self.gates = view(tape.gate)          # (T, G·H) gates after their nonlinearity, or None
        self.cell_state = None if tape.c is None else view(tape.c[1:])  # (T, H) c_t
        self.fprime = view(tape.fprime)       # (T, H)   f'(a_t), rnn only
        self.logits = view(tape.logits)       # (T, O)   o_t
        self.probs = view(tape.probs)         # (T, O)   ŷ_t
        self.loss = view(tape.loss)           # (T,)     L_t
        self.dh_out = view(tape.dh_out)       # (T, H)   Vᵀ(ŷ_t − y_t): from the own output
        self.dh_future = view(ctl._dh_future)  # (T, H)  from the future (Wᵀδ_{t+1} for rnn)
        self.dh = view(tape.dh)               # (T, H)   ∂L/∂h_t = the two added
        self.delta = view(tape.dax)           # (T, G·H) δ_t (rnn: ∂L/∂a_t)
        self.contrib_norms = ctl._contrib_norms.view()   # (T, P) ‖step t's part of dθ‖
        self.contrib_norms.flags.writeable = False
        self.flow = ctl._flow.view()          # (T, T)  ‖∂L_s/∂h_t‖, s ≥ t
        self.flow.flags.writeable = False
        self.param_names = tuple(ctl.net.params)
        self.T, self.H = tape.T, H


class History:
    """Per-update records across the lesson: growing arrays, read as views up to ``n``.

    Going back in the timeline lowers ``n``; going forward again raises it over the same
    records, which an update recomputes identically.
    """

    FIELDS = ("iteration", "loss", "smooth_loss", "lr", "grad_norm", "param_norm")

    def __init__(self):
        self._data = {k: np.zeros(64) for k in self.FIELDS}
        self.n = 0

    def append(self, **values):
        if self.n == len(self._data["loss"]):
            for k in self.FIELDS:
                self._data[k] = np.concatenate([self._data[k], np.zeros(self.n)])
        for k in self.FIELDS:
            self._data[k][self.n] = values[k]
        self.n += 1

    def __getattr__(self, name):
        if name in History.FIELDS:
            v = self._data[name][:self.n].view()
            v.flags.writeable = False
            return v
        raise AttributeError(name)

    def __len__(self):
        return self.n


@dataclass
class _Cycle:
    """A cycle of the timeline: the state its window started from, and how far it went."""

    params: dict
    optimizer: dict
    schedule: dict | None
    window: int
    h0: np.ndarray | None
    c0: np.ndarray | None
    iteration: int
    smooth_loss: float | None
    history_n: int
    last_update: dict | None
    settings: dict = field(default_factory=dict)
    end: int = 0             # the last position reached (for an earlier cycle: where it left)


class Controller:
    """Drives one network through one window at a time: forward, backward, update.

    ``Controller(net, inputs, targets, truncate=None)`` teaches one fixed window; pass
    ``corpus=ids`` and ``window=L`` (and ``stride``, default L) or use `from_corpus` to walk a
    whole text window by window.
    """

    def __init__(self, net, inputs=None, targets=None, truncate=None, *, corpus=None,
                 window=None, stride=None, optimizer="sgd", lr=0.1, clip_value=None, clip_norm=None,
                 carry_state=False, lr_schedule=False, vocab=None, history_size=100):
        self.net = net
        self.vocab = vocab
        if corpus is not None:
            if inputs is not None or targets is not None:
                raise ValueError("pass either inputs and targets, or corpus and window")
            if window is None:
                raise ValueError("window (the length L of each window) is needed with corpus")
            X, Y = make_windows(np.asarray(corpus), window, stride)
        else:
            if inputs is None or targets is None:
                raise ValueError("inputs and targets are needed (or corpus and window)")
            x, y, batched = net.check_sequences(inputs, targets)
            if batched:
                raise ValueError("the step-by-step controller takes one sequence (T,), "
                                 f"got a batch of shape {x.shape}")
            X, Y = x.T.copy(), y.T.copy()
        for name, arr, size in (("inputs", X, net.input_size), ("targets", Y, net.output_size)):
            if arr.min() < 0 or arr.max() >= size:
                raise ValueError(f"{name} hold token ids outside 0..{size - 1}: the vocabulary "
                                 "and the network's sizes do not match")
        self._windows = (X.astype(np.intp), Y.astype(np.intp))
        self.T = X.shape[1]
        self.truncate = net._check_truncate(truncate)
        self.optimizer = optimizer if isinstance(optimizer, Optimizer) \
            else make_optimizer(optimizer, lr)
        self.clip_value = _optional_positive("clip_value", clip_value)
        self.clip_norm = _optional_positive("clip_norm", clip_norm)
        self.carry_state = bool(carry_state)
        self.schedule = HalveOnLossIncrease(self.optimizer) if lr_schedule else None
        self.history_size = _positive_count("history_size", history_size)
        self._listeners = []
        self.tape = net.new_tape(self.T, 1)
        self._dh_future = np.full((self.T, 1, net.hidden_size), np.nan)
        self._contrib_norms = np.full((self.T, len(net.params)), np.nan)
        self._flow = np.full((self.T, self.T), np.nan)
        self.trace = Trace(self)
        self.history = History()
        self._window = 0
        self._h0 = self._c0 = None
        self.iteration = 0
        self._smooth = None
        self.last_update = None         # {name: Δθ} of the update that started this window
        self._cycles = [self._snapshot()]
        self._c = 0                     # index of the current cycle in the timeline
        self._start_cycle()

    @classmethod
    def from_corpus(cls, net, ids, window, **kwargs):
        """A controller that walks the token ids ``ids`` in windows of ``window`` steps."""
        return cls(net, corpus=ids, window=window, **kwargs)

    # ----------------------------------------------------------------- listeners

    def subscribe(self, callback):
        """Call ``callback(event)`` after every change (see `Event`)."""
        if callback not in self._listeners:
            self._listeners.append(callback)

    def unsubscribe(self, callback):
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _notify(self, kind, t=None, message="", progress=None):
        event = Event(kind, self.phase, t, message, progress)
        for callback in list(self._listeners):
            callback(event)

    # ----------------------------------------------------------------- where we are

    @property
    def position(self):
        """0 … 2T inside the current cycle (see the module's docstring)."""
        return self._pos

    @property
    def phase(self):
        if self._pos < self.T:
            return "forward"
        if self._pos < 2 * self.T:
            return "backward"
        return "update"

    @property
    def t(self):
        """The step the next ``step()`` processes (None when the update is next)."""
        if self._pos < self.T:
            return self._pos
        if self._pos < 2 * self.T:
            return 2 * self.T - 1 - self._pos
        return None

    @property
    def current(self):
        """The step processed last in this cycle (None at its start)."""
        if self._pos == 0:
            return None
        if self._pos <= self.T:
            return self._pos - 1
        return 2 * self.T - self._pos

    @property
    def window_index(self):
        return self._window

    @property
    def n_windows(self):
        return self._windows[0].shape[0]

    @property
    def epoch(self):
        return self.iteration // self.n_windows

    @property
    def inputs(self):
        return self._windows[0][self._window]

    @property
    def targets(self):
        return self._windows[1][self._window]

    @property
    def hidden(self):
        """(T, H) hidden states h_t; rows not computed yet are NaN."""
        return self.trace.hidden

    @property
    def deltas(self):
        """(T, H): δ_t = ∂L/∂a_t for the rnn (∂L/∂h_t for the gated cells), rows done so far.

        With truncation this is the δ_t that the truncated gradient uses: the part of the loss
        terms that still reach step t.
        """
        return self.trace.delta if self.net.cell == "rnn" else self.trace.dh

    def _deltas_of(self, tape):
        """What `deltas` shows, from a tape: δ_t for the rnn, ∂L/∂h_t for the gated cells."""
        return (tape.dax if self.net.cell == "rnn" else tape.dh)[:, 0]

    @property
    def grads(self):
        """The gradients accumulated by the backward steps done so far (a fresh dict)."""
        done = self._pos - self.T
        if done <= 0:
            return {k: np.zeros_like(v) for k, v in self.net.params.items()}
        return self.net.param_grads(self.tape, self.T - done, self.T)

    @property
    def window_loss(self):
        """Σ_t L_t over the steps computed so far."""
        return float(self.tape.loss[:min(self._pos, self.T), 0].sum())

    @property
    def lr(self):
        return self.optimizer.lr

    # ----------------------------------------------------------------- the cycle

    def _start_cycle(self):
        """Load the current window into the tape, everything else not computed yet."""
        tape, net = self.tape, self.net
        X, Y = self._windows
        net.begin(tape, X[self._window][:, None], Y[self._window][:, None], self._h0, self._c0)
        for arr in (tape.h[1:], tape.a, tape.gate, tape.tanh_c, tape.hh, tape.fprime,
                    tape.logits, tape.probs, tape.loss, tape.dlogits, tape.dh_out,
                    None if tape.c is None else tape.c[1:]):
            if arr is not None:
                arr.fill(np.nan)
        self._clear_backward(0, self.T)
        self._flow.fill(np.nan)
        self._pos = 0
        self._walker = None
        self._eigen = None
        self.scales = None         # set when the forward phase ends (see _backward_scales)

    def _clear_backward(self, t0, t1):
        tape = self.tape
        for arr in (tape.dh, tape.dax, tape.dah, self._dh_future, self._contrib_norms):
            arr[t0:t1] = np.nan

    def step_forward(self):
        """Compute time step t of the forward phase and advance."""
        if self.phase != "forward":
            raise ValueError(f"the forward phase is over (phase: {self.phase}); use "
                             "step_backward(), step() or reset()")
        t = self._forward_one()
        if self._pos == self.T:
            self._notify("phase", t, "forward phase done: backward through time next")
        else:
            self._notify("step", t)
        return t

    def step_backward(self):
        """One BPTT step, t = T−1 down to 0, after the forward phase."""
        if self.phase != "backward":
            raise ValueError(f"step_backward() needs the backward phase (phase: {self.phase})"
                             + ("; finish the forward phase first" if self.phase == "forward"
                                else "; apply the update with step() or update()"))
        t = self._backward_one()
        if self._pos == 2 * self.T:
            self._notify("phase", t, "backward phase done: the update is next")
        else:
            self._notify("step", t)
        return t

    def _forward_one(self):
        with _quiet():
            return self._forward_one_loud()

    def _forward_one_loud(self):
        t = self._pos
        self.net.forward_range(self.tape, t, t + 1)
        self._advance()
        if self._pos == self.T:
            self._flow[...] = analysis.gradient_flow(self.net, self.tape)
            self.scales = self._backward_scales()
            self.eigenvalues()          # cached now, so the first backward frame is quick
        return t

    def _backward_scales(self):
        """The largest |number| each backward quantity will reach in this window.

        Computed on a scratch copy as soon as the forward phase ends, so that the views can
        fix their colour scales for the whole backward phase: frames then compare honestly.
        """
        scratch = self.tape.copy()
        self.net.bptt(scratch, self.truncate).run(self.T, 0)
        grads = self.net.param_grads(scratch, 0, self.T)
        future = scratch.dh - scratch.dh_out
        return {"delta": float(np.abs(scratch.dax).max()), "dh": float(np.abs(scratch.dh).max()),
                "dh_out": float(np.abs(scratch.dh_out).max()),
                "dh_future": float(np.abs(future).max()),
                # The largest ‖·‖ over steps, for widths drawn in proportion to a norm.
                "dh_norm": float(np.linalg.norm(scratch.dh, axis=-1).max()),
                "delta_norm": float(np.linalg.norm(self._deltas_of(scratch), axis=-1).max()),
                "dh_out_norm": float(np.linalg.norm(scratch.dh_out, axis=-1).max()),
                "dh_future_norm": float(np.linalg.norm(future, axis=-1).max()),
                "grads": {k: float(np.abs(g).max()) for k, g in grads.items()}}

    def _backward_one(self):
        with _quiet():
            return self._backward_one_loud()

    def _backward_one_loud(self):
        t = self.t
        walker = self._walker_at(t)
        if walker.truncate is None:
            future = walker.dh[0].copy()
        else:
            carried = walker.dh[:, 0].copy()
            carried[t % (walker.truncate + 1)] = 0.0   # the term leaving at t goes no further
            future = carried.sum(axis=0)
        walker.step(t)
        self._dh_future[t, 0] = future
        contrib = self.net.param_grads(self.tape, t, t + 1)
        self._contrib_norms[t] = [np.linalg.norm(g) for g in contrib.values()]
        self._advance()
        return t

    def _start_state(self):
        """The current window's h0 (and c0) as a `State`, or None for zeros."""
        if self._h0 is None:
            return None
        return State(self._h0.copy(), None if self._c0 is None else self._c0.copy())

    def _walker_at(self, t):
        """The BPTT walker ready to process step t (rebuilt after going back)."""
        if self._walker is None or self._walker_next != t:
            self._walker = self.net.bptt(self.tape, self.truncate)
            if t + 1 < self.T:
                self._walker.run(self.T, t + 1)
        self._walker_next = t - 1
        return self._walker

    def _advance(self):
        self._pos += 1
        cycle = self._cycles[self._c]
        cycle.end = max(cycle.end, self._pos)

    def update(self):
        """Apply the optimiser to the accumulated gradients and move to the next window."""
        if self.phase != "update":
            raise ValueError(f"update() needs a finished backward phase (phase: {self.phase})")
        if self._c + 1 < len(self._cycles):
            # This update was made before (we went back): its result is on record, exactly.
            self._enter(self._c + 1)
            self._notify("update", None, f"update {self.iteration}")
            return True
        grads = self.grads
        loss = self.window_loss
        if not (math.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())):
            self._notify("error", None, "the loss or a gradient is NaN or infinite: lower the "
                         "learning rate or clip the gradients; the parameters were kept")
            return False
        before = {k: v.copy() for k, v in self.net.params.items()}
        opt_before = self.optimizer.state_dict()
        grad_norm = self._clip(grads)
        self.optimizer.step(self.net.params, grads)
        if not all(np.all(np.isfinite(v)) for v in self.net.params.values()):
            for k, v in before.items():
                self.net.params[k][...] = v
            self.optimizer.load_state_dict(opt_before)
            self._notify("error", None, "the update made a parameter NaN or infinite: lower "
                         "the learning rate; the parameters were kept")
            return False
        self.last_update = {k: self.net.params[k] - before[k] for k in before}
        final = self.net.state_after(self.tape, self.T - 1)
        self._record(loss, grad_norm)
        self._next_window(final)
        self._push_cycle()
        self._notify("update", None, f"update {self.iteration}: loss {loss:.4f}")
        return True

    def _clip(self, grads):
        norm = global_norm(grads)
        if self.clip_value is not None:
            clip_by_value(grads, self.clip_value)
        if self.clip_norm is not None:
            clip_by_global_norm(grads, self.clip_norm)
        return norm

    def _record(self, loss, grad_norm):
        self.iteration += 1
        self._smooth = loss if self._smooth is None else 0.9 * self._smooth + 0.1 * loss
        param_norm = math.sqrt(sum(float(np.vdot(v, v)) for v in self.net.params.values()))
        self.history.append(iteration=self.iteration, loss=loss, smooth_loss=self._smooth,
                            lr=self.optimizer.lr, grad_norm=grad_norm, param_norm=param_norm)

    def _next_window(self, final_state):
        self._window = (self._window + 1) % self.n_windows
        if self.carry_state and self._window != 0:
            self._h0 = final_state.h[0].copy()
            self._c0 = None if final_state.c is None else final_state.c[0].copy()
        else:
            self._h0 = self._c0 = None

    def step(self):
        """Do the next thing, whatever the phase: a forward step, a backward step or the update.

        At the point where the timeline went on by a training run (after going back), the
        next thing is that run's result.
        """
        if self._c + 1 < len(self._cycles) and self._pos == self._cycles[self._c].end:
            self._enter(self._c + 1)
            self._notify("history", None, "forward across a training run")
            return None
        phase = self.phase
        if phase == "forward":
            return self.step_forward()
        if phase == "backward":
            return self.step_backward()
        return self.update()

    def run_phase(self):
        """Finish the current phase (the update phase: apply the update)."""
        phase = self.phase
        if phase == "update":
            return self.update()
        while self.phase == phase:
            self.step()
        return True

    def run_cycle(self):
        """Finish this window's cycle: the rest of forward, backward and the update."""
        while self.phase != "update":
            self.step()
        return self.update()

    # ----------------------------------------------------------------- the timeline

    @property
    def history_length(self):
        """How many positions the timeline holds: every step and update that can be revisited."""
        return sum(c.end + 1 for c in self._cycles)

    @property
    def timeline_index(self):
        return sum(c.end + 1 for c in self._cycles[:self._c]) + self._pos

    def back(self):
        """Return to the previous position exactly as it was (across updates too).

        Returns False when there is nothing earlier to go back to.
        """
        if self._pos == 0:
            if self._c == 0:
                return False
            self._enter(self._c - 1, self._cycles[self._c - 1].end)
            self._notify("history", self.current, "back across the update")
            return True
        self._pos -= 1
        if self._pos >= self.T:
            self._clear_backward(self.t, self.t + 1)
            self._walker = None
        else:
            self._unforward(self._pos)
        self._notify("history", self.current)
        return True

    def _unforward(self, t):
        tape = self.tape
        for arr in (tape.h[t + 1:t + 2], tape.a[t:t + 1], tape.probs[t:t + 1],
                    tape.logits[t:t + 1], tape.loss[t:t + 1], tape.dlogits[t:t + 1],
                    tape.dh_out[t:t + 1],
                    None if tape.gate is None else tape.gate[t:t + 1],
                    None if tape.c is None else tape.c[t + 1:t + 2],
                    None if tape.fprime is None else tape.fprime[t:t + 1]):
            if arr is not None:
                arr.fill(np.nan)
        self._flow.fill(np.nan)

    def goto(self, index):
        """Jump to position ``index`` of the timeline (0 … history_length − 1)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) \
                or not 0 <= index < self.history_length:
            raise ValueError(f"index must be an integer in 0..{self.history_length - 1}, "
                             f"got {index!r}")
        c, pos = 0, int(index)
        while pos > self._cycles[c].end:
            pos -= self._cycles[c].end + 1
            c += 1
        if c != self._c or pos < self._pos:
            self._enter(c, pos)
        else:
            self._replay(pos)
        self._notify("history", self.current)

    def _enter(self, c, position=0):
        """Make cycle c current, at ``position``, recomputing it from its recorded start."""
        self._c = c
        self._restore(self._cycles[c])
        self._replay(position)

    def _replay(self, position):
        """Recompute the current cycle up to ``position``: the same operations, bit for bit."""
        while self._pos < position:
            if self._pos < self.T:
                self._forward_one()
            else:
                self._backward_one()

    def _push_cycle(self):
        """Start a new cycle at the end of the timeline (dropping any recorded future)."""
        del self._cycles[self._c + 1:]
        self._cycles.append(self._snapshot())
        if len(self._cycles) > self.history_size + 1:
            del self._cycles[0]
        self._c = len(self._cycles) - 1
        self._start_cycle()

    def _snapshot(self):
        return _Cycle(
            params={k: v.copy() for k, v in self.net.params.items()},
            optimizer=self.optimizer.state_dict(),
            schedule=None if self.schedule is None else self.schedule.state_dict(),
            window=self._window,
            h0=None if self._h0 is None else self._h0.copy(),
            c0=None if self._c0 is None else self._c0.copy(),
            iteration=self.iteration, smooth_loss=self._smooth, history_n=len(self.history),
            last_update=self.last_update, settings=self._settings())

    def _settings(self):
        """The settings a cycle is computed with (going back shows it as it was run)."""
        return {"truncate": self.truncate, "clip_value": self.clip_value,
                "clip_norm": self.clip_norm, "carry_state": self.carry_state}

    def _restore(self, s):
        for k, v in s.params.items():
            self.net.params[k][...] = v
        if s.optimizer["name"] != self.optimizer.name:     # the settings changed since
            self.optimizer = make_optimizer(s.optimizer["name"], s.optimizer["lr"])
        self.optimizer.load_state_dict(s.optimizer)
        self.schedule = None
        if s.schedule is not None:
            self.schedule = HalveOnLossIncrease(self.optimizer)
            self.schedule.load_state_dict(s.schedule)
        self._window = s.window
        self._h0 = None if s.h0 is None else s.h0.copy()
        self._c0 = None if s.c0 is None else s.c0.copy()
        self.iteration, self._smooth = s.iteration, s.smooth_loss
        self.history.n = s.history_n
        self.last_update = s.last_update
        for name, value in s.settings.items():
            setattr(self, name, value)
        self._start_cycle()

    def reset(self):
        """Back to the start of the lesson: the first recorded parameters, no history."""
        self._restore(self._cycles[0])
        first = self._cycles[0]
        first.end = 0
        self._cycles = [first]
        self._c = 0
        self._notify("reset")

    # ----------------------------------------------------------------- settings

    def configure(self, *, truncate=..., lr=..., optimizer=..., clip_value=..., clip_norm=...,
                  carry_state=..., lr_schedule=...):
        """Change training settings; the current window starts again (parameters are kept).

        Arguments left out keep their value; everything is validated before anything changes.
        The recorded future of the timeline is dropped: it was made with the old settings.
        """
        truncate = self.truncate if truncate is ... else self.net._check_truncate(truncate)
        clip_value = (self.clip_value if clip_value is ...
                      else _optional_positive("clip_value", clip_value))
        clip_norm = (self.clip_norm if clip_norm is ...
                     else _optional_positive("clip_norm", clip_norm))
        lr = self.optimizer.lr if lr is ... else lr
        if isinstance(optimizer, Optimizer):
            new_optimizer = optimizer
        elif optimizer is ... or optimizer == self.optimizer.name:
            new_optimizer = None
            make_optimizer("sgd", lr)                  # validates lr before anything changes
        else:
            new_optimizer = make_optimizer(optimizer, lr)
        self.truncate, self.clip_value, self.clip_norm = truncate, clip_value, clip_norm
        if new_optimizer is not None:
            self.optimizer = new_optimizer
        self.optimizer.lr = lr
        if carry_state is not ...:
            self.carry_state = bool(carry_state)
        if lr_schedule is ...:
            lr_schedule = self.schedule is not None
        self.schedule = HalveOnLossIncrease(self.optimizer) if lr_schedule else None
        del self._cycles[self._c + 1:]
        cycle = self._cycles[self._c]
        cycle.optimizer = self.optimizer.state_dict()
        cycle.schedule = None if self.schedule is None else self.schedule.state_dict()
        cycle.settings = self._settings()
        cycle.end = 0
        self._start_cycle()
        self._notify("settings", None, "settings changed: the window starts again")

    # ----------------------------------------------------------------- views' numbers

    def eigenvalues(self):
        """Eigenvalues of W's recurrent blocks for the current parameters (cached per cycle)."""
        if self._eigen is None:
            self._eigen = analysis.eigenvalues(self.net)
        return self._eigen

    def spectral_radius(self):
        """max |λ| of W (of the candidate block for the gated cells), cached per cycle."""
        return analysis.spectral_radius(self.net, self.eigenvalues())

    def flow_by_distance(self):
        """(mean, min, max) of ‖∂L_s/∂h_{s−d}‖ over s for d = 0..T−1 (NaN before forward ends)."""
        return analysis.flow_by_distance(self._flow)

    def delta_norms(self):
        """‖δ_t‖ per step (∂L/∂h_t for the gated cells); NaN where not computed yet."""
        return np.linalg.norm(self.deltas, axis=1)

    def predictions(self):
        """Per step: the top prediction's id and its probability (−1 / NaN where not computed)."""
        probs = self.trace.probs
        done = ~np.isnan(probs[:, 0])
        top = np.full(self.T, -1)
        top[done] = probs[done].argmax(axis=1)
        p = np.full(self.T, np.nan)
        p[done] = probs[done, top[done]]
        return top, p

    def explain(self, t, unit):
        """The numbers of step t's equations for hidden unit ``unit`` (NaN where not computed).

        Forward (rnn): a = Ux + Wh + b and h = f(a), with Ux = U[unit, x_t] (U times the one-hot
        x_t), Wh = W[unit] · h_{t−1}. Gated cells: the unit's gates and states. Backward: own =
        Vᵀ(ŷ_t − y_t), future = the gradient from later steps, dh = own + future, and for the
        rnn fprime = f'(a_t) and delta = fprime · dh.
        """
        if not (0 <= t < self.T and 0 <= unit < self.net.hidden_size):
            raise ValueError(f"t must be in 0..{self.T - 1} and unit in "
                             f"0..{self.net.hidden_size - 1}, got t={t}, unit={unit}")
        tr, p, H, j = self.trace, self.net.params, self.net.hidden_size, unit
        h_prev = tr.h0 if t == 0 else tr.hidden[t - 1]
        x = int(tr.x[t])
        out = {"t": t, "unit": j, "x": x, "y": int(tr.y[t]), "h_prev": float(h_prev[j]),
               "h": float(tr.hidden[t, j]), "loss": float(tr.loss[t]),
               "p_target": float(tr.probs[t, tr.y[t]]), "own": float(tr.dh_out[t, j]),
               "future": float(tr.dh_future[t, j]), "dh": float(tr.dh[t, j])}
        if self.net.cell == "rnn":
            out.update(Ux=float(p["U"][j, x]), Wh=float(p["W"][j] @ h_prev), b=float(p["b"][j]),
                       a=float(tr.pre[t, j]), fprime=float(tr.fprime[t, j]),
                       delta=float(tr.delta[t, j]), activation=self.net.activation)
        else:
            names = "ifgo" if self.net.cell == "lstm" else "rzn"
            out.update({g: float(tr.gates[t, k * H + j]) for k, g in enumerate(names)})
            if self.net.cell == "lstm":
                c_prev = 0.0 if t == 0 else float(tr.cell_state[t - 1, j])
                if t == 0 and self.tape.c is not None:
                    c_prev = float(self.tape.c[0, 0, j])
                out.update(c_prev=c_prev, c=float(tr.cell_state[t, j]))
        return out

    def token(self, i):
        """Token id i as every view shows it: one short, visible form (its number without a
        vocabulary): ␣ for a space, ↵ for a newline, ⟨s⟩ ⟨/s⟩ ⟨unk⟩ for the word-level marks."""
        if self.vocab is None:
            return str(int(i))
        text = self.vocab.tokens[int(i)]
        return _SHOWN.get(text, text)

    # ----------------------------------------------------------------- training

    def train(self, iterations=None, epochs=None, batch_size=1, on_progress=None,
              should_stop=None, report_every=0.1, seed=0):
        """Train on the windows with the fast whole-sequence path; one step of the timeline.

        Give ``iterations`` or ``epochs``. Mini-batches of ``batch_size`` windows in a shuffled
        order (seed ``seed``), from zero states — except with ``carry_state`` and batch_size 1,
        which walks the windows in order carrying h across them. Reports `TrainProgress` to
        ``on_progress`` (and listeners) at most every ``report_every`` seconds and at the end;
        stops between iterations when ``should_stop()`` is true. If the loss or a gradient
        becomes NaN or infinite, training stops and the parameters and optimiser state of the
        last good iteration are restored.
        """
        with _quiet():
            return self._train(iterations, epochs, batch_size, on_progress, should_stop,
                               report_every, seed)

    def _train(self, iterations, epochs, batch_size, on_progress, should_stop, report_every,
               seed):
        if (iterations is None) == (epochs is None):
            raise ValueError("give either iterations or epochs")
        batch_size = min(_positive_count("batch_size", batch_size), self.n_windows)
        per_epoch = -(-self.n_windows // batch_size)
        total = (_positive_count("iterations", iterations) if iterations is not None
                 else _positive_count("epochs", epochs) * per_epoch)
        sequential = self.carry_state and batch_size == 1
        X, Y = self._windows
        rng = np.random.default_rng(seed)
        order = np.arange(self.n_windows)
        # Carrying state, training walks on from the window (and h0) the lesson is at.
        cursor, state = (self._window, self._start_state()) if sequential \
            else (self.n_windows, None)
        result = TrainResult(0)
        start = last_report = time.perf_counter()
        chars = 0
        good, good_opt = None, None
        for it in range(total):
            if should_stop is not None and should_stop():
                result.stopped = True
                result.message = f"stopped after {it} iterations"
                break
            if cursor + (1 if sequential else batch_size) > self.n_windows:
                if not sequential:
                    rng.shuffle(order)
                cursor, state = 0, None
            idx = order[cursor:cursor + batch_size]
            cursor += batch_size
            if sequential:
                loss, grads, state = self.net.loss_and_grads(
                    X[idx[0]], Y[idx[0]], h0=state, truncate=self.truncate, return_state=True)
                n_seq = 1
            else:
                loss, grads = self.net.loss_and_grads(X[idx].T, Y[idx].T,
                                                      truncate=self.truncate)
                n_seq = len(idx)
            # Per window: the loss reads the same and the learning rate means the same for
            # any batch size.
            loss /= n_seq
            if n_seq > 1:
                for g in grads.values():
                    g /= n_seq
            if not (math.isfinite(loss) and all(np.all(np.isfinite(g))
                                                for g in grads.values())):
                self._diverged(result, it, good, good_opt)
                break
            good = {k: v.copy() for k, v in self.net.params.items()}
            good_opt = (self.optimizer.state_dict(), self.iteration, self._smooth,
                        len(self.history))
            grad_norm = self._clip(grads)
            self.optimizer.step(self.net.params, grads)
            self._record(loss, grad_norm)
            result.iterations = it + 1
            result.losses.append(loss)
            if self.schedule is not None and (it + 1) % per_epoch == 0:
                self.schedule(float(np.mean(result.losses[-per_epoch:])))
            chars += n_seq * self.T
            now = time.perf_counter()
            if now - last_report >= report_every or it + 1 == total:
                last_report = now
                done = it + 1
                progress = TrainProgress(done, total, loss, self._smooth,
                                         chars / max(now - start, 1e-9),
                                         (now - start) / done * (total - done), self.optimizer.lr)
                if on_progress is not None:
                    on_progress(progress)
                self._notify("progress", None, "", progress)
        if not result.diverged and not all(np.all(np.isfinite(v))
                                           for v in self.net.params.values()):
            self._diverged(result, result.iterations, good, good_opt)
        if result.iterations:     # with none, nothing changed: the lesson stays where it was
            if sequential and state is not None and cursor < self.n_windows:
                self._window = cursor
                self._h0, self._c0 = state.h.copy(), None if state.c is None else state.c.copy()
            else:
                self._window, self._h0, self._c0 = 0, None, None
            self.last_update = None
            self._cycles[self._c].end = self._pos     # back() returns to where training began
            self._push_cycle()
        if result.diverged:
            self._notify("error", None, result.message)
        else:
            result.message = result.message or f"trained {result.iterations} iterations"
            self._notify("trained", None, result.message)
        return result

    def _diverged(self, result, it, good, good_opt):
        """Restore the last parameters that gave a finite loss, and say what happened.

        Those are the parameters before the latest update, so that update leaves the record.
        """
        if good is not None:
            for k, v in good.items():
                self.net.params[k][...] = v
            opt_state, self.iteration, self._smooth, self.history.n = good_opt
            self.optimizer.load_state_dict(opt_state)
            result.iterations -= 1
            result.losses.pop()
        result.diverged = True
        result.message = (f"training diverged at iteration {it + 1}: the loss or a gradient "
                          "became NaN or infinite. The last good parameters (after "
                          f"{result.iterations} updates) were restored; lower the learning "
                          "rate or clip the gradients.")


_SHOWN = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍", SENTENCE_START: "⟨s⟩", SENTENCE_END: "⟨/s⟩",
          UNKNOWN_TOKEN: "⟨unk⟩"}


def _quiet():
    """Exploding networks overflow on purpose (the lesson shows inf and NaN as such); the
    controller checks for them itself, so NumPy's warnings would only be noise."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def _optional_positive(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number or None, got {value!r}")
    return float(value)


def _positive_count(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
