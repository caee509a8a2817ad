"""The step-by-step controller: stepping equals the whole-sequence call; history, settings."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import (
    CELL_KINDS,
    column,
    gru_back,
    gru_forward,
    lstm_back,
    lstm_forward,
    one_hot,
    redraw_params,
    reference_loss_and_grads,
    rnn_back,
    rnn_forward,
    slope,
    softmax,
)

from explorer.controller import Controller, History
from explorer.network import Network, State

I, H, T = 5, 4, 6
TRUNCATES = [None, 0, 1, 3, T - 1, T + 5]


def problem(cell, activation="tanh", seed=0, std=0.5, T=T, H=H):
    """A small network with random parameters (biases too) and a random window."""
    net = Network(I, H, cell=cell, activation=activation, seed=seed)
    rng = np.random.default_rng(seed + 100)
    redraw_params(net, rng, std)
    inputs = rng.integers(0, I, T)
    targets = rng.integers(0, I, T)
    return net, inputs, targets


def run_forward(ctl):
    for _ in range(ctl.T):
        ctl.step_forward()


def run_backward(ctl):
    for _ in range(ctl.T):
        ctl.step_backward()


def assert_grads_close(got, want, rtol=1e-10, atol=1e-13):
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol, err_msg=name)


# --------------------------------------------------------------------- an independent walk


def reference_walk(net, inputs, targets, truncate=None, h0=None):
    """Per-step parameter contributions and per-term gradients ∂L_s/∂h_t, from the reference.

    Walks each loss term back as the classic tutorial does, but adds step t's contributions to
    their own dict, so the gradients after j backward steps are the sum over the last j steps.
    Returns (contrib, dh_term) with contrib[t] a dict shaped like the params and dh_term[s, t]
    = ∂L_s/∂h_t (NaN where the term does not reach, s < t or beyond the truncation).
    """
    P = {name: np.array(value, dtype=float) for name, value in net.params.items()}
    for name in ("b", "bh", "c"):
        if name in P:
            P[name] = column(P[name])
    Tn, Hn = len(inputs), net.hidden_size
    xs = {t: one_hot(inputs[t], net.input_size) for t in range(Tn)}
    start = np.zeros((Hn, 1)) if h0 is None else column(h0)
    if net.cell == "rnn":
        s = rnn_forward(P, xs, start, net.activation)

        def back(step, dh, dc, g):
            return rnn_back(P, s, step, dh, dc, g, net.activation)
    elif net.cell == "lstm":
        s = lstm_forward(P, xs, start, np.zeros((Hn, 1)), Hn)

        def back(step, dh, dc, g):
            return lstm_back(P, s, step, dh, dc, g, Hn)
    else:
        s = gru_forward(P, xs, start, Hn)

        def back(step, dh, dc, g):
            return gru_back(P, s, step, dh, dc, g, Hn)

    contrib = [{name: np.zeros_like(v) for name, v in P.items()} for _ in range(Tn)]
    dh_term = np.full((Tn, Tn, Hn), np.nan)
    k = Tn if truncate is None else truncate
    for t in range(Tn):
        dy = softmax(P["V"] @ s["h"][t] + P["c"])
        dy[targets[t]] -= 1.0
        contrib[t]["V"] += dy @ s["h"][t].T
        contrib[t]["c"] += dy
        dh, dc = P["V"].T @ dy, np.zeros((Hn, 1))
        for step in range(t, max(0, t - k) - 1, -1):
            dh_term[t, step] = dh[:, 0]
            dh, dc = back(step, dh, dc, contrib[step])
    shapes = {name: v.shape for name, v in net.params.items()}
    contrib = [{name: g[name].reshape(shapes[name]) for name in g} for g in contrib]
    return contrib, dh_term, s


def test_reference_walk_sums_to_the_reference_gradients():
    # The helper must itself be right before it judges the controller.
    for cell, activation in CELL_KINDS:
        for truncate in (None, 1):
            net, x, y = problem(cell, activation)
            contrib, _, _ = reference_walk(net, x, y, truncate)
            _, want = reference_loss_and_grads(net.params, cell, activation, x, y,
                                               truncate=truncate)
            total = {k: sum(c[k] for c in contrib) for k in want}
            assert_grads_close(total, want)


# --------------------------------------------------------------------- stepping = whole sequence


@pytest.mark.parametrize("cell,activation", CELL_KINDS)
@pytest.mark.parametrize("truncate", TRUNCATES)
def test_stepping_equals_the_whole_sequence_call(cell, activation, truncate):
    net, x, y = problem(cell, activation)
    loss, grads = net.loss_and_grads(x, y, truncate=truncate)
    ctl = Controller(net, x, y, truncate=truncate)
    run_forward(ctl)
    np.testing.assert_allclose(ctl.hidden, net.forward(x).hidden, rtol=1e-10, atol=1e-13)
    assert ctl.window_loss == pytest.approx(loss, rel=1e-12)
    assert ctl.phase == "backward"
    run_backward(ctl)
    assert ctl.phase == "update"
    assert_grads_close(ctl.grads, grads)
    # ... and the same gradients as the plain reference
    _, want = reference_loss_and_grads(net.params, cell, activation, x, y, truncate=truncate)
    assert_grads_close(ctl.grads, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cell,activation", CELL_KINDS)
@pytest.mark.parametrize("truncate", TRUNCATES)
def test_deltas_and_the_split_of_dh(cell, activation, truncate):
    net, x, y = problem(cell, activation, seed=3)
    _, _, dh_ref = reference_loss_and_grads(net.params, cell, activation, x, y,
                                            truncate=truncate, hidden_grads=True)
    ctl = Controller(net, x, y, truncate=truncate)
    run_forward(ctl)
    run_backward(ctl)
    tr = ctl.trace
    np.testing.assert_allclose(tr.dh, dh_ref, rtol=1e-10, atol=1e-13)
    if cell == "rnn":
        _, _, s = reference_walk(net, x, y, truncate)
        a = np.array([s["a"][t][:, 0] for t in range(T)])
        np.testing.assert_allclose(tr.fprime, slope(activation, a), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(ctl.deltas, slope(activation, a) * dh_ref,
                                   rtol=1e-10, atol=1e-13)
        # δ_t is the mask times ∂L/∂h_t (exactly so for full BPTT; truncated BPTT sums its
        # terms after masking each, so there only up to round-off)
        if truncate is None:
            assert np.array_equal(tr.fprime * tr.dh, tr.delta)
        np.testing.assert_allclose(tr.fprime * tr.dh, tr.delta, rtol=1e-12, atol=1e-15)
    else:
        np.testing.assert_allclose(ctl.deltas, dh_ref, rtol=1e-10, atol=1e-13)
    # ∂L/∂h_t is its own output's part plus the part from the future
    if truncate is None:
        assert np.array_equal(tr.dh_out + tr.dh_future, tr.dh)
    else:
        np.testing.assert_allclose(tr.dh_out + tr.dh_future, tr.dh, rtol=1e-12, atol=1e-15)
    # the last step has no future; the own-output part is Vᵀ(ŷ_t − y_t)
    assert np.all(tr.dh_future[-1] == 0)
    onehot = np.eye(I)[y]
    np.testing.assert_allclose(tr.dh_out, (tr.probs - onehot) @ net.params["V"],
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("activation", ["tanh", "relu", "identity", "sigmoid"])
def test_rnn_full_bptt_deltas_follow_the_textbook_recursion(activation):
    # δ_t = f'(a_t) ⊙ (Vᵀ(ŷ_t − y_t) + Wᵀ δ_{t+1}), δ_T = 0, from the reference's forward pass
    net, x, y = problem("rnn", activation, seed=5)
    _, _, s = reference_walk(net, x, y)
    P = net.params
    delta = np.zeros((T + 1, H))
    for t in range(T - 1, -1, -1):
        p = softmax(P["V"] @ s["h"][t] + column(P["c"]))[:, 0]
        p[y[t]] -= 1.0
        delta[t] = slope(activation, s["a"][t][:, 0]) * (P["V"].T @ p + P["W"].T @ delta[t + 1])
    ctl = Controller(net, x, y)
    run_forward(ctl)
    run_backward(ctl)
    np.testing.assert_allclose(ctl.deltas, delta[:T], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("cell,activation", [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"),
                                             ("gru", "tanh")])
@pytest.mark.parametrize("truncate", [None, 0, 2])
def test_partial_backward_sums_the_last_steps(cell, activation, truncate):
    net, x, y = problem(cell, activation, seed=7)
    contrib, _, _ = reference_walk(net, x, y, truncate)
    ctl = Controller(net, x, y, truncate=truncate)
    for t in range(T):
        assert ctl.t == t
        assert ctl.step_forward() == t
        # rows not computed yet are NaN, the rest finite
        assert np.all(np.isfinite(ctl.hidden[:t + 1]))
        assert np.all(np.isnan(ctl.hidden[t + 1:]))
        assert np.all(np.isnan(ctl.deltas))
        assert all(np.all(g == 0) for g in ctl.grads.values())
    for j in range(1, T + 1):
        assert ctl.step_backward() == T - j
        want = {k: sum(c[k] for c in contrib[T - j:]) for k in net.params}
        assert_grads_close(ctl.grads, want)
        assert np.all(np.isnan(ctl.deltas[:T - j]))
        assert np.all(np.isfinite(ctl.deltas[T - j:]))
        assert np.all(np.isnan(ctl.trace.contrib_norms[:T - j]))
        # step t's own contribution, as the views show it
        names = ctl.trace.param_names
        np.testing.assert_allclose(
            ctl.trace.contrib_norms[T - j],
            [np.linalg.norm(contrib[T - j][k]) for k in names], rtol=1e-9, atol=1e-13)


def test_window_loss_grows_with_the_forward_steps():
    net, x, y = problem("rnn")
    probs = net.forward(x).probs
    step_losses = -np.log(probs[np.arange(T), y])
    ctl = Controller(net, x, y)
    assert ctl.window_loss == 0.0
    for t in range(T):
        ctl.step_forward()
        assert ctl.window_loss == pytest.approx(step_losses[:t + 1].sum(), rel=1e-12)


def test_steps_in_the_wrong_phase_raise():
    net, x, y = problem("rnn")
    ctl = Controller(net, x, y)
    with pytest.raises(ValueError, match="backward"):
        ctl.step_backward()
    with pytest.raises(ValueError, match="update"):
        ctl.update()
    run_forward(ctl)
    with pytest.raises(ValueError, match="forward"):
        ctl.step_forward()
    run_backward(ctl)
    with pytest.raises(ValueError):
        ctl.step_forward()
    with pytest.raises(ValueError):
        ctl.step_backward()


def test_several_updates_are_sgd_on_the_whole_sequence_gradients():
    net, x, y = problem("gru", seed=2)
    twin = Network(**net.config())
    for k, v in net.params.items():
        twin.params[k][...] = v
    ctl = Controller(net, x, y, truncate=2, optimizer="sgd", lr=0.3)
    for _ in range(5):
        _, g = twin.loss_and_grads(x, y, truncate=2)
        for k in g:
            twin.params[k] -= 0.3 * g[k]
        assert ctl.run_cycle() is True
        assert ctl.phase == "forward" and ctl.position == 0
        for k in g:
            np.testing.assert_allclose(net.params[k], twin.params[k], rtol=1e-10, atol=1e-13)
    assert ctl.iteration == 5
    assert len(ctl.history.loss) == 5
    assert np.all(np.diff(ctl.history.iteration) == 1)


# --------------------------------------------------------------------- the timeline


def picture(ctl):
    """Everything a view or a later step could read, copied."""
    tr = ctl.trace
    arrays = {"x": tr.x, "y": tr.y, "h0": tr.h0, "hidden": ctl.hidden, "deltas": ctl.deltas,
              "pre": tr.pre, "logits": tr.logits, "probs": tr.probs, "loss": tr.loss,
              "dh_out": tr.dh_out, "dh_future": tr.dh_future, "dh": tr.dh, "delta": tr.delta,
              "contrib": tr.contrib_norms, "flow": tr.flow}
    for name in ("gates", "cell_state", "fprime"):
        if getattr(tr, name) is not None:
            arrays[name] = getattr(tr, name)
    for k, v in ctl.grads.items():
        arrays["grad " + k] = v
    for k, v in ctl.net.params.items():
        arrays["param " + k] = v
    opt = ctl.optimizer.state_dict()
    for slot, arrs in opt["state"].items():
        for k, v in arrs.items():
            arrays[f"opt {slot} {k}"] = v
    for f in History.FIELDS:
        arrays["history " + f] = getattr(ctl.history, f)
    if ctl.last_update is not None:
        for k, v in ctl.last_update.items():
            arrays["last_update " + k] = v
    scalars = {"position": ctl.position, "phase": ctl.phase, "t": ctl.t,
               "window": ctl.window_index, "iteration": ctl.iteration,
               "timeline_index": ctl.timeline_index, "opt name": opt["name"], "lr": opt["lr"],
               "step_count": opt["step_count"], "opt slots": sorted(
                   (slot, sorted(arrs)) for slot, arrs in opt["state"].items()),
               "window_loss": ctl.window_loss, "truncate": ctl.truncate,
               "has last_update": ctl.last_update is not None}
    return {k: np.array(v, copy=True) for k, v in arrays.items()}, scalars


def assert_same_picture(got, want, where=""):
    arrays, scalars = got
    want_arrays, want_scalars = want
    assert scalars == want_scalars, where
    assert set(arrays) == set(want_arrays), where
    for k, v in want_arrays.items():
        assert arrays[k].shape == v.shape, f"{where}: {k}"
        assert np.array_equal(arrays[k], v, equal_nan=True), f"{where}: {k} differs"


def corpus_controller(optimizer="adam", cell="rnn", T=3, **kwargs):
    """A controller walking a short corpus (4 windows) with h carried across windows."""
    rng = np.random.default_rng(11)
    ids = rng.integers(0, I, 4 * T + 1)
    net = Network(I, 3, cell=cell, seed=1)
    lr = {"adam": 0.05, "momentum": 0.2, "sgd": 0.3}[optimizer]
    kwargs.setdefault("carry_state", True)
    return Controller(net, corpus=ids, window=T, optimizer=optimizer, lr=lr, **kwargs)


def record_cycles(ctl, n_updates):
    """Step through n_updates whole cycles; the picture at every timeline position."""
    pictures = {ctl.timeline_index: picture(ctl)}
    for _ in range(n_updates * (2 * ctl.T + 1)):
        ctl.step()
        pictures[ctl.timeline_index] = picture(ctl)
    return pictures


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_back_walks_the_whole_timeline_exactly(optimizer):
    ctl = corpus_controller(optimizer)
    assert ctl.back() is False                   # nothing earlier at the very start
    pictures = record_cycles(ctl, 6)
    assert ctl.iteration == 6
    assert ctl.history_length == 6 * (2 * ctl.T + 1) + 1
    assert ctl.timeline_index == ctl.history_length - 1
    # the updates really changed the state: the pictures of one position in two cycles differ
    assert not np.array_equal(pictures[0][0]["param W"], pictures[7][0]["param W"])
    for i in range(ctl.history_length - 1, 0, -1):
        assert_same_picture(picture(ctl), pictures[i], f"position {i}")
        assert ctl.back() is True
    assert_same_picture(picture(ctl), pictures[0], "start")
    assert ctl.back() is False
    assert_same_picture(picture(ctl), pictures[0], "start after a refused back()")
    # and forward again through the recorded updates: the same pictures
    for i in range(1, ctl.history_length):
        ctl.step()
        assert_same_picture(picture(ctl), pictures[i], f"again at {i}")


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_goto_there_and_back_gives_identical_pictures(optimizer):
    ctl = corpus_controller(optimizer, cell="lstm")
    pictures = record_cycles(ctl, 5)
    n = ctl.history_length
    for i, j in [(3, 30), (30, 3), (0, n - 1), (n - 1, 0), (9, 10), (10, 9), (17, 17), (5, 26)]:
        ctl.goto(i)
        first = picture(ctl)
        assert_same_picture(first, pictures[i], f"goto({i})")
        ctl.goto(j)
        assert_same_picture(picture(ctl), pictures[j], f"goto({j})")
        ctl.goto(i)
        assert_same_picture(picture(ctl), first, f"goto({i}) again")
    for bad in (-1, n, 2.0, True, "3"):
        with pytest.raises(ValueError, match="index"):
            ctl.goto(bad)


ACTIONS = st.one_of(st.just("step"), st.just("back"),
                    st.tuples(st.just("goto"), st.integers(0, 10_000)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(optimizer=st.sampled_from(["adam", "momentum"]),
       cell=st.sampled_from(["rnn", "gru"]),
       truncate=st.sampled_from([None, 1]),
       actions=st.lists(ACTIONS, min_size=1, max_size=80))
def test_random_walks_through_the_timeline_revisit_identical_pictures(optimizer, cell, truncate,
                                                                      actions):
    ctl = corpus_controller(optimizer, cell=cell, truncate=truncate)
    pictures = record_cycles(ctl, 5)
    for action in actions:
        before = ctl.timeline_index
        if action == "step":
            ctl.step()
            assert ctl.timeline_index == before + 1
        elif action == "back":
            assert ctl.back() is (before > 0)
            assert ctl.timeline_index == max(before - 1, 0)
        else:
            target = action[1] % ctl.history_length
            ctl.goto(target)
            assert ctl.timeline_index == target
        i = ctl.timeline_index
        if i in pictures:
            assert_same_picture(picture(ctl), pictures[i], f"{action} to {i}")
        else:
            pictures[i] = picture(ctl)
        assert ctl.history_length == max(pictures) + 1


def test_back_crosses_more_than_fifty_updates():
    ctl = corpus_controller("adam", T=2)
    assert ctl.history_size == 100
    start = picture(ctl)
    for _ in range(60):
        assert ctl.run_cycle() is True
    end = picture(ctl)
    assert ctl.iteration == 60
    backs = 0
    while ctl.back():
        backs += 1
    assert backs == 60 * (2 * 2 + 1)
    assert_same_picture(picture(ctl), start, "after 60 updates back")
    ctl.goto(ctl.history_length - 1)
    assert_same_picture(picture(ctl), end, "forward again")


def test_history_size_bounds_how_far_back_goes():
    ctl = corpus_controller("momentum", T=2, history_size=3)
    cycle = 2 * 2 + 1
    seen = [picture(ctl)]                        # in the order of the steps
    for _ in range(6 * cycle):
        ctl.step()
        seen.append(picture(ctl))
    # the timeline holds the last 3 updates (and the cycle they lead to): its indices start there
    assert ctl.history_length == 3 * cycle + 1
    assert ctl.timeline_index == 3 * cycle
    backs = 0
    while ctl.back():
        backs += 1
        want_arrays, want_scalars = seen[6 * cycle - backs]
        arrays, scalars = picture(ctl)
        assert scalars["iteration"] == want_scalars["iteration"]
        for k in want_arrays:
            assert np.array_equal(arrays[k], want_arrays[k], equal_nan=True), (backs, k)
    assert backs == 3 * cycle
    assert ctl.iteration == 3 and ctl.timeline_index == 0


def test_reset_returns_to_the_first_parameters_and_forgets_the_history():
    ctl = corpus_controller("adam")
    start = picture(ctl)
    record_cycles(ctl, 3)
    ctl.step()
    ctl.reset()
    assert_same_picture(picture(ctl), start, "after reset")
    assert ctl.history_length == 1 and ctl.back() is False


# --------------------------------------------------------------------- carrying the state


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_carry_state_starts_window_two_from_the_end_of_window_one(cell):
    rng = np.random.default_rng(4)
    ids = rng.integers(0, I, 3 * T + 1)
    X = np.lib.stride_tricks.sliding_window_view(ids, T)[::T][:3]
    carried, fresh = [], []
    for carry, out in ((True, carried), (False, fresh)):
        net = Network(I, H, cell=cell, seed=2)
        redraw_params(net, np.random.default_rng(5), 0.5)
        ctl = Controller(net, corpus=ids, window=T, carry_state=carry, lr=0.1)
        for w in range(3):
            assert ctl.window_index == w
            np.testing.assert_array_equal(ctl.inputs, X[w])
            run_forward(ctl)
            out.append((ctl.trace.h0.copy(), ctl.hidden.copy(),
                        None if ctl.trace.cell_state is None else ctl.trace.cell_state.copy(),
                        {k: v.copy() for k, v in net.params.items()}))
            run_backward(ctl)
            ctl.update()
    for w in (1, 2):
        h0, hidden, cells, params = carried[w]
        _, prev_hidden, prev_cells, _ = carried[w - 1]
        assert np.array_equal(h0, prev_hidden[-1])
        assert np.any(h0 != 0)
        # the window's hidden states are the network run from that h0 (and c0)
        net = Network(I, H, cell=cell, seed=2)
        for k, v in params.items():
            net.params[k][...] = v
        start = State(prev_hidden[-1], None if prev_cells is None else prev_cells[-1])
        np.testing.assert_allclose(hidden, net.forward(X[w], h0=start).hidden,
                                   rtol=1e-12, atol=1e-15)
        assert np.all(fresh[w][0] == 0)
    assert np.all(carried[0][0] == 0)


def test_carry_state_restarts_from_zeros_after_the_last_window():
    ctl = corpus_controller("sgd", T=3)
    assert ctl.n_windows == 4
    for _ in range(4):
        ctl.run_cycle()
    assert ctl.window_index == 0 and ctl.epoch == 1
    assert np.all(ctl.trace.h0 == 0)


def test_carried_state_gradients_match_the_whole_sequence_call_from_h0():
    ctl = corpus_controller("sgd", T=4)
    ctl.run_cycle()
    h0 = ctl.trace.h0.copy()
    assert np.any(h0 != 0)
    ctl.run_phase()
    ctl.run_phase()
    _, grads = ctl.net.loss_and_grads(ctl.inputs, ctl.targets, h0=h0)
    assert_grads_close(ctl.grads, grads)


# --------------------------------------------------------------------- listeners


def events_of(ctl):
    events = []
    ctl.subscribe(events.append)
    return events


def test_a_full_cycle_notifies_steps_phases_and_the_update_in_order():
    net, x, y = problem("rnn")
    ctl = Controller(net, x, y)
    events = events_of(ctl)
    for _ in range(2):
        events.clear()
        ctl.run_cycle()
        kinds = [(e.kind, e.t) for e in events]
        want = ([("step", t) for t in range(T - 1)] + [("phase", T - 1)]
                + [("step", t) for t in range(T - 1, 0, -1)] + [("phase", 0)]
                + [("update", None)])
        assert kinds == want
        assert [e.phase for e in events] == (["forward"] * (T - 1) + ["backward"] * T
                                             + ["update"] + ["forward"])


def test_back_reset_settings_and_unsubscribe_notify():
    net, x, y = problem("lstm")
    ctl = Controller(net, x, y)
    events = events_of(ctl)
    ctl.step()
    ctl.step()
    events.clear()
    ctl.back()
    assert [(e.kind, e.t) for e in events] == [("history", 0)]
    ctl.goto(2)
    assert [e.kind for e in events] == ["history", "history"]
    events.clear()
    ctl.reset()
    assert [e.kind for e in events] == ["reset"]
    events.clear()
    ctl.configure(truncate=2)
    assert [e.kind for e in events] == ["settings"]
    other = []
    ctl.subscribe(other.append)
    ctl.unsubscribe(events.append)
    ctl.unsubscribe(events.append)              # a second time is harmless
    events.clear()
    ctl.run_cycle()
    assert events == []
    assert len(other) == 2 * T + 1


def test_training_notifies_progress_then_trained():
    ctl = corpus_controller("adam")
    events = events_of(ctl)
    result = ctl.train(iterations=7, report_every=0.0)
    assert result.iterations == 7
    kinds = [e.kind for e in events]
    assert kinds == ["progress"] * 7 + ["trained"]
    assert [e.progress.iteration for e in events[:-1]] == list(range(1, 8))
    assert all(e.progress.total == 7 for e in events[:-1])


def test_a_nan_update_is_refused_with_an_error_event():
    net, x, y = problem("rnn")
    ctl = Controller(net, x, y)
    events = events_of(ctl)
    net.params["W"][0, 0] = np.nan              # the live arrays: a broken model
    ctl.run_phase()
    ctl.run_phase()
    before = {k: v.copy() for k, v in net.params.items()}
    events.clear()
    with np.errstate(all="ignore"):
        assert ctl.update() is False
    assert [e.kind for e in events] == ["error"]
    assert "NaN" in events[0].message
    assert ctl.phase == "update" and ctl.iteration == 0
    for k, v in before.items():
        assert np.array_equal(net.params[k], v, equal_nan=True)


def test_an_update_that_overflows_is_undone():
    net, x, y = problem("rnn")
    y = np.zeros(T, dtype=int)                  # dc[0] = Σ (ŷ_t[0] − 1): well below −1
    ctl = Controller(net, x, y, optimizer="sgd", lr=1e308)
    events = events_of(ctl)
    ctl.run_phase()
    ctl.run_phase()
    before = {k: v.copy() for k, v in net.params.items()}
    opt = ctl.optimizer.state_dict()
    with np.errstate(all="ignore"):
        assert ctl.update() is False
    assert events[-1].kind == "error"
    for k, v in before.items():
        assert np.array_equal(net.params[k], v)
    assert ctl.optimizer.state_dict()["step_count"] == opt["step_count"]
    assert ctl.iteration == 0 and ctl.phase == "update"
    # with a sane learning rate the same update goes through
    ctl.configure(lr=0.1)
    assert ctl.run_cycle() is True


# --------------------------------------------------------------------- gradient flow


def finite_difference_flow(net, x, y, ctl, eps=1e-6):
    """‖∂L_s/∂h_t‖ by central differences: perturb h_t, run steps t+1..s, read L_s."""
    tr = ctl.trace
    V, c = net.params["V"], net.params["c"]
    flow = np.full((T, T), np.nan)

    def loss_s(h, t, s):
        if s == t:
            o = V @ h + c
            return -(o[y[s]] - o.max() - np.log(np.exp(o - o.max()).sum()))
        cell = None if tr.cell_state is None else tr.cell_state[t]
        probs = net.forward(x[t + 1:s + 1], h0=State(h, cell)).probs
        return -np.log(probs[-1, y[s]])

    for t in range(T):
        for s in range(t, T):
            g = np.empty(H)
            for i in range(H):
                hp, hm = tr.hidden[t].copy(), tr.hidden[t].copy()
                hp[i] += eps
                hm[i] -= eps
                g[i] = (loss_s(hp, t, s) - loss_s(hm, t, s)) / (2 * eps)
            flow[s, t] = np.linalg.norm(g)
    return flow


@pytest.mark.parametrize("cell,activation", [("rnn", "tanh"), ("rnn", "sigmoid"),
                                             ("lstm", "tanh"), ("gru", "tanh")])
def test_gradient_flow_is_the_norm_of_each_loss_terms_gradient(cell, activation):
    net, x, y = problem(cell, activation, seed=9, std=0.8)
    ctl = Controller(net, x, y, truncate=1)       # the flow ignores the truncation
    for _ in range(T - 1):
        ctl.step_forward()
        assert np.all(np.isnan(ctl.trace.flow))   # not before the forward phase ends
    ctl.step_forward()
    flow = ctl.trace.flow.copy()
    _, dh_term, _ = reference_walk(net, x, y)
    want = np.linalg.norm(dh_term, axis=-1)
    assert np.array_equal(np.isnan(flow), np.isnan(want))
    assert np.all(np.isnan(flow[np.triu_indices(T, 1)]))
    np.testing.assert_allclose(flow, want, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(flow, finite_difference_flow(net, x, y, ctl),
                               rtol=1e-5, atol=1e-8)
    # by distance s − t: mean, min and max over the diagonals
    mean, low, high = ctl.flow_by_distance()
    for d in range(T):
        diag = np.array([want[s, s - d] for s in range(d, T)])
        assert mean[d] == pytest.approx(diag.mean(), rel=1e-10)
        assert low[d] == pytest.approx(diag.min(), rel=1e-10)
        assert high[d] == pytest.approx(diag.max(), rel=1e-10)
    # going back into the forward phase forgets the flow; stepping again restores it exactly
    ctl.back()
    assert np.all(np.isnan(ctl.trace.flow))
    ctl.step()
    assert np.array_equal(ctl.trace.flow, flow, equal_nan=True)


def test_flow_vanishes_for_a_small_w_and_explodes_for_a_large_one():
    x = np.arange(T) % I
    y = (x + 1) % I
    ratios = {}
    for scale in (0.3, 3.0):
        net = Network(I, H, activation="identity", init="orthogonal", init_scale=scale, seed=0)
        ctl = Controller(net, x, y)
        run_forward(ctl)
        _, _, high = ctl.flow_by_distance()
        ratios[scale] = high[T - 1] / high[0]
    assert ratios[0.3] < 0.3 ** (T - 1) * 10
    assert ratios[3.0] > 3.0 ** (T - 1) / 10


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_eigenvalues_are_those_of_w_and_follow_the_updates(cell):
    net, x, y = problem(cell, seed=4)
    ctl = Controller(net, x, y, optimizer="sgd", lr=1.0)
    blocks = {"rnn": ["W"], "lstm": ["W_i", "W_f", "W_g", "W_o"],
              "gru": ["W_r", "W_z", "W_n"]}[cell]
    for _ in range(3):
        eig = ctl.eigenvalues()
        assert list(eig) == blocks
        W = net.params["W"]
        for k, name in enumerate(blocks):
            want = np.linalg.eigvals(W[k * H:(k + 1) * H])
            np.testing.assert_allclose(np.sort_complex(eig[name]), np.sort_complex(want),
                                       rtol=1e-12, atol=1e-14)
        before = W.copy()
        ctl.run_cycle()
        assert not np.array_equal(before, net.params["W"])


# --------------------------------------------------------------------- settings


def settings_of(ctl):
    return (ctl.truncate, ctl.lr, ctl.optimizer.name, ctl.clip_value, ctl.clip_norm,
            ctl.carry_state, ctl.schedule is None, ctl.history_length, ctl.timeline_index)


@pytest.mark.parametrize("changes,name", [
    ({"truncate": -1}, "truncate"), ({"truncate": 1.5}, "truncate"),
    ({"truncate": True}, "truncate"), ({"lr": 0}, "lr"), ({"lr": float("nan")}, "lr"),
    ({"lr": -0.1}, "lr"), ({"lr": float("inf")}, "lr"), ({"clip_norm": -1}, "clip_norm"),
    ({"clip_norm": 0}, "clip_norm"), ({"clip_value": float("nan")}, "clip_value"),
    ({"optimizer": "adamw"}, "optimizer"), ({"optimizer": None}, "optimizer"),
    ({"optimizer": "adam", "lr": 0}, "lr"), ({"optimizer": "adam", "truncate": -1}, "truncate"),
    ({"lr": 0.5, "clip_norm": -1}, "clip_norm"), ({"truncate": 2, "lr": float("nan")}, "lr"),
])
def test_invalid_settings_raise_and_change_nothing(changes, name):
    ctl = corpus_controller("momentum")
    ctl.run_cycle()
    ctl.run_cycle()
    for _ in range(2 * ctl.T - 2):
        ctl.step()
    ctl.back()                                  # a recorded future, which must survive too
    before, before_settings = picture(ctl), settings_of(ctl)
    events = events_of(ctl)
    with pytest.raises(ValueError, match=name):
        ctl.configure(**changes)
    assert events == []
    assert settings_of(ctl) == before_settings
    assert_same_picture(picture(ctl), before, f"after configure({changes})")
    ctl.step()                                  # still works, over the recorded future
    assert ctl.timeline_index == before[1]["timeline_index"] + 1


def test_valid_settings_restart_the_window_and_keep_the_parameters():
    ctl = corpus_controller("sgd", T=4)
    ctl.run_cycle()
    ctl.run_cycle()
    for _ in range(6):
        ctl.step()
    params = {k: v.copy() for k, v in ctl.net.params.items()}
    window, h0, iteration = ctl.window_index, ctl.trace.h0.copy(), ctl.iteration
    index = ctl.timeline_index
    ctl.configure(truncate=1, lr=0.05, optimizer="adam", clip_norm=0.5)
    assert (ctl.truncate, ctl.lr, ctl.optimizer.name, ctl.clip_norm) == (1, 0.05, "adam", 0.5)
    assert ctl.position == 0 and ctl.phase == "forward"
    assert ctl.window_index == window and ctl.iteration == iteration
    assert np.array_equal(ctl.trace.h0, h0)
    assert np.all(np.isnan(ctl.hidden))
    for k, v in params.items():
        assert np.array_equal(ctl.net.params[k], v)
    assert ctl.timeline_index == index - 6 and ctl.history_length == ctl.timeline_index + 1
    ctl.run_phase()
    ctl.run_phase()
    _, grads = ctl.net.loss_and_grads(ctl.inputs, ctl.targets, h0=h0, truncate=1)
    assert_grads_close(ctl.grads, grads)
    assert ctl.update() is True
    assert ctl.optimizer.step_count == 1         # a fresh adam
    # an update with a norm-0.5 clip moves the parameters by lr-scaled steps only
    assert ctl.history.grad_norm[-1] == pytest.approx(
        np.sqrt(sum(np.sum(g ** 2) for g in grads.values())), rel=1e-10)
    # keeping an argument out keeps its value
    ctl.configure(lr=0.2)
    assert (ctl.truncate, ctl.optimizer.name, ctl.clip_norm) == (1, "adam", 0.5)
    ctl.configure(truncate=None, clip_norm=None)
    assert ctl.truncate is None and ctl.clip_norm is None and ctl.lr == 0.2


def test_back_across_a_settings_change_shows_the_cycle_as_it_was_run():
    # The cycle before the change was computed with full BPTT and no clipping, and its update
    # applied those gradients; going back to it must show them, not a recomputation with the
    # new settings that disagrees with the update on record.
    ctl = corpus_controller("sgd", T=4)
    ctl.run_cycle()
    ctl.run_phase()
    ctl.run_phase()
    want = picture(ctl)
    ctl.update()
    ctl.configure(truncate=0, clip_norm=0.01)
    assert ctl.back() is True
    got = picture(ctl)
    for k, v in want[0].items():
        assert np.array_equal(got[0][k], v, equal_nan=True), k
    assert got[1]["truncate"] is None


# --------------------------------------------------------------------- construction


def test_bad_construction_arguments_raise():
    net = Network(I, H, seed=0)
    x = np.arange(T) % I
    y = (x + 1) % I
    ids = np.arange(20) % I
    cases = [
        (dict(inputs=np.stack([x, x], axis=1), targets=np.stack([y, y], axis=1)), "one sequence"),
        (dict(inputs=x, targets=y + I), "targets"),
        (dict(inputs=x + I, targets=y), "inputs"),
        (dict(inputs=x), "targets"),
        (dict(targets=y), "inputs"),
        (dict(), "inputs"),
        (dict(inputs=x, targets=y[:-1]), "shape"),
        (dict(inputs=[], targets=[]), "empty"),
        (dict(inputs=x * 0.5, targets=y), "integer"),
        (dict(inputs=x, targets=y, truncate=-1), "truncate"),
        (dict(inputs=x, targets=y, lr=0), "lr"),
        (dict(inputs=x, targets=y, lr=float("nan")), "lr"),
        (dict(inputs=x, targets=y, optimizer="adamw"), "optimizer"),
        (dict(inputs=x, targets=y, clip_norm=-1), "clip_norm"),
        (dict(inputs=x, targets=y, clip_value=0), "clip_value"),
        (dict(inputs=x, targets=y, history_size=0), "history_size"),
        (dict(corpus=ids), "window"),
        (dict(corpus=ids, window=20), "length"),
        (dict(corpus=ids, window=0), "length"),
        (dict(corpus=ids + 1, window=4), "vocabulary"),
        (dict(corpus=ids, window=4, inputs=x, targets=y), "either"),
        (dict(corpus=ids, window=4, stride=0), "stride"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            Controller(net, **kwargs)


def test_the_corpus_is_cut_into_windows():
    ids = np.arange(23) % I
    net = Network(I, H, seed=0)
    ctl = Controller.from_corpus(net, ids, 5, stride=3)
    assert ctl.T == 5 and ctl.n_windows == 6
    np.testing.assert_array_equal(ctl.inputs, ids[:5])
    np.testing.assert_array_equal(ctl.targets, ids[1:6])
    ctl.run_cycle()
    np.testing.assert_array_equal(ctl.inputs, ids[3:8])
    np.testing.assert_array_equal(ctl.trace.x, ids[3:8])
    np.testing.assert_array_equal(ctl.trace.y, ids[4:9])
