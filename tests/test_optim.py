"""Tests for explorer.optim: update formulas, convergence, exact state round trips, clipping."""

import math

import numpy as np
import pytest

from explorer.optim import (
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    HalveOnLossIncrease,
    Momentum,
    Optimizer,
    RMSprop,
    clip_by_global_norm,
    clip_by_value,
    global_norm,
    make_optimizer,
)

N_STEPS = 6


def _params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {
        "W": rng.normal(size=(3, 3)).astype(dtype),
        "b": rng.normal(size=(3,)).astype(dtype),
    }


def _grad_sequence(seed=1, n=N_STEPS, dtype=np.float64):
    """Different gradients at every step, so the state really accumulates something."""
    rng = np.random.default_rng(seed)
    return [
        {"W": rng.normal(size=(3, 3)).astype(dtype), "b": rng.normal(size=(3,)).astype(dtype)}
        for _ in range(n)
    ]


def _copy(d):
    return {k: v.copy() for k, v in d.items()}


# ---------------------------------------------------------------------------------------------
# Each optimiser against its formula, written out independently, over several steps in a row
# ---------------------------------------------------------------------------------------------


def test_sgd_matches_formula_over_several_steps():
    params, opt = _params(), SGD(lr=0.1)
    expected = _copy(params)
    for grads in _grad_sequence():
        opt.step(params, grads)
        for k in expected:
            expected[k] = expected[k] - 0.1 * grads[k]
        for k in params:
            np.testing.assert_allclose(params[k], expected[k], rtol=1e-13, atol=1e-15)
    assert opt.step_count == N_STEPS


def test_momentum_matches_formula_over_several_steps():
    params, opt = _params(), Momentum(lr=0.05, momentum=0.8)
    expected = _copy(params)
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for grads in _grad_sequence():
        opt.step(params, grads)
        for k in expected:
            v[k] = 0.8 * v[k] - 0.05 * grads[k]
            expected[k] = expected[k] + v[k]
        for k in params:
            np.testing.assert_allclose(params[k], expected[k], rtol=1e-13, atol=1e-15)


def test_momentum_lr_change_scales_only_new_gradients():
    # Classical momentum keeps the velocity it has built up when lr changes.
    params, opt = _params(), Momentum(lr=0.1, momentum=0.5)
    expected = _copy(params)
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for i, grads in enumerate(_grad_sequence()):
        lr = 0.1 if i < 3 else 0.01
        opt.lr = lr
        opt.step(params, grads)
        for k in expected:
            v[k] = 0.5 * v[k] - lr * grads[k]
            expected[k] = expected[k] + v[k]
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], rtol=1e-13, atol=1e-15)


def test_adagrad_matches_min_char_rnn_formula_over_several_steps():
    params, opt = _params(), Adagrad(lr=0.1)
    expected = _copy(params)
    mem = {k: np.zeros_like(p) for k, p in params.items()}
    for grads in _grad_sequence():
        opt.step(params, grads)
        for k in expected:
            mem[k] = mem[k] + grads[k] ** 2
            expected[k] = expected[k] - 0.1 * grads[k] / np.sqrt(mem[k] + 1e-8)
        for k in params:
            np.testing.assert_allclose(params[k], expected[k], rtol=1e-13, atol=1e-15)


def test_rmsprop_matches_formula_over_several_steps():
    params, opt = _params(), RMSprop(lr=0.01, decay=0.95, eps=1e-6)
    expected = _copy(params)
    cache = {k: np.zeros_like(p) for k, p in params.items()}
    for grads in _grad_sequence():
        opt.step(params, grads)
        for k in expected:
            cache[k] = 0.95 * cache[k] + 0.05 * grads[k] ** 2
            expected[k] = expected[k] - 0.01 * grads[k] / (np.sqrt(cache[k]) + 1e-6)
        for k in params:
            np.testing.assert_allclose(params[k], expected[k], rtol=1e-12, atol=1e-15)


def test_adam_matches_formula_with_bias_correction_over_several_steps():
    params, opt = _params(), Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-7)
    expected = _copy(params)
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for t, grads in enumerate(_grad_sequence(), start=1):
        opt.step(params, grads)
        for k in expected:
            m[k] = 0.8 * m[k] + 0.2 * grads[k]
            v[k] = 0.99 * v[k] + 0.01 * grads[k] ** 2
            m_hat, v_hat = m[k] / (1 - 0.8**t), v[k] / (1 - 0.99**t)
            expected[k] = expected[k] - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-7)
        for k in params:
            np.testing.assert_allclose(params[k], expected[k], rtol=1e-12, atol=1e-15)


