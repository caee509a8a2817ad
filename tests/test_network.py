"""Network construction, argument checking, parameter shapes and initialisations."""

import math

import numpy as np
import pytest

from explorer.network import Network

I, H, O = 5, 4, 3
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


# --------------------------------------------------------------------- bad constructor arguments


@pytest.mark.parametrize("name", ["input_size", "hidden_size", "output_size"])
@pytest.mark.parametrize("value", [0, -1, 2.5, True, "4", None])
def test_sizes_must_be_positive_integers(name, value):
    sizes = {"input_size": I, "hidden_size": H, "output_size": O, name: value}
    if value is None and name == "output_size":
        return                      # output_size=None means "same as input_size"
    with pytest.raises(ValueError, match=name):
        Network(**sizes)


@pytest.mark.parametrize("cell", ["lstmm", "RNN", "", None])
def test_unknown_cell(cell):
    with pytest.raises(ValueError, match="cell"):
        Network(I, H, cell=cell)


@pytest.mark.parametrize("activation", ["softplus", "Tanh", None])
def test_unknown_activation(activation):
    with pytest.raises(ValueError, match="activation"):
        Network(I, H, activation=activation)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("activation", ["relu", "identity", "sigmoid"])
def test_activation_is_for_the_rnn_cell_only(cell, activation):
    with pytest.raises(ValueError, match="activation"):
        Network(I, H, cell=cell, activation=activation)


@pytest.mark.parametrize("init", ["he", "Uniform", None])
def test_unknown_init(init):
    with pytest.raises(ValueError, match="init"):
        Network(I, H, init=init)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_identity_init_is_for_the_rnn_cell_only(cell):
    with pytest.raises(ValueError, match="init"):
        Network(I, H, cell=cell, init="identity")


@pytest.mark.parametrize("scale", [0, 0.0, -1.0, float("nan"), float("inf"), "big", None])
def test_init_scale_must_be_finite_and_positive(scale):
    with pytest.raises(ValueError, match="init_scale"):
        Network(I, H, init_scale=scale)


@pytest.mark.parametrize("dtype", ["float16", "int32", np.int64, "banana", 3, "complex128"])
def test_bad_dtype(dtype):
    with pytest.raises(ValueError, match="dtype"):
        Network(I, H, dtype=dtype)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        Network(I, H, seed=seed)


# --------------------------------------------------------------------- bad call arguments


@pytest.fixture(params=["rnn", "lstm", "gru"])
def net(request):
    return Network(I, H, output_size=O, cell=request.param, seed=0)


GOOD_X, GOOD_Y = [0, 4, 2, 1], [2, 0, 1, 1]


@pytest.mark.parametrize("inputs, targets, name", [
    ([], [], "inputs"),
    (np.zeros((0, 2), int), np.zeros((0, 2), int), "inputs"),
    ([0, -1, 2], [0, 1, 2], "inputs"),
    ([0, 5, 2], [0, 1, 2], "inputs"),              # input ids are 0..I-1 = 0..4
    ([0, 1, 2], [0, -1, 2], "targets"),
    ([0, 1, 2], [0, 1, 3], "targets"),             # target ids are 0..O-1 = 0..2
    ([0, 1, 2], [0, 1], "targets"),
    ([[0, 1], [1, 2]], [0, 1], "targets"),
    ([0.5, 1.0], [0, 1], "inputs"),
    ([0, 1], [0.0, 1.5], "targets"),
    ([0, float("nan")], [0, 1], "inputs"),
    (["a", "b"], [0, 1], "inputs"),
    (np.zeros((2, 2, 2), int), np.zeros((2, 2, 2), int), "inputs"),
    ([0, 1], np.zeros((2, 1, 1), int), "targets"),
])
def test_bad_sequences(net, inputs, targets, name):
    with pytest.raises(ValueError, match=name):
        net.loss_and_grads(inputs, targets)
    with pytest.raises(ValueError, match=name):
        net.loss(inputs, targets)


@pytest.mark.parametrize("inputs", [[], [0, 5], [-1], [0.5], np.zeros((1, 1, 1), int)])
def test_bad_sequences_for_forward(net, inputs):
    with pytest.raises(ValueError, match="inputs"):
        net.forward(inputs)


