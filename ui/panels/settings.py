"""The settings dock: edit a lesson's Preset (data, model, training) and ask to apply it."""

from __future__ import annotations

import math
import re
from dataclasses import fields
from pathlib import Path

from PyQt5 import QtCore, QtWidgets

from explorer.cells import ACTIVATIONS, CELLS
from explorer.data import load_text
from explorer.network import INITS
from explorer.optim import OPTIMIZERS
from explorer.presets import build, preset_text

# The settings the controller can change in place (Controller.configure) or that only the Train
# button reads; any other change needs a new vocabulary, network or windows: a rebuild.
TRAINING_FIELDS = frozenset({"optimizer", "lr", "clip_value", "clip_norm", "truncate",
                             "carry_state", "train_iterations", "batch_size"})
# Labels that describe a preset but do not change what it computes.
DESCRIPTIVE_FIELDS = frozenset({"name", "description", "notes"})

# Texts longer than this are shown read-only (with their size) until the user asks to edit:
# a teacher scrolling through a corpus should not change it by a stray key press.
LONG_TEXT = 2000

# Argument names that appear in the engine's error messages, and the field each one concerns.
_ARGUMENT_FIELDS = {
    "hidden_size": "hidden", "input_size": "text", "output_size": "text",
    "length": "window", "window": "window", "stride": "stride",
    "init_scale": "init_scale", "init": "init", "activation": "activation", "cell": "cell",
    "seed": "seed", "optimizer": "optimizer", "lr": "lr", "learning rate": "lr",
    "clip_value": "clip_value", "clip_norm": "clip_norm", "truncate": "truncate",
    "carry_state": "carry_state", "batch_size": "batch_size",
    "train_iterations": "train_iterations", "max_size": "max_vocab", "max_vocab": "max_vocab",
    "level": "level", "text": "text", "path": "text", "tokens": "text", "task": "text",
    "name": "text",                         # "name must be one of [...]": a bundled corpus
}
_ARGUMENT_RE = re.compile(r"(?<![\w])(" + "|".join(
    re.escape(a) for a in sorted(_ARGUMENT_FIELDS, key=len, reverse=True)) + r")(?![\w])")

_ERROR_STYLE = "color: #c00000;"
_INFO_STYLE = "color: #505050;"


