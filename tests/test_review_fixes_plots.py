"""Flow, eigenvalue and sample views: normalised flow, ρ(W) as a condition, views that fit."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PyQt5 import QtGui, QtWidgets  # noqa: E402

from explorer.analysis import flow_by_distance, step_gain_bound  # noqa: E402
from explorer.network import Network  # noqa: E402
from explorer.presets import build  # noqa: E402
from ui.panels.eigen import EigenPanel, verdict  # noqa: E402
from ui.panels.flow import MIN_TERMS, Y_TITLES, FlowPanel, rate_caption  # noqa: E402
from ui.panels.sampling import SamplePanel  # noqa: E402
from ui.selection import Selection  # noqa: E402

TAB_SIZES = [(420, 300), (539, 228), (700, 450)]


def lower_flow(T, seed=0):
    """A made-up flow matrix: positive on and below the diagonal, NaN above it."""
    rng = np.random.default_rng(seed)
    flow = rng.uniform(0.1, 2.0, (T, T)) * 10.0 ** rng.uniform(-3, 3, (T, 1))
    flow[np.triu_indices(T, 1)] = np.nan
    return flow


def by_diagonal(values):
    """Mean, min, max of each diagonal s − t = d, written the plain way."""
    T = values.shape[0]
    out = np.full((3, T), np.nan)
    for d in range(T):
        diag = np.diagonal(values, offset=-d)
        out[:, d] = diag.mean(), diag.min(), diag.max()
    return out


# ----------------------------------------------------------------------------- analysis


def test_flow_by_distance_raw_is_the_mean_min_max_of_each_diagonal():
    for seed in range(3):
        flow = lower_flow(9, seed)
        np.testing.assert_allclose(np.array(flow_by_distance(flow)), by_diagonal(flow))
    nothing = np.full((5, 5), np.nan)                 # before the forward phase ends
    assert np.isnan(np.array(flow_by_distance(nothing))).all()
    assert np.isnan(np.array(flow_by_distance(nothing, normalise=True))).all()


def test_normalised_flow_divides_each_loss_term_by_its_own_size():
    flow = lower_flow(7)
    mean, low, high = flow_by_distance(flow, normalise=True)
    fractions = flow / np.diagonal(flow)[:, None]
    np.testing.assert_allclose(np.array([mean, low, high]), by_diagonal(fractions))
    assert mean[0] == low[0] == high[0] == 1.0
    # Rescaling one loss term (row) changes the raw curves but not the normalised ones.
    for s, factor in ((6, 1e-6), (3, 1e4), (0, 7.0)):
        scaled = flow.copy()
        scaled[s] *= factor
        again = flow_by_distance(scaled, normalise=True)
        np.testing.assert_allclose(np.array(again), np.array([mean, low, high]))
        assert not np.allclose(flow_by_distance(scaled)[0], flow_by_distance(flow)[0])


def test_flow_by_distance_min_terms_blanks_the_longest_distances():
    T = 8
    flow = lower_flow(T, seed=4)
    full = np.array(flow_by_distance(flow, normalise=True))
    for min_terms in (1, 2, 3, 5, T, T + 1):
        part = np.array(flow_by_distance(flow, normalise=True, min_terms=min_terms))
        kept = T - np.arange(T) >= min_terms          # T − d loss terms reach distance d
        np.testing.assert_array_equal(part[:, kept], full[:, kept])
        assert np.isnan(part[:, ~kept]).all()
        raw = np.array(flow_by_distance(flow, min_terms=min_terms))
        assert np.isnan(raw[:, ~kept]).all() and np.isfinite(raw[:, kept]).all()


def test_normalised_flow_leaves_out_terms_without_a_size():
    flow = np.array([[2.0, np.nan, np.nan],
                     [4.0, 0.0, np.nan],              # L_1 has no gradient at h_1
                     [1.0, 3.0, 6.0]])
    mean, low, high = flow_by_distance(flow, normalise=True)
    np.testing.assert_allclose(mean, [1.0, 0.5, 1 / 6])   # d = 1: only L_2 (3/6) counts
    np.testing.assert_allclose(low, [1.0, 0.5, 1 / 6])
    mean, _, _ = flow_by_distance(flow, normalise=True, min_terms=2)
    assert np.isnan(mean[1:]).all() and mean[0] == 1.0      # d = 1 has one usable term


@pytest.mark.parametrize("kwargs, word", [
    ({"min_terms": 0}, "min_terms"), ({"min_terms": 1.5}, "min_terms"),
    ({"min_terms": True}, "min_terms"), ({"flow": np.ones((3, 4))}, "flow"),
    ({"flow": np.ones(3)}, "flow")])
def test_flow_by_distance_rejects_bad_arguments(kwargs, word):
    args = {"flow": np.ones((3, 3))} | kwargs
    with pytest.raises(ValueError, match=word):
        flow_by_distance(**args)


def test_normalised_flow_removes_the_single_term_artefact_of_the_exploding_preset():
    _, _, ctl = build("exploding")
    T = ctl.T
    for update in range(3):                # this window, then the next ones after updates
        ctl.run_phase()
        raw = ctl.flow_by_distance()[0]
        if update == 0:
            # L_19 is tiny: the raw mean at the last distance drops though the flow grows.
            assert raw[-1] < raw[-2] / 10
        mean, low, high = flow_by_distance(ctl.trace.flow, normalise=True, min_terms=3)
        assert np.isnan(mean[T - 2:]).all()
        steps = np.diff(mean[:T - 2])
        assert (steps > 0).all()                          # grows at every distance
        assert (low <= mean)[:T - 2].all() and (mean <= high)[:T - 2].all()
        # The band no longer spans the terms' sizes: within 10× at every distance.
        assert (high / low)[:T - 2].max() < 10
        ctl.run_phase()
        ctl.step()


def test_step_gain_bound_bounds_every_backward_step():
    rng = np.random.default_rng(0)
    for activation, slope in (("tanh", 1.0), ("relu", 1.0), ("identity", 1.0),
                              ("sigmoid", 0.25)):
        net = Network(3, 6, activation=activation, seed=1, init_scale=2.0)
        W = net.params["W"]
        bound = step_gain_bound(net)
        np.testing.assert_allclose(bound, slope * np.linalg.norm(W, 2))
        assert bound >= slope * np.abs(np.linalg.eigvals(W)).max() - 1e-12
        for _ in range(50):                  # any mask f′(a) in [0, max f′], any gradient
            g = rng.normal(size=6)
            mask = rng.uniform(0, slope, 6)
            assert np.linalg.norm(W.T @ (mask * g)) <= bound * np.linalg.norm(g) + 1e-12
    # ρ(W) = 0 yet a relu mask makes a step stretch the gradient ×1.5: ρ alone decides
    # nothing, and the bound says so.
    net = Network(2, 2, activation="relu", seed=0)
    net.params["W"][...] = 1.5 * np.array([[1.0, -1.0], [1.0, -1.0]])
    assert np.abs(np.linalg.eigvals(net.params["W"])).max() < 1e-6
    g = np.array([1.0, 0.0])
    masked = net.params["W"].T @ (np.array([1.0, 0.0]) * g)
    assert np.linalg.norm(masked) > 1.4 and step_gain_bound(net) > 1
    with pytest.raises(ValueError, match="cell"):
        step_gain_bound(Network(3, 4, cell="lstm", seed=0))
    broken = Network(3, 4, seed=0)
    broken.params["W"][0, 0] = np.inf
    assert np.isnan(step_gain_bound(broken))


# ----------------------------------------------------------------------------- rate caption


def test_rate_caption_needs_a_steady_trend_over_several_distances():
    d = np.arange(20.0)
    assert rate_caption(10.0 ** (-d / 3)) == "falls 10× every 3 steps: vanishing"
    assert rate_caption(10.0 ** (d / 5)) == "grows 10× every 5 steps: exploding"
    # One noisy point does not make a verdict: flat but for a collapse at the end...
    flat = 1.0 + 0.02 * np.sin(d)
    tail = flat.copy()
    tail[-1] = 1e-4
    for curve in (tail, np.where(d == 7, 1e-5, flat)):    # ...or in the middle
        caption = rate_caption(curve)
        assert "vanishing" not in caption and "exploding" not in caption, caption
    assert "unevenly" in rate_caption(tail)
    assert "less than 10×" in rate_caption(np.where(d == 7, 1e-5, flat))
    # Too few distances: a number, no verdict.
    for curve in (np.array([1.0, 1e-3]), np.array([1.0, 1e-2, 1e-4, np.nan])):
        caption = rate_caption(curve)
        assert "too few" in caption and "vanishing" not in caption, caption
    assert rate_caption(np.array([1.0, 0.55])) == "falls 1.8× in 1 step: too few to judge"
    assert rate_caption(np.full(5, np.nan)) == ""


# ----------------------------------------------------------------------------- flow panel


def make(qtbot, cls, preset="hello", size=(700, 450)):
    _, _, ctl = build(preset)
    panel = cls(ctl, Selection())
    qtbot.addWidget(panel)
    panel.resize(*size)
    panel.show()
    panel.refresh()
    return panel, ctl


def data(curve):
    return curve.getOriginalDataset()


@pytest.mark.parametrize("preset, word", [("vanishing", "vanishing"),
                                          ("exploding", "exploding"),
                                          ("lstm-recall", "vanishing")])
def test_flow_panel_draws_the_normalised_flow_over_several_updates(qtbot, preset, word):
    panel, ctl = make(qtbot, FlowPanel, preset)
    T = ctl.T
    for _ in range(2):
        ctl.run_phase()                                  # the forward phase ends
        for _ in range(2):                               # the backward phase keeps it
            panel.refresh()
            mean, low, high = flow_by_distance(ctl.trace.flow, normalise=True,
                                               min_terms=MIN_TERMS)
            for curve, values in ((panel.mean, mean), (panel.low, low), (panel.high, high)):
                x, y = data(curve)
                np.testing.assert_array_equal(x, np.arange(T))
                np.testing.assert_allclose(y, values)
            # The grey tail: the distances with fewer than 3 terms, joined to the mean.
            every = flow_by_distance(ctl.trace.flow, normalise=True)[0]
            x, y = data(panel.tail)
            np.testing.assert_array_equal(x, np.arange(T - MIN_TERMS, T))
            np.testing.assert_allclose(y, every[T - MIN_TERMS:])
            assert y[0] == data(panel.mean)[1][T - MIN_TERMS]
            header = panel.header.text()
            assert rate_caption(mean) in header and word in header
            assert "Measured" in header
            ctl.step()
        ctl.run_phase()                                  # the rest of backward, update
        if ctl.phase == "update":
            ctl.step()


def test_flow_panel_hover_names_the_fraction_and_the_terms(qtbot):
    panel, ctl = make(qtbot, FlowPanel, "vanishing")
    ctl.run_phase()
    panel.refresh()
    T = ctl.T
    raw = ctl.flow_by_distance()[0]
    every = flow_by_distance(ctl.trace.flow, normalise=True)[0]
    text = panel.distance_text(4)
    assert f"{every[4]:.3g}".replace("-", "−") in text and f"over {T - 4} loss terms" in text
    assert f"{raw[4]:.3g}".replace("-", "−") in text and "min" in text
    assert "too few" in panel.distance_text(T - 1) and "over 1 loss term " in \
        panel.distance_text(T - 1)
    assert "not computed" in panel.distance_text(T + 3)


def test_flow_panel_does_not_judge_a_window_too_short(qtbot):
    panel, ctl = make(qtbot, FlowPanel, "hello")          # T = 4
    for _ in range(3):
        ctl.run_phase()
        panel.refresh()
        header = panel.header.text()
        assert "too few" in header
        assert "vanishing" not in header and "exploding" not in header
        ctl.run_cycle()


def test_flow_panel_says_when_the_gradients_overflow(qtbot):
    vocab, net, _ = build("exploding")
    params = {"W": net.params["W"] * 1e40}
    _, _, ctl = build("exploding", params=params)
    panel = FlowPanel(ctl, Selection())
    qtbot.addWidget(panel)
    panel.resize(539, 228)
    with np.errstate(all="ignore"):
        ctl.run_phase()
    for _ in range(2):
        panel.refresh()
        assert panel.stack.currentIndex() == 0 and "exploded" in panel.message.text()


@pytest.mark.parametrize("size", TAB_SIZES)
def test_flow_panel_keeps_a_key_and_a_y_title_that_fit(qtbot, size):
    panel, ctl = make(qtbot, FlowPanel, "vanishing", size)
    ctl.run_phase()
    panel.refresh()
    qtbot.wait(50)                                    # let the layout settle
    header = panel.header.text()
    assert "mean over" in header and "min–max" in header and f"&lt; {MIN_TERMS} terms" in header
    # The y title is the longest one that fits the plot's height.
    font = QtGui.QFont()
    font.setPointSize(12)
    metrics = QtGui.QFontMetrics(font)
    room = panel.plot.vb.height()

    def width(title):
        return metrics.horizontalAdvance(QtGui.QTextDocumentFragment.fromHtml(title)
                                         .toPlainText())
    title = panel.plot.getAxis("left").labelText
    assert title in Y_TITLES
    if title != Y_TITLES[-1]:
        assert width(title) + 10 <= room
    longer = Y_TITLES[:Y_TITLES.index(title)]
    assert all(width(t) + 10 > room for t in longer)
    # ρ(W) is named only where there is room for it.
    assert ("ρ(W)" in header) == (size[0] >= 640)


# ----------------------------------------------------------------------------- eigenvalues


def test_verdict_is_a_condition_never_a_measurement():
    cases = [
        (0.62, 0.80, "tanh", "gradients fade", "≤&nbsp;80%"),
        (0.90, 1.30, "tanh", "tend to fade", "1.30 ≥ 1"),
        (0.90, 1.30, "identity", "fade over many steps", "see Flow"),
        (2.10, 3.00, "tanh", "can grow</b> where f′ ≈ 1", "see Flow"),
        (2.10, 3.00, "relu", "can grow</b> where f′ ≈ 1", "see Flow"),
        (5.00, 1.50, "sigmoid", "can grow</b> where f′ ≈ ¼", "see Flow"),
        (2.00, 0.75, "sigmoid", "but f′ ≤ ¼: gradients fade", "75%"),
        (1.20, 1.20, "identity", "gradients grow", "×1.20 per step"),
        (1.00, 1.10, "tanh", "≈ 1: gradients keep their size at most", "see Flow"),
        (float("nan"), float("nan"), "tanh", "overflowed", "ρ(W)"),
    ]
    for rho, bound, activation, *words in cases:
        text = verdict(rho, bound, activation)
        for word in words:
            assert word in text, (text, word)
        assert "vanish" not in text and "explode" not in text


@pytest.mark.parametrize("preset, words", [
    ("vanishing", ("ρ(W) = 0.50 &lt; 1: gradients fade", "‖W‖₂")),
    ("hello", ("&lt; 1: gradients fade", "99.9%")),
    ("truncated-bptt", ("tend to fade", "see Flow")),
    ("exploding", ("&gt; 1: gradients grow", "see Flow"))])
def test_eigen_header_states_the_condition_after_updates(qtbot, preset, words):
    panel, ctl = make(qtbot, EigenPanel, preset)
    for cycle in range(3):
        rho = ctl.spectral_radius()
        bound = step_gain_bound(ctl.net)
        header = panel.header.text()
        assert header.startswith(verdict(rho, bound, ctl.net.activation))
        if cycle == 0:
            for word in words:
                assert word in header, header
        with np.errstate(all="ignore"):
            ctl.run_cycle()
        panel.refresh()


@pytest.mark.parametrize("preset", ["lstm-recall", "gru-brackets"])
@pytest.mark.parametrize("size", TAB_SIZES)
def test_gated_eigen_key_fits_a_tab(qtbot, preset, size):
    panel, ctl = make(qtbot, EigenPanel, preset, size)
    qtbot.wait(50)
    header = panel.header
    for name, lam in ctl.eigenvalues().items():
        assert f"●&nbsp;{name[-1]}&nbsp;{np.abs(lam).max():.2f}" in header.text()
    # Two lines at most (the block radii, then the note), so the plot keeps its room.
    line = QtGui.QFontMetrics(header.font()).lineSpacing()
    assert header.heightForWidth(header.width()) <= 2 * line + 4
    assert panel.widget.height() >= 0.6 * size[1]


# ----------------------------------------------------------------------------- sample panel


@pytest.mark.parametrize("preset", ["hello", "word-lm", "prose"])
def test_sample_panel_fits_a_narrow_dock(qtbot, preset):
    vocab, net, _ = build(preset)
    panel = SamplePanel(net=net, vocab=vocab)
    area = QtWidgets.QScrollArea()             # as the window docks it
    area.setWidget(panel)
    area.setWidgetResizable(True)
    qtbot.addWidget(area)
    area.resize(280, 600)
    area.show()
    qtbot.wait(20)
    assert panel.minimumSizeHint().width() <= 270
    assert not area.horizontalScrollBar().isVisible()
    right = panel.button.mapTo(panel, panel.button.rect().topRight()).x()
    assert right <= area.viewport().width()
    for length in (10, 20):
        panel.length.setValue(length)
        assert panel.generate() is not None
    assert not area.horizontalScrollBar().isVisible()