def test_adam_first_step_moves_each_weight_by_about_lr():
    # The bias correction makes the first step lr * g/|g| (up to eps), whatever beta1, beta2.
    params = {"p": np.array([1.0, -2.0, 3.0])}
    grads = {"p": np.array([1e-3, -50.0, 7.0])}
    Adam(lr=0.1, beta1=0.9, beta2=0.999).step(params, grads)
    np.testing.assert_allclose(params["p"], [0.9, -1.9, 2.9], rtol=1e-5)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_step_does_not_modify_grads(name):
    params, opt = _params(), make_optimizer(name, 0.1)
    for grads in _grad_sequence(n=3):
        before = _copy(grads)
        opt.step(params, grads)
        for k in grads:
            assert np.array_equal(grads[k], before[k])


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_step_updates_the_same_arrays_in_place(name):
    params, opt = _params(), make_optimizer(name, 0.1)
    ids = {k: id(v) for k, v in params.items()}
    before = _copy(params)
    opt.step(params, _grad_sequence(n=1)[0])
    assert {k: id(v) for k, v in params.items()} == ids
    assert all(not np.array_equal(params[k], before[k]) for k in params)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_params_stay_float32(name):
    params, opt = _params(dtype=np.float32), make_optimizer(name, 0.01)
    for grads in _grad_sequence(dtype=np.float32):
        opt.step(params, grads)
    assert all(p.dtype == np.float32 for p in params.values())
    for arrays in opt.state.values():
        assert all(a.dtype == np.float32 for a in arrays.values())


# ---------------------------------------------------------------------------------------------
# Convergence on a quadratic bowl
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, lr, steps",
    [("sgd", 0.1, 300), ("momentum", 0.05, 300), ("adagrad", 0.5, 1000),
     ("rmsprop", 0.01, 2000), ("adam", 0.05, 2000)],
)  # fmt: skip
def test_minimising_a_quadratic_converges(name, lr, steps):
    # f(x) = 1/2 sum(a * (x - target)^2), an ill-conditioned bowl with its minimum at target.
    a = np.array([1.0, 4.0, 0.5])
    target = np.array([3.0, -1.0, 2.0])
    params = {"x": np.zeros(3)}
    opt = make_optimizer(name, lr)
    start = 0.5 * np.sum(a * target**2)
    for _ in range(steps):
        opt.step(params, {"x": a * (params["x"] - target)})
    final = 0.5 * np.sum(a * (params["x"] - target) ** 2)
    assert final < 1e-4 * start
    np.testing.assert_allclose(params["x"], target, atol=2e-2)


# ---------------------------------------------------------------------------------------------
# State round trip: restoring a snapshot and replaying gives bit-identical parameters
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_restore_and_replay_is_bit_identical(name):
    params, opt = _params(), make_optimizer(name, 0.05)
    grads = _grad_sequence(n=8)
    for g in grads[:3]:
        opt.step(params, g)
    snapshot_params, snapshot_state = _copy(params), opt.state_dict()

    for g in grads[3:]:
        opt.step(params, g)
    first_run = _copy(params)
    first_state = opt.state_dict()

    # Step backwards in time, then forwards again with the same gradients.
    for k in params:
        params[k][...] = snapshot_params[k]
    opt.load_state_dict(snapshot_state)
    assert opt.step_count == 3
    for g in grads[3:]:
        opt.step(params, g)
    for k in params:
        assert np.array_equal(params[k], first_run[k])
    assert opt.step_count == first_state["step_count"] == 8
    for slot, arrays in first_state["state"].items():
        for k, arr in arrays.items():
            assert np.array_equal(opt.state[slot][k], arr)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_is_a_deep_copy(name):
    params, opt = _params(), make_optimizer(name, 0.05)
    grads = _grad_sequence(n=4)
    for g in grads[:2]:
        opt.step(params, g)
    d = opt.state_dict()
    saved = {slot: _copy(arrays) for slot, arrays in d["state"].items()}
    for g in grads[2:]:
        opt.step(params, g)  # must not change the snapshot
    for slot, arrays in d["state"].items():
        for k in arrays:
            assert np.array_equal(arrays[k], saved[slot][k])
    assert d["step_count"] == 2

    # And loading copies too: editing the dict afterwards must not reach the optimiser.
    opt.load_state_dict(d)
    for arrays in d["state"].values():
        for arr in arrays.values():
            arr += 100.0
    for slot, arrays in opt.state.items():
        for k in arrays:
            assert np.array_equal(arrays[k], saved[slot][k])


def test_state_dict_restores_lr_and_hyperparameters():
    opt = Adam(lr=0.01, beta1=0.5)
    d = opt.state_dict()
    opt.lr = 0.2
    opt.beta1 = 0.7
    opt.load_state_dict(d)
    assert opt.lr == 0.01 and opt.beta1 == 0.5


def test_load_state_dict_rejects_another_optimizers_state():
    d = SGD(0.1).state_dict()
    with pytest.raises(ValueError, match="'sgd'.*'adam'"):
        Adam(0.1).load_state_dict(d)