@pytest.mark.parametrize("x", [-1, 5, [0, 7], 0.5])
def test_bad_token_for_step(net, x):
    with pytest.raises(ValueError, match="x"):
        net.step(x)


@pytest.mark.parametrize("truncate", [-1, 1.5, "2", True])
def test_bad_truncate(net, truncate):
    with pytest.raises(ValueError, match="truncate"):
        net.loss_and_grads(GOOD_X, GOOD_Y, truncate=truncate)


@pytest.mark.parametrize("shape", [(H + 1,), (H - 1,), (2, H), (H, 1)])
def test_h0_of_the_wrong_shape(net, shape):
    with pytest.raises(ValueError, match="h0"):
        net.loss_and_grads(GOOD_X, GOOD_Y, h0=np.zeros(shape))


def test_h0_of_the_wrong_shape_for_a_batch(net):
    X = np.array([GOOD_X, GOOD_X, GOOD_X]).T                      # (T, 3)
    Y = np.array([GOOD_Y, GOOD_Y, GOOD_Y]).T
    for shape in [(H,), (2, H), (3, H + 1)]:
        with pytest.raises(ValueError, match="h0"):
            net.loss_and_grads(X, Y, h0=np.zeros(shape))
    net.loss_and_grads(X, Y, h0=np.zeros((3, H)))                 # the right shape passes


def test_h0_must_be_finite(net):
    h0 = np.zeros(H)
    h0[1] = np.nan
    with pytest.raises(ValueError, match="h0"):
        net.loss_and_grads(GOOD_X, GOOD_Y, h0=h0)


def test_c0_of_the_wrong_shape_for_the_lstm():
    net = Network(I, H, cell="lstm", seed=0)
    with pytest.raises(ValueError, match="c0"):
        net.loss_and_grads(GOOD_X, GOOD_X, h0=(np.zeros(H), np.zeros(H + 2)))


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_c0_for_a_cell_without_cell_state(cell):
    net = Network(I, H, cell=cell, seed=0)
    with pytest.raises(ValueError, match="cell state"):
        net.loss_and_grads(GOOD_X, GOOD_X, h0=(np.zeros(H), np.zeros(H)))


def test_a_failed_call_leaves_the_network_usable(net):
    loss, grads = net.loss_and_grads(GOOD_X, GOOD_Y)
    for _ in range(3):
        with pytest.raises(ValueError):
            net.loss_and_grads(GOOD_X, [0, 1, 2, 9])
        again, grads_again = net.loss_and_grads(GOOD_X, GOOD_Y)
        assert again == loss
        for name in grads:
            np.testing.assert_array_equal(grads_again[name], grads[name])


# --------------------------------------------------------------------- shapes and config


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_param_shapes(cell):
    G = GATES[cell]
    net = Network(I, H, output_size=O, cell=cell, seed=0)
    expected = {"U": (G * H, I), "W": (G * H, H), "b": (G * H,), "V": (O, H), "c": (O,)}
    if cell == "gru":
        expected["bh"] = (G * H,)
    assert {k: v.shape for k, v in net.params.items()} == expected
    assert net.param_shapes() == expected
    assert net.gates == G
    assert all(v.dtype == np.float64 for v in net.params.values())
    _, grads = net.loss_and_grads(GOOD_X, GOOD_Y)
    assert {k: v.shape for k, v in grads.items()} == expected


def test_output_size_defaults_to_input_size():
    net = Network(I, H, seed=0)
    assert net.output_size == I
    assert net.params["V"].shape == (I, H)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_config_rebuilds_the_same_network(cell):
    net = Network(I, H, output_size=O, cell=cell, init="xavier", init_scale=0.9, seed=7,
                  dtype="float32")
    twin = Network(**net.config())
    assert twin.config() == net.config()
    for name in net.params:
        np.testing.assert_array_equal(twin.params[name], net.params[name])


# --------------------------------------------------------------------- seeds and inits


