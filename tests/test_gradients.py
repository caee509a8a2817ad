"""Gradient tests: central differences, an independent reference implementation, float32."""

import numpy as np
import pytest
from reference import CELL_KINDS, redraw_params, reference_loss_and_grads

from explorer import network
from explorer.gradcheck import gradcheck, relative_error
from explorer.network import Network

TRUNCATIONS = [None, 0, 1, 4]
I, H, T = 4, 3, 6


def kind_id(kind):
    return "-".join(kind)


# --------------------------------------------------------------------- well-conditioned problems
#
# The check compares against (L(θ+ε) − L(θ−ε)) / 2ε with ε = 1e-5. Its round-off is about
# 1e-16·L/ε ≈ 1e-10 in absolute terms and its truncation error ε²/6·L''' is of the same order, so
# the relative error |a − n| / (|a| + |n|) of an entry is only meaningful when the gradient there
# is well above 1e-4: a random problem nearly always has a few entries of 1e-6 or less (gates
# near saturation, cancelling contributions) whose relative error is pure noise. Rather than
# loosen the 1e-6 bound, each test uses the first seed whose problem is well conditioned:
# every gradient entry is either exactly zero (a token that never occurs, a dead relu unit) or
# at least 1e-3 in size — judged by the *reference* implementation, not by the engine under
# test — and, for relu, no pre-activation lies within 1e-3 of the kink, where the
# differences of a perturbed weight would step across it. The selection never looks at the
# outcome of the check. (Most seeds qualify for the rnn; about one in twenty for the LSTM.)

GRAD_FLOOR = 1e-3
RELU_MARGIN = 1e-3
PARAM_STD = 0.7


def relu_preactivations(params, inputs, h0):
    """a_t for a vanilla RNN over one sequence or a batch (T, B), h0 (H,) or (B, H)."""
    X = np.asarray(inputs).reshape(len(inputs), -1)
    h = np.broadcast_to(h0, (X.shape[1], params["W"].shape[0]))
    out = []
    for t in range(X.shape[0]):
        a = params["U"].T[X[t]] + h @ params["W"].T + params["b"]
        out.append(a)
        h = np.maximum(a, 0.0)
    return np.array(out)


def draw_problem(cell, activation, seed, batch=None, std=PARAM_STD):
    """A network with every parameter redrawn, inputs using every token, and a nonzero h0 (c0)."""
    rng = np.random.default_rng(seed)
    net = Network(I, H, cell=cell, activation=activation)
    redraw_params(net, rng, std)
    B = 1 if batch is None else batch
    X = np.stack([np.concatenate([rng.permutation(I), rng.integers(0, I, T - I)])
                  for _ in range(B)], axis=1)
    Y = rng.integers(0, I, (T, B))
    h0 = rng.normal(0.0, std, (B, H))
    c0 = rng.normal(0.0, std, (B, H)) if cell == "lstm" else None
    if batch is None:
        X, Y, h0 = X[:, 0], Y[:, 0], h0[0]
        c0 = None if c0 is None else c0[0]
    return net, X, Y, h0, c0


def well_conditioned(cell, activation, truncate, batch=None):
    for seed in range(1000):
        net, X, Y, h0, c0 = draw_problem(cell, activation, seed, batch)
        _, grads = reference_loss_and_grads(net.params, cell, activation, X, Y, h0, c0,
                                            truncate)
        sizes = np.concatenate([np.abs(g).ravel() for g in grads.values()])
        if np.any((sizes > 0) & (sizes < GRAD_FLOOR)):
            continue
        if activation == "relu" and np.min(np.abs(relu_preactivations(net.params, X, h0))) \
                < RELU_MARGIN:
            continue
        return net, X, Y, h0, c0
    raise AssertionError("no well-conditioned problem among the first 1000 seeds")


def start_state(h0, c0):
    return h0 if c0 is None else (h0, c0)


# --------------------------------------------------------------------- gradient check