def test_load_state_dict_rejects_bad_values_and_leaves_state_unchanged():
    params, opt = _params(), Momentum(0.1)
    opt.step(params, _grad_sequence(n=1)[0])
    good = opt.state_dict()
    bad = opt.state_dict()
    bad["lr"] = -1.0
    with pytest.raises(ValueError, match="lr"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    del bad["step_count"]
    with pytest.raises(ValueError, match="step_count"):
        opt.load_state_dict(bad)
    assert opt.lr == good["lr"] and opt.step_count == 1


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_reset_forgets_state_and_matches_a_fresh_optimiser(name):
    opt = make_optimizer(name, 0.05)
    params = _params()
    for g in _grad_sequence(n=3):
        opt.step(params, g)
    opt.reset()
    assert opt.step_count == 0
    fresh = make_optimizer(name, 0.05)
    p1, p2 = _params(5), _params(5)
    for g in _grad_sequence(seed=9, n=3):
        opt.step(p1, g)
        fresh.step(p2, g)
    for k in p1:
        assert np.array_equal(p1[k], p2[k])


# ---------------------------------------------------------------------------------------------
# Argument checking
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf"), "0.1", None, True])
def test_bad_lr_is_rejected(name, lr):
    with pytest.raises(ValueError, match="lr must be a finite positive number"):
        make_optimizer(name, lr)
    opt = make_optimizer(name, 0.1)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = lr
    assert opt.lr == 0.1


@pytest.mark.parametrize(
    "name, kwargs, arg",
    [
        ("momentum", {"momentum": 1.0}, "momentum"),
        ("momentum", {"momentum": -0.1}, "momentum"),
        ("rmsprop", {"decay": 1.5}, "decay"),
        ("rmsprop", {"eps": 0.0}, "eps"),
        ("adam", {"beta1": 1.0}, "beta1"),
        ("adam", {"beta2": float("nan")}, "beta2"),
        ("adagrad", {"eps": -1e-8}, "eps"),
    ],
)
def test_bad_hyperparameters_are_rejected(name, kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        make_optimizer(name, 0.1, **kwargs)


def test_unknown_optimizer_name_lists_the_allowed_names():
    with pytest.raises(ValueError, match="sgd, momentum, adagrad, rmsprop, adam"):
        make_optimizer("adadelta", 0.1)


def test_unknown_setting_names_the_allowed_ones():
    with pytest.raises(ValueError, match="beta1, beta2, eps"):
        make_optimizer("adam", 0.1, momentum=0.9)


def test_make_optimizer_builds_the_named_class_with_settings():
    opt = make_optimizer("rmsprop", 0.02, decay=0.5)
    assert isinstance(opt, RMSprop) and isinstance(opt, Optimizer)
    assert opt.lr == 0.02 and opt.decay == 0.5
    assert OPTIMIZERS == ("sgd", "momentum", "adagrad", "rmsprop", "adam")


def test_step_rejects_mismatched_grads_without_changing_params():
    params, opt = _params(), Adam(0.1)
    before = _copy(params)
    with pytest.raises(ValueError, match="missing"):
        opt.step(params, {"W": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="shape"):
        opt.step(params, {"W": np.zeros((3, 3)), "b": np.zeros(4)})
    with pytest.raises(ValueError, match="not in params"):
        opt.step(params, {"W": np.zeros((3, 3)), "b": np.zeros(3), "V": np.zeros(2)})
    for k in params:
        assert np.array_equal(params[k], before[k])
    assert opt.step_count == 0


def test_step_with_a_resized_model_asks_for_reset():
    opt = Momentum(0.1)
    opt.step({"W": np.zeros((2, 2))}, {"W": np.ones((2, 2))})
    with pytest.raises(ValueError, match="reset"):
        opt.step({"W": np.zeros((3, 3))}, {"W": np.ones((3, 3))})
    opt.reset()
    opt.step({"W": np.zeros((3, 3))}, {"W": np.ones((3, 3))})


# ---------------------------------------------------------------------------------------------
# Clipping
# ---------------------------------------------------------------------------------------------


def test_global_norm_is_the_norm_of_everything_concatenated():
    grads = _grad_sequence(n=1)[0]
    flat = np.concatenate([g.ravel() for g in grads.values()])
    assert global_norm(grads) == pytest.approx(np.linalg.norm(flat), rel=1e-14)
    assert global_norm({"a": np.array([3.0]), "b": np.array([[4.0]])}) == 5.0


def test_clip_by_value_clips_in_place_like_min_char_rnn():
    grads = {"W": np.array([[-7.0, 0.5], [5.0, 12.0]]), "b": np.array([-5.5, 4.9])}
    W, b = grads["W"], grads["b"]
    out = clip_by_value(grads, 5)
    assert out is grads and grads["W"] is W and grads["b"] is b
    np.testing.assert_array_equal(W, [[-5.0, 0.5], [5.0, 5.0]])
    np.testing.assert_array_equal(b, [-5.0, 4.9])


def test_clip_by_global_norm_scales_everything_by_the_same_factor():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0, 4.0]])}  # norm 5
    a = grads["a"]
    norm = clip_by_global_norm(grads, 1.0)
    assert norm == 5.0
    assert grads["a"] is a
    np.testing.assert_allclose(grads["a"], [0.6, 0.0])
    np.testing.assert_allclose(grads["b"], [[0.0, 0.8]])
    assert global_norm(grads) == pytest.approx(1.0)
    # Clipping again changes nothing and reports the (already clipped) norm.
    assert clip_by_global_norm(grads, 1.0) == pytest.approx(1.0)
    np.testing.assert_allclose(grads["a"], [0.6, 0.0])


