"""Tests for explorer.sampling: priming, temperature, determinism, and a trained Network."""

import math

import numpy as np
import pytest

from explorer.data import SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN, Vocabulary
from explorer.network import Network
from explorer.optim import Adam
from explorer.sampling import apply_temperature, sample
from explorer.tasks import alphabet, hello


class MarkovNet:
    """A stand-in network: the next-token distribution is row x of a fixed matrix.

    The state is the list of token ids fed so far, so tests can see exactly what was fed.
    """

    def __init__(self, transition):
        self.transition = np.asarray(transition, dtype=float)
        self.output_size = self.input_size = self.transition.shape[0]

    def initial_state(self, batch=None):
        return []

    def step(self, x, state=None):
        assert isinstance(x, int)
        return self.transition[x].copy(), [*(state or []), x]


def cycle_net(n):
    """Token i is always followed by token i + 1 (mod n)."""
    return MarkovNet(np.roll(np.eye(n), 1, axis=1))


def fed(net):
    """Wrap net.step to record the tokens it is fed."""
    log = []
    step = net.step

    def recording(x, state=None):
        log.append(x)
        return step(x, state)

    net.step = recording
    return log


ABC = Vocabulary.from_text("abcd")


# ---------------------------------------------------------------------------- priming


def test_prime_is_fed_and_only_the_continuation_is_returned():
    net = cycle_net(4)
    log = fed(net)
    assert sample(net, ABC, 6, prime="ab", seed=0) == "cdabcd"
    # The prime, then every generated token but the last (nothing reads its prediction).
    assert log == [0, 1, 2, 3, 0, 1, 2]


def test_several_samples_in_a_row_are_independent_given_the_seed():
    net = cycle_net(4)
    outputs = [sample(net, ABC, 5, prime=p, seed=1) for p in ["a", "b", "c", "d", "a"]]
    assert outputs == ["bcdab", "cdabc", "dabcd", "abcda", "bcdab"]


def test_state_argument_is_where_generation_starts():
    net = MarkovNet(np.full((4, 4), 0.25))
    log = fed(net)
    states = []
    real_step = net.step

    def keep(x, state=None):
        probs, new = real_step(x, state)
        states.append(new)
        return probs, new

    net.step = keep
    sample(net, ABC, 2, prime="c", state=[3, 3], seed=0)
    assert log[0] == 2
    assert states[0] == [3, 3, 2]  # built on the given state, not on a fresh one


def test_empty_char_prime_draws_the_first_token_uniformly():
    net = cycle_net(4)
    firsts = {sample(net, ABC, 1, seed=seed) for seed in range(40)}
    assert firsts == set("abcd")
    # After the random first token the chain is followed, and it is all returned.
    text = sample(net, ABC, 6, seed=7)
    assert len(text) == 6
    assert text in ("abcdab", "bcdabc", "cdabcd", "dabcda")
    assert sample(net, ABC, 6, seed=7) == text


def test_zero_length_returns_nothing():
    assert sample(cycle_net(4), ABC, 0) == ""
    assert sample(cycle_net(4), ABC, 0, prime="ab") == ""


# ---------------------------------------------------------------------------- words

WORDS = Vocabulary.from_text("the cat sat. the dog ran.", level="word")


def word_chain(vocab, sentence):
    """A net that, after START, writes sentence then END, then START again, forever."""
    order = [SENTENCE_START, *sentence.split(), SENTENCE_END]
    transition = np.full((len(vocab), len(vocab)), 1e-9)
    for here, there in zip(order, order[1:] + order[:1], strict=True):
        transition[vocab.index(here), vocab.index(there)] = 1.0
    transition /= transition.sum(axis=1, keepdims=True)
    return MarkovNet(transition)


def test_word_sampling_starts_a_sentence_and_prints_lines():
    net = word_chain(WORDS, "the dog sat .")
    log = fed(net)
    text = sample(net, WORDS, 11, temperature=0)
    assert log[0] == WORDS.index(SENTENCE_START)
    assert text == "the dog sat .\nthe dog sat ."


def test_word_prime_leaves_its_last_sentence_open():
    net = word_chain(WORDS, "the cat ran .")
    log = fed(net)
    text = sample(net, WORDS, 3, temperature=0, prime="The cat")
    assert [WORDS.tokens[i] for i in log[:3]] == [SENTENCE_START, "the", "cat"]
    assert WORDS.index(SENTENCE_END) not in log[:3]
    assert text == "ran ."