@pytest.mark.parametrize("truncate", TRUNCATIONS)
@pytest.mark.parametrize("kind", CELL_KINDS, ids=kind_id)
def test_gradcheck_every_cell_and_truncation(kind, truncate):
    cell, activation = kind
    net, X, Y, h0, c0 = well_conditioned(cell, activation, truncate)
    before = {k: v.copy() for k, v in net.params.items()}
    results = gradcheck(net, X, Y, h0=start_state(h0, c0), truncate=truncate)
    assert set(results) == set(net.params)
    for name, check in results.items():
        assert check.checked == net.params[name].size
        assert check.max_rel_error < 1e-6, (name, check)
    # The check leaves the parameters exactly as it found them.
    for name, value in net.params.items():
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.parametrize("truncate", [None, 2])
@pytest.mark.parametrize("kind", CELL_KINDS, ids=kind_id)
def test_gradcheck_batches(kind, truncate):
    cell, activation = kind
    net, X, Y, h0, c0 = well_conditioned(cell, activation, truncate, batch=3)
    results = gradcheck(net, X, Y, h0=start_state(h0, c0), truncate=truncate)
    for name, check in results.items():
        assert check.max_rel_error < 1e-6, (name, check)


def test_gradcheck_sampled_entries():
    net, X, Y, h0, c0 = well_conditioned("lstm", "tanh", None)
    results = gradcheck(net, X, Y, h0=start_state(h0, c0), max_checks=5, seed=3)
    for name, check in results.items():
        assert check.checked == min(5, net.params[name].size)
        assert check.max_rel_error < 1e-6, (name, check)


@pytest.mark.parametrize("kind", CELL_KINDS, ids=kind_id)
def test_gradcheck_catches_a_wrong_entry(kind, monkeypatch):
    """One analytic entry off by 1e-2 must stand out, at its index, and nowhere else."""
    cell, activation = kind
    net, X, Y, h0, c0 = well_conditioned(cell, activation, 1)
    true_loss_and_grads = net.loss_and_grads

    def wrong(*args, **kwargs):
        loss, grads = true_loss_and_grads(*args, **kwargs)
        grads["W"][1, 2] += 1e-2
        return loss, grads

    monkeypatch.setattr(net, "loss_and_grads", wrong)
    results = gradcheck(net, X, Y, h0=start_state(h0, c0), truncate=1)
    assert results["W"].max_rel_error > 1e-3
    assert results["W"].index == (1, 2)
    for name, check in results.items():
        if name != "W":
            assert check.max_rel_error < 1e-6, (name, check)


@pytest.mark.parametrize("truncate", [0, 1, 2])
@pytest.mark.parametrize("kind", [("rnn", "tanh"), ("lstm", "tanh"), ("gru", "tanh")],
                         ids=kind_id)
def test_gradcheck_tells_truncated_from_full_bptt(kind, truncate, monkeypatch):
    """Full-BPTT gradients handed in where truncated ones are due must fail the check."""
    cell, activation = kind
    net, X, Y, h0, c0 = well_conditioned(cell, activation, truncate)
    true_loss_and_grads = net.loss_and_grads

    def untruncated(inputs, targets, h0=None, truncate=None):
        return true_loss_and_grads(inputs, targets, h0=h0, truncate=None)

    monkeypatch.setattr(net, "loss_and_grads", untruncated)
    results = gradcheck(net, X, Y, h0=start_state(h0, c0), truncate=truncate)
    assert max(results[name].max_rel_error for name in ("U", "W", "b")) > 1e-3
    # The output layer's gradients do not depend on the truncation.
    assert results["V"].max_rel_error < 1e-6
    assert results["c"].max_rel_error < 1e-6


def test_relative_error_measure():
    assert relative_error(1.0, 1.0) == 0.0
    assert relative_error(1.0, -1.0) == pytest.approx(1.0)
    assert relative_error(2.0, 1.0) == pytest.approx(1 / 3)
    assert relative_error(0.0, 0.0) == 0.0


# --------------------------------------------------------------------- engine vs reference


