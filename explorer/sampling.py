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


def _inverse_cdf(q: np.ndarray, u: float) -> int:
    """The token whose slice of [0, 1) holds u when the tokens split it in proportion to q."""
    cdf = np.cumsum(q)
    cdf /= cdf[-1]
    # side="right": a token of probability zero owns an empty slice and is never picked.
    return int(np.searchsorted(cdf, u, side="right"))


def _draw(probs, temperature: float, rng, avoid=None) -> int:
    """Draw a token id from apply_temperature(probs, temperature), never ``avoid`` if given.

    Without ``avoid`` the draw is an inverse-CDF draw of one uniform u. With it, the draw is
    from the tempered distribution q with q[avoid] removed and the rest renormalised,
    q'_i = q_i / (1 − q[avoid]), using the same u: when u falls in another token's slice,
    that token is taken (as without ``avoid``); when it falls in avoid's slice, u is rescaled
    to [0, 1) within that slice and drawn again from q'. Token i then comes out with
    probability q_i + q[avoid] q'_i = q'_i, exactly, from a single uniform; and a seeded
    sample only differs from the unrestricted one where that one drew ``avoid``.
    """
    q = apply_temperature(probs, temperature)
    u = float(rng.random())
    token = _inverse_cdf(q, u)
    if avoid is None or token != avoid:
        return token
    rest = np.asarray(probs, dtype=np.float64).copy()
    rest[avoid] = 0.0
    if not np.any(rest > 0):
        raise ValueError(
            "avoid_unknown=True, but the network gives every token other than UNKNOWN_TOKEN "
            "probability 0, so there is nothing else to draw"
        )
    # Removing avoid after tempering and renormalising equals tempering with avoid already
    # removed; only the latter stays exact when q[avoid] has rounded to 1 (temperature 0 or
    # near it), and at temperature 0 it gives the most likely other token.
    q_rest = apply_temperature(rest, temperature)
    cdf = np.cumsum(q)
    cdf /= cdf[-1]
    low = cdf[avoid - 1] if avoid > 0 else 0.0
    # u lies in [low, cdf[avoid]), a slice of positive width (an empty one is never picked);
    # the clip only guards against rounding at its ends.
    v = (u - low) / (cdf[avoid] - low)
    return _inverse_cdf(q_rest, min(max(v, 0.0), np.nextafter(1.0, 0.0)))


def sample(
    net,
    vocab: Vocabulary,
    length: int,
    temperature: float = 1.0,
    prime: str = "",
    seed=None,
    state=None,
    avoid_unknown: bool = False,
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

    4. ``avoid_unknown=True`` (word vocabulary) never generates UNKNOWN_TOKEN, as the classic
       tutorial's sentence generator does: each token is drawn from the tempered distribution
       with UNKNOWN_TOKEN's probability removed and the others renormalised (at temperature 0,
       the most likely token other than UNKNOWN_TOKEN). With the same seed, the text is the
       same as with ``avoid_unknown=False`` up to where that one first drew UNKNOWN_TOKEN. A
       char vocabulary has no UNKNOWN_TOKEN, so there the argument changes nothing. Unknown
       words in the prime are still fed in as UNKNOWN_TOKEN.

    Word-level text comes out as ``vocab.decode`` writes it: tokens separated by spaces, one
    sentence per line, UNKNOWN_TOKEN (when it is drawn) printed as itself. ``net`` is anything with
    ``initial_state()`` and ``step(token_id, state) -> (probs, state)``, such as a ``Network``.
    """
    if not isinstance(vocab, Vocabulary):
        raise ValueError(f"vocab must be a Vocabulary, got {type(vocab).__name__}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"length must be an integer >= 0, got {length!r}")
    temperature = _check_temperature(temperature)
    if not isinstance(prime, str):
        raise ValueError(f"prime must be a str, got {type(prime).__name__}")
    if not isinstance(avoid_unknown, (bool, np.bool_)):
        raise ValueError(f"avoid_unknown must be True or False, got {avoid_unknown!r}")
    # A char vocabulary has no unknown token (unknown_id is None): nothing to avoid.
    avoid = vocab.unknown_id if avoid_unknown else None
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
        token = _draw(probs, temperature, rng, avoid)
        generated.append(token)
        if len(generated) < length:
            probs, state = net.step(token, state)
    return vocab.decode(np.array(generated, dtype=np.int64))
