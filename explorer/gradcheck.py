"""Gradient check: central differences against the analytic BPTT gradients, per parameter."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ParamCheck:
    """The check of one parameter array."""

    name: str
    max_rel_error: float        # the largest relative error over the entries checked
    index: tuple                # where it occurs
    analytic: float             # the two gradients there
    numerical: float
    checked: int                # how many entries were perturbed
    max_abs_error: float = 0.0  # the largest |analytic − numerical|
    noise: float = 0.0          # the round-off floor of the differences themselves

    def passed(self, tol=1e-6):
        """Relative error below ``tol`` — or, for gradients so small that the finite
        differences cannot resolve them to ``tol``, an absolute error within their round-off."""
        return self.max_rel_error < tol or self.max_abs_error <= self.noise

    @property
    def within_round_off(self):
        return self.max_rel_error >= 1e-6 and self.max_abs_error <= self.noise


def relative_error(analytic, numerical, floor=1e-9):
    """|a − n| / (|a| + |n|), the tutorials' measure; below ``floor`` both count as zero."""
    analytic, numerical = np.asarray(analytic, float), np.asarray(numerical, float)
    scale = np.abs(analytic) + np.abs(numerical)
    return np.where(scale > floor, np.abs(analytic - numerical) / np.maximum(scale, floor), 0.0)


def gradcheck(net, inputs, targets, h0=None, truncate=None, eps=1e-5, max_checks=None, seed=0):
    """Compare ``net.loss_and_grads`` with central differences (L(θ+ε) − L(θ−ε)) / 2ε.

    Every entry of every parameter is perturbed, or ``max_checks`` entries per parameter chosen
    at random (seed ``seed``) for large models. Returns {name: ParamCheck}; the parameters are
    left exactly as they were. Run it in float64: float32 round-off swamps the differences.

    With ``truncate=k`` the analytic gradient is not the gradient of L: it is the gradient of a
    surrogate in which each loss term L_t sees the state k + 1 steps back, h_{t−k−1}, as a
    constant. The numerical side differentiates exactly that surrogate, so truncated BPTT is
    checked as strictly as the full one.
    """
    X, Y, batched = net.check_sequences(inputs, targets)
    truncate = net._check_truncate(truncate)
    if not isinstance(eps, float) or not 0 < eps < 1:
        raise ValueError(f"eps must be a float in (0, 1), got {eps!r}")
    if max_checks is not None and (not isinstance(max_checks, int) or max_checks < 1):
        raise ValueError(f"max_checks must be a positive integer or None, got {max_checks!r}")
    _, grads = net.loss_and_grads(inputs, targets, h0=h0, truncate=truncate)
    if truncate is None or truncate >= X.shape[0] - 1:
        def objective():
            return net.loss(inputs, targets, h0=h0)
    else:
        objective = _truncated_objective(net, X, Y, h0, batched, truncate)
    # (L(θ+ε) − L(θ−ε)) / 2ε cannot be more exact than the round-off in L over 2ε.
    noise = 64 * np.finfo(net.dtype).eps * max(1.0, abs(objective())) / (2 * eps)
    rng = np.random.default_rng(seed)
    results = {}
    for name, param in net.params.items():
        flat = param.reshape(-1)
        if max_checks is None or max_checks >= flat.size:
            positions = np.arange(flat.size)
        else:
            positions = np.sort(rng.choice(flat.size, size=max_checks, replace=False))
        numerical = np.empty(positions.size)
        for k, i in enumerate(positions):
            old = flat[i]
            flat[i] = old + eps
            plus = objective()
            flat[i] = old - eps
            minus = objective()
            flat[i] = old
            numerical[k] = (plus - minus) / (2 * eps)
        analytic = grads[name].reshape(-1)[positions]
        errors = relative_error(analytic, numerical)
        worst = int(np.argmax(errors))
        results[name] = ParamCheck(name, float(errors[worst]),
                                   tuple(int(i) for i in np.unravel_index(positions[worst],
                                                                          param.shape)),
                                   float(analytic[worst]), float(numerical[worst]),
                                   int(positions.size),
                                   float(np.max(np.abs(analytic - numerical))), float(noise))
    return results


def _truncated_objective(net, X, Y, h0, batched, k):
    """Σ_t L_t where L_t runs from the frozen state h_{t−k−1} through steps t−k..t only."""
    T, B = X.shape
    h, c = net._start_state(h0, B, batched)
    frozen = net.new_tape(T, B)
    net.begin(frozen, X, Y, h, c)
    net.forward_range(frozen, 0, T)
    tapes = {}

    def objective():
        total = 0.0
        for t in range(T):
            s = max(0, t - k)
            tape = tapes.get(t - s)
            if tape is None:
                tape = tapes[t - s] = net.new_tape(t - s + 1, B)
            net.begin(tape, X[s:t + 1], Y[s:t + 1], frozen.h[s],
                      None if frozen.c is None else frozen.c[s])
            net.forward_range(tape, 0, t - s + 1)
            total += float(tape.loss[-1].sum())
        return total

    return objective
