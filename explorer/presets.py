"""The teaching demos, as data: each fixes its text, model, training settings and seed."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace

import numpy as np

from . import tasks
from .controller import Controller
from .data import Vocabulary, corpus_text
from .network import Network


@dataclass(frozen=True)
class Preset:
    """One reproducible lesson. ``text`` is literal text, "corpus:NAME" or "task:NAME"."""

    name: str
    description: str
    text: str
    level: str = "char"                 # "char" | "word"
    max_vocab: int | None = None        # word level: the most frequent words kept
    window: int = 25                    # T, the steps in a window
    stride: int | None = None           # between windows (default: the window)
    cell: str = "rnn"
    hidden: int = 16
    activation: str = "tanh"
    init: str = "uniform"
    init_scale: float = 1.0
    seed: int = 0
    optimizer: str = "adagrad"
    lr: float = 0.1
    clip_value: float | None = None
    clip_norm: float | None = None
    truncate: int | None = None
    carry_state: bool = False
    train_iterations: int = 500         # what the Train button runs by default
    batch_size: int = 1
    notes: str = ""                     # what to look at, for the teacher
    show: tuple = ()                    # views to bring to the front (e.g. "flow")

    def with_changes(self, **changes):
        """A copy with some settings changed (the settings dock edits presets this way)."""
        return replace(self, **changes)

    def to_dict(self):
        return asdict(self)


def _recall_text(gap, n=300, seed=0):
    return tasks.recall(n, gap, n_symbols=3, seed=seed, n_fillers=3).text


def preset_text(preset):
    """The text a preset teaches on."""
    source = preset.text
    if not re.fullmatch(r"(corpus|task):[\w-]+(:\d+)?", source):
        return source
    if source.startswith("corpus:"):
        return corpus_text(source.split(":", 1)[1])
    if source.startswith("task:"):
        name, _, arg = source.split(":", 1)[1].partition(":")
        if name == "alphabet":
            return tasks.alphabet(20)
        if name == "hello":
            return tasks.hello(1)
        if name == "counting":
            return tasks.counting(200)
        if name == "brackets":
            return tasks.brackets(3000, max_depth=4, seed=preset.seed)
        if name == "recall":
            return _recall_text(int(arg or 10), seed=preset.seed)
        raise ValueError(f"unknown task {name!r} in preset {preset.name!r}")


PRESETS = {p.name: p for p in [
    Preset("hello", "The classic: learn 'hello' from a 4-letter vocabulary (h, e, l, o).",
           text="task:hello", window=4, hidden=8, lr=0.1, seed=1, train_iterations=300,
           notes="After 'l' comes 'l' once and 'o' once: only the hidden state can tell them "
                 "apart."),
    Preset("i-am-learning-rnn", "Word level: 'I am learning RNN', windows of 3, 4 hidden units.",
           text="I am learning RNN.", level="word", window=3, stride=1, hidden=4,
           optimizer="sgd", lr=0.1, seed=2, train_iterations=300,
           notes="Every number fits on the screen: follow one unit through the equations."),
    Preset("alphabet", "The alphabet: each letter predicts the next, no memory needed.",
           text="task:alphabet", window=26, hidden=32, lr=0.1, seed=0, train_iterations=200),
    Preset("gradient-check", "Identity activation, 3 inputs, 2 hidden units: check BPTT "
           "against finite differences.", text="abcabcbacabc", window=4, hidden=2,
           activation="identity", optimizer="sgd", lr=0.05, seed=3, train_iterations=100,
           notes="Open Gradient check: every relative error should be below 1e-6."),
    Preset("word-lm", "A word-level language model on short sentences (SENTENCE_START/END).",
           text="corpus:sentences", level="word", max_vocab=160, window=10, hidden=48,
           optimizer="adam", lr=0.01, seed=4, train_iterations=1500, batch_size=16),
    Preset("vanishing", "Vanishing gradients: tanh, a 40-step window and a small W.",
           text="task:recall:30", window=40, hidden=24, init="orthogonal", init_scale=0.5,
           seed=5, lr=0.05, train_iterations=500, show=("flow",),
           notes="Watch the gradient-flow panel: ‖∂L_s/∂h_t‖ falls by orders of magnitude "
                 "within a few steps, so the key 31 steps back is never learnt."),
    Preset("exploding", "Exploding gradients: a linear RNN, W's spectral radius 1.2, "
           "no clipping.", text="task:recall:10", window=20, hidden=24, activation="identity",
           init="orthogonal", init_scale=1.2, optimizer="sgd", lr=0.005, seed=6,
           train_iterations=100, show=("flow",),
           notes="The eigenvalues sit outside the unit circle; ‖δ_t‖ grows backwards in time "
                 "and within three updates the loss climbs from 10 to 263 to NaN — training "
                 "stops and the last good model is kept."),
    Preset("exploding-clipped", "The same exploding network, gradients clipped to norm 5.",
           text="task:recall:10", window=20, hidden=24, activation="identity",
           init="orthogonal", init_scale=1.2, optimizer="sgd", lr=0.005, seed=6,
           clip_norm=5.0, train_iterations=100, show=("loss",),
           notes="Clipping keeps each update bounded: compare the loss curve with 'exploding'."),
    Preset("truncated-bptt", "Truncated BPTT (k = 3) on a recall task with a 6-step gap.",
           text="task:recall:6", window=20, hidden=32, truncate=3, lr=0.1, seed=7,
           train_iterations=1500, carry_state=True, show=("flow",),
           notes="No gradient reaches back to the key, so W is never taught to keep it: the "
                 "answer is right only as often as the untrained recurrence happens to carry "
                 "the key (compare the loss with full-bptt)."),
    Preset("full-bptt", "Full BPTT on the same recall task with a 6-step gap.",
           text="task:recall:6", window=20, hidden=32, lr=0.1, seed=7,
           train_iterations=1500, carry_state=True,
           notes="The full gradient reaches the key, and the answer is learnt."),
    Preset("rnn-recall", "Vanilla RNN on the recall task with a 12-step gap.",
           text="task:recall:12", window=32, hidden=32, lr=0.05, optimizer="adam",
           seed=8, train_iterations=1500, batch_size=8),
    Preset("lstm-recall", "LSTM on the recall task with a 12-step gap.",
           text="task:recall:12", window=32, hidden=32, cell="lstm", lr=0.02,
           optimizer="adam", seed=8, train_iterations=1500, batch_size=8,
           notes="The cell state carries the key across the gap: compare with 'rnn-recall'."),
    Preset("gru-brackets", "A GRU on balanced brackets: it must count the open ones.",
           text="task:brackets", window=32, hidden=32, cell="gru", optimizer="adam",
           lr=0.01, seed=9, train_iterations=1500, batch_size=8),
    Preset("prose", "Char level on a few pages of prose, then sample from it.",
           text="corpus:prose", window=25, hidden=100, lr=0.05, clip_value=5.0, seed=10,
           train_iterations=3000, batch_size=1, carry_state=True,
           notes="min-char-rnn's setting: Adagrad, 25 steps, 100 hidden units, gradients "
                 "clipped to ±5. Train, then Sample."),
    Preset("rhymes", "Char level on nursery-rhyme-like verses.", text="corpus:rhymes",
           window=25, hidden=64, lr=0.05, clip_value=5.0, seed=11, train_iterations=2000,
           carry_state=True),
]}

DEFAULT_PRESET = "hello"


def get_preset(name):
    """The preset called ``name``; ValueError listing the names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of: "
                         f"{', '.join(PRESETS)}") from None


def build(preset, params=None):
    """(vocabulary, network, controller) for a preset, or a preset's name.

    ``params`` (name → array, e.g. a loaded model's) replace the initial parameters, so the
    lesson starts — and resets — from them.
    """
    if isinstance(preset, str):
        preset = get_preset(preset)
    text = preset_text(preset)
    vocab = Vocabulary.from_text(text, level=preset.level, max_size=preset.max_vocab)
    net = Network(len(vocab), preset.hidden, cell=preset.cell, activation=preset.activation,
                  init=preset.init, init_scale=preset.init_scale, seed=preset.seed)
    if params is not None:
        for name, value in params.items():
            if name not in net.params or net.params[name].shape != np.shape(value):
                raise ValueError(f"parameter {name} does not fit a {net.description()} "
                                 "model: set the same cell and sizes")
            net.params[name][...] = value
    ctl = Controller(net, corpus=vocab.encode(text), window=preset.window,
                     stride=preset.stride, truncate=preset.truncate,
                     optimizer=preset.optimizer, lr=preset.lr, clip_value=preset.clip_value,
                     clip_norm=preset.clip_norm, carry_state=preset.carry_state, vocab=vocab)
    return vocab, net, ctl
