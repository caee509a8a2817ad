"""Generate text from a trained network one token at a time, with a temperature."""

from __future__ import annotations

import math

import numpy as np

from explorer.data import SENTENCE_END, SENTENCE_START, Vocabulary


def _check_temperature(temperature) -> float:
    """Return temperature as a float if it is a finite number >= 0, else raise a ValueError."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.number)):
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")
    temperature = float(temperature)
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(
            f"temperature must be a finite number >= 0 (0 picks the most likely token), "
            f"got {temperature!r}"
        )
    return temperature


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """Return softmax(log(probs) / temperature), the distribution tokens are drawn from.

    temperature 1 leaves probs unchanged, below 1 sharpens them (towards the most likely
    token), above 1 flattens them (towards uniform). temperature 0 is the limit: all the
    probability on the most likely token (the first one if several tie).
    """
    temperature = _check_temperature(temperature)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"probs must be a non-empty 1-D array, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(
            "probs must be finite, non-negative and not all zero (has training diverged? "
            "lower the learning rate or clip gradients)"
        )
    if temperature == 0:
        q = np.zeros_like(p)
        q[np.argmax(p)] = 1.0
        return q
    with np.errstate(divide="ignore"):
        z = np.log(p) / temperature
    # Subtracting the max keeps exp from overflowing at small temperatures; zero probabilities
    # are -inf here and stay exactly zero.
    z -= z.max()
    q = np.exp(z)
    return q / q.sum()


def sample(
    net,
    vocab: Vocabulary,
    length: int,
    temperature: float = 1.0,
    prime: str = "",
    seed=None,
    state=None,
) -> str:
    """Generate ``length`` tokens and return them as text (the prime is not included).

    1. Start from ``state`` (default ``net.initial_state()``) and feed the tokens of ``prime``
       through ``net.step``. For a word vocabulary the prime's last sentence is left open (its
       SENTENCE_END is not fed), so generation continues that sentence.
    2. With an empty prime: a word vocabulary feeds SENTENCE_START (generation starts a new
       sentence, as in the classic tutorial); a char vocabulary has no start token, so the
       first character is drawn uniformly at random and is the first of the ``length``
       generated tokens.
    3. Then repeatedly draw the next token from ``apply_temperature(probs, temperature)`` with
       ``np.random.default_rng(seed)`` and feed it back in. ``temperature=0`` is greedy
       (always the most likely token). The same seed gives the same text.

    Word-level text comes out as ``vocab.decode`` writes it: tokens separated by spaces, one
    sentence per line, UNKNOWN_TOKEN printed as itself. ``net`` is anything with
    ``initial_state()`` and ``step(token_id, state) -> (probs, state)``, such as a ``Network``.
    """
    if not isinstance(vocab, Vocabulary):
        raise ValueError(f"vocab must be a Vocabulary, got {type(vocab).__name__}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"length must be an integer >= 0, got {length!r}")
    temperature = _check_temperature(temperature)
    if not isinstance(prime, str):
        raise ValueError(f"prime must be a str, got {type(prime).__name__}")
    for name in ("input_size", "output_size"):
        size = getattr(net, name, None)
        if size is not None and size != len(vocab):
            raise ValueError(
                f"the network's {name} is {size} but the vocabulary has {len(vocab)} tokens; "
                "use a vocab and net that belong together"
            )

    rng = np.random.default_rng(seed)
    try:
        prime_ids = vocab.encode(prime).tolist()
    except ValueError as error:
        raise ValueError(f"prime cannot be encoded: {error}") from None
    if vocab.level == "word" and prime_ids and prime_ids[-1] == vocab.index(SENTENCE_END):
        prime_ids.pop()

    generated = []
    if not prime_ids:
        if vocab.level == "word" and SENTENCE_START in vocab:
            prime_ids = [vocab.index(SENTENCE_START)]
        elif length > 0:
            # No token to condition on: the first one is a uniform draw, and counts as output.
            generated.append(int(rng.integers(len(vocab))))
            prime_ids = generated[:]
        else:
            return ""

    if state is None:
        state = net.initial_state()
    for token in prime_ids:
        probs, state = net.step(int(token), state)
    while len(generated) < length:
        probs = np.asarray(probs)
        if probs.shape != (len(vocab),):
            raise ValueError(
                f"the network predicts probabilities of shape {probs.shape} but the vocabulary "
                f"has {len(vocab)} tokens; use a vocab and net that belong together"
            )
        token = int(rng.choice(len(vocab), p=apply_temperature(probs, temperature)))
        generated.append(token)
        if len(generated) < length:
            probs, state = net.step(token, state)
    return vocab.decode(np.array(generated, dtype=np.int64))
