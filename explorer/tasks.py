"""Synthetic character-level tasks whose difficulty is known, each a deterministic text.

Every task returns plain text for a char-level ``Vocabulary``; ``recall`` also returns where the
answers are, so its accuracy can be measured.
"""

from __future__ import annotations

import string
from typing import NamedTuple

import numpy as np

from explorer.data import Vocabulary

# Recall keys are upper-case and fillers lower-case so that no filler can be mistaken for a key.
RECALL_KEYS = string.ascii_uppercase
RECALL_FILLERS = string.ascii_lowercase
RECALL_QUERY = "?"


def _check_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """Return value as an int if it is an integer in [minimum, maximum], else a ValueError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        if maximum is None:
            allowed = f"an integer >= {minimum}"
        else:
            allowed = f"an integer from {minimum} to {maximum}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def alphabet(repeats: int = 10) -> str:
    """The alphabet "abcdefghijklmnopqrstuvwxyz" repeated ``repeats`` times.

    Trivially learnable: each letter fully determines the next one, so the network needs no
    memory at all (``U`` and ``V`` alone can learn the successor map). A first check that
    training works, and a baseline for how fast the loss can fall.
    """
    repeats = _check_int("repeats", repeats, 1)
    return string.ascii_lowercase * repeats


def hello(repeats: int = 1) -> str:
    """The word "hello" (repeated ``repeats`` times).

    The smallest example that needs memory: after "l" the next letter is "l" the first time and
    "o" the second, so the input alone cannot decide; the hidden state must remember whether
    one "l" has already gone by. Four characters, so every number fits on screen.
    """
    repeats = _check_int("repeats", repeats, 1)
    return "hello" * repeats


def counting(n: int, start: int = 1) -> str:
    """The numbers start, start + 1, ..., start + n - 1 written in decimal, separated by spaces.

    E.g. ``counting(12)`` is "1 2 3 4 5 6 7 8 9 10 11 12". The last digit cycles like the
    alphabet (easy), but the digit after a space depends on the whole previous number, and the
    carry in "9 10" or "19 20" depends on characters several steps back: a gentle step from
    memory-free prediction to short-range memory.
    """
    n = _check_int("n", n, 1)
    start = _check_int("start", start, 0)
    return " ".join(str(i) for i in range(start, start + n))


def brackets(n_chars: int, max_depth: int = 3, seed=None, max_line_length: int = 16) -> str:
    """Random balanced strings of () and [], one per line, at most ``n_chars`` characters in all.

    Each line has an even length from 2 to ``max_line_length`` and never nests deeper than
    ``max_depth``; every line ends with a newline. Predicting a closing bracket needs a stack in
    the hidden state: which bracket to close depends on an opening one arbitrarily far back, and
    a line can only end at depth 0. Deeper nesting means longer memory. Deterministic for a
    given ``seed`` (``np.random.default_rng(seed)``).
    """
    n_chars = _check_int("n_chars", n_chars, 3)
    max_depth = _check_int("max_depth", max_depth, 1)
    max_line_length = _check_int("max_line_length", max_line_length, 2)
    rng = np.random.default_rng(seed)
    pairs = {"(": ")", "[": "]"}
    lines = []
    used = 0
    while True:
        # Room left for this line's brackets once its newline is counted, rounded down to even.
        room = (n_chars - used - 1) // 2 * 2
        if room < 2:
            break
        length = min(2 * int(rng.integers(1, max_line_length // 2 + 1)), room)
        stack, line = [], []
        for position in range(length):
            depth, remaining = len(stack), length - position
            # depth and remaining have the same parity, so opening is only allowed while
            # depth <= remaining - 2 and the line can still close in time.
            must_close = depth == remaining or depth == max_depth
            if depth > 0 and (must_close or rng.random() < 0.5):
                line.append(pairs[stack.pop()])
            else:
                bracket = "([" [int(rng.integers(2))]
                stack.append(bracket)
                line.append(bracket)
        lines.append("".join(line) + "\n")
        used += length + 1
    return "".join(lines)


def is_balanced(text: str) -> bool:
    """Whether every bracket in text is closed by its own kind in the right order.

    Whitespace (newlines included) is ignored; any other character makes the answer False.
    Handy for scoring sampled text: ``all(is_balanced(line) for line in text.splitlines())``.
    """
    closing = {")": "(", "]": "["}
    stack = []
    for ch in text:
        if ch in "([":
            stack.append(ch)
        elif ch in closing:
            if not stack or stack.pop() != closing[ch]:
                return False
        elif not ch.isspace():
            return False
    return not stack


class RecallTask(NamedTuple):
    """The text of a recall task and the character offsets of its answers."""

    text: str
    answers: np.ndarray  # int64 offsets into text; text[p] is the key to recall


def recall(n_examples: int, gap: int, n_symbols: int = 4, seed=None, n_fillers: int = 4):
    """A memory task: remember a key across ``gap`` characters of noise.

    Each example is one line: a key (one of the first ``n_symbols`` upper-case letters), then
    ``gap`` random fillers (from the first ``n_fillers`` lower-case letters), then "?" and the
    key again, then a newline; with gap 3 one line might read ``"Cabd?C\\n"``.

    Only the key after "?" is predictable from the past, and only by remembering the key
    ``gap + 1`` steps before the "?" input. In a vanilla RNN the gradient that would teach this
    passes through ``gap + 1`` factors of ``W^T diag(f'(a))`` and vanishes as the gap grows; an
    LSTM's additive cell state carries it much further. Chance level is ``1 / n_symbols``.

    Returns ``RecallTask(text, answers)``: ``answers[k]`` is the offset in text of example k's
    second key, so ``text[answers[k]]`` is the answer and ``text[answers[k] - 1] == "?"``.
    Deterministic for a given ``seed``.
    """
    n_examples = _check_int("n_examples", n_examples, 1)
    gap = _check_int("gap", gap, 0)
    n_symbols = _check_int("n_symbols", n_symbols, 2, len(RECALL_KEYS))
    n_fillers = _check_int("n_fillers", n_fillers, 1, len(RECALL_FILLERS))
    rng = np.random.default_rng(seed)
    keys = rng.integers(n_symbols, size=n_examples)
    fillers = rng.integers(n_fillers, size=(n_examples, gap))
    lines = []
    for key, noise in zip(keys, fillers, strict=True):
        k = RECALL_KEYS[key]
        lines.append(k + "".join(RECALL_FILLERS[f] for f in noise) + RECALL_QUERY + k + "\n")
    example_length = gap + 4  # key, fillers, "?", key, newline
    answers = np.arange(n_examples, dtype=np.int64) * example_length + gap + 2
    return RecallTask("".join(lines), answers)


def recall_accuracy(net, vocab: Vocabulary, text: str, answers) -> float:
    """The share of answers the network predicts correctly (its most probable next character).

    The whole text is fed through ``net.step`` from ``net.initial_state()``, one character at a
    time; the prediction made after reading ``text[p - 1]`` (the "?") is compared with
    ``text[p]`` for each answer offset p. Any object with ``initial_state()`` and
    ``step(x, state) -> (probs, state)`` works as net.
    """
    if not isinstance(vocab, Vocabulary) or vocab.level != "char":
        raise ValueError("vocab must be a char-level Vocabulary (answers are character offsets)")
    if not isinstance(text, str) or text == "":
        raise ValueError("text must be a non-empty str")
    answers = np.asarray(answers)
    if answers.ndim != 1 or answers.size == 0 or answers.dtype.kind not in "iu":
        raise ValueError("answers must be a non-empty 1-D array of character offsets")
    if answers.min() < 1 or answers.max() >= len(text):
        raise ValueError(
            f"answers must be offsets from 1 to {len(text) - 1} (the text has {len(text)} "
            f"characters), got values from {int(answers.min())} to {int(answers.max())}"
        )
    ids = vocab.encode(text)
    wanted = set(answers.tolist())
    correct = 0
    state = net.initial_state()
    for position in range(int(answers.max())):
        probs, state = net.step(int(ids[position]), state)
        if position + 1 in wanted:
            correct += int(np.argmax(probs)) == ids[position + 1]
    return correct / len(wanted)
