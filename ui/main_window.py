"""The explorer window: toolbar, timeline, docked panels, status bar; it drives the controller."""

from __future__ import annotations

import importlib
import math
import time

from PyQt5 import QtCore, QtGui, QtWidgets

from explorer.io import load_model, save_model
from explorer.presets import PRESETS, build, get_preset

from .bridge import Bridge
from .selection import Selection

# (module, class, dock area, tab group): the order is the default layout's order.
PANELS = [
    ("ui.panels.sequence", "SequencePanel", "top", None),
    ("ui.panels.unrolled", "UnrolledPanel", "top", None),
    ("ui.panels.states", "HiddenPanel", "bottom", None),
    ("ui.panels.states", "DeltaPanel", "bottom", None),
    ("ui.panels.delta_split", "DeltaSplitPanel", "bottom", None),
    ("ui.panels.equation", "EquationPanel", "bottom", None),
    ("ui.panels.output", "OutputPanel", "bottom", None),
    ("ui.panels.loss", "LossPanel", "bottom", "analysis"),
    ("ui.panels.flow", "FlowPanel", "bottom", "analysis"),
    ("ui.panels.eigen", "EigenPanel", "bottom", "analysis"),
    ("ui.panels.weights", "WeightsPanel", "bottom", "analysis"),
]
# Tabs share a narrow column: their tabs carry short names (the panels keep full titles).
TAB_TITLES = {"loss": "Loss", "flow": "Gradient flow", "eigen": "Eigenvalues",
              "weights": "Weights"}
AREAS = {"left": QtCore.Qt.LeftDockWidgetArea, "right": QtCore.Qt.RightDockWidgetArea,
         "top": QtCore.Qt.TopDockWidgetArea, "bottom": QtCore.Qt.BottomDockWidgetArea}
LAYOUT_VERSION = 1


def _panel_class(module, name):
    return getattr(importlib.import_module(module), name)


