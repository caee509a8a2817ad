"""Training with the controller's fast path: it learns, stops, survives divergence, goes back."""

import numpy as np
import pytest

from explorer import controller as controller_module
from explorer.controller import Controller
from explorer.data import Vocabulary
from explorer.network import Network
from explorer.presets import PRESETS, build, get_preset
from explorer.sampling import sample


def params_of(net):
    return {k: v.copy() for k, v in net.params.items()}


def assert_same_params(a, b):
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def picture(ctl):
    """What back() must restore: parameters, optimiser, place in the lesson, recorded arrays."""
    opt = ctl.optimizer.state_dict()
    arrays = {"param " + k: v for k, v in ctl.net.params.items()}
    arrays.update({f"opt {s} {k}": v for s, d in opt["state"].items() for k, v in d.items()})
    arrays.update({"hidden": ctl.hidden, "deltas": ctl.deltas, "h0": ctl.trace.h0,
                   "x": ctl.trace.x, "probs": ctl.trace.probs, "flow": ctl.trace.flow,
                   "history loss": ctl.history.loss, "history lr": ctl.history.lr})
    arrays.update({"grad " + k: v for k, v in ctl.grads.items()})
    scalars = (ctl.position, ctl.window_index, ctl.iteration, ctl.timeline_index, opt["name"],
               opt["lr"], opt["step_count"])
    return {k: np.array(v, copy=True) for k, v in arrays.items()}, scalars


def assert_same_picture(got, want):
    assert got[1] == want[1]
    assert set(got[0]) == set(want[0])
    for k, v in want[0].items():
        assert np.array_equal(got[0][k], v, equal_nan=True), k


def accuracy(net, X, Y):
    """Share of next-token predictions (argmax, each window from a zero state) that are right."""
    return np.mean([np.mean(net.forward(x).probs.argmax(axis=1) == y)
                    for x, y in zip(X, Y, strict=True)])


# --------------------------------------------------------------------- it learns


def test_hello_is_learnt_perfectly():
    preset = get_preset("hello")
    vocab, net, ctl = build(preset)
    X, Y = ctl._windows
    before = accuracy(net, X, Y)
    result = ctl.train(iterations=preset.train_iterations)
    assert result.iterations == preset.train_iterations and not result.diverged
    assert before < 1.0
    assert accuracy(net, X, Y) == 1.0
    # the tricky step: after the first "l" comes "l", after the second "o"
    assert vocab.decode(net.forward(vocab.encode("hell")).probs.argmax(axis=1)) == "ello"
    assert result.losses[-1] < 0.1 * result.losses[0]


def test_the_alphabet_is_learnt_perfectly():
    preset = get_preset("alphabet")
    _, net, ctl = build(preset)
    X, Y = ctl._windows
    assert len(X) > 1
    ctl.train(iterations=preset.train_iterations)
    assert accuracy(net, X, Y) == 1.0


@pytest.mark.parametrize("name", ["rhymes", "prose"])
def test_the_loss_falls_on_a_corpus(name):
    _, net, ctl = build(name)
    result = ctl.train(iterations=300)
    losses = np.array(result.losses)
    assert len(losses) == 300 and np.all(np.isfinite(losses))
    assert losses[-30:].mean() < 0.75 * losses[:30].mean()
    assert len(ctl.history) == 300
    np.testing.assert_array_equal(ctl.history.loss, losses)


def test_greedy_sampling_reproduces_a_learnt_text():
    text = "hello world " * 10
    vocab = Vocabulary.from_text(text)
    net = Network(len(vocab), 16, seed=0)
    ctl = Controller(net, corpus=vocab.encode(text), window=24, stride=12, optimizer="adam",
                     lr=0.01)
    ctl.train(iterations=600)
    out = sample(net, vocab, 40, temperature=0, prime="h")
    assert "h" + out == text[:41]