def random_case(cell, activation, seed, batch):
    rng = np.random.default_rng(seed)
    Ii, Hh, O, Tt = 5, 4, 3, 7
    net = Network(Ii, Hh, output_size=O, cell=cell, activation=activation)
    redraw_params(net, rng, 0.8)
    shape = (Tt,) if batch is None else (Tt, batch)
    X, Y = rng.integers(0, Ii, shape), rng.integers(0, O, shape)
    state_shape = (Hh,) if batch is None else (batch, Hh)
    h0 = rng.normal(0.0, 0.8, state_shape)
    c0 = rng.normal(0.0, 0.8, state_shape) if cell == "lstm" else None
    return net, X, Y, h0, c0


@pytest.mark.parametrize("batch", [None, 3], ids=["single", "batch"])
@pytest.mark.parametrize("kind", CELL_KINDS, ids=kind_id)
def test_engine_matches_reference(kind, batch):
    cell, activation = kind
    for seed in range(3):
        net, X, Y, h0, c0 = random_case(cell, activation, seed, batch)
        for truncate in [None, 0, 1, 2, 4, 5, 6, 7, 50]:
            loss, grads = net.loss_and_grads(X, Y, h0=start_state(h0, c0), truncate=truncate)
            ref_loss, ref_grads = reference_loss_and_grads(net.params, cell, activation, X, Y,
                                                           h0, c0, truncate)
            assert loss == pytest.approx(ref_loss, rel=1e-10, abs=1e-12)
            assert set(grads) == set(ref_grads)
            for name in ref_grads:
                np.testing.assert_allclose(grads[name], ref_grads[name], rtol=1e-10,
                                           atol=1e-12, err_msg=f"{name} truncate={truncate}")


