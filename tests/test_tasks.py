"""Tests for explorer.tasks: synthetic texts, their determinism and the recall answers."""

import re

import numpy as np
import pytest

from explorer.data import Vocabulary, batches, windows
from explorer.network import Network
from explorer.optim import Adam
from explorer.tasks import (
    alphabet,
    brackets,
    counting,
    hello,
    is_balanced,
    recall,
    recall_accuracy,
)


def test_alphabet_and_hello():
    assert alphabet(1) == "abcdefghijklmnopqrstuvwxyz"
    assert alphabet(3) == "abcdefghijklmnopqrstuvwxyz" * 3
    assert len(alphabet()) == 260
    assert hello() == "hello"
    assert hello(2) == "hellohello"


def test_counting():
    assert counting(12) == "1 2 3 4 5 6 7 8 9 10 11 12"
    assert counting(3, start=98) == "98 99 100"
    assert counting(1, start=0) == "0"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: alphabet(0), "repeats must be an integer >= 1, got 0"),
        (lambda: hello(1.5), "repeats must be an integer >= 1"),
        (lambda: counting(0), "n must be an integer >= 1, got 0"),
        (lambda: counting(3, start=-1), "start must be an integer >= 0"),
        (lambda: brackets(2), "n_chars must be an integer >= 3, got 2"),
        (lambda: brackets(50, max_depth=0), "max_depth must be an integer >= 1, got 0"),
        (lambda: brackets(50, max_line_length=1), "max_line_length must be an integer >= 2"),
        (lambda: recall(0, 3), "n_examples must be an integer >= 1"),
        (lambda: recall(5, -1), "gap must be an integer >= 0, got -1"),
        (lambda: recall(5, 3, n_symbols=1), "n_symbols must be an integer from 2 to 26"),
        (lambda: recall(5, 3, n_symbols=27), "n_symbols must be an integer from 2 to 26"),
        (lambda: recall(5, 3, n_fillers=0), "n_fillers must be an integer from 1 to 26"),
        (lambda: recall(5, True), "gap must be an integer >= 0, got True"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------- brackets


def _depth(line):
    depth = deepest = 0
    for ch in line:
        depth += 1 if ch in "([" else -1
        deepest = max(deepest, depth)
    return deepest


@pytest.mark.parametrize(("n_chars", "max_depth", "seed"), [(3, 1, 0), (200, 1, 1), (500, 2, 2),
                                                            (1000, 4, 3), (57, 3, 4)])
def test_brackets_lines_are_balanced_and_within_limits(n_chars, max_depth, seed):
    text = brackets(n_chars, max_depth=max_depth, seed=seed, max_line_length=12)
    assert n_chars - 2 <= len(text) <= n_chars  # fills the budget up to a last pair
    assert text.endswith("\n")
    assert set(text) <= set("()[]\n")
    for line in text.splitlines():
        assert 2 <= len(line) <= 12 and len(line) % 2 == 0
        assert is_balanced(line)
        assert _depth(line) <= max_depth


def test_brackets_reach_the_depth_limit_and_use_both_kinds():
    text = brackets(2000, max_depth=3, seed=0)
    assert max(_depth(line) for line in text.splitlines()) == 3
    assert "(" in text and "[" in text
    assert "([" in text and "[(" in text  # kinds nest inside each other


def test_brackets_are_deterministic_per_seed():
    assert brackets(300, seed=5) == brackets(300, seed=5)
    assert brackets(300, seed=5) != brackets(300, seed=6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", True), ("()", True), ("([])[]\n()", True), ("(]", False), ("(()", False),
     ("())(", False), ("([)]", False), ("(a)", False), (")(", False)],
)
def test_is_balanced(text, expected):
    assert is_balanced(text) is expected


# ---------------------------------------------------------------------------- recall


@pytest.mark.parametrize(("n_examples", "gap", "n_symbols"), [(1, 0, 2), (10, 3, 4), (50, 20, 8)])
def test_recall_answers_are_the_keys_after_the_query(n_examples, gap, n_symbols):
    task = recall(n_examples, gap, n_symbols=n_symbols, seed=0)
    text, answers = task  # unpacks like a tuple
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == n_examples + 1
    assert answers.dtype == np.int64 and answers.shape == (n_examples,)
    keys = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:n_symbols]
    for k, line in enumerate(lines[:-1]):
        assert re.fullmatch(rf"([{keys}])[a-d]{{{gap}}}\?\1", line), line
        p = answers[k]
        assert text[p] == line[0]  # the answer is the example's key ...
        assert text[p - 1] == "?"  # ... right after the query mark ...
        assert text[p - gap - 2] == line[0]  # ... gap + 2 characters after the key itself
        assert text[p + 1] == "\n"