def test_word_prime_with_unknown_words_is_allowed():
    net = MarkovNet(np.full((len(WORDS), len(WORDS)), 1 / len(WORDS)))
    log = fed(net)
    sample(net, WORDS, 1, prime="the zebra", seed=0)
    assert log[:3] == [WORDS.index(SENTENCE_START), WORDS.index("the"),
                       WORDS.index(UNKNOWN_TOKEN)]


# ---------------------------------------------------------------------------- temperature


def test_apply_temperature_values():
    p = np.array([0.5, 0.25, 0.25, 0.0])
    assert np.allclose(apply_temperature(p, 1.0), p)
    assert np.allclose(apply_temperature(p, 0.5), [4 / 6, 1 / 6, 1 / 6, 0])
    root = np.sqrt(p)
    assert np.allclose(apply_temperature(p, 2.0), root / root.sum())
    assert np.array_equal(apply_temperature(p, 0), [1, 0, 0, 0])
    # Ties at temperature 0 go to the first; tiny temperatures neither overflow nor give NaN.
    assert np.array_equal(apply_temperature([0.4, 0.4, 0.2], 0), [1, 0, 0])
    q = apply_temperature(p, 1e-6)
    assert np.all(np.isfinite(q)) and q[0] == pytest.approx(1.0)
    # Large temperatures approach uniform over the tokens that are possible at all.
    assert np.allclose(apply_temperature(p, 1e6), [1 / 3, 1 / 3, 1 / 3, 0], atol=1e-5)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_draws_follow_the_tempered_distribution(temperature):
    row = np.array([0.5, 0.25, 0.15, 0.1])
    net = MarkovNet(np.tile(row, (4, 1)))
    text = sample(net, ABC, 6000, temperature=temperature, prime="a", seed=0)
    freq = np.array([text.count(ch) for ch in "abcd"]) / len(text)
    assert np.allclose(freq, apply_temperature(row, temperature), atol=0.025)


def test_temperature_zero_is_greedy_whatever_the_seed():
    # The most likely successor of i is i + 2, but every token is possible.
    transition = np.full((5, 5), 0.1)
    for i in range(5):
        transition[i, (i + 2) % 5] = 0.6
    net = MarkovNet(transition)
    vocab = Vocabulary.from_text("abcde")
    greedy = {sample(net, vocab, 8, temperature=0, prime="a", seed=s) for s in range(5)}
    assert greedy == {"cebdacebd"[:8]}
    tempered = {sample(net, vocab, 8, temperature=1, prime="a", seed=s) for s in range(5)}
    assert len(tempered) > 1


