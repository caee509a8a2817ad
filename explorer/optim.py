"""Optimisers, gradient clipping and a learning-rate schedule for parameter dicts (in place)."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adagrad",
    "Adam",
    "HalveOnLossIncrease",
    "Momentum",
    "Optimizer",
    "RMSprop",
    "clip_by_global_norm",
    "clip_by_value",
    "global_norm",
    "make_optimizer",
]


# ---------------------------------------------------------------------------------------------
# Argument checks shared by everything in this module
# ---------------------------------------------------------------------------------------------


def _is_real(value) -> bool:
    # bool is an int subclass, but "lr=True" is always a mistake.
    return isinstance(value, Real) and not isinstance(value, bool)


def _positive(name: str, value) -> float:
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def _unit_interval(name: str, value) -> float:
    # Momentum-like coefficients of 1 or more never forget old gradients and make the
    # running averages grow without bound, so [0, 1) is the allowed range.
    if not _is_real(value) or not math.isfinite(value) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _check_grads(grads) -> None:
    if not isinstance(grads, dict):
        raise ValueError(f"grads must be a dict of name -> ndarray, got {type(grads).__name__}")
    for key, g in grads.items():
        if not isinstance(g, np.ndarray):
            raise ValueError(f"grads[{key!r}] must be a NumPy array, got {type(g).__name__}")


# ---------------------------------------------------------------------------------------------
# Optimisers
# ---------------------------------------------------------------------------------------------


class Optimizer:
    """Base class: ``step(params, grads)`` updates every array of ``params`` in place.

    Subclasses keep per-parameter state arrays ("slots", e.g. Adam's ``m`` and ``v``) in
    ``self.state[slot][param_name]``; they are created as zeros on the first step that sees a
    parameter. ``step_count`` counts the calls to ``step`` since construction or ``reset()``.
    ``lr`` can be changed at any time (schedules and the GUI do); it must stay finite and positive.
    ``grads`` is never modified.
    """

    name = "base"
    slots: tuple[str, ...] = ()
    hyperparameters: tuple[str, ...] = ()

    def __init__(self, lr):
        self.lr = lr
        self.reset()

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = _positive("lr", value)

    def reset(self) -> None:
        """Forget all accumulated state (moments, caches, step count); keeps lr and settings."""
        self.step_count = 0
        self.state: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self.slots}

    def step(self, params: dict, grads: dict) -> None:
        """Apply one update to every array in ``params`` (in place) using ``grads[name]``."""
        if not isinstance(params, dict):
            raise ValueError(
                f"params must be a dict of name -> ndarray, got {type(params).__name__}"
            )
        _check_grads(grads)
        # Check everything before touching anything, so a bad call leaves params unchanged.
        missing = [k for k in params if k not in grads]
        if missing:
            raise ValueError(f"grads is missing {missing}; it must have the same keys as params")
        extra = [k for k in grads if k not in params]
        if extra:
            raise ValueError(f"grads has keys {extra} that are not in params {list(params)}")
        for key, p in params.items():
            if not isinstance(p, np.ndarray):
                raise ValueError(f"params[{key!r}] must be a NumPy array, got {type(p).__name__}")
            if grads[key].shape != p.shape:
                raise ValueError(
                    f"grads[{key!r}] has shape {grads[key].shape}, but params[{key!r}] has "
                    f"shape {p.shape}; they must match"
                )
            for slot in self.slots:
                s = self.state[slot].get(key)
                if s is not None and s.shape != p.shape:
                    raise ValueError(
                        f"params[{key!r}] has shape {p.shape}, but the optimiser's state for it "
                        f"has shape {s.shape}; call reset() after changing the model"
                    )
        self.step_count += 1
        for key, p in params.items():
            self._update(key, p, grads[key])

    def _slot(self, slot: str, key: str, like: np.ndarray) -> np.ndarray:
        arrays = self.state[slot]
        if key not in arrays:
            arrays[key] = np.zeros_like(like)
        return arrays[key]

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """A deep copy of everything needed to continue exactly where this optimiser is now."""
        return {
            "name": self.name,
            "lr": self.lr,
            "step_count": self.step_count,
            "hyperparameters": {h: getattr(self, h) for h in self.hyperparameters},
            "state": {
                slot: {key: arr.copy() for key, arr in arrays.items()}
                for slot, arrays in self.state.items()
            },
        }

    def load_state_dict(self, d: dict) -> None:
        """Restore a ``state_dict()`` exactly (arrays are copied, so ``d`` stays independent)."""
        if not isinstance(d, dict):
            raise ValueError(f"state dict must be a dict, got {type(d).__name__}")
        if d.get("name") != self.name:
            raise ValueError(
                f"state dict is for optimizer {d.get('name')!r}, but this is {self.name!r}; "
                f"create a {d.get('name')!r} optimizer with make_optimizer() to load it"
            )
        for key in ("lr", "step_count", "hyperparameters", "state"):
            if key not in d:
                raise ValueError(f"state dict is missing {key!r}; pass a dict from state_dict()")
        step_count = d["step_count"]
        if (
            isinstance(step_count, bool)
            or not isinstance(step_count, int | np.integer)
            or (step_count < 0)
        ):
            raise ValueError(
                f"state dict step_count must be a non-negative integer, got {step_count!r}"
            )
        state = d["state"]
        if not isinstance(state, dict) or set(state) != set(self.slots):
            raise ValueError(
                f"state dict 'state' must have the slots {list(self.slots)}, "
                f"got {list(state) if isinstance(state, dict) else state!r}"
            )
        for slot, arrays in state.items():
            if not isinstance(arrays, dict) or not all(
                isinstance(a, np.ndarray) for a in arrays.values()
            ):
                raise ValueError(f"state dict slot {slot!r} must be a dict of name -> ndarray")
        # Validate hyperparameters by building a fresh optimiser with them (same checks as
        # the constructor) before changing anything here.
        hyper = d["hyperparameters"]
        if not isinstance(hyper, dict):
            raise ValueError(f"state dict 'hyperparameters' must be a dict, got {hyper!r}")
        unknown = set(hyper) - set(self.hyperparameters)
        if unknown:
            raise ValueError(
                f"state dict has unknown hyperparameters {sorted(unknown)} for {self.name!r}"
            )
        checked = type(self)(d["lr"], **hyper)
        self._lr = checked.lr
        for h in self.hyperparameters:
            setattr(self, h, getattr(checked, h))
        self.step_count = int(step_count)
        self.state = {
            slot: {key: np.array(arr, copy=True) for key, arr in arrays.items()}
            for slot, arrays in state.items()
        }

    def __repr__(self) -> str:
        settings = ", ".join(f"{h}={getattr(self, h)!r}" for h in self.hyperparameters)
        sep = ", " if settings else ""
        return f"{type(self).__name__}(lr={self.lr!r}{sep}{settings})"


class SGD(Optimizer):
    """Plain gradient descent: p -= lr * g."""

    name = "sgd"

    def _update(self, key, p, g):
        p -= self.lr * g


class Momentum(Optimizer):
    """Classical momentum: v = momentum * v - lr * g;  p += v.

    The velocity v already contains the learning rate, so changing ``lr`` only scales the new
    gradients, not the speed already built up.
    """

    name = "momentum"
    slots = ("velocity",)
    hyperparameters = ("momentum",)

    def __init__(self, lr, momentum=0.9):
        self.momentum = _unit_interval("momentum", momentum)
        super().__init__(lr)

    def _update(self, key, p, g):
        v = self._slot("velocity", key, p)
        v *= self.momentum
        v -= self.lr * g
        p += v


class Adagrad(Optimizer):
    """Adagrad as in min-char-rnn: mem += g * g;  p -= lr * g / sqrt(mem + eps).

    Each weight's step shrinks as its squared gradients pile up in ``mem``, so frequently
    updated weights slow down first.
    """

    name = "adagrad"
    slots = ("mem",)
    hyperparameters = ("eps",)

    def __init__(self, lr, eps=1e-8):
        self.eps = _positive("eps", eps)
        super().__init__(lr)

    def _update(self, key, p, g):
        mem = self._slot("mem", key, p)
        mem += g * g
        p -= self.lr * g / np.sqrt(mem + self.eps)


class RMSprop(Optimizer):
    """RMSprop: cache = decay * cache + (1 - decay) * g * g;  p -= lr * g / (sqrt(cache) + eps).

    Like Adagrad, but the squared gradients are a moving average, so steps do not shrink forever.
    """

    name = "rmsprop"
    slots = ("cache",)
    hyperparameters = ("decay", "eps")

    def __init__(self, lr, decay=0.9, eps=1e-8):
        self.decay = _unit_interval("decay", decay)
        self.eps = _positive("eps", eps)
        super().__init__(lr)

    def _update(self, key, p, g):
        cache = self._slot("cache", key, p)
        cache *= self.decay
        cache += (1 - self.decay) * g * g
        p -= self.lr * g / (np.sqrt(cache) + self.eps)


class Adam(Optimizer):
    """Adam with bias correction (Kingma & Ba), with t = step_count after the increment:

    m = beta1 * m + (1 - beta1) * g        m_hat = m / (1 - beta1**t)
    v = beta2 * v + (1 - beta2) * g * g    v_hat = v / (1 - beta2**t)
    p -= lr * m_hat / (sqrt(v_hat) + eps)
    """

    name = "adam"
    slots = ("m", "v")
    hyperparameters = ("beta1", "beta2", "eps")

    def __init__(self, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        self.beta1 = _unit_interval("beta1", beta1)
        self.beta2 = _unit_interval("beta2", beta2)
        self.eps = _positive("eps", eps)
        super().__init__(lr)

    def _update(self, key, p, g):
        m = self._slot("m", key, p)
        v = self._slot("v", key, p)
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        # Without the correction the zero-initialised averages make the first steps too small.
        t = self.step_count
        m_hat = m / (1 - self.beta1**t)
        v_hat = v / (1 - self.beta2**t)
        p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


_CLASSES = {cls.name: cls for cls in (SGD, Momentum, Adagrad, RMSprop, Adam)}

OPTIMIZERS: tuple[str, ...] = tuple(_CLASSES)


def make_optimizer(name: str, lr, **kwargs) -> Optimizer:
    """Build an optimiser by name (one of ``OPTIMIZERS``); ``kwargs`` are its hyperparameters."""
    cls = _CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    unknown = [k for k in kwargs if k not in cls.hyperparameters]
    if unknown:
        allowed = ", ".join(cls.hyperparameters) or "none besides lr"
        raise ValueError(f"optimizer {name!r} does not take {unknown}; its settings are: {allowed}")
    return cls(lr, **kwargs)


# ---------------------------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------------------------


def global_norm(grads: dict) -> float:
    """The 2-norm of all gradient arrays taken together, sqrt(sum of every squared entry)."""
    _check_grads(grads)
    # Accumulate in float64 so float32 gradients do not lose precision (or overflow) here.
    total = sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values())
    return math.sqrt(total)


def clip_by_value(grads: dict, limit) -> dict:
    """Clip every gradient entry to [-limit, limit], IN PLACE (min-char-rnn uses limit=5).

    Returns ``grads`` for convenience.
    """
    limit = _positive("limit", limit)
    _check_grads(grads)
    for g in grads.values():
        np.clip(g, -limit, limit, out=g)
    return grads


def clip_by_global_norm(grads: dict, max_norm) -> float:
    """Scale all gradients together, IN PLACE, so their global norm is at most ``max_norm``.

    Returns the global norm before clipping. Unlike clipping by value this keeps the direction
    of the whole gradient. If the norm is not finite (inf/NaN) the gradients are left unchanged,
    because no scale factor can repair them; check the returned norm.
    """
    max_norm = _positive("max_norm", max_norm)
    norm = global_norm(grads)
    if math.isfinite(norm) and norm > max_norm:
        scale = max_norm / norm
        for g in grads.values():
            g *= scale
    return norm


# ---------------------------------------------------------------------------------------------
# Learning-rate schedule
# ---------------------------------------------------------------------------------------------


class HalveOnLossIncrease:
    """Multiply ``optimizer.lr`` by ``factor`` (0.5: halve it) whenever the loss goes up.

    Call it with the latest loss, e.g. a smoothed or validation loss evaluated every N
    iterations: ``if schedule(loss): print("lr is now", optimizer.lr)``. The first call only
    records the loss. A loss that is not finite (the training diverged) counts as an increase and
    is not remembered, so the next finite loss is compared with the last finite one. The rate
    never goes below ``min_lr``.
    """

    def __init__(self, optimizer: Optimizer, factor=0.5, min_lr=0.0):
        if not isinstance(optimizer, Optimizer):
            raise ValueError(
                "optimizer must be an Optimizer (see make_optimizer), "
                f"got {type(optimizer).__name__}"
            )
        if not _is_real(factor) or not 0 < factor < 1:
            raise ValueError(f"factor must be a number in (0, 1), got {factor!r}")
        if not _is_real(min_lr) or not math.isfinite(min_lr) or min_lr < 0:
            raise ValueError(f"min_lr must be a finite number >= 0, got {min_lr!r}")
        self.optimizer = optimizer
        self.factor = float(factor)
        self.min_lr = float(min_lr)
        self.reset()

    def reset(self) -> None:
        """Forget the previous loss and the count of reductions (does not touch the lr)."""
        self.previous_loss: float | None = None
        self.reductions = 0

    def __call__(self, loss) -> bool:
        """Record ``loss``; reduce the learning rate if it rose. Returns True if it was reduced."""
        if not _is_real(loss):
            raise ValueError(f"loss must be a number, got {loss!r}")
        loss = float(loss)
        if math.isfinite(loss):
            rose = self.previous_loss is not None and loss > self.previous_loss
            self.previous_loss = loss
        else:
            rose = True
        if not rose:
            return False
        new_lr = max(self.optimizer.lr * self.factor, self.min_lr)
        # new_lr can only be 0 after about a thousand halvings underflow; keep the last rate.
        if new_lr <= 0 or new_lr >= self.optimizer.lr:
            return False
        self.optimizer.lr = new_lr
        self.reductions += 1
        return True

    def state_dict(self) -> dict:
        """The schedule's own state (the optimiser's lr lives in the optimiser's state dict)."""
        return {
            "factor": self.factor,
            "min_lr": self.min_lr,
            "previous_loss": self.previous_loss,
            "reductions": self.reductions,
        }

    def load_state_dict(self, d: dict) -> None:
        """Restore a ``state_dict()`` exactly."""
        if not isinstance(d, dict):
            raise ValueError(f"state dict must be a dict, got {type(d).__name__}")
        missing = [k for k in ("factor", "min_lr", "previous_loss", "reductions") if k not in d]
        if missing:
            raise ValueError(f"state dict is missing {missing}; pass a dict from state_dict()")
        checked = HalveOnLossIncrease(self.optimizer, d["factor"], d["min_lr"])
        previous = d["previous_loss"]
        if previous is not None and (not _is_real(previous) or not math.isfinite(previous)):
            raise ValueError(f"previous_loss must be a finite number or None, got {previous!r}")
        reductions = d["reductions"]
        if isinstance(reductions, bool) or not isinstance(reductions, int) or reductions < 0:
            raise ValueError(f"reductions must be a non-negative integer, got {reductions!r}")
        self.factor, self.min_lr = checked.factor, checked.min_lr
        self.previous_loss = None if previous is None else float(previous)
        self.reductions = reductions

    def __repr__(self) -> str:
        return (
            f"HalveOnLossIncrease(factor={self.factor!r}, min_lr={self.min_lr!r}, "
            f"previous_loss={self.previous_loss!r}, reductions={self.reductions})"
        )
