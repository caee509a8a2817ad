"""Tests for the settings dock, the sample panel, the gradient-check dialog and the exports."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
import pytest  # noqa: E402
from PyQt5 import QtCore, QtGui  # noqa: E402

from explorer.controller import Controller  # noqa: E402
from explorer.gradcheck import gradcheck  # noqa: E402
from explorer.network import Network  # noqa: E402
from explorer.presets import PRESETS, build, get_preset  # noqa: E402
from explorer.sampling import sample  # noqa: E402
from ui.dialogs.export import ExportDialog, export_plot, export_widget_png  # noqa: E402
from ui.dialogs.gradcheck import FAIL_COLORS, PASS_COLORS, GradcheckDialog  # noqa: E402
from ui.panels.sampling import SamplePanel  # noqa: E402
from ui.panels.settings import SettingsPanel, field_for_message, training_only  # noqa: E402
from ui.panels.states import HiddenPanel  # noqa: E402
from ui.selection import Selection  # noqa: E402

# --------------------------------------------------------------------------- settings

@pytest.fixture
def settings(qtbot):
    panel = SettingsPanel(preset=get_preset("hello"))
    qtbot.addWidget(panel)
    panel.resize(420, 900)
    panel.show()
    emitted = []
    panel.apply_requested.connect(emitted.append)
    panel.emitted = emitted
    return panel


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_settings_load_returns_the_preset_unchanged(qtbot, name):
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    preset = get_preset(name)
    panel.load(preset)
    assert panel.preset() == preset
    # Loading is repeatable: another preset in between leaves no trace.
    panel.load(get_preset("word-lm" if name != "word-lm" else "hello"))
    panel.load(preset)
    assert panel.preset() == preset


def test_settings_shows_the_preset_values(settings):
    p = get_preset("hello")
    f = settings.fields
    assert settings.text_edit.toPlainText() == "hello"
    assert f["window"].value() == p.window and f["hidden"].value() == p.hidden
    assert f["optimizer"].currentData() == p.optimizer
    assert float(f["lr"].text()) == p.lr
    assert f["seed"].value() == p.seed
    assert settings.toolTip() and settings.title == "Settings" and settings.name == "settings"
    for name, widget in f.items():
        assert widget.toolTip(), name


def test_settings_edits_and_apply_emit_valid_presets(settings, qtbot):
    f = settings.fields
    f["hidden"].setValue(12)
    f["lr"].setText("0.05")
    with qtbot.waitSignal(settings.apply_requested, timeout=2000) as blocker:
        settings.apply_button.click()
    first = blocker.args[0]
    assert first.hidden == 12 and first.lr == 0.05
    assert first.text == "task:hello" and first.window == 4
    build(first)

    # A second edit in a row: another cell; activation is forced to tanh for it.
    f["activation"].setCurrentIndex(f["activation"].findData("relu"))
    f["cell"].setCurrentIndex(f["cell"].findData("lstm"))
    assert not f["activation"].isEnabled()
    f["truncate"].setCurrentIndex(f["truncate"].findData("truncated"))
    settings.truncate_k.setValue(2)
    second = settings.apply()
    assert second.cell == "lstm" and second.activation == "tanh" and second.truncate == 2
    assert second.hidden == 12
    # Back to the vanilla RNN: its activation choice comes back.
    f["cell"].setCurrentIndex(f["cell"].findData("rnn"))
    assert f["activation"].isEnabled() and f["activation"].currentData() == "relu"
    f["clip_norm"].setText("5")
    third = settings.apply()
    assert third.activation == "relu" and third.clip_norm == 5.0 and third.clip_value is None
    assert settings.emitted == [first, second, third]


def test_settings_enter_in_a_field_applies(settings, qtbot):
    settings.fields["lr"].setText("0.2")
    with qtbot.waitSignal(settings.apply_requested, timeout=2000) as blocker:
        qtbot.keyClick(settings.fields["lr"], QtCore.Qt.Key_Return)
    assert blocker.args[0].lr == 0.2
    settings.fields["hidden"].setValue(5)
    with qtbot.waitSignal(settings.apply_requested, timeout=2000) as blocker:
        qtbot.keyClick(settings.fields["hidden"], QtCore.Qt.Key_Enter)
    assert blocker.args[0].hidden == 5 and blocker.args[0].lr == 0.2


def _assert_error_under(panel, field, *words):
    label = panel.errors[field]
    assert label.isVisibleTo(panel)
    text = panel.error_text(field)
    for word in words:
        assert word in text, (field, text)
    # The message sits in the same box as the field it concerns.
    assert label.parentWidget() is panel._field_box(field)
    assert panel._field_box(field).isAncestorOf(panel.fields[field]) or \
        panel.fields[field] is panel.text_edit
    assert label.palette().color(label.foregroundRole()).red() > 150
    others = [f for f, lab in panel.errors.items() if f != field and lab.isVisibleTo(panel)]
    assert others == []
    assert "Not applied" in panel.error_text()


def test_settings_window_longer_than_text_is_refused(settings):
    settings.fields["window"].setValue(50)
    assert settings.apply() is None
    _assert_error_under(settings, "window", "50")
    assert settings.emitted == []
    # Fixing it clears the message and applies.
    settings.fields["window"].setValue(3)
    assert settings.apply().window == 3
    assert settings.error_text("window") == "" and settings.error_text() == ""
    assert len(settings.emitted) == 1


def test_settings_hidden_zero_is_refused(settings):
    settings.fields["hidden"].setValue(0)
    assert settings.apply() is None
    _assert_error_under(settings, "hidden", "hidden_size", "positive")
    assert settings.emitted == []


@pytest.mark.parametrize("typed", ["nan", "-1", "abc", "0", "inf", ""])
def test_settings_bad_learning_rate_is_refused_in_its_field(settings, typed):
    settings.fields["lr"].setText(typed)
    assert settings.apply() is None
    _assert_error_under(settings, "lr", "lr", repr(typed.strip()))
    assert settings.emitted == []
    with pytest.raises(ValueError, match="lr"):
        settings.preset()


def test_settings_other_refusals_map_to_their_fields(settings):
    f = settings.fields
    f["clip_value"].setText("-3")
    assert settings.apply() is None
    _assert_error_under(settings, "clip_value", "clip_value")
    f["clip_value"].setText("0")          # 0 = off
    f["cell"].setCurrentIndex(f["cell"].findData("gru"))
    f["init"].setCurrentIndex(f["init"].findData("identity"))
    assert settings.apply() is None
    _assert_error_under(settings, "init", "identity")
    f["init"].setCurrentIndex(f["init"].findData("xavier"))
    f["init_scale"].setValue(0.0)
    assert settings.apply() is None
    _assert_error_under(settings, "init_scale", "init_scale")
    f["init_scale"].setValue(0.8)
    ok = settings.apply()
    assert ok is not None and ok.cell == "gru" and ok.init == "xavier" and ok.clip_value is None
    assert settings.emitted == [ok]


def test_field_for_message_names_the_argument():
    assert field_for_message("hidden_size must be a positive integer, got 0") == "hidden"
    assert field_for_message("length is 50 but the text has only 6 tokens") == "window"
    assert field_for_message("init_scale must be a finite positive number") == "init_scale"
    assert field_for_message("init='identity' (IRNN) is for the rnn cell") == "init"
    assert field_for_message("activation applies to the rnn cell only") == "activation"
    assert field_for_message("stride must be a positive integer") == "stride"
    assert field_for_message("something else entirely") is None


def test_settings_revert_puts_back_the_loaded_preset(settings):
    settings.fields["hidden"].setValue(99)
    settings.fields["lr"].setText("abc")
    settings.revert()
    assert settings.preset() == get_preset("hello")


def test_settings_open_text_file(settings, tmp_path):
    good = tmp_path / "poem.txt"
    good.write_text("roses are red\nviolets are blue\n", encoding="utf-8")
    assert settings.open_text_file(str(good))
    assert settings.text_edit.toPlainText() == "roses are red\nviolets are blue\n"
    assert "poem.txt" in settings.text_info.text()
    settings.fields["window"].setValue(10)
    preset = settings.apply()
    assert preset.text == "roses are red\nviolets are blue\n" and preset.window == 10

    binary = tmp_path / "data.bin"
    binary.write_bytes(b"\x00\x01\x02binary")
    assert not settings.open_text_file(str(binary))
    _assert_error_under(settings, "text", "NUL")
    # The text field keeps the last good text.
    assert settings.text_edit.toPlainText().startswith("roses")
    assert not settings.open_text_file(str(tmp_path / "missing.txt"))
    assert "does not exist" in settings.error_text("text")


def test_settings_long_corpus_is_read_only_with_its_size(qtbot):
    panel = SettingsPanel(preset=get_preset("prose"))
    qtbot.addWidget(panel)
    assert panel.text_edit.isReadOnly()
    info = panel.text_info.text()
    assert "prose" in info and f"{len(panel.text_edit.toPlainText()):,} characters" in info
    panel.edit_button.click()
    assert not panel.text_edit.isReadOnly()
    assert panel.preset().text == "corpus:prose"
    panel.text_edit.setPlainText("a shorter text of my own")
    assert panel.preset().text == "a shorter text of my own"
    assert "typed text" in panel.text_info.text()


def test_settings_word_level_vocabulary_field(qtbot):
    panel = SettingsPanel(preset=get_preset("word-lm"))
    qtbot.addWidget(panel)
    panel.show()
    assert panel.fields["max_vocab"].isVisibleTo(panel)
    panel.fields["max_vocab"].setValue(50)
    assert panel.preset().max_vocab == 50
    panel.fields["level"].setCurrentIndex(panel.fields["level"].findData("char"))
    assert not panel.fields["max_vocab"].isVisibleTo(panel)
    assert panel.preset().max_vocab is None


def test_training_only():
    old = get_preset("hello")
    assert training_only(old, old)
    assert training_only(old, old.with_changes(lr=0.01, optimizer="adam", clip_norm=5.0))
    assert training_only(old, old.with_changes(truncate=2, carry_state=True, batch_size=4,
                                               train_iterations=10, clip_value=1.0))
    assert training_only(old, old.with_changes(name="mine", notes="edited"))
    assert not training_only(old, old.with_changes(hidden=9))
    assert not training_only(old, old.with_changes(window=3, lr=0.01))
    assert not training_only(old, old.with_changes(seed=2))
    assert not training_only(old, old.with_changes(text="hello world"))
    assert not training_only(old, old.with_changes(cell="gru"))


# --------------------------------------------------------------------------- sampling

def _colour_at(text_edit, position):
    cursor = QtGui.QTextCursor(text_edit.document())
    cursor.setPosition(position + 1)        # the format of the character before the cursor
    return cursor.charFormat().foreground().color().name()


def test_sample_panel_generates_text_of_the_right_length(qtbot):
    vocab, net, ctl = build("hello")
    panel = SamplePanel(net=net, vocab=vocab)
    qtbot.addWidget(panel)
    assert panel.toolTip() and panel.title == "Sample" and panel.name == "sample"
    panel.prime.setText("he")
    texts = []
    for length in (5, 40, 300):
        panel.length.setValue(length)
        text = panel.generate()
        assert len(text) == length and set(text) <= set("helo")
        assert panel.output.toPlainText() == "he" + text
        texts.append(text)
    # The prime in grey, the generated text in black.
    assert _colour_at(panel.output, 0) == "#8a8a8a"
    assert _colour_at(panel.output, 1) == "#8a8a8a"
    assert _colour_at(panel.output, 2) == "#202020"
    assert "300 characters" in panel.message.text()
    # The same seed writes the same text; greedy ignores the seed.
    assert panel.generate() == texts[-1]
    panel.set_temperature(0)
    assert panel.temperature_label.text().startswith("0")
    panel.seed.setValue(1)
    greedy = panel.generate()
    panel.seed.setValue(7)
    assert panel.generate() == greedy


def test_sample_panel_word_level(qtbot):
    vocab, net, ctl = build("word-lm")
    panel = SamplePanel(net=net, vocab=vocab)
    qtbot.addWidget(panel)
    panel.length.setValue(25)
    panel.prime.setText("the dog")
    text = panel.generate()
    # 25 tokens; sentence marks are written as line breaks, not as words.
    assert text == sample(net, vocab, 25, temperature=1.0, prime="the dog", seed=0)
    assert 15 < len(text.split()) <= 25
    assert panel.output.toPlainText() == "the dog " + text
    assert panel.length.suffix().strip() == "words"


def test_sample_panel_shows_errors(qtbot):
    vocab, net, ctl = build("hello")
    panel = SamplePanel(net=net, vocab=vocab)
    qtbot.addWidget(panel)
    panel.length.setValue(10)
    good = panel.generate()
    panel.prime.setText("hex")
    assert panel.generate() is None
    assert "prime" in panel.message.text() and "'x'" in panel.message.text()
    assert "c00000" in panel.message.styleSheet()
    assert panel.text == good                    # the last good text is kept
    panel.prime.setText("")
    assert len(panel.generate()) == 10 and "c00000" not in panel.message.styleSheet()
    # A lesson without a vocabulary cannot be sampled.
    panel.set_lesson(net, None)
    assert not panel.button.isEnabled() and panel.generate() is None
    panel.set_lesson(net, vocab)
    assert panel.button.isEnabled() and panel.output.toPlainText() == ""


# --------------------------------------------------------------------------- gradient check

def _run(qtbot, dialog):
    assert dialog.run()
    qtbot.waitUntil(lambda: dialog.results is not None or dialog.error is not None,
                    timeout=30000)
    assert dialog.error is None


def test_gradcheck_dialog_passes_on_the_gradient_check_preset(qtbot):
    vocab, net, ctl = build("gradient-check")
    before = {k: v.copy() for k, v in net.params.items()}
    dialog = GradcheckDialog(ctl)
    qtbot.addWidget(dialog)
    _run(qtbot, dialog)
    expected = gradcheck(net, ctl.inputs, ctl.targets, truncate=ctl.truncate)
    assert dialog.table.rowCount() == len(net.params) == 5
    for name, check in expected.items():
        row = dialog.row(name)
        assert row[0] == name
        assert row[2] == f"all {net.params[name].size}"
        assert row[3] == f"{check.max_rel_error:.1e}".replace("-", "−")
        assert row[7] == "pass"
        item = dialog.table.item(list(expected).index(name), 7)
        assert item.foreground().color().name() == PASS_COLORS[0]
    assert dialog.summary.text().startswith("All 5 parameters pass")
    assert "relative error" in dialog.explanation.text().lower()
    for name, value in before.items():          # the network is left as it was
        np.testing.assert_array_equal(net.params[name], value)

    # After a few steps and an update the check runs again on the new weights.
    for _ in range(2 * ctl.T + 1):
        ctl.step()
    _run(qtbot, dialog)
    assert all(dialog.row(name)[7] == "pass" for name in net.params)


def test_gradcheck_dialog_shows_a_wrong_gradient_as_fail(qtbot, monkeypatch):
    vocab, net, ctl = build("gradient-check")
    original = Network.loss_and_grads

    def perturbed(self, *args, **kwargs):
        loss, grads = original(self, *args, **kwargs)
        grads["W"][0, 1] += 1e-2
        return loss, grads

    monkeypatch.setattr(Network, "loss_and_grads", perturbed)
    dialog = GradcheckDialog(ctl)
    qtbot.addWidget(dialog)
    _run(qtbot, dialog)
    row = dialog.row("W")
    assert row[7] == "FAIL" and row[4] == "W[0, 1]"
    w_row = list(net.params).index("W")
    assert dialog.table.item(w_row, 7).foreground().color().name() == FAIL_COLORS[0]
    assert dialog.table.item(w_row, 7).background().color().name() == FAIL_COLORS[1]
    assert [dialog.row(n)[7] for n in net.params if n != "W"] == ["pass"] * 4
    assert dialog.summary.text().startswith("FAIL: 1 of 5")
    assert FAIL_COLORS[0] in dialog.summary.styleSheet()


def test_gradcheck_dialog_samples_big_models_in_a_thread(qtbot):
    vocab, net, ctl = build("prose")
    dialog = GradcheckDialog(ctl)
    qtbot.addWidget(dialog)
    dialog.show()                               # showing it starts the check
    assert dialog.running and not dialog.run()  # one check at a time
    assert dialog.results is None and dialog.busy.isVisibleTo(dialog)
    qtbot.waitUntil(lambda: dialog.results is not None, timeout=30000)
    assert not dialog.busy.isVisibleTo(dialog)
    assert "30 random entries" in dialog.header.text()
    assert dialog.row("W")[2] == "30 of 10,000"
    assert dialog.row("c")[2] == "30 of 46"
    assert all(dialog.row(name)[7].startswith("pass") for name in net.params)


def test_gradcheck_dialog_checks_float32_networks_in_float64(qtbot):
    ids = np.array([0, 1, 2, 1, 0, 2, 2, 1, 0, 1])
    net = Network(3, 4, cell="gru", seed=0, dtype="float32")
    ctl = Controller(net, corpus=ids, window=5, truncate=2)
    dialog = GradcheckDialog(ctl)
    qtbot.addWidget(dialog)
    _run(qtbot, dialog)
    assert "float64" in dialog.header.text() and "k = 2" in dialog.header.text()
    assert all(dialog.row(name)[7].startswith("pass") for name in net.params)
    assert "gate" in dialog.row("W")[4]
    assert net.dtype == np.float32


# --------------------------------------------------------------------------- exports

@pytest.fixture
def curve_plot(qtbot):
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.plot([0.0, 1.0, 2.0, 3.0], [3.0, 1.5, 1.0, 0.5], name="loss")
    widget.resize(400, 300)
    widget.show()
    yield widget.getPlotItem()
    # (the fixture holds the widget until the test ends, so its PlotItem lives on)


@pytest.mark.parametrize("suffix", [".png", ".svg", ".csv"])
def test_export_plot_writes_a_file(curve_plot, tmp_path, suffix):
    path = tmp_path / f"loss{suffix}"
    assert export_plot(curve_plot, path) == path
    assert path.is_file() and path.stat().st_size > 0
    assert sorted(os.listdir(tmp_path)) == [path.name]       # no temporary file left
    data = path.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
    elif suffix == ".svg":
        assert b"<svg" in data
    else:
        lines = data.decode().split()
        assert lines[0] == "loss_x,loss_y" and lines[2].startswith("1.,1.5")


def test_export_replaces_files_and_refuses_bad_requests(curve_plot, qtbot, tmp_path):
    path = tmp_path / "plot.png"
    path.write_bytes(b"old")
    export_plot(curve_plot, path)
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.csv"):
        export_plot(curve_plot, tmp_path / "plot.jpg")
    with pytest.raises(ValueError, match="does not exist"):
        export_plot(curve_plot, tmp_path / "missing" / "plot.png")
    # A heatmap has no curves to write as CSV; an old file stays as it was.
    vocab, net, ctl = build("hello")
    panel = HiddenPanel(ctl, Selection())
    qtbot.addWidget(panel)
    ctl.run_phase()
    panel.refresh()
    old = tmp_path / "hidden.csv"
    old.write_text("keep me")
    with pytest.raises(ValueError, match="no curves"):
        export_plot(panel.export_items()[0][1], old)
    assert old.read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["hidden.csv", "plot.png"]


def test_export_widget_png(qtbot, tmp_path):
    vocab, net, ctl = build("hello")
    panel = HiddenPanel(ctl, Selection())
    qtbot.addWidget(panel)
    panel.resize(500, 300)
    path = export_widget_png(panel, tmp_path / "panel.png")
    image = QtGui.QImage(str(path))
    assert image.width() == 500 and image.height() == 300
    with pytest.raises(ValueError, match=r"\.png"):
        export_widget_png(panel, tmp_path / "panel.svg")


def test_export_dialog_lists_panels_and_saves(qtbot, tmp_path):
    vocab, net, ctl = build("hello")
    hidden = HiddenPanel(ctl, Selection())
    settings = SettingsPanel(preset=get_preset("hello"))
    qtbot.addWidget(hidden)
    qtbot.addWidget(settings)
    dialog = ExportDialog([hidden, settings], folder=tmp_path)
    qtbot.addWidget(dialog)
    texts = [text for text, _, _ in dialog.entries]
    assert texts == ["Hidden states h_t — hidden states", "Hidden states h_t — whole panel (PNG)",
                     "Settings — whole panel (PNG)"]
    # A heatmap offers PNG and SVG (no curves for CSV); a whole panel PNG only.
    formats = [dialog.format.itemData(i) for i in range(dialog.format.count())]
    assert formats == [".png", ".svg"]
    dialog.format.setCurrentIndex(1)
    assert dialog.path.text().endswith(".svg")
    written = dialog.save()
    assert written.is_file() and written.stat().st_size > 0 and written.suffix == ".svg"
    dialog.select(2)
    assert [dialog.format.itemData(i) for i in range(dialog.format.count())] == [".png"]
    written = dialog.save(str(tmp_path / "settings.png"))
    assert written.is_file() and "Saved" in dialog.status.text()
    assert dialog.save(str(tmp_path / "nowhere" / "x.png")) is None
    assert "does not exist" in dialog.status.text()