def test_seed_makes_samples_reproducible():
    net = MarkovNet(np.full((4, 4), 0.25))
    a = sample(net, ABC, 50, seed=11, prime="a")
    assert a == sample(net, ABC, 50, seed=11, prime="a")
    assert a != sample(net, ABC, 50, seed=12, prime="a")
    rng = np.random.default_rng(11)
    assert sample(net, ABC, 50, seed=rng, prime="a") == a  # a Generator works as seed too


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("temperature", [-0.5, math.nan, math.inf, "1", None, True])
def test_bad_temperatures_are_rejected(temperature):
    with pytest.raises(ValueError, match="temperature must be"):
        sample(cycle_net(4), ABC, 3, temperature=temperature, prime="a")
    with pytest.raises(ValueError, match="temperature must be"):
        apply_temperature([0.5, 0.5], temperature)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"length": -1}, "length must be an integer >= 0, got -1"),
        ({"length": 2.0}, "length must be an integer >= 0"),
        ({"prime": "abz"}, r"prime cannot be encoded: .*'z'"),
        ({"prime": 3}, "prime must be a str"),
        ({"vocab": "abcd"}, "vocab must be a Vocabulary"),
        ({"vocab": Vocabulary.from_text("abc")}, "input_size is 4 but the vocabulary has 3"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    arguments = {"net": cycle_net(4), "vocab": ABC, "length": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        sample(**arguments)


def test_network_whose_probabilities_do_not_fit_the_vocabulary():
    class Odd:
        def initial_state(self):
            return None

        def step(self, x, state=None):
            return np.full(3, 1 / 3), state

    with pytest.raises(ValueError, match=r"probabilities of shape \(3,\) but the vocabulary"):
        sample(Odd(), ABC, 2, prime="a")


@pytest.mark.parametrize("probs", [[np.nan, 1.0], [-0.1, 1.1], [0.0, 0.0], [[0.5, 0.5]]])
def test_apply_temperature_rejects_broken_probabilities(probs):
    with pytest.raises(ValueError, match="probs must be"):
        apply_temperature(probs, 1.0)


# ---------------------------------------------------------------------------- real network


def _fit(text, hidden, steps, cell="rnn", lr=0.05):
    vocab = Vocabulary.from_text(text)
    ids = vocab.encode(text)
    net = Network(len(vocab), hidden, cell=cell, seed=0)
    optimizer = Adam(lr)
    for _ in range(steps):
        _, grads = net.loss_and_grads(ids[:-1], ids[1:])
        optimizer.step(net.params, grads)
    return net, vocab


def test_trained_network_continues_hello_which_needs_memory():
    net, vocab = _fit(hello(), hidden=8, steps=150)
    # After the first "l" comes "l", after the second "o": the state must tell them apart.
    assert sample(net, vocab, 4, temperature=0, prime="h") == "ello"
    assert sample(net, vocab, 2, temperature=0, prime="hel") == "lo"
    assert sample(net, vocab, 1, temperature=0, prime="hell") == "o"


def test_trained_network_writes_the_alphabet_and_samples_are_seeded():
    net, vocab = _fit(alphabet(2), hidden=16, steps=150)
    assert sample(net, vocab, 30, temperature=0, prime="a") == (alphabet(2)[1:31])
    warm = sample(net, vocab, 30, temperature=0.5, prime="q", seed=3)
    assert warm == sample(net, vocab, 30, temperature=0.5, prime="q", seed=3)
    assert set(warm) <= set(vocab.tokens)
    # A hot sample of an untrained network wanders; a greedy one of the trained one does not.
    untrained = Network(len(vocab), 16, seed=1)
    wild = sample(untrained, vocab, 60, temperature=5.0, prime="a", seed=0)
    assert len(set(wild)) > 15


def test_sampling_from_a_given_network_state():
    net, vocab = _fit(hello(3), hidden=8, steps=200)
    # The state after reading "hel" continues as "lo..." when primed with the next "l".
    _, state = net.step(vocab.index("h"))
    _, state = net.step(vocab.index("e"), state)
    _, state = net.step(vocab.index("l"), state)
    from_state = sample(net, vocab, 6, temperature=0, prime="l", state=state)
    assert from_state == "ohello"
    assert from_state == sample(net, vocab, 6, temperature=0, prime="hell")
    # From a fresh state the same prime is a different situation ("l" never starts the text).
    assert sample(net, vocab, 6, temperature=0, prime="l") != from_state


def test_word_level_sampling_with_a_network():
    text = "the cat sat .\nthe dog ran .\n" * 5
    vocab = Vocabulary.from_text(text, level="word")
    ids = vocab.encode(text)
    net = Network(len(vocab), 12, seed=0)
    optimizer = Adam(0.05)
    for _ in range(200):
        _, grads = net.loss_and_grads(ids[:-1], ids[1:])
        optimizer.step(net.params, grads)
    out = sample(net, vocab, 4, temperature=0, prime="the dog")
    assert out.split("\n")[0] == "ran ."
    lines = sample(net, vocab, 40, temperature=1.0, seed=0).split("\n")
    assert all(line.split()[-1] == "." for line in lines[:-1])


# ---------------------------------------------------------------------------- avoid_unknown


class GridRng(np.random.Generator):
    """A Generator whose uniforms are the midpoints of n equal slices of [0, 1), in order:
    counting the tokens they pick measures each token's probability to within 1/n."""

    def __init__(self, n):
        super().__init__(np.random.PCG64(0))
        self.n, self.k = n, 0

    def random(self, *args, **kwargs):
        u = (self.k + 0.5) / self.n
        self.k += 1
        return u


def unknown_favourite_net(vocab, p_unknown=0.5):
    """Every step the same distribution: UNKNOWN_TOKEN the most likely, the sentence marks
    impossible (so every drawn token is a word of the text), the other words uneven."""
    row = np.zeros(len(vocab))
    words = [i for i, t in enumerate(vocab.tokens)
             if t not in (SENTENCE_START, SENTENCE_END, UNKNOWN_TOKEN)]
    row[words] = np.arange(1, len(words) + 1)
    row *= (1 - p_unknown) / row.sum()
    row[vocab.unknown_id] = p_unknown
    return MarkovNet(np.tile(row, (len(vocab), 1))), row


def frequencies(text, vocab):
    counts = np.zeros(len(vocab))
    for word in text.split():
        counts[vocab.index(word)] += 1
    return counts / counts.sum()


def test_avoid_unknown_never_draws_it_even_when_it_is_the_most_likely():
    net, row = unknown_favourite_net(WORDS, p_unknown=0.9)
    assert np.argmax(row) == WORDS.unknown_id
    text = sample(net, WORDS, 5000, seed=0, avoid_unknown=True)
    assert len(text.split()) == 5000 and UNKNOWN_TOKEN not in text
    # Without it the unknown token is most of the text.
    plain = sample(net, WORDS, 5000, seed=0)
    assert plain.split().count(UNKNOWN_TOKEN) > 4000
    for temperature in (0.2, 3.0):
        hot = sample(net, WORDS, 500, temperature=temperature, seed=1, avoid_unknown=True)
        assert UNKNOWN_TOKEN not in hot


def test_avoid_unknown_at_temperature_zero_takes_the_most_likely_other_token():
    net, row = unknown_favourite_net(WORDS)
    others = row.copy()
    others[WORDS.unknown_id] = 0
    best = WORDS.tokens[int(np.argmax(others))]
    assert sample(net, WORDS, 4, temperature=0, avoid_unknown=True) == " ".join([best] * 4)
    assert sample(net, WORDS, 4, temperature=0) == " ".join([UNKNOWN_TOKEN] * 4)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_avoid_unknown_renormalises_the_others_exactly(temperature):
    net, row = unknown_favourite_net(WORDS)
    n = 20000
    q = apply_temperature(row, temperature)
    rest = q.copy()
    rest[WORDS.unknown_id] = 0
    rest /= rest.sum()
    text = sample(net, WORDS, n, temperature=temperature, seed=GridRng(n), avoid_unknown=True)
    # Evenly spread uniforms: each token's share is its probability to within a few 1/n.
    np.testing.assert_allclose(frequencies(text, WORDS), rest, atol=3 / n)
    plain = sample(net, WORDS, n, temperature=temperature, seed=GridRng(n))
    np.testing.assert_allclose(frequencies(plain, WORDS), q, atol=3 / n)


def test_avoid_unknown_changes_only_the_draws_of_the_unknown_token():
    # A memoryless net: each draw depends on its uniform only, so with the same seed the two
    # texts differ exactly where the unrestricted one drew UNKNOWN_TOKEN.
    net, _ = unknown_favourite_net(WORDS, p_unknown=0.3)
    plain = sample(net, WORDS, 400, seed=5).split()
    avoided = sample(net, WORDS, 400, seed=5, avoid_unknown=True).split()
    assert UNKNOWN_TOKEN in plain
    for was, now in zip(plain, avoided, strict=True):
        assert (was == now) == (was != UNKNOWN_TOKEN)


def test_avoid_unknown_is_reproducible_with_a_seed():
    net = word_chain(WORDS, "the dog sat .")
    net.transition = 0.5 * net.transition + 0.5 / len(WORDS)
    a = sample(net, WORDS, 60, seed=9, avoid_unknown=True)
    assert a == sample(net, WORDS, 60, seed=9, avoid_unknown=True)
    assert a != sample(net, WORDS, 60, seed=10, avoid_unknown=True)
    assert UNKNOWN_TOKEN not in a


def test_avoid_unknown_still_feeds_unknown_words_of_the_prime():
    net, _ = unknown_favourite_net(WORDS)
    log = fed(net)
    text = sample(net, WORDS, 20, prime="the zebra", seed=0, avoid_unknown=True)
    assert log[:3] == [WORDS.index(SENTENCE_START), WORDS.index("the"), WORDS.unknown_id]
    assert UNKNOWN_TOKEN not in text


def test_avoid_unknown_is_ignored_for_characters():
    # A char vocabulary has no unknown token: there is nothing to avoid, and every character
    # keeps its probability.
    net = MarkovNet(np.tile([0.4, 0.3, 0.2, 0.1], (4, 1)))
    for seed in range(3):
        assert sample(net, ABC, 80, prime="a", seed=seed, avoid_unknown=True) == \
            sample(net, ABC, 80, prime="a", seed=seed)


@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0])
def test_avoid_unknown_must_be_a_bool(value):
    with pytest.raises(ValueError, match="avoid_unknown must be True or False"):
        sample(cycle_net(4), ABC, 3, prime="a", avoid_unknown=value)
    assert sample(cycle_net(4), ABC, 3, prime="a", avoid_unknown=np.bool_(True)) == "bcd"


def test_avoid_unknown_with_nothing_else_possible_says_so():
    row = np.zeros(len(WORDS))
    row[WORDS.unknown_id] = 1.0
    net = MarkovNet(np.tile(row, (len(WORDS), 1)))
    with pytest.raises(ValueError, match="avoid_unknown=True.*other than UNKNOWN_TOKEN"):
        sample(net, WORDS, 3, seed=0, avoid_unknown=True)