@pytest.mark.parametrize("init", ["uniform", "xavier", "orthogonal"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_seeds_are_reproducible_and_distinct(cell, init):
    a = Network(I, H, cell=cell, init=init, seed=3)
    b = Network(I, H, cell=cell, init=init, seed=3)
    c = Network(I, H, cell=cell, init=init, seed=4)
    for name in ("U", "W", "V"):
        np.testing.assert_array_equal(a.params[name], b.params[name])
        assert not np.array_equal(a.params[name], c.params[name])


def test_no_seed_gives_different_networks():
    a, b = Network(I, H), Network(I, H)
    assert not np.array_equal(a.params["W"], b.params["W"])


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_uniform_init_bounds(cell):
    Ii, Hh, Oo = 30, 20, 25
    net = Network(Ii, Hh, output_size=Oo, cell=cell, init="uniform", seed=0)
    p = net.params
    for name, fan_in in [("U", Ii), ("W", Hh), ("V", Hh)]:
        bound = 1 / math.sqrt(fan_in)
        assert np.abs(p[name]).max() <= bound
        # Large enough draws fill the interval: the bound is the limit, not just a cap.
        assert np.abs(p[name]).max() > 0.9 * bound
        assert p[name].min() < 0 < p[name].max()
    for name in net.params:
        if name.startswith(("b", "c")):
            np.testing.assert_array_equal(p[name], 0.0)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_xavier_init_bounds(cell):
    Ii, Hh, Oo = 30, 20, 25
    net = Network(Ii, Hh, output_size=Oo, cell=cell, init="xavier", seed=0)
    p = net.params
    for name, bound in [("U", math.sqrt(6 / (Ii + Hh))), ("W", math.sqrt(6 / (2 * Hh))),
                        ("V", math.sqrt(6 / (Hh + Oo)))]:
        assert np.abs(p[name]).max() <= bound
        assert np.abs(p[name]).max() > 0.9 * bound


@pytest.mark.parametrize("scale", [1.0, 0.5, 1.3])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_orthogonal_init_blocks_are_orthogonal(cell, scale):
    net = Network(I, H, cell=cell, init="orthogonal", init_scale=scale, seed=2)
    W = net.params["W"]
    blocks = [W[k * H:(k + 1) * H] for k in range(GATES[cell])]
    for block in blocks:
        np.testing.assert_allclose(block.T @ block, scale ** 2 * np.eye(H), atol=1e-12)
        np.testing.assert_allclose(np.abs(np.linalg.eigvals(block)), scale, rtol=1e-10)
    if len(blocks) > 1:
        assert not np.allclose(blocks[0], blocks[1])     # each gate drawn on its own


@pytest.mark.parametrize("scale", [1.0, 0.5, 1.2])
def test_identity_init(scale):
    net = Network(I, H, init="identity", init_scale=scale, activation="relu", seed=0)
    np.testing.assert_array_equal(net.params["W"], scale * np.eye(H))
    # IRNN: small input and output weights, zero biases.
    assert 0 < np.abs(net.params["U"]).max() < 0.01
    assert 0 < np.abs(net.params["V"]).max() < 0.01
    np.testing.assert_array_equal(net.params["b"], 0.0)


@pytest.mark.parametrize("init", ["uniform", "xavier"])
def test_init_scale_multiplies_w_only(init):
    one = Network(I, H, init=init, seed=5)
    two = Network(I, H, init=init, init_scale=2.5, seed=5)
    np.testing.assert_allclose(two.params["W"], 2.5 * one.params["W"], rtol=1e-15)
    for name in ("U", "V", "b", "c"):
        np.testing.assert_array_equal(two.params[name], one.params[name])


# --------------------------------------------------------------------- dtypes and fresh arrays


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_float32_params_stay_float32(cell):
    net = Network(I, H, output_size=O, cell=cell, seed=0, dtype="float32")
    assert net.dtype == np.float32
    assert all(v.dtype == np.float32 for v in net.params.values())
    for _ in range(4):
        loss, grads = net.loss_and_grads(GOOD_X, GOOD_Y, h0=np.ones(H), truncate=2)
        assert np.isfinite(loss)
        assert all(g.dtype == np.float32 for g in grads.values())
        for name in net.params:
            net.params[name] -= np.float32(0.1) * grads[name]      # an SGD step in place
        assert all(v.dtype == np.float32 for v in net.params.values())
    assert net.forward(GOOD_X).probs.dtype == np.float32
    assert net.step(1)[0].dtype == np.float32


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("init", ["uniform", "orthogonal"])
def test_params_start_on_a_cache_line_and_stay_there(cell, dtype, init):
    net = Network(I, H, output_size=O, cell=cell, init=init, seed=0, dtype=dtype)
    starts = {name: p.ctypes.data for name, p in net.params.items()}
    for _ in range(3):
        _, grads = net.loss_and_grads(GOOD_X, GOOD_Y)
        for name in net.params:
            net.params[name] -= net.dtype.type(0.1) * grads[name]
    for name, p in net.params.items():
        assert p.ctypes.data % 64 == 0, name
        assert p.ctypes.data == starts[name], name            # updated in place
        assert p.flags.c_contiguous and p.flags.writeable, name
        assert p.shape == net.param_shapes()[name] and p.dtype == net.dtype, name


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("I_, batch", [(1, None), (1, 3), (5, None), (5, 8)])
@pytest.mark.parametrize("truncate", [None, 2])
def test_computing_gradients_leaves_the_parameters_unchanged(cell, I_, batch, truncate):
    """Whatever path the input projection takes (one token: U's single column is a contiguous
    row already; more steps than tokens: b added to Uᵀ first), U and b are read, not written."""
    rng = np.random.default_rng(I_)
    net = Network(I_, H, output_size=O, cell=cell, seed=0)
    net.params["b"][...] = rng.normal(size=net.params["b"].shape)
    before = {k: v.copy() for k, v in net.params.items()}
    shape = (6,) if batch is None else (6, batch)
    X, Y = rng.integers(0, I_, shape), rng.integers(0, O, shape)
    for _ in range(3):
        net.loss_and_grads(X, Y, truncate=truncate)
        net.forward(X)
        for name, value in before.items():
            np.testing.assert_array_equal(net.params[name], value, err_msg=name)


@pytest.mark.parametrize("truncate", [None, 1])
def test_returned_grads_are_fresh_arrays(net, truncate):
    X2, Y2 = np.array([GOOD_X, GOOD_X[::-1]]).T, np.array([GOOD_Y, GOOD_Y[::-1]]).T
    loss, grads = net.loss_and_grads(GOOD_X, GOOD_Y, truncate=truncate)
    kept = {k: v.copy() for k, v in grads.items()}
    for _ in range(3):
        for g in grads.values():
            g[...] = 123.0                                       # scribble on the result
        # Other calls in between (another shape, a forward pass) must not disturb it either.
        net.loss_and_grads(X2, Y2, truncate=truncate)
        net.forward(GOOD_X[::-1])
        again, grads = net.loss_and_grads(GOOD_X, GOOD_Y, truncate=truncate)
        assert again == loss
        for name in kept:
            np.testing.assert_array_equal(grads[name], kept[name])
            assert not np.shares_memory(grads[name], net.params[name])
    names = list(grads)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not np.shares_memory(grads[a], grads[b])


def test_forward_results_survive_later_calls(net):
    first = net.forward(GOOD_X)
    probs, hidden = first.probs.copy(), first.hidden.copy()
    for _ in range(3):
        net.forward(GOOD_X[::-1])
        net.loss_and_grads(GOOD_X[::-1], GOOD_Y)
        net.step(2)
        np.testing.assert_array_equal(first.probs, probs)
        np.testing.assert_array_equal(first.hidden, hidden)


# --------------------------------------------------------------------- a model that knows nothing


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("T", [1, 4, 9])
def test_uniform_output_loss_is_T_ln_O(cell, T):
    """With V = 0 and c = 0 every prediction is uniform: L = T ln O, and nothing reaches U, W."""
    rng = np.random.default_rng(T)
    net = Network(I, H, output_size=O, cell=cell, seed=1)
    net.params["V"][...] = 0.0
    net.params["c"][...] = 0.0
    for batch in [None, 3]:
        shape = (T,) if batch is None else (T, batch)
        X, Y = rng.integers(0, I, shape), rng.integers(0, O, shape)
        loss, grads = net.loss_and_grads(X, Y, h0=rng.normal(size=(H,) if batch is None else
                                                                  (batch, H)))
        assert loss == pytest.approx((batch or 1) * T * math.log(O), rel=1e-14)
        for name in ("U", "W", "b"):
            np.testing.assert_array_equal(grads[name], 0.0)
        # dc = Σ_t (ŷ_t − y_t): uniform 1/O everywhere minus one count per target.
        counts = np.bincount(Y.ravel(), minlength=O)
        np.testing.assert_allclose(grads["c"], Y.size / O - counts, atol=1e-12)