def test_carry_state_training_walks_the_windows_in_order():
    # with carry_state and batch size 1, training is min-char-rnn's loop: h carried across
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, 41)
    net = Network(6, 5, seed=1)
    twin = Network(**net.config())
    for k, v in net.params.items():
        twin.params[k][...] = v
    ctl = Controller(net, corpus=ids, window=8, carry_state=True, optimizer="sgd", lr=0.1,
                     truncate=3)
    X, Y = ctl._windows
    assert len(X) == 5
    state = None
    for i in range(3):
        _, grads, state = twin.loss_and_grads(X[i], Y[i], h0=state, truncate=3,
                                              return_state=True)
        for k in grads:
            twin.params[k] -= 0.1 * grads[k]
    ctl.train(iterations=3)
    for k in net.params:
        np.testing.assert_allclose(net.params[k], twin.params[k], rtol=1e-12, atol=1e-15)
    # the lesson continues where training stopped, from the carried state
    assert ctl.window_index == 3 and ctl.position == 0
    np.testing.assert_allclose(ctl.trace.h0, state.h, rtol=1e-12, atol=1e-15)


def test_epochs_count_mini_batches():
    _, _, ctl = build("gradient-check")
    n = ctl.n_windows
    result = ctl.train(epochs=3, batch_size=1)
    assert result.iterations == 3 * n
    _, _, ctl = build("alphabet")
    result = ctl.train(epochs=2, batch_size=4)
    assert result.iterations == 2 * -(-ctl.n_windows // 4)


@pytest.mark.parametrize("kwargs,name", [
    ({}, "iterations or epochs"), ({"iterations": 3, "epochs": 1}, "iterations or epochs"),
    ({"iterations": 0}, "iterations"), ({"iterations": 2.5}, "iterations"),
    ({"epochs": -1}, "epochs"), ({"iterations": 3, "batch_size": 0}, "batch_size"),
])
def test_bad_training_arguments_raise_and_change_nothing(kwargs, name):
    _, net, ctl = build("hello")
    before = picture(ctl)
    with pytest.raises(ValueError, match=name):
        ctl.train(**kwargs)
    assert_same_picture(picture(ctl), before)


# --------------------------------------------------------------------- divergence


def test_a_diverging_preset_keeps_the_last_good_parameters():
    preset = get_preset("exploding")
    _, net, ctl = build(preset)
    events = []
    ctl.subscribe(events.append)
    with np.errstate(all="ignore"):
        result = ctl.train(iterations=preset.train_iterations)
    assert result.diverged and not result.stopped
    assert "diverged" in result.message and "NaN" in result.message
    assert 0 <= result.iterations < preset.train_iterations
    assert events[-1].kind == "error" and events[-1].message == result.message
    assert all(np.all(np.isfinite(v)) for v in net.params.values())
    # the last good parameters are the last ones whose loss and gradients were finite: the
    # update that broke them leaves the record, so result.iterations updates remain, and the
    # optimiser's state, the iteration count and the history agree
    _, rerun_net, rerun = build(preset)
    if result.iterations:
        rerun.train(iterations=result.iterations)
    assert_same_params(params_of(net), params_of(rerun_net))
    assert ctl.optimizer.state_dict()["step_count"] == rerun.optimizer.state_dict()["step_count"]
    assert ctl.iteration == len(ctl.history) == result.iterations == len(result.losses)
    assert np.isfinite(rerun_net.loss(ctl.inputs, ctl.targets))
    # ... and the lesson goes on
    assert ctl.phase == "forward"
    for _ in range(ctl.T):
        ctl.step()
    assert np.all(np.isfinite(ctl.hidden))
    ctl.run_phase()
    assert ctl.phase == "update"


def test_a_huge_learning_rate_diverges_cleanly():
    ids = np.arange(61) % 5
    net = Network(5, 8, activation="identity", seed=0)
    ctl = Controller(net, corpus=ids, window=10, optimizer="sgd", lr=1e3)
    with np.errstate(all="ignore"):
        result = ctl.train(iterations=50)
    assert result.diverged and result.message
    assert all(np.all(np.isfinite(v)) for v in net.params.values())
    twin = Network(5, 8, activation="identity", seed=0)
    again = Controller(twin, corpus=ids, window=10, optimizer="sgd", lr=1e3)
    if result.iterations:
        again.train(iterations=result.iterations)
    assert_same_params(params_of(net), params_of(twin))
    ctl.configure(lr=1e-3)
    with np.errstate(all="ignore"):
        assert ctl.run_cycle() is True
    assert all(np.all(np.isfinite(v)) for v in net.params.values())


# --------------------------------------------------------------------- stopping and progress


def test_should_stop_stops_between_iterations():
    _, net, ctl = build("rhymes")
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 4

    result = ctl.train(iterations=50, should_stop=should_stop)
    assert result.stopped and not result.diverged
    assert result.iterations == 4 and len(result.losses) == 4
    assert "4" in result.message
    _, twin, again = build("rhymes")
    again.train(iterations=4)
    assert_same_params(params_of(net), params_of(twin))


def test_stopping_before_the_first_iteration_changes_nothing():
    _, _, ctl = build("rhymes")
    ctl.run_cycle()
    ctl.run_cycle()
    for _ in range(3):
        ctl.step()
    before = picture(ctl)
    result = ctl.train(iterations=10, should_stop=lambda: True)
    assert result.stopped and result.iterations == 0
    assert_same_picture(picture(ctl), before)


def test_progress_is_reported_every_iteration_or_once_at_the_end():
    _, _, ctl = build("hello")
    every = []
    ctl.train(iterations=12, on_progress=every.append, report_every=0.0)
    assert [p.iteration for p in every] == list(range(1, 13))
    once = []
    ctl.train(iterations=12, on_progress=once.append, report_every=1e9)
    assert len(once) == 1
    p = once[0]
    assert (p.iteration, p.total, p.eta_seconds) == (12, 12, 0.0)
    assert np.isfinite(p.loss) and np.isfinite(p.smooth_loss) and p.chars_per_second > 0
    assert p.lr == ctl.lr


class FakeTime:
    """A clock that advances one second each time it is read."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1.0
        return self.now


def test_progress_rate_is_bounded_by_report_every(monkeypatch):
    monkeypatch.setattr(controller_module, "time", FakeTime())
    _, _, ctl = build("hello")
    reports, events = [], []
    ctl.subscribe(lambda e: events.append(e) if e.kind == "progress" else None)
    ctl.train(iterations=40, on_progress=reports.append, report_every=4.5)
    done = [p.iteration for p in reports]
    assert 5 <= len(done) <= 40 / 4 + 1            # about one report per 4.5 s of 1 s iterations
    assert done[-1] == 40                          # and always the last one
    assert np.all(np.diff(done) >= 4) or len(done) < 3
    assert [e.progress.iteration for e in events] == done


# --------------------------------------------------------------------- training is one step back


@pytest.mark.parametrize("name", ["hello", "rhymes"])
def test_back_after_training_returns_to_the_state_before_it(name):
    _, net, ctl = build(name)
    ctl.run_cycle()
    ctl.run_cycle()
    for _ in range(ctl.T + 2):
        ctl.step()
    before = picture(ctl)
    ctl.train(iterations=25)
    after = picture(ctl)
    assert not np.array_equal(after[0]["param W"], before[0]["param W"])
    assert ctl.back() is True
    assert_same_picture(picture(ctl), before)
    # the training run is one step of the timeline: forward again lands on its result
    ctl.step()
    assert_same_picture(picture(ctl), after)
    ctl.goto(0)
    ctl.goto(ctl.history_length - 1)
    assert_same_picture(picture(ctl), after)


# --------------------------------------------------------------------- every preset


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_runs_a_cycle_and_trains(name):
    preset = PRESETS[name]
    vocab, net, ctl = build(name)
    assert net.input_size == len(vocab) and ctl.T == preset.window
    assert (net.cell, net.hidden_size) == (preset.cell, preset.hidden)
    events = []
    ctl.subscribe(events.append)
    assert ctl.run_cycle() is True
    assert events[-1].kind == "update"
    assert np.isfinite(ctl.history.loss[-1])
    with np.errstate(all="ignore"):
        result = ctl.train(iterations=100 if name == "exploding" else 5,
                           batch_size=preset.batch_size)
    if name == "exploding":
        assert result.diverged                    # the demo of what clipping prevents
    else:
        assert not result.diverged and result.iterations == 5
        assert np.all(np.isfinite(result.losses))
    assert all(np.all(np.isfinite(v)) for v in net.params.values())
    ctl.run_phase()
    assert np.all(np.isfinite(ctl.hidden))
    ctl.run_phase()
    assert np.all(np.isfinite(ctl.deltas)) and ctl.phase == "update"


def test_clipping_keeps_the_exploding_network_finite():
    preset = get_preset("exploding-clipped")
    _, net, ctl = build(preset)
    result = ctl.train(iterations=preset.train_iterations)
    assert not result.diverged and result.iterations == preset.train_iterations
    assert np.all(np.isfinite(result.losses))
