"""Properties of the engine that hold for any sizes, cells and seeds (hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import CELL_KINDS, redraw_params

from explorer.network import Network

PROPERTY_SETTINGS = settings(max_examples=30, deadline=None)


@st.composite
def problems(draw, batched=None):
    """A network with random parameters, a (T,) or (T, B) sequence pair and a start state."""
    cell, activation = draw(st.sampled_from(CELL_KINDS))
    I = draw(st.integers(1, 6))
    H = draw(st.integers(1, 5))
    O = draw(st.integers(1, 6))
    T = draw(st.integers(1, 8))
    if batched is None:
        batched = draw(st.booleans())
    B = draw(st.integers(1, 4)) if batched else None
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    net = Network(I, H, output_size=O, cell=cell, activation=activation, seed=seed)
    redraw_params(net, rng, draw(st.sampled_from([0.3, 0.8, 1.5])))
    shape = (T,) if B is None else (T, B)
    X, Y = rng.integers(0, I, shape), rng.integers(0, O, shape)
    state_shape = (H,) if B is None else (B, H)
    h0 = rng.normal(0.0, 0.5, state_shape)
    h0 = (h0, rng.normal(0.0, 0.5, state_shape)) if cell == "lstm" else h0
    return net, X, Y, h0


def assert_grads_close(a, b, rtol=1e-10):
    """Equal to round-off: relative to each entry, or to the array's largest entry (sums in
    another order cancel differently, and the identity RNN's gradients reach 1e6 and more)."""
    assert set(a) == set(b)
    for name in a:
        atol = 1e-12 * max(1.0, float(np.abs(b[name]).max()))
        np.testing.assert_allclose(a[name], b[name], rtol=rtol, atol=atol, err_msg=name)


@PROPERTY_SETTINGS
@given(problems(), st.integers(0, 4))
def test_truncation_at_least_T_minus_1_is_full_bptt(problem, extra):
    net, X, Y, h0 = problem
    T = X.shape[0]
    loss, grads = net.loss_and_grads(X, Y, h0=h0)
    for _ in range(2):            # repeated calls reuse the engine's buffers: same answer
        loss_k, grads_k = net.loss_and_grads(X, Y, h0=h0, truncate=T - 1 + extra)
        assert loss_k == loss
        assert_grads_close(grads_k, grads)


@PROPERTY_SETTINGS
@given(problems(batched=True), st.sampled_from([None, 0, 1, 3]))
def test_batch_is_the_sum_of_its_sequences(problem, truncate):
    net, X, Y, h0 = problem
    loss, grads = net.loss_and_grads(X, Y, h0=h0, truncate=truncate)
    total_loss, total = 0.0, {k: np.zeros_like(v) for k, v in net.params.items()}
    for j in range(X.shape[1]):
        h0_j = (h0[0][j], h0[1][j]) if isinstance(h0, tuple) else h0[j]
        loss_j, grads_j = net.loss_and_grads(X[:, j], Y[:, j], h0=h0_j, truncate=truncate)
        total_loss += loss_j
        for k in total:
            total[k] += grads_j[k]
    np.testing.assert_allclose(loss, total_loss, rtol=1e-12)
    assert_grads_close(grads, total)


@PROPERTY_SETTINGS
@given(problems())
def test_loss_is_minus_the_log_probability_of_the_targets(problem):
    net, X, Y, h0 = problem
    result = net.forward(X, h0=h0)
    loss, _ = net.loss_and_grads(X, Y, h0=h0)
    assert loss >= 0.0
    T = X.shape[0]
    probs = result.probs.reshape(T, -1, net.output_size)
    targets = Y.reshape(T, -1)
    picked = np.take_along_axis(probs, targets[..., None], axis=2)
    if np.all(picked > 1e-300):
        np.testing.assert_allclose(loss, -np.log(picked).sum(), rtol=1e-10, atol=1e-12)
    else:
        # Large weights (the linear identity RNN grows fast) can underflow a probability to
        # zero; the loss is computed from the logits and stays finite, and at least −ln 1e-300.
        assert np.isfinite(loss) and loss > 690.0
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, rtol=1e-12)
    assert np.all(probs >= 0.0)
    assert net.loss(X, Y, h0=h0) == loss


@PROPERTY_SETTINGS
@given(problems(), st.data())
def test_final_state_carries_into_the_next_window(problem, data):
    net, X, Y, h0 = problem
    T = X.shape[0]
    cut = data.draw(st.integers(0, T))
    whole = net.forward(X, h0=h0)
    if cut == 0:
        state = h0
    else:
        first = net.forward(X[:cut], h0=h0)
        np.testing.assert_allclose(first.probs, whole.probs[:cut], rtol=1e-12, atol=1e-15)
        state = first.state
    if cut == T:
        np.testing.assert_allclose(state.h, whole.state.h, rtol=1e-12, atol=1e-15)
        return
    second = net.forward(X[cut:], h0=state)
    np.testing.assert_allclose(second.probs, whole.probs[cut:], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(second.hidden, whole.hidden[cut:], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(second.state.h, whole.state.h, rtol=1e-12, atol=1e-15)
    if net.cell == "lstm":
        np.testing.assert_allclose(second.state.c, whole.state.c, rtol=1e-12, atol=1e-15)
    # The loss of the second window, started from the carried state, is the tail of the sum.
    tail = sum(net.loss(X[t:t + 1], Y[t:t + 1], h0=_state_before(net, X, h0, t))
               for t in range(cut, T))
    np.testing.assert_allclose(net.loss(X[cut:], Y[cut:], h0=state), tail, rtol=1e-10)


def _state_before(net, X, h0, t):
    return h0 if t == 0 else net.forward(X[:t], h0=h0).state


@PROPERTY_SETTINGS
@given(problems(), st.booleans())
def test_step_by_step_reproduces_forward(problem, from_zeros):
    net, X, Y, h0 = problem
    if from_zeros:
        h0 = None                 # step(x, None) starts from the zero state, as forward does
    whole = net.forward(X, h0=h0)
    state = h0
    for t in range(X.shape[0]):
        probs, state = net.step(X[t], state)
        np.testing.assert_allclose(probs, whole.probs[t], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(state.h, whole.hidden[t], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(state.h, whole.state.h, rtol=1e-12, atol=1e-15)
