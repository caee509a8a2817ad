"""The explorer window, driven through its real widgets: keys, buttons, slider, settings."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PyQt5 import QtCore, QtGui, QtWidgets

from explorer.presets import PRESETS
from ui.app import _configure_pyqtgraph
from ui.main_window import MainWindow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def make_window(qtbot):
    _configure_pyqtgraph()
    windows = []

    def make(preset="hello", settings=None):
        window = MainWindow(preset, settings=settings, restore_layout=settings is not None)
        qtbot.addWidget(window)
        window.show()
        # Shortcuts (→ ← Space Home) act in the active window; offscreen, activate it by hand.
        QtWidgets.QApplication.setActiveWindow(window)
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.stop_play()
        window.bridge.stop(wait=True)


def press(qtbot, window, key, times=1):
    for _ in range(times):
        qtbot.keyClick(window, key)
    window.refresh()


def image_of(panel_name, window):
    return window.panels[panel_name].heatmap.image.image


def test_title_icon_and_every_panel_has_a_tooltip(make_window):
    window = make_window("hello")
    assert window.windowTitle() == "RNN Explorer — hello"
    assert not window.windowIcon().isNull()
    for name, panel in window.panels.items():
        assert panel.toolTip().strip(), name
        assert window.docks[name].isVisible(), name


def test_right_arrow_steps_forward_and_the_heatmap_shows_the_hidden_states(qtbot, make_window):
    window = make_window("alphabet")
    ctl = window.ctl
    press(qtbot, window, QtCore.Qt.Key_Right, 5)
    assert ctl.position == 5 and ctl.phase == "forward"
    np.testing.assert_array_equal(image_of("hidden", window), ctl.hidden)
    assert np.isnan(image_of("hidden", window)[5:]).all()
    assert np.isfinite(image_of("hidden", window)[:5]).all()
    press(qtbot, window, QtCore.Qt.Key_Right, ctl.T - 5)
    assert ctl.phase == "backward"
    np.testing.assert_array_equal(image_of("hidden", window), ctl.hidden)
    assert "BPTT next" in window.status_labels["phase"].text()
    press(qtbot, window, QtCore.Qt.Key_Right)
    assert "phase: backward" in window.status_labels["phase"].text()


def test_the_backward_phase_fills_the_delta_and_gradient_panels(qtbot, make_window):
    window = make_window("hello")
    ctl = window.ctl
    press(qtbot, window, QtCore.Qt.Key_Right, ctl.T + 2)
    deltas = image_of("deltas", window)
    np.testing.assert_array_equal(deltas, ctl.deltas)
    assert np.isfinite(deltas[-2:]).all() and np.isnan(deltas[:-2]).all()
    weights = window.panels["weights"]
    window.docks["weights"].raise_()            # a tab behind another is not redrawn
    shown = weights.images["dW"].image
    np.testing.assert_allclose(shown, ctl.grads["W"])
    press(qtbot, window, QtCore.Qt.Key_Right, ctl.T - 2)
    assert ctl.phase == "update"
    np.testing.assert_allclose(weights.images["dW"].image,
                               ctl.net.loss_and_grads(ctl.inputs, ctl.targets)[1]["W"],
                               rtol=1e-12, atol=1e-14)
    # The update: → once more moves to the next cycle with new parameters.
    before = ctl.net.params["W"].copy()
    press(qtbot, window, QtCore.Qt.Key_Right)
    assert ctl.iteration == 1 and not np.array_equal(before, ctl.net.params["W"])


def test_left_arrow_goes_back_exactly(qtbot, make_window):
    window = make_window("hello")
    ctl = window.ctl
    press(qtbot, window, QtCore.Qt.Key_Right, ctl.T + 1)
    shown = image_of("deltas", window).copy()
    press(qtbot, window, QtCore.Qt.Key_Right, 2)
    press(qtbot, window, QtCore.Qt.Key_Left, 2)
    np.testing.assert_array_equal(image_of("deltas", window), shown)
    press(qtbot, window, QtCore.Qt.Key_Left, ctl.T + 1)
    assert ctl.timeline_index == 0
    press(qtbot, window, QtCore.Qt.Key_Left)
    assert "start of the timeline" in window.status_labels["info"].text()


def test_space_plays_and_pauses_and_home_resets(qtbot, make_window):
    window = make_window("alphabet")
    window.speed.setValue(30)
    press(qtbot, window, QtCore.Qt.Key_Space)
    assert window.playing
    qtbot.waitUntil(lambda: window.ctl.timeline_index >= 4, timeout=5000)
    press(qtbot, window, QtCore.Qt.Key_Space)
    assert not window.playing
    stopped = window.ctl.timeline_index
    qtbot.wait(150)
    assert window.ctl.timeline_index == stopped
    press(qtbot, window, QtCore.Qt.Key_Home)
    assert window.ctl.timeline_index == 0 and window.ctl.history_length == 1


def test_toolbar_buttons_drive_the_cycle(qtbot, make_window):
    window = make_window("hello")
    window.step_action.trigger()
    window.step_action.trigger()
    assert window.ctl.position == 2
    window.back_action.trigger()
    assert window.ctl.position == 1
    window.reset_action.trigger()
    assert window.ctl.position == 0


def test_the_timeline_slider_shows_the_same_pictures_each_time(qtbot, make_window):
    window = make_window("hello")
    ctl = window.ctl
    for _ in range(2 * ctl.T + 1 + 3):
        window.step()
    window.refresh()
    assert window.timeline.maximum() == ctl.history_length - 1
    window.timeline.setValue(6)
    window.refresh()
    hidden, deltas = image_of("hidden", window).copy(), image_of("deltas", window).copy()
    window.timeline.setValue(window.timeline.maximum())
    window.refresh()
    window.timeline.setValue(2)
    window.timeline.setValue(6)
    window.refresh()
    np.testing.assert_array_equal(image_of("hidden", window), hidden)
    np.testing.assert_array_equal(image_of("deltas", window), deltas)
    assert ctl.timeline_index == 6


def test_clicking_a_unit_selects_it_and_hovering_names_the_cell(qtbot, make_window):
    window = make_window("hello")
    ctl = window.ctl
    press(qtbot, window, QtCore.Qt.Key_Right, ctl.T + 1)
    heatmap = window.panels["hidden"].heatmap
    heatmap.on_click(1, 3)
    assert window.selection.unit == 3
    text = window.panels["deltas"].heatmap.value_text(ctl.T - 1, 3)
    assert text.startswith(f"δ_{ctl.T - 1}[3] = ")
    assert "not computed" in window.panels["deltas"].heatmap.value_text(0, 3)


def test_a_setting_rebuilds_the_model_and_an_invalid_one_is_refused(qtbot, make_window):
    window = make_window("hello")
    settings = window.settings_panel
    settings.fields["hidden"].setValue(5)
    qtbot.mouseClick(settings.apply_button, QtCore.Qt.LeftButton)
    assert window.net.hidden_size == 5 and window.ctl.net is window.net
    assert window.panels["hidden"].heatmap.image.image.shape == (window.ctl.T, 5)
    net = window.net
    settings.fields["window"].setValue(50)            # "hello" has 5 characters
    qtbot.mouseClick(settings.apply_button, QtCore.Qt.LeftButton)
    assert window.net is net and window.ctl.T == 4
    assert "window" in settings.error_text().lower()
    settings.fields["lr"].setText("nan")
    qtbot.mouseClick(settings.apply_button, QtCore.Qt.LeftButton)
    assert window.net is net and window.ctl.lr == 0.1


def test_a_training_setting_keeps_the_model(qtbot, make_window):
    window = make_window("hello")
    net = window.net
    window.settings_panel.fields["lr"].setText("0.05")
    qtbot.mouseClick(window.settings_panel.apply_button, QtCore.Qt.LeftButton)
    assert window.net is net and window.ctl.lr == 0.05


def test_training_runs_in_a_thread_and_the_loss_curve_gets_its_points(qtbot, make_window):
    window = make_window("alphabet")
    window.train_iterations.setValue(150)
    window.train_action.trigger()
    assert window.bridge.training
    assert not window.step_action.isEnabled()
    qtbot.waitUntil(lambda: not window.bridge.training, timeout=30000)
    qtbot.waitUntil(lambda: window.train_action.text() == "Train", timeout=5000)
    window.refresh()
    assert window.ctl.iteration == 150 and window.step_action.isEnabled()
    x, y = window.panels["loss"].history_curve.getData()
    assert len(x) == 150 and y[-1] < y[0]


def test_stop_ends_training_at_once(qtbot, make_window):
    window = make_window("prose")
    window.train_iterations.setValue(1_000_000)
    window.train_action.trigger()
    qtbot.waitUntil(lambda: window.ctl.iteration > 5, timeout=10000)
    window.train_action.trigger()                      # the button reads "Stop" now
    qtbot.waitUntil(lambda: not window.bridge.training, timeout=3000)
    qtbot.waitUntil(lambda: window.train_action.text() == "Train", timeout=3000)
    assert 5 < window.ctl.iteration < 1_000_000


def test_divergence_stops_training_with_a_message_and_the_last_good_model(qtbot, make_window):
    window = make_window("exploding")
    window.train_action.trigger()
    qtbot.waitUntil(lambda: not window.bridge.training, timeout=30000)
    qtbot.waitUntil(lambda: "diverged" in window.status_labels["info"].text(), timeout=5000)
    assert all(np.isfinite(v).all() for v in window.net.params.values())
    window.step()
    assert np.isfinite(window.ctl.hidden[0]).all()


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_loads_and_survives_a_full_cycle(qtbot, make_window, name):
    window = make_window("hello")
    window.preset_box.setCurrentIndex(window.preset_box.findData(name))
    window.preset_box.activated.emit(window.preset_box.currentIndex())
    assert window.windowTitle() == f"RNN Explorer — {name}"
    ctl = window.ctl
    for _ in range(2 * ctl.T):
        window.step()
        window.refresh()
    assert ctl.phase == "update"
    np.testing.assert_array_equal(image_of("hidden", window), ctl.hidden)
    np.testing.assert_array_equal(image_of("deltas", window), ctl.deltas)
    window.step()
    window.refresh()
    assert ctl.iteration == 1 and ctl.phase == "forward"


def test_gradient_check_from_the_toolbar(qtbot, make_window):
    window = make_window("gradient-check")
    window.gradcheck_action.trigger()
    dialog = window._gradcheck_dialog
    qtbot.waitUntil(lambda: not dialog.running and dialog.results is not None, timeout=20000)
    assert all(r.passed() for r in dialog.results.values())


def test_closing_the_window_closes_its_dialogs(qtbot, make_window):
    """An open message or gradient check must not outlive the window (the application would
    keep running with no window)."""
    window = make_window("hello")
    window.show_message("a message", error=True, dialog=True)
    window.gradient_check()
    dialogs = window.findChildren(QtWidgets.QDialog)
    assert len(dialogs) == 2 and all(d.isVisible() for d in dialogs)
    window.close()
    assert not [w for w in QtWidgets.QApplication.topLevelWidgets() if w.isVisible()]


def test_models_save_and_load_and_a_corrupt_file_changes_nothing(qtbot, make_window, tmp_path):
    window = make_window("hello")
    window.ctl.train(iterations=20)
    trained = {k: v.copy() for k, v in window.net.params.items()}
    assert window.save_model_to(str(tmp_path / "m.npz"))
    window.reset()
    window.load_preset("hello")
    assert window.load_model_from(str(tmp_path / "m.npz"))
    for k, v in trained.items():
        np.testing.assert_array_equal(window.net.params[k], v)
    (tmp_path / "bad.npz").write_bytes(b"not a model")
    net = window.net
    assert not window.load_model_from(str(tmp_path / "bad.npz"))
    assert window.net is net
    assert "Could not load" in window.status_labels["info"].text()


def test_the_layout_is_remembered(qtbot, make_window, tmp_path):
    settings = QtCore.QSettings(str(tmp_path / "layout.ini"), QtCore.QSettings.IniFormat)
    window = make_window("hello", settings=settings)
    window.docks["eigen"].hide()
    window.close()
    settings.sync()
    again = make_window("hello", settings=settings)
    assert not again.docks["eigen"].isVisible()
    assert again.docks["hidden"].isVisible()


def test_the_screenshot_command_saves_the_window(tmp_path):
    out = tmp_path / "shot.png"
    result = subprocess.run([sys.executable, "-m", "explorer", "--preset", "hello", "--steps",
                             "6", "--screenshot", str(out)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT),
                                 "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    image = QtGui.QImage(str(out))
    assert (image.width(), image.height()) == (1920, 1080)


def test_the_screenshot_command_refuses_a_bad_path(tmp_path):
    result = subprocess.run([sys.executable, "-m", "explorer", "--screenshot",
                             str(tmp_path / "missing" / "x.png")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT),
                                 "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 2
    assert "error" in result.stderr and "Traceback" not in result.stderr
