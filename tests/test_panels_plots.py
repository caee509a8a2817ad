"""The plot panels (output, loss, flow, weights, eigenvalues) show the controller's numbers."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
import pytest  # noqa: E402

from explorer.analysis import flow_by_distance  # noqa: E402
from explorer.presets import build  # noqa: E402
from ui.panels.base import COLORS, nice_limit  # noqa: E402
from ui.panels.eigen import EigenPanel  # noqa: E402
from ui.panels.flow import FlowPanel, radius_text, rate_caption  # noqa: E402
from ui.panels.loss import LossPanel, decimate, log_ticks  # noqa: E402
from ui.panels.output import TOP_K, OutputPanel, token_label  # noqa: E402
from ui.panels.weights import WeightsPanel  # noqa: E402
from ui.selection import Selection  # noqa: E402

ALL_PANELS = (OutputPanel, LossPanel, FlowPanel, WeightsPanel, EigenPanel)


def make(qtbot, cls, preset="hello"):
    _, _, ctl = build(preset)
    selection = Selection()
    panel = cls(ctl, selection)
    qtbot.addWidget(panel)
    panel.resize(700, 450)
    panel.show()
    panel.refresh()
    return panel, ctl, selection


def bar_heights(bars):
    return np.asarray(bars.opts["height"], dtype=float)


def brush_color(brush):
    return pg.mkBrush(brush).color().name()


# ----------------------------------------------------------------------------- every panel


@pytest.mark.parametrize("cls", ALL_PANELS)
def test_every_panel_has_a_tooltip_a_name_and_exports(qtbot, cls):
    panel, ctl, _ = make(qtbot, cls)
    assert panel.toolTip() and len(panel.tooltip) > 20
    assert panel.name in ("output", "loss", "flow", "weights", "eigen")
    for _ in range(2 * ctl.T + 1):
        ctl.step()
        panel.refresh()
    items = panel.export_items()
    assert items and all(isinstance(label, str) for label, _ in items)


@pytest.mark.parametrize("cls", ALL_PANELS)
def test_every_panel_follows_a_new_lesson(qtbot, cls):
    panel, ctl, selection = make(qtbot, cls)
    for preset in ("lstm-recall", "word-lm", "gru-brackets"):
        _, _, other = build(preset)
        for _ in range(other.T + 3):
            other.step()
        panel.set_controller(other)
        panel.refresh()
    assert panel.ctl is other


# ----------------------------------------------------------------------------- output


def test_output_bars_are_the_probabilities_step_after_step(qtbot):
    panel, ctl, _ = make(qtbot, OutputPanel)
    assert panel.stack.currentIndex() == 0          # nothing computed: a text, not a plot
    assert "not computed yet" in panel.message.text()
    for t in range(ctl.T):
        ctl.step()
        panel.refresh()
        assert panel.stack.currentIndex() == 1
        probs = ctl.trace.probs[t]
        np.testing.assert_allclose(bar_heights(panel.bars), probs)
        target = int(ctl.trace.y[t])
        brushes = [brush_color(b) for b in panel.bars.opts["brushes"]]
        assert brushes[target] == pg.mkColor(COLORS["target"]).name()
        assert all(c != brushes[target] for i, c in enumerate(brushes) if i != target)
        assert "target" in panel.target_label.textItem.toPlainText()
        x, y = panel.target_label.pos().x(), panel.target_label.pos().y()
        assert round(x) == target and y >= probs[target]
        title = panel.header.text()
        assert f"t = {t}" in title and f"{ctl.trace.loss[t]:.3g}" in title
        top = int(np.argmax(probs))
        assert f"{probs[top]:.2f}" in (panel.target_label.textItem.toPlainText()
                                       + panel.top_label.textItem.toPlainText())
        assert panel.plot.vb.viewRange()[1][0] == 0


def test_output_follows_the_selected_step_and_hover_names_the_token(qtbot):
    panel, ctl, selection = make(qtbot, OutputPanel)
    ctl.run_phase()
    selection.select_step(1)
    panel.refresh()
    np.testing.assert_allclose(bar_heights(panel.bars), ctl.trace.probs[1])
    token = ctl.token(2)
    text = panel.bar_text(2)
    assert f"ŷ_1['{token}']" in text and f"{ctl.trace.probs[1, 2]:.4g}" in text
    target = int(ctl.trace.y[1])
    assert "the target" in panel.bar_text(target)
    # going back un-computes the step: the explanation returns
    selection.select_step(None)
    while ctl.position > 0:
        ctl.back()
    panel.refresh()
    assert panel.stack.currentIndex() == 0


def test_output_large_vocabulary_shows_the_top_and_the_target_sorted(qtbot):
    panel, ctl, _ = make(qtbot, OutputPanel, "word-lm")
    for t in range(ctl.T):
        ctl.step()
        panel.refresh()
        probs = ctl.trace.probs[t]
        target = int(ctl.trace.y[t])
        shown = panel._shown
        assert target in shown
        assert len(shown) in (TOP_K, TOP_K + 1)
        heights = bar_heights(panel.bars)
        np.testing.assert_allclose(heights, probs[shown])
        top = heights[:TOP_K]
        assert np.all(np.diff(top) <= 0)                       # sorted, most likely first
        assert np.isclose(top[0], probs.max())
        assert panel.axis.vertical                            # words stand upright
        labels = [text for _, text in panel.axis._labels]
        assert labels == [token_label(ctl.token(i)) for i in shown]


def test_token_labels_are_visible_and_short():
    assert token_label(" ") == "␣" and token_label("\n") == "↵"
    assert token_label("SENTENCE_START") == "⟨start⟩"
    assert len(token_label("incomprehensibilities")) <= 9


# ----------------------------------------------------------------------------- loss


def test_loss_bars_fill_in_with_the_step_losses(qtbot):
    panel, ctl, _ = make(qtbot, LossPanel)
    for _ in range(2 * ctl.T):
        ctl.step()
        panel.refresh()
        np.testing.assert_allclose(bar_heights(panel.step_bars),
                                   np.nan_to_num(ctl.trace.loss, nan=0.0))
        assert f"{ctl.window_loss:.3g}" in panel.step_title.text()
        brushes = [brush_color(b) for b in panel.step_bars.opts["brushes"]]
        assert brushes[ctl.current] == pg.mkColor(COLORS["current"]).name()
    assert "No update yet" in panel.empty_text.textItem.toPlainText()
    assert panel.empty_text.isVisible()


def test_loss_history_has_a_point_per_update_and_per_training_iteration(qtbot):
    panel, ctl, _ = make(qtbot, LossPanel)
    for n in range(1, 4):
        ctl.run_cycle()
        panel.refresh()
        x, y = panel.history_curve.getOriginalDataset()
        np.testing.assert_array_equal(x, np.arange(1, n + 1))
        np.testing.assert_allclose(y, ctl.history.loss)
        _, smooth = panel.smooth_curve.getOriginalDataset()
        np.testing.assert_allclose(smooth, ctl.history.smooth_loss)
        assert not panel.empty_text.isVisible()
    ctl.train(iterations=40)
    panel.refresh()
    x, y = panel.history_curve.getOriginalDataset()
    assert len(x) == 43
    np.testing.assert_allclose(y, ctl.history.loss)
    assert "(43 updates)" in panel.hist_title.text()
    panel.show_norm.setChecked(True)
    _, norm = panel.norm_curve.getOriginalDataset()
    np.testing.assert_allclose(norm, ctl.history.grad_norm)


def test_loss_hover_explains_a_step(qtbot):
    panel, ctl, _ = make(qtbot, LossPanel)
    assert "not computed yet" in panel.step_text(0)
    ctl.step()
    text = panel.step_text(0)
    assert text.startswith("L_0 = −ln ŷ_0") and f"{ctl.trace.loss[0]:.3g}" in text


def test_decimate_keeps_the_extremes_and_few_points():
    x = np.arange(1, 100_001, dtype=float)
    y = np.sin(x / 500.0)
    y[12_345] = 50.0
    y[67_890] = -40.0
    xs, ys = decimate(x, y, 1000, peaks=True)
    assert len(xs) <= 1100 and len(xs) == len(ys)
    assert ys.max() == 50.0 and ys.min() == -40.0
    assert xs[0] == 1 and np.all(np.diff(xs) >= 0)
    xs, ys = decimate(x, y, 1000)
    assert len(xs) <= 1100 and xs[-1] == x[-1]
    short = np.arange(5.0)
    assert decimate(short, short, 1000)[0] is short


def test_log_ticks_label_decades_plainly():
    major, minor = log_ticks(-6.2, 0.3)
    labels = [text for _, text in major]
    assert "1" in labels and "0.001" in labels and "10⁻⁶" in labels
    assert all(text == "" for _, text in minor)
    major, _ = log_ticks(1.1, 2.4)                # short range: 1, 2, 5 × 10^k
    assert [text for _, text in major] == ["20", "50", "100", "200"]


# ----------------------------------------------------------------------------- flow


def test_flow_explains_itself_until_the_forward_phase_ends(qtbot):
    panel, ctl, _ = make(qtbot, FlowPanel)
    for _ in range(ctl.T - 1):
        ctl.step()
        panel.refresh()
        assert panel.stack.currentIndex() == 0
        assert "more step" in panel.message.text()
    ctl.step()
    panel.refresh()
    assert panel.stack.currentIndex() == 1


@pytest.mark.parametrize("preset, word", [("vanishing", "vanishing"), ("exploding", "exploding")])
def test_flow_curves_are_the_controllers_and_the_caption_names_the_regime(qtbot, preset, word):
    panel, ctl, _ = make(qtbot, FlowPanel, preset)
    ctl.run_phase()
    for _ in range(3):                 # the backward phase does not change the flow
        panel.refresh()
        # Each loss term as a fraction of its own ‖∂L_s/∂h_s‖, over at least 3 terms.
        mean, low, high = flow_by_distance(ctl.trace.flow, normalise=True, min_terms=3)
        for curve, values in ((panel.mean, mean), (panel.low, low), (panel.high, high)):
            x, y = curve.getOriginalDataset()
            np.testing.assert_array_equal(x, np.arange(ctl.T))
            np.testing.assert_allclose(y, values)
        assert word in panel.header.text()
        assert f"ρ(W) = {ctl.spectral_radius():.2f}" in panel.header.text()
        assert not panel.cut.isVisible()
        ctl.step()
    assert f"{ctl.flow_by_distance()[0][2]:.3g}" in panel.distance_text(2)


def test_flow_says_when_the_network_has_blown_up(qtbot):
    _, net, _ = build("exploding")
    _, _, ctl = build("exploding", params={"W": net.params["W"] * 1e40})
    panel = FlowPanel(ctl, Selection())
    qtbot.addWidget(panel)
    with np.errstate(all="ignore"):
        ctl.run_phase()
    for _ in range(2):                       # and still says so on the next frame
        panel.refresh()
        assert panel.stack.currentIndex() == 0
        assert "exploded" in panel.message.text()
    assert radius_text(3.80e18) == "3.8e+18" and radius_text(1.2) == "1.20"


def test_flow_marks_the_truncation_distance(qtbot):
    panel, ctl, _ = make(qtbot, FlowPanel, "truncated-bptt")
    ctl.run_phase()
    panel.refresh()
    assert panel.cut.isVisible() and panel.cut.value() == ctl.truncate
    label = panel.cut_label.textItem.toPlainText()
    assert f"k = {ctl.truncate}: truncated BPTT" in label and "leaves out" in label
    ctl.configure(truncate=None)
    ctl.run_phase()
    panel.refresh()
    assert not panel.cut.isVisible()


def test_rate_caption_reads_the_slope():
    d = np.arange(20.0)
    assert rate_caption(10.0 ** (-d / 3)) == "falls 10× every 3 steps: vanishing"
    assert rate_caption(10.0 ** (d / 12)) == "grows 10× every 12 steps: exploding"
    assert "less than 10×" in rate_caption(1.0 + 0.01 * d)
    assert rate_caption(np.full(5, np.nan)) == ""


# ----------------------------------------------------------------------------- weights


def test_weight_and_gradient_images_are_the_params_and_the_accumulated_grads(qtbot):
    panel, ctl, _ = make(qtbot, WeightsPanel)
    ctl.run_phase()
    limits = None
    for _ in range(ctl.T):
        ctl.step()
        panel.refresh()
        grads = ctl.grads
        for name in ("U", "W", "V"):
            np.testing.assert_array_equal(panel.images[name].image,
                                          ctl.net.params[name])
            np.testing.assert_array_equal(panel.images["d" + name].image, grads[name])
            limit = nice_limit(ctl.scales["grads"][name])
            assert panel.images["d" + name].levels.tolist() == [-limit, limit]
        done = ctl.position - ctl.T
        if done < ctl.T:
            assert f"<b>{ctl.T - 1}…{ctl.T - done}</b>" in panel.header.text()
        levels = [tuple(panel.images[n].levels) for n in ("U", "W", "V")]
        assert limits is None or levels == limits        # fixed within the cycle
        limits = levels
    assert f"complete: steps <b>{ctl.T - 1}…0</b>" in panel.header.text()
    assert "the update is next: θ ← θ − η" in panel.header.text()
    before = {name: ctl.net.params[name].copy() for name in ("U", "W", "V")}
    ctl.step()                                           # the update changes the weights
    panel.refresh()
    # The next forward phase: the lower row shows what the update changed.
    for name in ("U", "W", "V"):
        np.testing.assert_array_equal(panel.images[name].image, ctl.net.params[name])
        change = ctl.net.params[name] - before[name]
        np.testing.assert_allclose(panel.images["d" + name].image, change, rtol=0, atol=1e-15)
        assert change.any()
        limit = nice_limit(np.max(np.abs(change)))
        assert panel.images["d" + name].levels.tolist() == [-limit, limit]
        assert panel.titles["d" + name].text == f"Δ{name}"
    assert f"Δθ of update {ctl.iteration} = −η · " in panel.header.text()
    assert panel.cell_text("W", True, 0, 1).startswith("ΔW[0, 1] = ")
    ctl.run_phase()                                      # forward done: still the update
    ctl.step()                                           # the first backward step
    panel.refresh()
    np.testing.assert_array_equal(panel.images["dW"].image, ctl.grads["W"])
    assert panel.titles["dW"].text == "∂L/∂W"


def test_weights_hover_text_and_gate_blocks(qtbot):
    panel, ctl, _ = make(qtbot, WeightsPanel)
    ctl.run_phase()
    ctl.step()
    ctl.step()
    panel.refresh()
    W, dW = ctl.net.params["W"], ctl.grads["W"]
    assert panel.cell_text("W", False, 3, 5).startswith(f"W[3, 5] = {W[3, 5]:.3g}"
                                                        .replace("-", "−"))
    assert panel.cell_text("W", True, 3, 5).startswith(f"∂L/∂W[3, 5] = {dW[3, 5]:.3g}"
                                                       .replace("-", "−"))
    assert "input 'h'" in panel.cell_text("U", False, 0, 1)
    assert not panel.gate_lines["W"]
    _, _, lstm = build("lstm-recall")
    panel.set_controller(lstm)
    H = lstm.net.hidden_size
    lines = panel.gate_lines["W"]
    assert [line.value() for line in lines] == [H, 2 * H, 3 * H]
    assert "(gate f, unit 2)" in panel.cell_text("W", False, H + 2, 0)
    ticks = panel.plots["dU"].getAxis("left")._tickLevels[0]
    assert [label for _, label in ticks] == list("ifgo")


# ----------------------------------------------------------------------------- eigenvalues


def scatter_points(scatter):
    x, y = scatter.getData()
    return np.sort_complex(np.asarray(x) + 1j * np.asarray(y))


@pytest.mark.parametrize("preset, verdict", [("exploding", "gradients grow"),
                                             ("vanishing", "fade")])
def test_eigen_scatter_is_the_eigenvalues_and_updates_after_updates(qtbot, preset, verdict):
    panel, ctl, _ = make(qtbot, EigenPanel, preset)
    for _ in range(3):
        eig = ctl.eigenvalues()["W"]
        np.testing.assert_allclose(scatter_points(panel.scatters["W"]), np.sort_complex(eig))
        rho = float(np.max(np.abs(eig)))
        assert f"ρ(W) = {radius_text(rho)}" in panel.header.text()
        assert verdict in panel.header.text()
        assert panel.plot.vb.state["aspectLocked"]
        ctl.run_cycle()
        panel.refresh()
    assert f"|λ| = {abs(ctl.eigenvalues()['W'][0]):.3g}" in panel.point_text("W", 0)


def test_eigen_gated_cells_have_one_scatter_per_block(qtbot):
    panel, ctl, _ = make(qtbot, EigenPanel, "lstm-recall")
    eig = ctl.eigenvalues()
    assert list(panel.scatters) == ["W_i", "W_f", "W_g", "W_o"]
    colors = {brush_color(s.opts["brush"]) for s in panel.scatters.values()}
    assert len(colors) == 4
    for name, scatter in panel.scatters.items():
        np.testing.assert_allclose(scatter_points(scatter), np.sort_complex(eig[name]))
    key = panel.header.text()
    for name, lam in eig.items():
        assert f"●&nbsp;{name[-1]}&nbsp;{np.abs(lam).max():.2f}" in key
    assert "|λ| = 1" in key


# ----------------------------------------------------------------------------- hover


def hover_at(panel, plot, x, y):
    """Move the mouse, as far as the panel knows, to view point (x, y) of ``plot``."""
    scene_pos = plot.vb.mapViewToScene(pg.QtCore.QPointF(x, y))
    plot.scene().sigMouseMoved.emit(scene_pos)


def test_hovering_shows_the_numbers_under_the_mouse(qtbot):
    output, ctl, _ = make(qtbot, OutputPanel)
    ctl.step()
    output.refresh()
    hover_at(output, output.plot, 3, 0.05)
    assert output.plot_widget.toolTip() == output.bar_text(3)

    weights, ctl, _ = make(qtbot, WeightsPanel)
    ctl.run_phase()
    ctl.step()
    weights.refresh()
    hover_at(weights, weights.plots["dW"], 5.5, 3.5)      # column 5, row 3
    assert weights.view.toolTip() == weights.cell_text("W", True, 3, 5)
    assert weights.view.toolTip().startswith("∂L/∂W[3, 5] = ")

    eigen, ctl, _ = make(qtbot, EigenPanel, "exploding")
    lam = ctl.eigenvalues()["W"][4]
    hover_at(eigen, eigen.plot, lam.real, lam.imag)
    assert eigen.widget.toolTip() == eigen.point_text("W", 4)


def test_output_scale_fits_the_windows_probabilities_and_replays_the_same(qtbot):
    """An untrained model's 1/V bars stay visible: the y axis ends at the smallest of 0.05,
    0.1, 0.2, 0.5, 1 above every probability of the window computed so far, and a step shows
    the same scale every time it is revisited."""
    panel, ctl, _ = make(qtbot, OutputPanel, "prose")
    scales = []
    for _ in range(ctl.T):
        ctl.step()
        panel.refresh()
        seen = float(np.nanmax(ctl.trace.probs))
        top = panel._y_top
        assert seen <= top and (top == 0.05 or seen > {0.1: 0.05, 0.2: 0.1, 0.5: 0.2,
                                                       1.0: 0.5}[top])
        low, high = panel.plot.vb.viewRange()[1]
        assert low == 0 and high == pytest.approx(1.3 * top)
        scales.append(top)
    assert scales[0] < 1.0                 # 65 symbols, untrained: far below 1
    ctl.goto(3)                            # back to the fourth step of the timeline
    panel.refresh()
    assert panel._y_top == scales[2]
