"""The lesson panels (sequence strip, unrolled network, equations, δ split) show the numbers."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PyQt5 import QtCore

from explorer.controller import Controller
from explorer.network import Network
from explorer.presets import build, get_preset
from ui.panels.base import fmt
from ui.panels.delta_split import DeltaSplitPanel
from ui.panels.equation import HIGHLIGHT, EquationPanel
from ui.panels.sequence import NOT_COMPUTED, SequencePanel, show_token
from ui.panels.states import HiddenPanel
from ui.panels.unrolled import UnrolledPanel
from ui.selection import Selection


def paren(x):
    """A number as the equations add it: negative ones in parentheses."""
    text = fmt(x)
    return f"({text})" if text.startswith("−") else text


def lesson(preset="hello"):
    return build(preset)[2]


def make(qtbot, cls, ctl, unit=0, size=(800, 420)):
    selection = Selection(unit)
    panel = cls(ctl, selection)
    qtbot.addWidget(panel)
    panel.resize(*size)
    panel.show()
    qtbot.waitExposed(panel)
    return panel, selection


def big_controller(cell="rnn"):
    rng = np.random.default_rng(0)
    net = Network(65, 128, cell=cell, seed=0)
    return Controller(net, corpus=rng.integers(0, 65, 1000), window=100)


# ----------------------------------------------------------------- sequence strip


def test_sequence_cells_follow_the_forward_phase(qtbot):
    ctl = lesson()
    panel, _ = make(qtbot, SequencePanel, ctl)
    for done in range(ctl.T + 1):
        panel.refresh()
        top, prob = ctl.predictions()
        for t in range(ctl.T):
            cell = panel.cell_texts(t)
            assert cell["x"] == show_token(ctl.token(ctl.inputs[t]))
            assert cell["y"] == show_token(ctl.token(ctl.targets[t]))
            if t < done:
                assert cell["pred"] == show_token(ctl.token(top[t]))
                p_target = float(ctl.trace.probs[t, ctl.targets[t]])
                assert cell["p"] == fmt(p_target, 2)
                assert p_target == pytest.approx(np.exp(-ctl.trace.loss[t]))
                assert cell["loss"] == fmt(float(ctl.trace.loss[t]), 2)
                assert panel.cell_color(t) != NOT_COMPUTED
            else:
                assert cell["pred"] == cell["p"] == cell["loss"] == "·"
                assert panel.cell_color(t) == NOT_COMPUTED
        if done < ctl.T:
            ctl.step()


def test_sequence_tint_grows_with_the_loss(qtbot):
    ctl = lesson("prose")
    ctl.run_phase()
    panel, _ = make(qtbot, SequencePanel, ctl)
    loss = np.asarray(ctl.trace.loss)
    low, high = int(np.argmin(loss)), int(np.argmax(loss))
    assert loss[high] > loss[low]
    # Warmer = less blue: the higher loss has the lower blue channel.
    assert panel.cell_color(high).blue() < panel.cell_color(low).blue()


def test_sequence_frames_follow_the_phase(qtbot):
    ctl = lesson()
    panel, selection = make(qtbot, SequencePanel, ctl)
    for _ in range(2):
        ctl.step()
    panel.refresh()
    assert [(t, c) for t, c, _ in panel._frames] == [(1, "#1f77b4")]
    ctl.run_phase()
    ctl.step()
    ctl.step()
    panel.refresh()
    assert [(t, c) for t, c, _ in panel._frames] == [(ctl.current, "#d62728")]
    selection.select_step(0)
    panel.refresh()
    assert (0, "#ff7f0e") in [(t, c) for t, c, _ in panel._frames]


def test_sequence_tooltip_and_click(qtbot):
    ctl = lesson()
    panel, selection = make(qtbot, SequencePanel, ctl)
    ctl.step()
    ctl.step()
    panel.refresh()
    top, prob = ctl.predictions()
    expected = (f"t = 1: input 'e', target 'l', predicted '{ctl.token(top[1])}' "
                f"(p = {fmt(float(prob[1]), 2)}), L_1 = {fmt(float(ctl.trace.loss[1]), 2)}")
    assert panel.tooltip_for(1) == expected
    assert "not computed yet" in panel.tooltip_for(3)
    w = panel.strip.cell_w
    # Qt sends no move event when the pointer is already there (an earlier test may have
    # left it there): first somewhere else.
    qtbot.mouseMove(panel.strip, QtCore.QPoint(int(0.5 * w), 30))
    qtbot.mouseMove(panel.strip, QtCore.QPoint(int(1.5 * w), 60))
    qtbot.waitUntil(lambda: panel.strip.toolTip() == expected)
    qtbot.mouseClick(panel.strip, QtCore.Qt.LeftButton, pos=QtCore.QPoint(int(2.5 * w), 60))
    assert selection.step == 2
    qtbot.mouseClick(panel.strip, QtCore.Qt.LeftButton, pos=QtCore.QPoint(int(3.5 * w), 60))
    assert selection.step == 3
    qtbot.mouseClick(panel.strip, QtCore.Qt.LeftButton, pos=QtCore.QPoint(int(3.5 * w), 60))
    assert selection.step is None


def test_sequence_shows_spaces_newlines_and_elides_words(qtbot):
    assert show_token("a b\n") == "a␣b↵"
    preset = get_preset("word-lm").with_changes(
        text="An incomprehensibilities test. Another sentence follows here.", window=5,
        max_vocab=None)
    ctl = build(preset)[2]
    panel, _ = make(qtbot, SequencePanel, ctl)
    long_ids = [t for t in range(ctl.T) if len(ctl.token(ctl.inputs[t])) > 10]
    assert long_ids, "the word-level window should hold a long token"
    t = long_ids[0]
    assert panel.cell_texts(t)["x"].endswith("…")
    assert ctl.token(ctl.inputs[t]) in panel.tooltip_for(t)


def test_sequence_scrolls_to_keep_the_step_in_view(qtbot):
    ctl = big_controller()
    panel, _ = make(qtbot, SequencePanel, ctl, size=(700, 220))
    assert panel.strip.width() > panel.scroll.viewport().width()
    bar = panel.scroll.horizontalScrollBar()
    seen = []
    for _ in range(3):
        for _ in range(30):
            ctl.step()
        panel.refresh()
        x = ctl.current * panel.strip.cell_w
        assert bar.value() <= x <= bar.value() + panel.scroll.viewport().width()
        seen.append(bar.value())
    assert seen == sorted(seen) and seen[-1] > seen[0]


# ----------------------------------------------------------------- unrolled network


def test_unrolled_lights_forward_steps(qtbot):
    ctl = lesson()
    panel, _ = make(qtbot, UnrolledPanel, ctl)
    panel.refresh()
    assert [panel.step_state(t) for t in range(ctl.T)] == ["pending"] * ctl.T
    for k in range(1, ctl.T + 1):
        ctl.step()
        panel.refresh()
        states = [panel.step_state(t) for t in range(ctl.T)]
        assert states == ["done"] * (k - 1) + ["current"] + ["pending"] * (ctl.T - k)
        assert all(panel.gradient_arrows(t) == (None, None) for t in range(ctl.T))
        panel.grab()


def test_unrolled_gradient_arrows_follow_the_norms(qtbot):
    ctl = lesson("alphabet")
    panel, _ = make(qtbot, UnrolledPanel, ctl)
    ctl.run_phase()
    tr = ctl.trace
    ref = max(np.linalg.norm(tr.dh_out[t]) for t in range(ctl.T))
    for m in range(1, 6):
        ctl.step()
        panel.refresh()
        for t in range(ctl.T):
            own, future = panel.gradient_arrows(t)
            if t < ctl.T - m:
                assert own is None and future is None
                continue
            assert own == pytest.approx(panel.FULL_WIDTH * np.linalg.norm(tr.dh_out[t]) / ref)
            if t == ctl.T - 1:
                assert future is None
            else:
                expected = panel.FULL_WIDTH * np.linalg.norm(tr.dh_future[t]) / ref
                assert future == pytest.approx(min(expected, panel.MAX_WIDTH))
        panel.grab()
    widths = [panel.gradient_arrows(t)[0] for t in range(ctl.T - 5, ctl.T)]
    assert len(set(np.round(widths, 6))) > 1


def test_unrolled_truncation_and_window(qtbot):
    ctl = lesson("truncated-bptt")
    panel, selection = make(qtbot, UnrolledPanel, ctl)
    ctl.run_phase()
    for _ in range(6):
        ctl.step()
    panel.refresh()
    assert panel.truncation_cut() == ctl.current - ctl.truncate
    first, last = panel.visible_steps()
    assert first <= ctl.current < last and last - first < ctl.T
    selection.select_step(2)
    panel.refresh()
    assert panel.truncation_cut() is None          # L_2 reaches back to h0
    panel.grab()


def test_unrolled_tooltip_and_click(qtbot):
    ctl = lesson()
    panel, selection = make(qtbot, UnrolledPanel, ctl)
    ctl.run_phase()
    ctl.step()
    panel.refresh()
    text = panel.tooltip_for(3)
    assert fmt(float(np.linalg.norm(ctl.trace.dh_out[3]))) in text
    assert "not yet" in panel.tooltip_for(0)
    first, last, cw, *_ = panel._geometry()
    x = int(panel.column_x(1, first, cw))
    qtbot.mouseClick(panel, QtCore.Qt.LeftButton, pos=QtCore.QPoint(x, panel.height() // 2))
    assert selection.step == 1
    qtbot.mouseClick(panel, QtCore.Qt.LeftButton, pos=QtCore.QPoint(x, panel.height() // 2))
    assert selection.step is None


def test_unrolled_shows_a_window_for_long_sequences(qtbot):
    ctl = big_controller()
    panel, _ = make(qtbot, UnrolledPanel, ctl, size=(700, 400))
    for _ in range(150):
        ctl.step()
    panel.refresh()
    first, last = panel.visible_steps()
    assert first <= ctl.current < last and 3 <= last - first < 20
    panel.grab()


# ----------------------------------------------------------------- equations


def test_equation_forward_numbers(qtbot):
    ctl = lesson()
    panel, selection = make(qtbot, EquationPanel, ctl)
    panel.refresh()
    assert "–" in panel.plain_text()             # nothing computed yet
    for _ in range(3):
        ctl.step()
        for unit in (0, 5):
            selection.select_unit(unit)
            panel.refresh()
            e = ctl.explain(ctl.current, unit)
            text = panel.plain_text()
            assert f"t = {ctl.current}" in text and f"j = {unit}" in text
            assert (f"= {fmt(e['Ux'])} + {paren(e['Wh'])} + {paren(e['b'])} = {fmt(e['a'])}"
                    in text)
            assert f"tanh(at[j]) = {fmt(e['h'])}" in text
            assert f"−ln {fmt(e['p_target'], 2)} = {fmt(e['loss'], 2)}" in text
            assert HIGHLIGHT["forward"] in panel._html
            assert HIGHLIGHT["backward"] not in panel._html


def test_equation_backward_numbers(qtbot):
    ctl = lesson()
    panel, selection = make(qtbot, EquationPanel, ctl, unit=2)
    ctl.run_phase()
    for _ in range(ctl.T):
        ctl.step()
        panel.refresh()
        e = ctl.explain(ctl.current, 2)
        text = panel.plain_text()
        assert (f"= {fmt(e['fprime'])} · ({fmt(e['own'])} + {paren(e['future'])}) = "
                f"{fmt(e['delta'])}" in text)
        # The forward part in one line, so that the backward one stays in view.
        assert (f"at[j] = {fmt(e['a'])}, ht[j] = tanh(at[j]) = {fmt(e['h'])}; "
                f"ŷt[yt] = {fmt(e['p_target'], 2)}, Lt = {fmt(e['loss'], 2)}" in text)
        assert "(U xt)[j]" not in text
        phase = "backward" if ctl.phase == "backward" else "update"
        assert HIGHLIGHT[phase] in panel._html
    assert ctl.phase == "update" and "Update" in panel.plain_text()
    assert HIGHLIGHT["update"] in panel._html
    ctl.step()                                      # the update: next window, forward again
    panel.refresh()
    assert "Update" not in panel.plain_text() and HIGHLIGHT["forward"] in panel._html


@pytest.mark.parametrize("preset, gates", [("lstm-recall", "ifgo"), ("gru-brackets", "rzn")])
def test_equation_gated_cells(qtbot, preset, gates):
    ctl = lesson(preset)
    panel, _ = make(qtbot, EquationPanel, ctl, unit=4)
    for _ in range(3):
        ctl.step()
        panel.refresh()
        e = ctl.explain(ctl.current, 4)
        text = panel.plain_text()
        for g in gates:
            assert f"{g}t[j] = " in text and fmt(e[g]) in text
        assert f"= {fmt(e['h'])}" in text
    ctl.run_phase()
    ctl.step()
    panel.refresh()
    e = ctl.explain(ctl.current, 4)
    assert f"= {fmt(e['dh'])}" in panel.plain_text()
    assert "take the place of the mask" in panel.plain_text()


# ----------------------------------------------------------------- δ split


def test_delta_split_explains_outside_the_backward_phase(qtbot):
    ctl = lesson()
    panel, selection = make(qtbot, DeltaSplitPanel, ctl)
    for _ in range(ctl.T):
        panel.refresh()
        assert not panel.shows_charts() and panel.stack.currentIndex() == 0
        assert "backward phase" in panel.explanation.text()
        ctl.step()
    panel.refresh()
    assert panel.stack.currentIndex() == 0 and "Step once more" in panel.explanation.text()
    ctl.step()
    panel.refresh()
    assert panel.stack.currentIndex() == 1
    selection.select_step(0)                        # not reached yet by the backward phase
    panel.refresh()
    assert panel.stack.currentIndex() == 0 and "not reached yet" in panel.explanation.text()


def test_delta_split_bars_equal_the_trace(qtbot):
    ctl = lesson("alphabet")
    panel, selection = make(qtbot, DeltaSplitPanel, ctl, unit=7)
    ctl.run_phase()
    tr = ctl.trace
    ranges = set()
    for _ in range(4):
        ctl.step()
        panel.refresh()
        t = ctl.current
        assert panel.chart_keys() == ("own", "future", "mask", "delta")
        for key, row in (("own", tr.dh_out[t]), ("future", tr.dh_future[t]),
                         ("mask", tr.fprime[t]), ("delta", tr.delta[t])):
            np.testing.assert_array_equal(panel.bars[key].opts["width"], row)
            assert panel.regions[key].getRegion() == pytest.approx((6.5, 7.5))
        lo, hi = panel.plots["delta"].viewRange()[0]
        assert lo == pytest.approx(-hi)
        ranges.add((round(lo, 9), round(hi, 9)))
        assert "fade" in panel.caption.text()
    assert len(ranges) == 1                          # a fixed scale across the steps
    assert panel.plots["own"].viewRange()[0] == pytest.approx(panel.plots["delta"].viewRange()[0])


def test_delta_split_gated_shows_three_charts(qtbot):
    ctl = lesson("lstm-recall")
    panel, _ = make(qtbot, DeltaSplitPanel, ctl, unit=3)
    ctl.run_phase()
    tr = ctl.trace
    for _ in range(3):
        ctl.step()
        panel.refresh()
        t = ctl.current
        assert panel.chart_keys() == ("own", "future", "dh")
        for key, row in (("own", tr.dh_out[t]), ("future", tr.dh_future[t]),
                         ("dh", tr.dh[t])):
            np.testing.assert_array_equal(panel.bars[key].opts["width"], row)
        assert "gates take its place" in panel.caption.text()


def test_delta_split_says_when_gradients_explode(qtbot):
    ctl = lesson("exploding")
    panel, _ = make(qtbot, DeltaSplitPanel, ctl)
    ctl.run_phase()
    ctl.step()
    panel.refresh()
    assert "exploding" in panel.caption.text()


def test_panels_rebind_to_another_lesson(qtbot):
    ctl = lesson()
    panels = [make(qtbot, cls, ctl)[0] for cls in (SequencePanel, UnrolledPanel,
                                                   EquationPanel, DeltaSplitPanel)]
    other = lesson("lstm-recall")
    other.run_phase()
    other.step()
    for panel in panels:
        panel.set_controller(other)
        panel.grab()
    assert len(panels[0]._cells) == other.T
    assert panels[3].chart_keys() == ("own", "future", "dh")
    assert panels[3].stack.currentIndex() == 1
    for panel in panels:
        assert panel.toolTip()


# ----------------------------------------------------------------- hidden and cell states


def test_the_lstm_shows_its_cell_states_below_its_hidden_states(qtbot):
    ctl = lesson("lstm-recall")
    panel, selection = make(qtbot, HiddenPanel, ctl, size=(300, 600))
    assert panel.cell_heatmap.isVisible()
    for _ in range(3):
        ctl.step()
    panel.refresh()
    np.testing.assert_array_equal(panel.heatmap.image.image, ctl.hidden)
    np.testing.assert_array_equal(panel.cell_heatmap.image.image, ctl.trace.cell_state)
    assert np.isfinite(ctl.trace.cell_state[:3]).all()
    assert np.isnan(ctl.trace.cell_state[3:]).all()
    c = float(ctl.trace.cell_state[2, 5])
    assert panel.cell_heatmap.value_text(2, 5).startswith(f"c_2[5] = {fmt(c)}")
    assert "not computed yet" in panel.cell_heatmap.value_text(3, 5)
    # The scale holds every cell state drawn, centred at zero.
    low, high = panel.cell_heatmap.bar.levels()
    assert low == -high and high >= np.nanmax(np.abs(ctl.trace.cell_state))
    panel.cell_heatmap.on_click(1, 7)
    assert selection.unit == 7


@pytest.mark.parametrize("preset", ["hello", "gru-brackets"])
def test_cells_without_a_cell_state_show_no_cell_heatmap(qtbot, preset):
    panel, _ = make(qtbot, HiddenPanel, lesson(preset))
    assert not panel.cell_heatmap.isVisible()
    assert [name for name, _ in panel.export_items()] == ["hidden states"]


def test_the_update_line_says_how_the_gradient_is_clipped(qtbot):
    from explorer.optim import global_norm

    ctl = lesson("exploding-clipped")
    panel, _ = make(qtbot, EquationPanel, ctl)
    ctl.run_phase()
    ctl.run_phase()                                 # forward, then backward: the update next
    assert ctl.phase == "update"
    panel.refresh()
    text = panel.plain_text()
    norm = global_norm(ctl.grads)
    assert norm > ctl.clip_norm                     # this demo's gradient is too big
    assert (f"first clipped: the global norm ‖∂L/∂θ‖ = {fmt(norm)} to at most "
            f"{fmt(ctl.clip_norm)}") in text
    hello = lesson("hello")                         # no clipping: no such line
    panel.set_controller(hello)
    hello.run_phase()
    hello.run_phase()
    panel.refresh()
    assert "clipped" not in panel.plain_text()


@pytest.mark.parametrize("short", [False, True])
def test_the_vanishing_caption_reads_whole(qtbot, short):
    """The bound's "< 1" must reach the screen as text, not be taken for markup."""
    from PyQt5 import QtGui

    ctl = lesson("vanishing")
    panel, _ = make(qtbot, DeltaSplitPanel, ctl)
    ctl.run_phase()
    ctl.step()
    panel.refresh()
    doc = QtGui.QTextDocument()
    doc.setHtml(panel.caption_text(ctl.current, short=short))
    text = doc.toPlainText()
    assert "< 1:" in text and "it fades (vanishing)" in text