def test_recall_is_deterministic_and_uses_every_key():
    a, b = recall(200, 5, n_symbols=4, seed=3), recall(200, 5, n_symbols=4, seed=3)
    assert a.text == b.text and np.array_equal(a.answers, b.answers)
    assert recall(200, 5, n_symbols=4, seed=4).text != a.text
    assert {a.text[p] for p in a.answers} == set("ABCD")
    fillers = set(a.text) - set("ABCD?\n")
    assert fillers == set("abcd")


class OracleNet:
    """Predicts the last upper-case letter it has read: perfect at every recall answer."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.steps = 0

    def initial_state(self):
        return None

    def step(self, x, state=None):
        self.steps += 1
        token = self.vocab.tokens[x]
        if token.isupper():
            state = x
        probs = np.full(len(self.vocab), 0.1 / len(self.vocab))
        if state is not None:
            probs[state] += 0.9
        return probs / probs.sum(), state


class ConstantNet:
    """Always predicts the same token."""

    def __init__(self, vocab, token):
        self.probs = np.eye(len(vocab))[vocab.index(token)]

    def initial_state(self):
        return None

    def step(self, x, state=None):
        return self.probs, state


def test_recall_accuracy_with_stand_in_networks():
    task = recall(40, 4, n_symbols=4, seed=1)
    vocab = Vocabulary.from_text(task.text)
    oracle = OracleNet(vocab)
    assert recall_accuracy(oracle, vocab, task.text, task.answers) == 1.0
    assert oracle.steps == task.answers[-1]  # it reads the text up to the last query only
    share_of_a = np.mean([task.text[p] == "A" for p in task.answers])
    assert 0 < share_of_a < 1
    acc = recall_accuracy(ConstantNet(vocab, "A"), vocab, task.text, task.answers)
    assert acc == pytest.approx(share_of_a)


def test_recall_accuracy_rejects_bad_arguments():
    task = recall(5, 2, seed=0)
    vocab = Vocabulary.from_text(task.text)
    net = OracleNet(vocab)
    with pytest.raises(ValueError, match="vocab must be a char-level Vocabulary"):
        recall_accuracy(net, Vocabulary.from_text(task.text, level="word"), task.text,
                        task.answers)
    with pytest.raises(ValueError, match="answers must be offsets from 1 to"):
        recall_accuracy(net, vocab, task.text, [0])
    with pytest.raises(ValueError, match="answers must be offsets"):
        recall_accuracy(net, vocab, task.text, [len(task.text)])
    with pytest.raises(ValueError, match="answers must be a non-empty 1-D"):
        recall_accuracy(net, vocab, task.text, [])
    with pytest.raises(ValueError, match="text must be a non-empty str"):
        recall_accuracy(net, vocab, "", task.answers)


def _train(net, text, vocab, epochs, length=12, lr=0.02):
    X, Y = windows(vocab.encode(text), length)
    optimizer = Adam(lr)
    for epoch in range(epochs):
        for x, y in batches(X, Y, 16, seed=epoch):
            _, grads = net.loss_and_grads(x, y)
            optimizer.step(net.params, grads)


def test_a_trained_lstm_recalls_the_key_and_an_untrained_one_does_not():
    train, test = recall(200, 2, n_symbols=3, seed=0), recall(100, 2, n_symbols=3, seed=1)
    vocab = Vocabulary.from_text(train.text)
    assert set(test.text) <= set(vocab.tokens)
    net = Network(len(vocab), 16, cell="lstm", seed=0)
    before = recall_accuracy(net, vocab, test.text, test.answers)
    _train(net, train.text, vocab, epochs=15)
    after = recall_accuracy(net, vocab, test.text, test.answers)
    assert before < 0.6  # near chance (1/3)
    assert after >= 0.9