def test_clip_by_global_norm_leaves_small_gradients_alone():
    grads = _grad_sequence(n=1)[0]
    before = _copy(grads)
    norm = clip_by_global_norm(grads, 1e6)
    assert norm == pytest.approx(global_norm(before))
    for k in grads:
        assert np.array_equal(grads[k], before[k])


def test_clip_by_global_norm_leaves_non_finite_gradients_for_the_caller():
    grads = {"a": np.array([np.inf, 1.0])}
    assert math.isinf(clip_by_global_norm(grads, 1.0))
    np.testing.assert_array_equal(grads["a"], [np.inf, 1.0])


@pytest.mark.parametrize("limit", [0, -1, float("nan"), float("inf")])
def test_clip_limits_must_be_positive(limit):
    grads = {"a": np.ones(2)}
    with pytest.raises(ValueError, match="limit"):
        clip_by_value(grads, limit)
    with pytest.raises(ValueError, match="max_norm"):
        clip_by_global_norm(grads, limit)


# ---------------------------------------------------------------------------------------------
# Learning-rate schedule
# ---------------------------------------------------------------------------------------------


def test_halve_on_loss_increase_over_a_loss_history():
    opt = SGD(0.8)
    schedule = HalveOnLossIncrease(opt)
    losses = [10.0, 9.0, 9.5, 9.4, 9.4, 9.6, 12.0, 3.0]
    halved = [schedule(x) for x in losses]
    assert halved == [False, False, True, False, False, True, True, False]
    assert opt.lr == 0.8 / 8
    assert schedule.reductions == 3 and schedule.previous_loss == 3.0


def test_schedule_respects_min_lr_and_factor():
    opt = Momentum(1.0)
    schedule = HalveOnLossIncrease(opt, factor=0.1, min_lr=0.05)
    schedule(1.0)
    assert schedule(2.0) and opt.lr == pytest.approx(0.1)
    assert schedule(3.0) and opt.lr == 0.05
    assert not schedule(4.0) and opt.lr == 0.05
    assert schedule.reductions == 2


def test_schedule_treats_a_diverged_loss_as_an_increase():
    opt = SGD(1.0)
    schedule = HalveOnLossIncrease(opt)
    schedule(5.0)
    assert schedule(float("nan")) and opt.lr == 0.5
    assert schedule.previous_loss == 5.0  # the NaN is not remembered
    assert not schedule(4.0) and opt.lr == 0.5


def test_schedule_state_round_trip_continues_identically():
    losses = [5.0, 4.0, 4.5, 4.4, 4.6, 4.0, 4.1]
    opt = SGD(1.0)
    schedule = HalveOnLossIncrease(opt)
    for x in losses[:3]:
        schedule(x)
    opt_state, sched_state = opt.state_dict(), schedule.state_dict()
    first = [schedule(x) for x in losses[3:]]
    first_lr = opt.lr

    opt.load_state_dict(opt_state)
    schedule.load_state_dict(sched_state)
    assert opt.lr == 0.5 and schedule.previous_loss == 4.5 and schedule.reductions == 1
    assert [schedule(x) for x in losses[3:]] == first == [False, True, False, True]
    assert opt.lr == first_lr == 0.125


def test_schedule_argument_checks():
    with pytest.raises(ValueError, match="optimizer"):
        HalveOnLossIncrease("adam")
    with pytest.raises(ValueError, match="factor"):
        HalveOnLossIncrease(SGD(0.1), factor=1.0)
    with pytest.raises(ValueError, match="min_lr"):
        HalveOnLossIncrease(SGD(0.1), min_lr=-1)
    with pytest.raises(ValueError, match="loss"):
        HalveOnLossIncrease(SGD(0.1))("high")
    with pytest.raises(ValueError, match="reductions"):
        HalveOnLossIncrease(SGD(0.1)).load_state_dict(
            {"factor": 0.5, "min_lr": 0.0, "previous_loss": None, "reductions": -1}
        )
