"""Word-level lessons: the sample panel avoids and shows ⟨unk⟩, the output panel the top 10."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
import pytest  # noqa: E402
from PyQt5 import QtCore  # noqa: E402

from explorer.data import UNKNOWN_TOKEN  # noqa: E402
from explorer.presets import build  # noqa: E402
from explorer.sampling import sample  # noqa: E402
from ui.panels.base import COLORS  # noqa: E402
from ui.panels.output import TOP_K, OutputPanel, token_label  # noqa: E402
from ui.panels.sampling import SamplePanel, readable  # noqa: E402
from ui.selection import Selection  # noqa: E402

TARGET = pg.mkColor(COLORS["target"]).name()


def sample_panel(qtbot, preset):
    vocab, net, _ = build(preset)
    panel = SamplePanel(net=net, vocab=vocab)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    return panel, net, vocab


def click(qtbot, widget):
    qtbot.mouseClick(widget, QtCore.Qt.LeftButton, pos=widget.rect().center())


# ----------------------------------------------------------------------------- sample panel


def test_readable_shows_the_markers_as_words_and_line_breaks():
    assert readable("") == ""
    assert readable("the UNKNOWN_TOKEN sat .\nit ran .") == "the ⟨unk⟩ sat .\nit ran ."
    assert readable("a b SENTENCE_END SENTENCE_START c") == "a b\nc"
    assert readable("SENTENCE_START a .\n\nb SENTENCE_END") == "a .\n\nb"
    # Only whole tokens are markers.
    assert readable("UNKNOWN_TOKENS my_UNKNOWN_TOKEN") == "UNKNOWN_TOKENS my_UNKNOWN_TOKEN"


def test_word_lesson_never_shows_unknown_when_the_box_is_checked(qtbot):
    panel, net, vocab = sample_panel(qtbot, "word-lm")
    box = panel.avoid_unknown
    assert box.isVisible() and box.isChecked() and "⟨unk⟩" in box.text()
    # The untrained network writes UNKNOWN_TOKEN with this seed when it is allowed to.
    length, seed = panel.length.value(), panel.seed.value()
    plain = sample(net, vocab, length, seed=seed)
    assert UNKNOWN_TOKEN in plain.split()

    click(qtbot, panel.button)
    shown = panel.output.toPlainText()
    assert shown and UNKNOWN_TOKEN not in shown and "⟨unk⟩" not in shown
    assert UNKNOWN_TOKEN not in panel.text
    assert panel.text == sample(net, vocab, length, seed=seed, avoid_unknown=True)
    assert "never picked" in panel.message.text()

    # Unchecked: the unknown token is written, and shown as ⟨unk⟩; sentences stay lines.
    click(qtbot, box)
    assert not box.isChecked()
    click(qtbot, panel.button)
    shown = panel.output.toPlainText()
    assert panel.text == plain
    assert "⟨unk⟩" in shown and UNKNOWN_TOKEN not in shown
    assert shown == plain.replace(UNKNOWN_TOKEN, "⟨unk⟩")
    assert len(shown.splitlines()) == len(plain.splitlines()) > 1
    assert "outside the vocabulary" in panel.message.text()

    click(qtbot, box)
    assert box.isChecked()
    click(qtbot, panel.button)
    assert "⟨unk⟩" not in panel.output.toPlainText()


def test_word_lesson_with_a_prime_and_greedy_sampling(qtbot):
    panel, net, vocab = sample_panel(qtbot, "word-lm")
    panel.prime.setText("the zebra")
    panel.set_temperature(0)
    panel.length.setValue(30)
    click(qtbot, panel.button)
    text = panel.text
    assert text == sample(net, vocab, 30, temperature=0, prime="the zebra",
                          avoid_unknown=True)
    assert panel.output.toPlainText() == "the zebra " + text
    assert UNKNOWN_TOKEN not in text


def test_the_box_is_hidden_for_characters_and_kept_across_lessons(qtbot):
    panel, net, vocab = sample_panel(qtbot, "hello")
    assert panel.avoid_unknown.isHidden()
    panel.length.setValue(12)
    click(qtbot, panel.button)
    assert len(panel.text) == 12
    assert panel.output.toPlainText() == panel.text
    word_vocab, word_net, _ = build("word-lm")
    panel.set_lesson(word_net, word_vocab)
    assert panel.avoid_unknown.isVisible() and panel.avoid_unknown.isChecked()
    click(qtbot, panel.avoid_unknown)
    panel.set_lesson(net, vocab)
    assert panel.avoid_unknown.isHidden()
    assert not panel.avoiding_unknown()
    panel.set_lesson(word_net, word_vocab)
    assert panel.avoid_unknown.isVisible() and not panel.avoid_unknown.isChecked()


# ----------------------------------------------------------------------------- output panel


def output_panel(qtbot, preset):
    _, _, ctl = build(preset)
    panel = OutputPanel(ctl, Selection())
    qtbot.addWidget(panel)
    panel.resize(700, 450)
    panel.show()
    panel.refresh()
    return panel, ctl


def brushes_of(panel):
    return [pg.mkBrush(b).color().name() for b in panel.bars.opts["brushes"]]


def test_word_output_shows_the_top_ten_and_the_target(qtbot):
    panel, ctl = output_panel(qtbot, "word-lm")
    V = ctl.net.output_size
    assert TOP_K == 10 and V > TOP_K + 1
    bars, items = panel.bars, len(panel.plot.items)
    outside = inside = 0
    for t in range(ctl.T):
        ctl.step()
        panel.refresh()
        probs, target = ctl.trace.probs[t], int(ctl.trace.y[t])
        shown = np.asarray(panel._shown)
        heights = np.asarray(panel.bars.opts["height"], dtype=float)
        assert len(heights) == len(shown) <= TOP_K + 1
        np.testing.assert_allclose(heights, probs[shown])
        top = np.sort(probs)[::-1][:TOP_K]
        np.testing.assert_allclose(heights[:TOP_K], top)        # sorted, most likely first
        assert np.all(np.diff(heights) <= 0)
        xt = int(np.flatnonzero(shown == target)[0])
        colours = brushes_of(panel)
        assert colours[xt] == TARGET and colours.count(TARGET) == 1
        assert panel.axis.marked == xt
        labels = [text for _, text in panel.axis._labels]
        assert labels == [token_label(ctl.token(i)) for i in shown]
        assert all(len(label) <= 8 for label in labels)
        assert f"top {TOP_K} of {V} words" in panel.header.text()
        if probs[target] < top[-1]:
            # Not among the most likely: an 11th bar at the right, set apart.
            outside += 1
            assert len(shown) == TOP_K + 1 and xt == TOP_K
            assert panel.separator.isVisible()
            assert panel.separator.value() == pytest.approx(TOP_K - 0.5)
        else:
            inside += 1
            assert len(shown) == TOP_K and not panel.separator.isVisible()
        assert "target" in panel.target_label.textItem.toPlainText()
    assert outside and inside
    # The same items all along: the bars were updated, never made again.
    assert panel.bars is bars and len(panel.plot.items) == items


@pytest.mark.parametrize(("preset", "counts"),
                         [("hello", {4}), ("prose", {20, 21}), ("i-am-learning-rnn", {8})])
def test_char_and_small_word_outputs_keep_their_bars(qtbot, preset, counts):
    # Characters: every bar up to 24 tokens, else the 20 most likely and the target, as
    # before. A word vocabulary of at most 11 tokens shows them all, in vocabulary order, the
    # target's word marked.
    panel, ctl = output_panel(qtbot, preset)
    for t in range(3):
        ctl.step()
        panel.refresh()
        assert len(panel.bars.opts["height"]) in counts
        assert "top 10" not in panel.header.text()
        assert not panel.separator.isVisible()
        words = ctl.vocab.level == "word"
        assert panel.axis.marked == (int(ctl.trace.y[t]) if words else None)
        if ctl.net.output_size in counts:
            np.testing.assert_allclose(panel.bars.opts["height"], ctl.trace.probs[t])
