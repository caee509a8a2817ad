"""The sample panel: let the network write text, with a temperature, a prime and a seed."""

from __future__ import annotations

import html

from PyQt5 import QtCore, QtGui, QtWidgets

from explorer.data import SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN
from explorer.sampling import sample

from .base import COLORS

# The slider works in hundredths: 0 … 200 is a temperature of 0.00 … 2.00.
_STEPS_PER_UNIT = 100
_PRIME_COLOR = "#8a8a8a"
_ERROR_STYLE = "color: #c00000;"
UNKNOWN_SHOWN = "⟨unk⟩"


def readable(text):
    """Word-level text as the panel shows it: UNKNOWN_TOKEN as ⟨unk⟩, a sentence mark as a
    line break (the engine writes the marks as they are in the vocabulary)."""
    lines = []
    for line in text.split("\n"):
        words = []
        for word in line.split(" "):
            if word in (SENTENCE_START, SENTENCE_END):
                if words:
                    lines.append(" ".join(words))
                words = []
            else:
                words.append(UNKNOWN_SHOWN if word == UNKNOWN_TOKEN else word)
        # A mark at the end of a line already broke it; an empty line of the text stays.
        if words or not line:
            lines.append(" ".join(words))
    return "\n".join(lines)


class SamplePanel(QtWidgets.QWidget):
    """Generates text from the current network: ``set_lesson(net, vocab)``, then ``generate()``.

    The output shows the prime in grey and what the network wrote after it in black; word-level
    markers read as ⟨unk⟩ and line breaks. For a word vocabulary a check box (on at first)
    keeps the unknown token out of the text.
    """

    title = "Sample"
    name = "sample"
    tooltip = ("Text the network writes, one token at a time: the prime (grey) is fed in, "
               "then each drawn token is fed back (black).")

    generated = QtCore.pyqtSignal(str)      # the generated text (without the prime)

    def __init__(self, parent=None, net=None, vocab=None):
        super().__init__(parent)
        self.setObjectName(self.name)
        self.setToolTip(self.tooltip)
        self.net = net
        self.vocab = vocab
        self.text = ""              # the last generated text (without the prime)

        self.temperature_slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.temperature_slider.setRange(0, 2 * _STEPS_PER_UNIT)
        self.temperature_slider.setValue(_STEPS_PER_UNIT)
        self.temperature_slider.setSingleStep(5)
        self.temperature_slider.setPageStep(25)
        self.temperature_slider.setTickPosition(QtWidgets.QSlider.TicksBelow)
        self.temperature_slider.setTickInterval(25)
        self.temperature_label = QtWidgets.QLabel()
        self.temperature_label.setMinimumWidth(
            self.temperature_label.fontMetrics().horizontalAdvance("0 (greedy)") + 4)
        self.temperature_label.setAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter)
        self.temperature_slider.valueChanged.connect(self._show_temperature)
        temperature_tip = ("Temperature τ: the network's probabilities are sharpened (τ < 1) or "
                           "flattened (τ > 1) before drawing; τ = 0 always takes the most "
                           "likely token.")
        self.temperature_slider.setToolTip(temperature_tip)
        self.temperature_label.setToolTip(temperature_tip)

        self.prime = QtWidgets.QLineEdit()
        self.prime.setPlaceholderText("(empty: from scratch)")
        self.prime.setToolTip("Text fed to the network first, to set its hidden state; "
                              "it may only use tokens of the vocabulary.")
        self.prime.returnPressed.connect(self.generate)
        self.length = QtWidgets.QSpinBox()
        self.length.setRange(1, 5000)
        self.length.setValue(300)
        self.length.setSingleStep(50)
        self.length.setToolTip("How many tokens to generate after the prime.")
        self.seed = QtWidgets.QSpinBox()
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        self.seed.setValue(0)
        self.seed.setToolTip("Random seed of the draws: the same seed writes the same text; "
                             "'random' (below 0) differs every time.")
        self.avoid_unknown = QtWidgets.QCheckBox(f"never pick {UNKNOWN_SHOWN}")
        self.avoid_unknown.setChecked(True)
        self.avoid_unknown.setToolTip(
            f"{UNKNOWN_SHOWN} stands for every word outside the vocabulary. Checked, it is "
            "never written: each word is drawn with its probability removed and the others' "
            "scaled up to sum to 1 (the text is the same until the first place it would appear).")
        self.button = QtWidgets.QPushButton("Generate")
        self.button.setDefault(True)
        self.button.setToolTip("Write text with the current weights.")
        self.button.clicked.connect(self.generate)

        self.output = QtWidgets.QTextEdit()
        self.output.setReadOnly(True)
        self.output.setAcceptRichText(False)
        # Fixed width, so that spaces and single characters are easy to count.
        font = QtGui.QFont("DejaVu Sans Mono")
        font.setStyleHint(QtGui.QFont.TypeWriter)
        font.setPointSize(max(self.font().pointSize(), 12))
        self.output.setFont(font)
        self.output.setToolTip(self.tooltip)
        self.output.setPlaceholderText("Press Generate to let the network write.")
        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)

        # One field a row, the button on its own: the panel fits a ~280 px dock.
        controls = QtWidgets.QGridLayout()
        controls.setHorizontalSpacing(6)
        controls.setVerticalSpacing(4)
        # The temperature's title and value share a row of their own, so the first column
        # is only as wide as the short labels below.
        temperature = QtWidgets.QHBoxLayout()
        temperature.addWidget(QtWidgets.QLabel("Temperature τ"))
        temperature.addStretch(1)
        temperature.addWidget(self.temperature_label)
        controls.addLayout(temperature, 0, 0, 1, 2)
        controls.addWidget(self.temperature_slider, 1, 0, 1, 2)
        for row, (label, field) in enumerate(
                (("Prime", self.prime), ("Length", self.length), ("Seed", self.seed)), 2):
            controls.addWidget(QtWidgets.QLabel(label), row, 0)
            controls.addWidget(field, row, 1)
        controls.addWidget(self.avoid_unknown, 5, 0, 1, 2)
        controls.addWidget(self.button, 6, 0, 1, 2)
        controls.setColumnStretch(1, 1)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(controls)
        layout.addWidget(self.output, 1)
        layout.addWidget(self.message)
        self._show_temperature()
        self.set_lesson(net, vocab)

    # ----------------------------------------------------------------- API

    def set_lesson(self, net, vocab):
        """Sample from this network and vocabulary from now on (a new lesson)."""
        self.net, self.vocab = net, vocab
        self.text = ""
        self.output.clear()
        words = vocab is not None and vocab.level == "word"
        unit = "words" if words else "characters"
        self.length.setSuffix(f" {unit}")
        # Characters have no unknown token; the user's choice is kept for the next word lesson.
        self.avoid_unknown.setVisible(words)
        if vocab is None:
            self._say("This lesson has no vocabulary (no text), so there is nothing to sample.",
                      error=True)
        else:
            self._say(f"Vocabulary: {len(vocab)} {unit}. Generate writes with the current "
                      "weights.")
        self.button.setEnabled(net is not None and vocab is not None)

    def temperature(self):
        """The temperature τ the slider is at."""
        return self.temperature_slider.value() / _STEPS_PER_UNIT

    def set_temperature(self, value):
        self.temperature_slider.setValue(round(value * _STEPS_PER_UNIT))

    def avoiding_unknown(self):
        """Whether generation avoids UNKNOWN_TOKEN: the check box, for a word vocabulary."""
        return (self.vocab is not None and self.vocab.level == "word"
                and self.avoid_unknown.isChecked())

    def generate(self):
        """Write ``length`` tokens after the prime; returns the text, or None after an error
        (which the panel shows)."""
        if self.net is None or self.vocab is None:
            self._say("No lesson to sample from.", error=True)
            return None
        prime = self.prime.text()
        seed = self.seed.value()
        try:
            text = sample(self.net, self.vocab, self.length.value(),
                          temperature=self.temperature(), prime=prime,
                          seed=None if seed < 0 else seed,
                          avoid_unknown=self.avoiding_unknown())
        except ValueError as error:
            self._say(str(error), error=True)
            return None
        self.text = text
        self._show(prime, text)
        unit = "words" if self.vocab.level == "word" else "characters"
        how = "greedy (τ = 0)" if self.temperature_slider.value() == 0 \
            else f"τ = {self.temperature():.2f}"
        start = ""
        if not prime and self.vocab.level == "char":
            start = " With no prime, the first character is drawn uniformly at random."
        elif self.avoiding_unknown():
            start = f" {UNKNOWN_SHOWN} is never picked."
        elif UNKNOWN_TOKEN in text.split():
            start = f" {UNKNOWN_SHOWN} stands for a word outside the vocabulary."
        self._say(f"{self.length.value()} {unit} generated, {how}, "
                  f"seed {'random' if seed < 0 else seed}.{start}")
        self.generated.emit(text)
        return text

    # ----------------------------------------------------------------- display

    def _show(self, prime, text):
        # The prime joins the text as the vocabulary writes it: words with a space between.
        words = self.vocab.level == "word"
        joiner = " " if prime and words else ""
        shown = readable(text) if words else text
        self.output.setHtml(
            "<div style='white-space: pre-wrap;'>"
            f"<span style='color: {_PRIME_COLOR};'>{html.escape(prime + joiner)}</span>"
            f"<span style='color: {COLORS['text']};'>{html.escape(shown)}</span></div>")

    def _say(self, message, error=False):
        self.message.setStyleSheet(_ERROR_STYLE if error else "color: #505050;")
        self.message.setText(("⚠ " if error else "") + message)

    def _show_temperature(self):
        value = self.temperature()
        self.temperature_label.setText("0 (greedy)" if value == 0 else f"{value:.2f}")

    def export_items(self):
        return []