class MainWindow(QtWidgets.QMainWindow):
    """One lesson at a time: a preset (or settings) builds the controller the panels render."""

    def __init__(self, preset="hello", settings=None, restore_layout=True):
        super().__init__()
        self.settings = settings
        self.selection = Selection(parent=self)
        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        self.vocab, self.net, self.ctl = build(self.preset)
        self.bridge = Bridge(self.ctl, parent=self)
        self.bridge.redraw.connect(self.refresh)
        self.bridge.progress.connect(self._on_progress)
        self.bridge.trained.connect(self._on_trained)
        self.bridge.failed.connect(self._on_training_failed)
        self.selection.changed.connect(self.refresh)
        self._last_paint_ms = 0.0
        self._play = QtCore.QTimer(self)
        self._play.timeout.connect(self._play_step)

        self.setWindowIcon(app_icon())
        self.setDockOptions(QtWidgets.QMainWindow.AnimatedDocks
                            | QtWidgets.QMainWindow.AllowTabbedDocks
                            | QtWidgets.QMainWindow.AllowNestedDocks)
        self.setCorner(QtCore.Qt.BottomLeftCorner, QtCore.Qt.LeftDockWidgetArea)
        self._build_toolbar()
        self._build_timeline()
        self._build_panels()
        self._build_menus()
        self._build_statusbar()
        self._build_shortcuts()
        self.resize(1920, 1080)
        if restore_layout:
            self._restore_layout()
        self._lesson_changed()

    # ----------------------------------------------------------------- building

    def _build_toolbar(self):
        bar = QtWidgets.QToolBar("Lesson", self)
        bar.setObjectName("lesson_toolbar")
        bar.setMovable(False)
        bar.setIconSize(QtCore.QSize(22, 22))
        bar.setToolButtonStyle(QtCore.Qt.ToolButtonTextBesideIcon)
        self.addToolBar(QtCore.Qt.TopToolBarArea, bar)
        bar.addWidget(QtWidgets.QLabel(" Preset "))
        self.preset_box = QtWidgets.QComboBox()
        for name, p in PRESETS.items():
            self.preset_box.addItem(name, name)
            self.preset_box.setItemData(self.preset_box.count() - 1, p.description,
                                        QtCore.Qt.ToolTipRole)
        self.preset_box.setToolTip("Load a teaching demo: its text, model, settings and seed")
        self.preset_box.activated.connect(
            lambda i: self.load_preset(self.preset_box.itemData(i)))
        bar.addWidget(self.preset_box)
        bar.addSeparator()
        style = self.style()
        self.reset_action = bar.addAction(style.standardIcon(QtWidgets.QStyle.SP_MediaSkipBackward),
                                          "Reset", self.reset)
        self.reset_action.setToolTip("Back to the start of the lesson (Home)")
        self.back_action = bar.addAction(style.standardIcon(QtWidgets.QStyle.SP_MediaSeekBackward),
                                         "Back", self.back)
        self.back_action.setToolTip("Undo the last step or update, exactly (←)")
        self.step_action = bar.addAction(style.standardIcon(QtWidgets.QStyle.SP_MediaSeekForward),
                                         "Step", self.step)
        self.step_action.setToolTip("Next step: forward, then backward, then the update (→)")
        self.play_action = bar.addAction(style.standardIcon(QtWidgets.QStyle.SP_MediaPlay),
                                         "Play", self.toggle_play)
        self.play_action.setCheckable(True)
        self.play_action.setToolTip("Step automatically (Space)")
        self.speed = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.speed.setRange(1, 30)
        self.speed.setValue(4)
        self.speed.setFixedWidth(110)
        self.speed.setToolTip("Play speed: steps per second")
        self.speed.valueChanged.connect(self._speed_changed)
        bar.addWidget(self.speed)
        self.speed_label = QtWidgets.QLabel()
        bar.addWidget(self.speed_label)
        bar.addSeparator()
        self.train_iterations = QtWidgets.QSpinBox()
        self.train_iterations.setRange(1, 1_000_000)
        self.train_iterations.setSingleStep(100)
        self.train_iterations.setSuffix(" iterations")
        self.train_iterations.setToolTip("How many windows (mini-batches) Train runs")
        bar.addWidget(self.train_iterations)
        self.train_action = bar.addAction(style.standardIcon(QtWidgets.QStyle.SP_BrowserReload),
                                          "Train", self.train_or_stop)
        self.train_action.setToolTip("Train in the background with the fast whole-sequence "
                                     "path; press again to stop")
        self.train_progress = QtWidgets.QProgressBar()
        self.train_progress.setFixedWidth(160)
        self.train_progress.setVisible(False)
        bar.addWidget(self.train_progress)
        bar.addSeparator()
        self.gradcheck_action = bar.addAction(
            style.standardIcon(QtWidgets.QStyle.SP_DialogApplyButton), "Gradient check",
            self.gradient_check)
        self.gradcheck_action.setToolTip("Compare BPTT's gradients with finite differences")
        self.sample_action = bar.addAction(
            style.standardIcon(QtWidgets.QStyle.SP_FileDialogDetailedView), "Sample",
            self.show_sampling)
        self.sample_action.setToolTip("Generate text from the model")
        self._speed_changed(self.speed.value())

    def _build_timeline(self):
        bar = QtWidgets.QToolBar("Timeline", self)
        bar.setObjectName("timeline_toolbar")
        bar.setMovable(False)
        self.addToolBarBreak(QtCore.Qt.TopToolBarArea)
        self.addToolBar(QtCore.Qt.TopToolBarArea, bar)
        bar.addWidget(QtWidgets.QLabel(" Timeline "))
        self.timeline = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.timeline.setToolTip("Every forward step, backward step and update so far: drag "
                                 "to revisit any of them")
        self.timeline.valueChanged.connect(self._timeline_moved)
        bar.addWidget(self.timeline)
        self.timeline_label = _steady_label(" 10000 / 10000  (backward, t = 1000 next) ")
        bar.addWidget(self.timeline_label)

    def _build_panels(self):
        from .panels.sampling import SamplePanel
        from .panels.settings import SettingsPanel

        # QMainWindow needs a central widget: without one, every relayout (a status text
        # changing, say) widens the left dock area by a separator and lays every panel out
        # again. An empty one takes no room between the docks.
        central = QtWidgets.QWidget(self)
        central.setObjectName("central")
        self.setCentralWidget(central)
        self.panels = {}
        self.docks = {}
        for module, cls_name, area, _ in PANELS:
            panel = _panel_class(module, cls_name)(self.ctl, self.selection, self)
            self._dock(panel, AREAS[area])
            self.panels[panel.name] = panel
        self.settings_panel = SettingsPanel(self)
        self.settings_panel.apply_requested.connect(self.apply_preset)
        self.settings_dock = self._dock(self.settings_panel, AREAS["left"])
        self.sample_panel = SamplePanel(self)
        self.sample_dock = self._dock(self.sample_panel, AREAS["left"], scroll=True)
        self.tabifyDockWidget(self.settings_dock, self.sample_dock)
        self.settings_dock.raise_()
        self._default_geometry()

    def _dock(self, widget, area, scroll=False):
        dock = QtWidgets.QDockWidget(TAB_TITLES.get(widget.name, widget.title), self)
        dock.setObjectName(f"dock_{widget.name}")
        if scroll:
            # A long form scrolls rather than making the window taller than the screen.
            area_widget = QtWidgets.QScrollArea()
            area_widget.setWidget(widget)
            area_widget.setWidgetResizable(True)
            area_widget.setFrameShape(QtWidgets.QFrame.NoFrame)
            dock.setWidget(area_widget)
        else:
            dock.setWidget(widget)
        dock.setToolTip(widget.toolTip())
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetMovable
                         | QtWidgets.QDockWidget.DockWidgetFloatable
                         | QtWidgets.QDockWidget.DockWidgetClosable)
        self.addDockWidget(area, dock)
        self.docks[widget.name] = dock
        dock.visibilityChanged.connect(self._dock_shown)
        return dock

    def _default_geometry(self):
        """The default layout for a 1920×1080 projector: the lesson's pictures in one view."""
        d = self.docks
        # Left: settings (and sampling) for the whole height; top: the sequence and the
        # unrolled network across; bottom: states, deltas, the δ split with the equations,
        # and the output distribution over the loss / flow / eigenvalue / weight tabs.
        self.setCorner(QtCore.Qt.TopLeftCorner, QtCore.Qt.LeftDockWidgetArea)
        self.setCorner(QtCore.Qt.BottomLeftCorner, QtCore.Qt.LeftDockWidgetArea)
        self.splitDockWidget(d["sequence"], d["unrolled"], QtCore.Qt.Vertical)
        self.splitDockWidget(d["hidden"], d["deltas"], QtCore.Qt.Horizontal)
        self.splitDockWidget(d["deltas"], d["delta_split"], QtCore.Qt.Horizontal)
        self.splitDockWidget(d["delta_split"], d["output"], QtCore.Qt.Horizontal)
        self.splitDockWidget(d["delta_split"], d["equation"], QtCore.Qt.Vertical)
        self.splitDockWidget(d["output"], d["loss"], QtCore.Qt.Vertical)
        groups = {}
        for module, cls_name, _, group in PANELS:
            if group is not None:
                groups.setdefault(group, []).append(_panel_class(module, cls_name).name)
        for names in groups.values():
            for name in names[1:]:
                self.tabifyDockWidget(d[names[0]], d[name])
            d[names[0]].raise_()
        self._sized = False

    def _default_sizes(self):
        """Dock sizes take effect only in a shown window: set them on the first show."""
        d = self.docks
        self.resizeDocks([d["settings"]], [410], QtCore.Qt.Horizontal)
        self.resizeDocks([d["sequence"], d["unrolled"], d["hidden"]], [165, 225, 600],
                         QtCore.Qt.Vertical)
        self.resizeDocks([d["hidden"], d["deltas"], d["delta_split"], d["output"]],
                         [220, 220, 680, 390], QtCore.Qt.Horizontal)
        self.resizeDocks([d["delta_split"], d["equation"]], [290, 190], QtCore.Qt.Vertical)
        self.resizeDocks([d["output"], d["loss"]], [270, 330], QtCore.Qt.Vertical)
        self._sized = True

    def showEvent(self, event):
        super().showEvent(event)
        if not self._sized:
            self._default_sizes()

    def _build_menus(self):
        menu = self.menuBar().addMenu("&File")
        menu.addAction("Open text…", self.open_text, QtGui.QKeySequence.Open)
        menu.addAction("Load model…", self.load_model_file)
        menu.addAction("Save model…", self.save_model_file, QtGui.QKeySequence.Save)
        menu.addSeparator()
        menu.addAction("Export window as PNG…", self.export_window)
        menu.addAction("Export a panel (PNG, SVG, CSV)…", self.export_panel)
        menu.addSeparator()
        menu.addAction("Quit", self.close, QtGui.QKeySequence.Quit)
        view = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        view.addAction("Restore the default layout", self.restore_default_layout)
        lesson = self.menuBar().addMenu("&Lesson")
        lesson.addAction("Finish this phase", self.run_phase)
        lesson.addAction("Finish this cycle (forward, backward, update)", self.run_cycle)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("Keys and phases", self.show_help)

    def _build_statusbar(self):
        self.status_labels = {}
        widest = {"phase": "  phase: forward done · BPTT next  ", "t": "  t = 10000 of 10000  ",
                  "loss": "  L_t = 000.0000  ",
                  "iteration": "  iteration 1000000 · window 10000/10000  ",
                  "lr": "  lr = 0.000001  "}
        for key in ("phase", "t", "loss", "iteration", "lr", "info"):
            label = _steady_label(widest[key]) if key in widest else QtWidgets.QLabel()
            label.setObjectName(f"status_{key}")
            self.status_labels[key] = label
            self.statusBar().addPermanentWidget(label, 1 if key == "info" else 0)

    def _build_shortcuts(self):
        for key, slot in ((QtCore.Qt.Key_Right, self.step), (QtCore.Qt.Key_Left, self.back),
                          (QtCore.Qt.Key_Space, self.toggle_play),
                          (QtCore.Qt.Key_Home, self.reset)):
            shortcut = QtWidgets.QShortcut(QtGui.QKeySequence(key), self)
            shortcut.setContext(QtCore.Qt.WindowShortcut)
            shortcut.activated.connect(slot)

    # ----------------------------------------------------------------- the lesson

    def load_preset(self, name):
        """Open another teaching demo."""
        try:
            preset = get_preset(name)
        except ValueError as exc:
            self.show_message(str(exc), error=True)
            return
        self.apply_preset(preset)

    def apply_preset(self, preset):
        """Build the lesson a preset describes (training-only changes keep the model)."""
        from .panels.settings import training_only

        if self.bridge.training:
            self.show_message("Stop training before changing the lesson.", error=True)
            return
        if training_only(self.preset, preset):
            try:
                self.ctl.configure(truncate=preset.truncate, lr=preset.lr,
                                   optimizer=preset.optimizer, clip_value=preset.clip_value,
                                   clip_norm=preset.clip_norm, carry_state=preset.carry_state)
            except ValueError as exc:
                self.show_message(str(exc), error=True)
                return
            self.preset = preset
            self._lesson_changed(rebuilt=False)
            return
        try:
            vocab, net, ctl = build(preset)
        except ValueError as exc:
            self.show_message(str(exc), error=True)
            return
        self._set_lesson(preset, vocab, net, ctl)

    def _set_lesson(self, preset, vocab, net, ctl):
        self.stop_play()
        self.preset, self.vocab, self.net, self.ctl = preset, vocab, net, ctl
        self.bridge.attach(ctl)
        self.selection.clamp(net.hidden_size)
        self.selection.step = None
        for panel in self.panels.values():
            panel.set_controller(ctl)
        self._lesson_changed()

    def _lesson_changed(self, rebuilt=True):
        self.setWindowTitle(f"RNN Explorer — {self.preset.name}")
        # The gated cells' backward heatmap shows ∂L/∂h_t, not a δ_t = ∂L/∂a_t.
        self.docks["deltas"].setWindowTitle("BPTT deltas δ_t" if self.net.cell == "rnn"
                                            else "BPTT gradients ∂L/∂h_t")
        self.docks["hidden"].setWindowTitle("States h_t and cells c_t" if self.net.cell == "lstm"
                                            else "Hidden states h_t")
        for name in self.preset.show if rebuilt else ():
            if name in self.docks:          # the view this demo is about, to the front
                self.docks[name].show()
                self.docks[name].raise_()
        index = self.preset_box.findData(self.preset.name)
        if index >= 0:
            self.preset_box.setCurrentIndex(index)
        self.train_iterations.setValue(self.preset.train_iterations)
        self.settings_panel.load(self.preset)
        self.sample_panel.set_lesson(self.net, self.vocab)
        self.refresh()

    # ----------------------------------------------------------------- actions

    def _busy(self):
        if self.bridge.training:
            self.show_message("Training is running: stop it first.")
            return True
        return False

    def step(self):
        if self._busy():
            return
        try:
            self.ctl.step()
        except ValueError as exc:
            self.show_message(str(exc), error=True)
            self.stop_play()

    def back(self):
        if self._busy():
            return
        if not self.ctl.back():
            self.show_message("This is the start of the timeline.")

    def reset(self):
        if self._busy():
            return
        self.stop_play()
        self.ctl.reset()

    def run_phase(self):
        if not self._busy():
            self.ctl.run_phase()

    def run_cycle(self):
        if not self._busy():
            self.ctl.run_cycle()

    def toggle_play(self):
        if self._play.isActive():
            self.stop_play()
        elif not self._busy():
            self._play.start(int(1000 / self.speed.value()))
            self.play_action.setChecked(True)
            self.play_action.setText("Pause")
            self.play_action.setIcon(self.style().standardIcon(QtWidgets.QStyle.SP_MediaPause))

    def stop_play(self):
        self._play.stop()
        self.play_action.setChecked(False)
        self.play_action.setText("Play")
        self.play_action.setIcon(self.style().standardIcon(QtWidgets.QStyle.SP_MediaPlay))

    @property
    def playing(self):
        return self._play.isActive()

    def _play_step(self):
        self.step()

    def _speed_changed(self, value):
        self.speed_label.setText(f"{value}/s ")
        if self._play.isActive():
            self._play.setInterval(int(1000 / value))

    def _timeline_moved(self, value):
        if self._updating_timeline or self.bridge.training:
            return
        if value != self.ctl.timeline_index:
            try:
                self.ctl.goto(value)
            except ValueError as exc:
                self.show_message(str(exc), error=True)

    _updating_timeline = False

    def train_or_stop(self):
        if self.bridge.training:
            self.bridge.stop(wait=False)
            return
        self.stop_play()
        n = self.train_iterations.value()
        self.train_progress.setRange(0, n)
        self.train_progress.setValue(0)
        self.train_progress.setVisible(True)
        self._train_started = time.perf_counter()
        self.bridge.train(n, batch_size=self.preset.batch_size)
        self._set_training_ui(True)

    def _set_training_ui(self, training):
        self.train_action.setText("Stop" if training else "Train")
        self.train_action.setIcon(self.style().standardIcon(
            QtWidgets.QStyle.SP_MediaStop if training else QtWidgets.QStyle.SP_BrowserReload))
        for widget in (self.step_action, self.back_action, self.reset_action, self.play_action,
                       self.gradcheck_action, self.timeline, self.preset_box,
                       self.settings_panel):
            widget.setEnabled(not training)

    def _on_progress(self, p):
        self.train_progress.setValue(p.iteration)
        self.status_labels["info"].setText(
            f"training: {p.iteration}/{p.total} · loss {p.loss:.4f} "
            f"(smoothed {p.smooth_loss:.4f}) · {p.chars_per_second:,.0f} chars/s · "
            f"ETA {p.eta_seconds:.0f} s")
        self.bridge.request_redraw()

    def _on_trained(self, result):
        self.train_progress.setVisible(False)
        self._set_training_ui(False)
        if result.diverged:
            self.show_message(result.message, error=True, dialog=True)
        else:
            self.show_message(result.message)
        self.refresh()

    def _on_training_failed(self, message):
        self.train_progress.setVisible(False)
        self._set_training_ui(False)
        self.show_message(message, error=True, dialog=True)

    def gradient_check(self):
        from .dialogs.gradcheck import GradcheckDialog

        dialog = GradcheckDialog(self.ctl, self)
        dialog.setModal(False)
        dialog.show()
        dialog.run()
        self._gradcheck_dialog = dialog

    def show_sampling(self):
        self.sample_dock.show()
        self.sample_dock.raise_()

    def show_help(self):
        QtWidgets.QMessageBox.information(
            self, "Keys and phases",
            "→  next step: forward over the window, then backward through time, then the "
            "update\n←  back one step, exactly as it was (across updates too)\n"
            "Space  play / pause\nHome  reset the lesson\n\n"
            "Click a unit in a heatmap to follow it in the equations and the δ split.\n"
            "Drag the timeline to revisit any step.")

    # ----------------------------------------------------------------- files

    def open_text(self):
        if self._busy():
            return
        self.settings_dock.show()
        self.settings_dock.raise_()
        self.settings_panel.open_text_file()

    def save_model_file(self):
        if self._busy():
            return
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save model", "model.npz",
                                                        "RNN Explorer model (*.npz)")
        if path:
            self.save_model_to(path)

    def save_model_to(self, path):
        try:
            save_model(path, self.net, self.vocab, extra={"preset": self.preset.to_dict()})
        except (ValueError, OSError) as exc:
            self.show_message(f"Could not save the model: {exc}", error=True, dialog=True)
            return False
        self.show_message(f"Saved {path}")
        return True

    def load_model_file(self):
        if self._busy():
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Load model", "",
                                                        "RNN Explorer model (*.npz)")
        if path:
            self.load_model_from(path)

    def load_model_from(self, path):
        """Load a saved model into the current lesson (its cell and sizes; the same text)."""
        try:
            net, vocab, _ = load_model(path)
            if vocab is not None and self.vocab is not None and vocab != self.vocab:
                raise ValueError("its vocabulary differs from this lesson's text; open the "
                                 "text it was trained on first")
            preset = self.preset.with_changes(cell=net.cell, hidden=net.hidden_size,
                                              activation=net.activation)
            lesson = build(preset, params=net.params)
        except (ValueError, OSError) as exc:
            self.show_message(f"Could not load the model: {exc}", error=True, dialog=True)
            return False
        self._set_lesson(preset, *lesson)
        self.show_message(f"Loaded {path}")
        return True

    def export_window(self):
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export window", "window.png",
                                                        "PNG image (*.png)")
        if path:
            from .dialogs.export import export_widget_png
            try:
                export_widget_png(self, path)
            except (ValueError, OSError) as exc:
                self.show_message(str(exc), error=True, dialog=True)

    def export_panel(self):
        from .dialogs.export import ExportDialog
        ExportDialog(list(self.panels.values()), self).exec_()

    # ----------------------------------------------------------------- drawing

    def refresh(self):
        """Redraw every visible panel from the controller (called at most ~30×/s)."""
        start = time.perf_counter()
        training = self.bridge.training
        for panel in self.panels.values():
            # While training only the loss curve moves; the lesson's window is redrawn after.
            if training and panel.name != "loss":
                continue
            if self._on_screen(panel) or not self.isVisible():
                panel.refresh()
        self._refresh_status()
        self._refresh_timeline()
        self._last_paint_ms = (time.perf_counter() - start) * 1000

    def _on_screen(self, panel):
        """A panel the user can see: a dock behind another tab stays "visible" to Qt (it is
        only moved out of the window); an on-screen dock shows at least its title bar."""
        dock = self.docks[panel.name]
        return panel.isVisible() and (dock.isFloating() or not dock.visibleRegion().isEmpty())

    def _dock_shown(self, shown):
        """A tab brought to the front shows its panel as the lesson is now."""
        panel = self.panels.get(self.sender().objectName()[len("dock_"):])
        if shown and panel is not None and not self.bridge.training:
            panel.refresh()

    def _refresh_status(self):
        ctl = self.ctl
        if ctl.position == ctl.T:
            phase = "forward done · BPTT next"
        else:
            phase = {"forward": "forward", "backward": "backward (BPTT)",
                     "update": "BPTT done · update next"}[ctl.phase]
        labels = self.status_labels
        labels["phase"].setText(f"  phase: {phase}  ")
        cur = ctl.current
        labels["t"].setText(f"  t = {cur if cur is not None else '–'} of {ctl.T}  ")
        loss = float(ctl.trace.loss[cur]) if cur is not None else math.nan
        labels["loss"].setText(f"  L_t = {loss:.4f}  " if math.isfinite(loss) else "  L_t = –  ")
        labels["iteration"].setText(f"  iteration {ctl.iteration} · window "
                                    f"{ctl.window_index + 1}/{ctl.n_windows}  ")
        labels["lr"].setText(f"  lr = {ctl.lr:g}  ")

    def _refresh_timeline(self):
        self._updating_timeline = True
        try:
            self.timeline.setRange(0, self.ctl.history_length - 1)
            self.timeline.setValue(self.ctl.timeline_index)
        finally:
            self._updating_timeline = False
        self.timeline_label.setText(
            f" {self.ctl.timeline_index + 1} / {self.ctl.history_length}"
            f"  ({self.ctl.phase}{'' if self.ctl.t is None else f', t = {self.ctl.t}'} next) ")

    def show_message(self, text, error=False, dialog=False):
        """A message in the status bar (and a non-blocking dialog for serious ones)."""
        self.status_labels["info"].setText(("⚠ " if error else "") + text)
        self.status_labels["info"].setStyleSheet("color: #b00000;" if error else "")
        self.statusBar().showMessage("", 1)
        if dialog:
            box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Warning if error
                                        else QtWidgets.QMessageBox.Information,
                                        "RNN Explorer", text, QtWidgets.QMessageBox.Ok, self)
            box.setModal(False)
            box.show()
            self._message_box = box

    # ----------------------------------------------------------------- layout

    def _restore_layout(self):
        if self.settings is None:
            return
        if int(self.settings.value("layout_version", 0) or 0) != LAYOUT_VERSION:
            return
        state = self.settings.value("window_state")
        geometry = self.settings.value("window_geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None and self.restoreState(state, LAYOUT_VERSION):
            self._sized = True          # the user's own layout, as they left it

    def restore_default_layout(self):
        for dock in self.docks.values():
            dock.setFloating(False)
            dock.show()
        self._default_geometry()
        self._default_sizes()

    def closeEvent(self, event):
        # Open dialogs (a message, the gradient check) close with the window: left open,
        # they would keep the application running with no window behind them.
        for dialog in self.findChildren(QtWidgets.QDialog):
            dialog.close()
        self.stop_play()
        if self.bridge.training:
            self.bridge.stop(wait=True)
        self.bridge.detach()
        if self.settings is not None:
            self.settings.setValue("layout_version", LAYOUT_VERSION)
            self.settings.setValue("window_state", self.saveState(LAYOUT_VERSION))
            self.settings.setValue("window_geometry", self.saveGeometry())
        super().closeEvent(event)


def _steady_label(widest):
    """A label as wide as ``widest`` for good: its text changes with every step, and a label
    whose size may change makes the whole window lay out its docks again each time."""
    label = QtWidgets.QLabel(widest)
    label.setFixedSize(label.sizeHint())
    label.setText("")
    return label


def app_icon():
    """The application icon (assets/icons), or an empty icon if it is missing."""
    from importlib import resources
    from pathlib import Path

    for base in (Path(__file__).resolve().parent.parent / "assets" / "icons",):
        path = base / "rnn-explorer.svg"
        if path.exists():
            return QtGui.QIcon(str(path))
    try:
        ref = resources.files("explorer.assets") / "icons" / "rnn-explorer.svg"
        with resources.as_file(ref) as path:
            if path.exists():
                return QtGui.QIcon(str(path))
    except (ModuleNotFoundError, FileNotFoundError):
        pass
    return QtGui.QIcon()