class FieldError(ValueError):
    """A value the panel refuses before building anything; ``field`` says which one."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def field_for_message(message):
    """The field an engine error message concerns: the first argument name it mentions."""
    match = _ARGUMENT_RE.search(message)
    return _ARGUMENT_FIELDS[match.group(1)] if match else None


def training_only(old, new):
    """True when ``new`` differs from ``old`` only in training settings (optimizer, lr,
    clipping, truncation, carried state, iterations, batch size), or not at all: the window can
    then reconfigure the controller and keep the network instead of rebuilding the lesson."""
    for f in fields(old):
        if f.name in TRAINING_FIELDS or f.name in DESCRIPTIVE_FIELDS:
            continue
        if getattr(old, f.name) != getattr(new, f.name):
            return False
    return True


def _number(field, label, text, allow_off=False):
    """Parse a positive finite number typed in a field; with ``allow_off`` empty or 0 is None."""
    text = text.strip()
    if allow_off and text.lower() in ("", "0", "off", "none"):
        return None
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")       # a decimal comma, as many keyboards type it
    hint = " (leave empty or 0 for off)" if allow_off else ""
    try:
        value = float(text)
    except ValueError:
        raise FieldError(field, f"{label} must be a number such as 0.1{hint}, "
                                f"got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise FieldError(field, f"{label} must be a finite positive number{hint}, "
                                f"got {text!r}")
    return value


def _spin(minimum, maximum, suffix="", special=None, step=1):
    box = QtWidgets.QSpinBox()
    box.setRange(minimum, maximum)
    box.setSingleStep(step)
    if suffix:
        box.setSuffix(suffix)
    if special:
        box.setSpecialValueText(special)        # shown at the minimum
    box.setAccelerated(True)
    return box


def _combo(items):
    """A combo box of (shown text, value) pairs."""
    box = QtWidgets.QComboBox()
    for text, value in items:
        box.addItem(text, value)
    return box


def _select(box, value):
    index = box.findData(value)
    if index < 0:
        box.addItem(str(value), value)          # keep an unusual value visible, not lost
        index = box.count() - 1
    box.setCurrentIndex(index)


class SettingsPanel(QtWidgets.QWidget):
    """Edits a Preset. ``load(preset)`` fills the fields; ``preset()`` returns the edited one;
    Apply (or Enter in a field) emits ``apply_requested(preset)`` once the lesson builds."""

    title = "Settings"
    name = "settings"
    tooltip = ("The lesson's settings: data, model and training. "
               "Apply (or Enter) rebuilds the lesson with them.")

    apply_requested = QtCore.pyqtSignal(object)

    def __init__(self, parent=None, preset=None):
        super().__init__(parent)
        self.setObjectName(self.name)
        self.setToolTip(self.tooltip)
        self._preset = None
        self._source = ""           # the preset's text as written ("corpus:prose", or literal)
        self._source_text = ""      # what it expands to
        self._file = None           # (name, text) of the last text file opened
        self._rnn_activation = "tanh"
        self.fields = {}            # Preset attribute -> editing widget
        self.errors = {}            # Preset attribute -> red message label under it
        self.captions = {}          # Preset attribute -> its label in the form

        # The form scrolls (a projector's screen is short); the buttons and the summary of
        # what went wrong stay in view below it.
        form = QtWidgets.QWidget()
        groups = QtWidgets.QVBoxLayout(form)
        groups.setContentsMargins(0, 0, 4, 0)
        groups.setSpacing(8)
        groups.addWidget(self._data_group())
        groups.addWidget(self._model_group())
        groups.addWidget(self._training_group())
        groups.addStretch(1)
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidget(form)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QtWidgets.QFrame.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        self.scroll.setMinimumWidth(form.minimumSizeHint().width() + 16)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.scroll, 1)

        self.general_error = self._error_label()
        layout.addWidget(self.general_error)
        buttons = QtWidgets.QHBoxLayout()
        self.revert_button = QtWidgets.QPushButton("Revert")
        self.revert_button.setToolTip("Put back the settings of the current lesson.")
        self.revert_button.clicked.connect(self.revert)
        self.apply_button = QtWidgets.QPushButton("Apply")
        self.apply_button.setDefault(True)
        self.apply_button.setToolTip("Check the settings and rebuild the lesson with them "
                                     "(Enter in a field does the same).")
        self.apply_button.clicked.connect(self.apply)
        buttons.addStretch(1)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.apply_button)
        layout.addLayout(buttons)

        for widget in self.fields.values():
            if isinstance(widget, (QtWidgets.QLineEdit, QtWidgets.QAbstractSpinBox,
                                   QtWidgets.QComboBox)):
                widget.installEventFilter(self)
        if preset is not None:
            self.load(preset)

    # ----------------------------------------------------------------- building the form

    def _error_label(self):
        label = QtWidgets.QLabel()
        label.setStyleSheet(_ERROR_STYLE)
        label.setWordWrap(True)
        label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        label.hide()
        return label

    def _row(self, form, name, label, widget, tip, extra=None):
        """Add a form row: the field (and ``extra`` widgets beside it) with its error under it."""
        box = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        if extra:
            line = QtWidgets.QHBoxLayout()
            line.setSpacing(4)
            line.addWidget(widget, 1)
            for w in extra:
                line.addWidget(w)
            column.addLayout(line)
        else:
            column.addWidget(widget)
        error = self._error_label()
        column.addWidget(error)
        caption = QtWidgets.QLabel(label)
        caption.setToolTip(tip)
        # Captions sit level with their field's first line, not with field + message.
        line_height = QtWidgets.QLineEdit().sizeHint().height()
        caption.setAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignTop)
        caption.setContentsMargins(0, max(0, (line_height - caption.sizeHint().height()) // 2),
                                   0, 0)
        widget.setToolTip(tip)
        form.addRow(caption, box)
        self.captions[name] = caption
        self.fields[name] = widget
        self.errors[name] = error
        return widget

    @staticmethod
    def _group(title):
        group = QtWidgets.QGroupBox(title)
        group.setStyleSheet("QGroupBox { font-weight: bold; } "
                            "QGroupBox * { font-weight: normal; }")
        return group

    @staticmethod
    def _form(group):
        form = QtWidgets.QFormLayout(group)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.AllNonFixedFieldsGrow)
        form.setLabelAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignTop)
        form.setContentsMargins(6, 6, 6, 6)
        form.setVerticalSpacing(5)
        return form

    def _data_group(self):
        group = self._group("Data")
        form = self._form(group)

        text_box = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(text_box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(3)
        self.text_edit = QtWidgets.QPlainTextEdit()
        self.text_edit.setLineWrapMode(QtWidgets.QPlainTextEdit.WidgetWidth)
        self.text_edit.setTabChangesFocus(True)
        self.text_edit.textChanged.connect(self._text_edited)
        self.text_info = QtWidgets.QLabel()
        self.text_info.setStyleSheet(_INFO_STYLE)
        self.text_info.setWordWrap(True)
        self.open_button = QtWidgets.QPushButton("Open text file…")
        self.open_button.setToolTip("Train on a UTF-8 text file of your own.")
        self.open_button.clicked.connect(lambda: self.open_text_file())
        self.edit_button = QtWidgets.QPushButton("Edit")
        self.edit_button.setCheckable(True)
        self.edit_button.setToolTip("Long texts are shown read-only; press to edit this one.")
        self.edit_button.toggled.connect(self._set_editable)
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(4)
        row.addWidget(self.open_button)
        row.addWidget(self.edit_button)
        row.addStretch(1)
        column.addWidget(self.text_edit)
        column.addWidget(self.text_info)
        column.addLayout(row)
        self._row(form, "text", "Text", text_box,
                  "The text the network learns to continue: type it, or open a file.")
        self.fields["text"] = self.text_edit
        self.text_edit.setToolTip(text_box.toolTip())

        self._row(form, "level", "Tokens", _combo([("characters", "char"), ("words", "word")]),
                  "What one time step reads: one character, or one word (or punctuation mark).")
        self.fields["level"].currentIndexChanged.connect(self._level_changed)
        self._row(form, "max_vocab", "Vocabulary",
                  _spin(0, 1_000_000, " words", special="all words", step=10),
                  "Word level: keep the most frequent words; the others become UNKNOWN_TOKEN.")
        self._row(form, "window", "Window T", _spin(0, 100_000, " steps"),
                  "Time steps per window (what one forward/backward pass unrolls); "
                  "at most the text's length − 1 tokens.")
        self._row(form, "stride", "Stride",
                  _spin(0, 100_000, " tokens", special="= T (no overlap)"),
                  "How far the next window starts after this one; '= T' puts windows side by side.")
        return group

    def _model_group(self):
        group = self._group("Model")
        form = self._form(group)
        names = {"rnn": "vanilla RNN", "lstm": "LSTM", "gru": "GRU"}
        self._row(form, "cell", "Cell", _combo([(names.get(c, c), c) for c in CELLS]),
                  "The recurrent cell: vanilla RNN h_t = f(U x_t + W h_{t−1} + b), LSTM or GRU.")
        self.fields["cell"].currentIndexChanged.connect(self._cell_changed)
        self._row(form, "hidden", "Hidden size H", _spin(0, 4096, " units"),
                  "Number of hidden units H (1 to a few hundred; large H trains slowly).")
        self._row(form, "activation", "Activation f", _combo([(a, a) for a in ACTIVATIONS]),
                  "f in h_t = f(a_t), vanilla RNN only (LSTM and GRU use their own gates).")
        inits = {"uniform": "uniform ±1/√fan-in", "xavier": "Xavier",
                 "identity": "identity (IRNN)"}
        self._row(form, "init", "Init", _combo([(inits.get(i, i), i) for i in INITS]),
                  "How the weights start; identity (W = I) is for the vanilla RNN only.")
        scale = QtWidgets.QDoubleSpinBox()
        scale.setRange(0.0, 100.0)
        scale.setDecimals(3)
        scale.setSingleStep(0.1)
        scale.setPrefix("W × ")
        self._row(form, "init_scale", "Init scale", scale,
                  "Multiplies W after initialisation: its spectral radius. Below 1 gradients "
                  "vanish, above 1 they can explode.")
        self._row(form, "seed", "Seed", _spin(0, 2**31 - 1),
                  "Random seed of the initial weights (and of generated task texts).")
        return group

    def _training_group(self):
        group = self._group("Training")
        form = self._form(group)
        self._row(form, "optimizer", "Optimizer", _combo([(o, o) for o in OPTIMIZERS]),
                  "How each update uses the gradient: sgd, momentum, adagrad, rmsprop or adam.")
        lr = QtWidgets.QLineEdit()
        lr.setPlaceholderText("e.g. 0.1")
        self._row(form, "lr", "Learning rate η", lr,
                  "Step size η of each update: a positive number, typically 0.001 to 0.5.")
        clip_value = QtWidgets.QLineEdit()
        clip_value.setPlaceholderText("off")
        self._row(form, "clip_value", "Clip |g| ≤", clip_value,
                  "Clip every gradient entry to [−c, c] before the update; empty or 0 = off.")
        clip_norm = QtWidgets.QLineEdit()
        clip_norm.setPlaceholderText("off")
        self._row(form, "clip_norm", "Clip ‖g‖ ≤", clip_norm,
                  "Rescale the whole gradient when its norm exceeds this; empty or 0 = off.")
        self._row(form, "truncate", "BPTT",
                  _combo([("full", "full"), ("truncated to k steps", "truncated")]),
                  "Full backpropagation through time, or truncated to k steps back.")
        self.truncate_k = self._row(
            form, "truncate_k", "k", _spin(0, 9999, " steps back"),
            "The loss at step t sends gradient back to steps t, t−1, …, t−k only "
            "(0 keeps the step itself).")
        self.fields["truncate"].currentIndexChanged.connect(self._truncate_changed)
        carry = QtWidgets.QCheckBox("carry h across windows")
        self._row(form, "carry_state", "State", carry,
                  "Start each window from the previous window's last hidden state "
                  "(else from zeros).")
        self._row(form, "train_iterations", "Train runs", _spin(1, 10_000_000, " iterations",
                                                                 step=100),
                  "How many updates one press of Train runs.")
        self._row(form, "batch_size", "Batch size", _spin(1, 4096, " per update"),
                  "Windows per update when training (the step-by-step lesson uses one).")
        return group

    # ----------------------------------------------------------------- reading and writing

    def load(self, preset):
        """Fill the fields with ``preset`` (which becomes the one Revert returns to)."""
        self._preset = preset
        f = self.fields
        self._show_text(preset)
        _select(f["level"], preset.level)
        f["max_vocab"].setValue(preset.max_vocab or 0)
        f["window"].setValue(preset.window)
        f["stride"].setValue(preset.stride or 0)
        self._rnn_activation = preset.activation
        _select(f["activation"], preset.activation)
        _select(f["cell"], preset.cell)
        f["hidden"].setValue(preset.hidden)
        _select(f["init"], preset.init)
        f["init_scale"].setValue(preset.init_scale)
        f["seed"].setValue(preset.seed)
        _select(f["optimizer"], preset.optimizer)
        f["lr"].setText(f"{preset.lr:g}")
        f["clip_value"].setText("" if preset.clip_value is None else f"{preset.clip_value:g}")
        f["clip_norm"].setText("" if preset.clip_norm is None else f"{preset.clip_norm:g}")
        _select(f["truncate"], "full" if preset.truncate is None else "truncated")
        self.truncate_k.setValue(preset.truncate or 0)
        f["carry_state"].setChecked(bool(preset.carry_state))
        f["train_iterations"].setValue(preset.train_iterations)
        f["batch_size"].setValue(preset.batch_size)
        self._level_changed()
        self._cell_changed()
        self._truncate_changed()
        self.clear_errors()

    def preset(self):
        """The edited Preset; a FieldError (a ValueError) for a value typed wrongly.

        Only the fields' own checks happen here; whether the lesson builds is checked by
        `validate` (and by Apply)."""
        if self._preset is None:
            raise ValueError("no preset loaded: call load(preset) first")
        f = self.fields
        text = self.text_edit.toPlainText()
        level = f["level"].currentData()
        cell = f["cell"].currentData()
        truncated = f["truncate"].currentData() == "truncated"
        return self._preset.with_changes(
            # An unchanged text keeps its source ("corpus:prose"), so the preset stays small.
            text=self._source if text == self._source_text else text,
            level=level,
            max_vocab=(f["max_vocab"].value() or None) if level == "word" else None,
            window=f["window"].value(),
            stride=f["stride"].value() or None,
            cell=cell,
            hidden=f["hidden"].value(),
            # LSTM and GRU have no activation choice; the network insists on "tanh" there.
            activation=f["activation"].currentData() if cell == "rnn" else "tanh",
            init=f["init"].currentData(),
            init_scale=round(f["init_scale"].value(), 6),
            seed=f["seed"].value(),
            optimizer=f["optimizer"].currentData(),
            lr=_number("lr", "lr (the learning rate)", f["lr"].text()),
            clip_value=_number("clip_value", "clip_value (clip |g| ≤)", f["clip_value"].text(),
                               allow_off=True),
            clip_norm=_number("clip_norm", "clip_norm (clip ‖g‖ ≤)", f["clip_norm"].text(),
                              allow_off=True),
            truncate=self.truncate_k.value() if truncated else None,
            carry_state=f["carry_state"].isChecked(),
            train_iterations=f["train_iterations"].value(),
            batch_size=f["batch_size"].value(),
        )

    def validate(self):
        """The edited preset if its lesson builds; else None, with the messages shown in red
        under the fields they concern."""
        self.clear_errors()
        try:
            preset = self.preset()
            build(preset)
        except FieldError as error:
            self.show_error(str(error), error.field)
            return None
        except ValueError as error:
            self.show_error(str(error))
            return None
        return preset

    def apply(self):
        """Validate, then emit ``apply_requested(preset)``; returns the preset or None."""
        preset = self.validate()
        if preset is None:
            return None
        self._preset = preset
        self._show_text(preset)              # a generated task text may depend on the seed
        self.apply_requested.emit(preset)
        return preset

    def revert(self):
        if self._preset is not None:
            self.load(self._preset)

    # ----------------------------------------------------------------- messages

    def show_error(self, message, field=None):
        """Show ``message`` in red under ``field`` (found from the message when not given)."""
        field = field or field_for_message(message)
        label = self.errors.get(field, self.general_error)
        label.setText("⚠ " + message)
        label.show()
        if label is not self.general_error:
            # The field may be scrolled out of view: say where to look, and scroll there.
            caption = self.captions[field].text()
            self.general_error.setText(f"⚠ Not applied: see {caption} above.")
            self.general_error.show()
            self.scroll.ensureWidgetVisible(self._field_box(field))

    def clear_errors(self):
        for label in (*self.errors.values(), self.general_error):
            label.clear()
            label.hide()

    def error_text(self, field=None):
        """The message shown under ``field`` ('' if none; None: the general one)."""
        label = self.general_error if field is None else self.errors[field]
        return label.text() if label.isVisibleTo(self) else ""

    # ----------------------------------------------------------------- the text

    def _show_text(self, preset):
        self._source = preset.text
        try:
            self._source_text = preset_text(preset)
        except ValueError as error:
            self._source_text = ""
            self.show_error(str(error), "text")
        self._set_text(self._source_text)

    def _origin(self, text):
        """Where the text in the field came from, in words."""
        if text == self._source_text and text:
            kind, _, name = self._source.partition(":")
            if kind == "corpus" and text != self._source:
                return f"bundled corpus '{name}'"
            if kind == "task" and text != self._source:
                return f"generated task '{name}'"
        if self._file is not None and text == self._file[1]:
            return f"file {self._file[0]}"
        return "typed text"

    def _set_text(self, text):
        long = len(text) > LONG_TEXT
        # Tall enough for the text (roughly 40 characters a line), 2 to 6 lines.
        lines = min(6, max(2, text.count("\n") + 1 + len(text) // 40))
        self.text_edit.setFixedHeight(self.text_edit.fontMetrics().lineSpacing() * lines + 14)
        self.text_edit.blockSignals(True)
        self.text_edit.setPlainText(text)
        self.text_edit.blockSignals(False)
        self.edit_button.blockSignals(True)
        self.edit_button.setChecked(not long)
        self.edit_button.blockSignals(False)
        self.edit_button.setVisible(long)
        self._set_editable(not long)
        self._update_info()

    def _set_editable(self, editable):
        self.text_edit.setReadOnly(not editable)
        # Read-only text looks it: a grey background, so nobody types and wonders why.
        self.text_edit.setStyleSheet("" if editable else "QPlainTextEdit { background: #f0f0f0; }")

    def _text_edited(self):
        self._update_info()
        self.errors["text"].hide()

    def _update_info(self):
        text = self.text_edit.toPlainText()
        lines = text.count("\n") + 1 if text else 0
        size = f"{len(text):,} characters, {lines:,} line{'s' if lines != 1 else ''}"
        note = " · read-only (press Edit)" if self.text_edit.isReadOnly() else ""
        self.text_info.setText(f"{self._origin(text)}: {size}{note}")

    def open_text_file(self, path=None):
        """Load a text file into the text field (asks for it when ``path`` is None)."""
        if path is None:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, "Open a text file", "", "Text files (*.txt *.md *.csv);;All files (*)")
            if not path:
                return False
        try:
            text = load_text(path)
        except ValueError as error:
            self.clear_errors()
            self.show_error(str(error), "text")
            return False
        self._file = (Path(path).name, text)
        self._set_text(text)
        self.errors["text"].hide()
        return True

    # ----------------------------------------------------------------- dependent fields

    def _level_changed(self):
        # A char vocabulary keeps every character: the word limit would only confuse there.
        word = self.fields["level"].currentData() == "word"
        self.captions["max_vocab"].setVisible(word)
        self._field_box("max_vocab").setVisible(word)

    def _field_box(self, field):
        return self.errors[field].parentWidget()

    def _cell_changed(self):
        activation = self.fields["activation"]
        rnn = self.fields["cell"].currentData() == "rnn"
        if rnn:
            _select(activation, self._rnn_activation)
        elif activation.isEnabled():
            # Keep the vanilla RNN's choice for when the user comes back to it.
            self._rnn_activation = activation.currentData()
        if not rnn:
            _select(activation, "tanh")
        activation.setEnabled(rnn)

    def _truncate_changed(self):
        truncated = self.fields["truncate"].currentData() == "truncated"
        self.captions["truncate_k"].setVisible(truncated)
        self._field_box("truncate_k").setVisible(truncated)

    def eventFilter(self, obj, event):
        # Enter in a field applies, after the field has taken in what was typed.
        if event.type() == QtCore.QEvent.KeyPress and event.key() in (QtCore.Qt.Key_Return,
                                                                      QtCore.Qt.Key_Enter):
            if not (isinstance(obj, QtWidgets.QComboBox) and obj.view().isVisible()):
                QtCore.QTimer.singleShot(0, self.apply)
        return super().eventFilter(obj, event)

    def export_items(self):
        return []