@pytest.mark.parametrize("kind", CELL_KINDS, ids=kind_id)
def test_truncation_changes_the_recurrent_gradients(kind):
    """Guards the comparison above: the truncations tested really give different answers."""
    cell, activation = kind
    net, X, Y, h0, c0 = random_case(cell, activation, 0, None)
    grads = {k: net.loss_and_grads(X, Y, h0=start_state(h0, c0), truncate=k)[1]
             for k in (None, 0, 1, 2)}
    for k in (0, 1, 2):
        assert not np.allclose(grads[k]["W"], grads[None]["W"], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(grads[k]["V"], grads[None]["V"], rtol=1e-12)


@pytest.mark.parametrize("kind", CELL_KINDS, ids=kind_id)
def test_reference_agrees_with_central_differences(kind):
    """The reference is itself checked: full BPTT against differences of its own loss."""
    cell, activation = kind
    net, X, Y, h0, c0 = well_conditioned(cell, activation, None)
    params = {k: v.copy() for k, v in net.params.items()}
    _, grads = reference_loss_and_grads(params, cell, activation, X, Y, h0, c0)
    eps = 1e-5
    for name, value in params.items():
        flat = value.reshape(-1)
        numerical = np.empty(flat.size)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            plus = reference_loss_and_grads(params, cell, activation, X, Y, h0, c0)[0]
            flat[i] = old - eps
            minus = reference_loss_and_grads(params, cell, activation, X, Y, h0, c0)[0]
            flat[i] = old
            numerical[i] = (plus - minus) / (2 * eps)
        errors = relative_error(grads[name].ravel(), numerical)
        assert errors.max() < 1e-6, name


# --------------------------------------------------------------------- float32


@pytest.mark.parametrize("truncate", [None, 2])
@pytest.mark.parametrize("kind", CELL_KINDS, ids=kind_id)
def test_float32_agrees_with_float64(kind, truncate):
    cell, activation = kind
    net64, X, Y, h0, c0 = random_case(cell, activation, 1, 2)
    net32 = Network(**{**net64.config(), "dtype": "float32"})
    for name, value in net64.params.items():
        net32.params[name][...] = value.astype(np.float32)
        # Both networks compute with exactly the same (float32-representable) numbers.
        value[...] = net32.params[name]
    for _ in range(3):
        loss64, grads64 = net64.loss_and_grads(X, Y, h0=start_state(h0, c0), truncate=truncate)
        loss32, grads32 = net32.loss_and_grads(X, Y, h0=start_state(h0, c0), truncate=truncate)
        assert isinstance(loss32, float)
        assert loss32 == pytest.approx(loss64, rel=1e-4)
        for name in grads64:
            assert grads32[name].dtype == np.float32
            scale = np.abs(grads64[name]).max()
            np.testing.assert_allclose(grads32[name], grads64[name], rtol=1e-4,
                                       atol=1e-5 * scale, err_msg=name)
        # The next round with slightly moved parameters, as a training loop would (a step of
        # fixed size: the linear identity RNN's gradients are in the hundreds).
        for name in grads64:
            net64.params[name] -= 0.02 * grads64[name] / np.abs(grads64[name]).max()
            net32.params[name][...] = net64.params[name].astype(np.float32)
            net64.params[name][...] = net32.params[name]


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_large_vocabulary_path(cell):
    """From 256 rows on, dU sums the rows of each token id instead of multiplying by one-hot
    rows; both ways must agree (each sequence alone stays on the matrix-product side)."""
    rng = np.random.default_rng(0)
    vocab, T, B = 3000, 8, 50                   # T·B·vocab = 1.2 million
    net = Network(vocab, 3, output_size=4, cell=cell, seed=0)
    redraw_params(net, rng, 0.5)
    X = rng.integers(0, 40, (T, B))               # few distinct tokens: repeated ids must add up
    Y = rng.integers(0, 4, (T, B))
    for truncate in (None, 2):
        loss, grads = net.loss_and_grads(X, Y, truncate=truncate)
        total = {k: np.zeros_like(v) for k, v in grads.items()}
        for j in range(B):
            for k, g in net.loss_and_grads(X[:, j], Y[:, j], truncate=truncate)[1].items():
                total[k] += g
        for name in grads:
            np.testing.assert_allclose(grads[name], total[name], rtol=1e-10, atol=1e-12,
                                       err_msg=name)
        assert np.abs(grads["U"][:, 40:]).max() == 0.0


@pytest.mark.parametrize("kind", CELL_KINDS, ids=kind_id)
def test_big_batches_on_two_cores_match_the_reference(kind, monkeypatch):
    """Big batches compute dV, dc and dU on a second core beside BPTT: the same numbers as the
    reference, and the same as on one core to round-off (the output layer, done in two parts
    of the steps there, may round its last bit differently)."""
    cell, activation = kind
    rng = np.random.default_rng(3)
    T, B, H = 6, 48, 240                        # T·B·H above the size that uses a second core
    net = Network(7, H, output_size=5, cell=cell, activation=activation, seed=0)
    assert T * B * H >= network._OVERLAP_SIZE
    redraw_params(net, rng, 0.05)
    X, Y = rng.integers(0, 7, (T, B)), rng.integers(0, 5, (T, B))
    for truncate in (None, 2):
        loss, grads = net.loss_and_grads(X, Y, truncate=truncate)
        ref_loss, ref_grads = reference_loss_and_grads(net.params, cell, activation, X, Y,
                                                       None, None, truncate)
        assert loss == pytest.approx(ref_loss, rel=1e-10)
        assert list(grads) == list(net.params)
        for name in ref_grads:
            np.testing.assert_allclose(grads[name], ref_grads[name], rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name} truncate={truncate}")
        with monkeypatch.context() as m:
            m.setattr(network, "_HELPER", None)
            loss1, grads1 = net.loss_and_grads(X, Y, truncate=truncate)
        assert loss1 == pytest.approx(loss, rel=1e-14)
        for name in grads:
            np.testing.assert_allclose(grads1[name], grads[name], rtol=1e-12, atol=1e-15,
                                       err_msg=name)


@pytest.mark.parametrize("truncate", [None, 0, 2])
@pytest.mark.parametrize("kind", CELL_KINDS, ids=kind_id)
def test_step_by_step_pieces_match_the_reference(kind, truncate):
    """The per-step API a lesson walks through (forward_range one step at a time, BPTT.step from
    T−1 down to 0, param_grads per step) adds up to loss_and_grads, and the gradient it records
    at each h_t is the reference's (∂L/∂h_t, as truncated)."""
    cell, activation = kind
    net, X, Y, h0, c0 = random_case(cell, activation, 2, 2)
    T, B = X.shape
    loss, grads = net.loss_and_grads(X, Y, h0=start_state(h0, c0), truncate=truncate)
    _, ref_grads, ref_dh = reference_loss_and_grads(net.params, cell, activation, X, Y, h0, c0,
                                                    truncate, hidden_grads=True)
    tape = net.new_tape(T, B)
    net.begin(tape, X, Y, h0, c0)
    for t in range(T):
        net.forward_range(tape, t, t + 1)
    assert float(tape.loss.sum()) == pytest.approx(loss, rel=1e-12)
    walker = net.bptt(tape, truncate)
    total = {k: np.zeros_like(v) for k, v in net.params.items()}
    for t in range(T - 1, -1, -1):
        walker.step(t)
        np.testing.assert_allclose(tape.dh[t], ref_dh[t], rtol=1e-10, atol=1e-12)
        for k, g in net.param_grads(tape, t, t + 1).items():
            total[k] += g
    for name in grads:
        np.testing.assert_allclose(total[name], grads[name], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(total[name], ref_grads[name], rtol=1e-10, atol=1e-12)
    if cell == "rnn":
        # δ_t = f'(a_t) ⊙ ∂L/∂h_t
        np.testing.assert_allclose(tape.dax, tape.fprime * tape.dh, rtol=1e-12, atol=1e-15)


def test_a_copied_tape_runs_on_its_own_arrays():
    """A tape copied mid-lesson (the controller's what-if scratch) goes on with its own arrays:
    the per-step views a tape keeps must not follow it into the copy."""
    net = Network(I, H, seed=0)
    rng = np.random.default_rng(0)
    X, Y = rng.integers(0, I, (T, 1)), rng.integers(0, I, (T, 1))
    X2 = X.copy()
    X2[3:] = (X[3:] + 1) % I

    def whole(inputs):
        tape = net.new_tape(T)
        net.begin(tape, inputs, Y)
        net.forward_range(tape, 0, T)
        net.bptt(tape).run(T, 0)
        return tape

    tape = net.new_tape(T)
    net.begin(tape, X, Y)
    net.forward_range(tape, 0, 3)
    net.bptt(tape).run(3, 0)                 # both loops have made their views by now
    copy = tape.copy()
    copy.X[...] = X2
    for t in (tape, copy):
        net.forward_range(t, 3, T)
        net.bptt(t).run(T, 0)
    for got, want in ((tape, whole(X)), (copy, whole(X2))):
        for name in ("xa", "a", "h", "fprime", "probs", "dh", "dax"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)


def test_an_error_on_the_first_core_waits_for_the_second(monkeypatch):
    """If the recurrence fails half way (an error under np.errstate(all="raise"), say), the
    call returns only when the second core has finished writing the tape: the next call
    reuses it."""
    import threading
    import time

    T, B, H = 6, 48, 240
    net = Network(7, H, output_size=5, seed=0)
    X = np.zeros((T, B), dtype=int)
    finished = []
    output_range, forward_steps = net.output_range, net._cell.forward_steps

    def slow_output_range(tape, t0, t1):
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.3)
            output_range(tape, t0, t1)
            finished.append((t0, t1))
        else:
            output_range(tape, t0, t1)

    def failing_forward(p, tape, t0, t1):
        if t0 > 0:
            raise FloatingPointError("overflow in the second half")
        forward_steps(p, tape, t0, t1)

    monkeypatch.setattr(net, "output_range", slow_output_range)
    monkeypatch.setattr(net._cell, "forward_steps", failing_forward)
    with pytest.raises(FloatingPointError):
        net.loss_and_grads(X, X % 5)
    assert len(finished) == 1 and finished[0][0] == 0


def test_the_second_core_keeps_the_callers_floating_point_settings():
    """np.errstate holds for one thread: the products done on the second core must follow the
    caller's settings too (the lesson silences the overflow of an exploding network)."""
    import warnings

    T, B, H = 6, 48, 240
    net = Network(7, H, output_size=5, seed=0)
    assert T * B * H >= network._OVERLAP_SIZE
    net.params["V"][...] = 1e308                   # logits overflow to inf
    X = np.zeros((T, B), dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="ignore"):
            loss, grads = net.loss_and_grads(X, X % 5)
    assert not np.isfinite(loss)
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        net.loss_and_grads(X, X % 5)
