"""Turn text into token ids: vocabularies, text files, training windows, batches, corpora.

Two kinds of vocabulary:

- ``level="char"``: one token per character, sorted by code point. Encoding a character the
  vocabulary has never seen is an error (there is no "unknown" character).
- ``level="word"``: the scheme of the classic word-level RNN language-model tutorial. The text
  is split into sentences, lower-cased and cut into words and punctuation marks; every sentence
  is wrapped in ``SENTENCE_START`` ... ``SENTENCE_END``; only the most frequent tokens are kept
  and all others become ``UNKNOWN_TOKEN``.

Saving a vocabulary without pickle (for ``.npz`` files)::

    arrays = vocab.to_arrays()      # {"tokens": unicode array (V,), "level": 0-d unicode array}
    np.savez(path, vocab_tokens=arrays["tokens"], vocab_level=arrays["level"])
    ...
    with np.load(path, allow_pickle=False) as f:
        vocab = Vocabulary.from_arrays(f["vocab_tokens"], f["vocab_level"])

Token ids are positions in ``vocab.tokens``, so the order of the tokens array is the mapping.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

SENTENCE_START = "SENTENCE_START"
SENTENCE_END = "SENTENCE_END"
UNKNOWN_TOKEN = "UNKNOWN_TOKEN"

LEVELS = ("char", "word")

# A sentence runs up to a run of . ! ? (spaces allowed inside the run, so that the decoded form
# "wait . . ." splits the same way as "wait..."), or up to the end of the line.
_SENTENCE_RE = re.compile(r"[^.!?\n]*[.!?](?:[ \t]*[.!?])*|[^.!?\n]+")
# A token is a word (letters, digits, underscores, inner apostrophes as in "don't") or a single
# punctuation mark.
_TOKEN_RE = re.compile(r"\w+(?:'\w+)*|[^\w\s]")

# Text in which more than this share of characters are control codes (other than whitespace
# such as newline and tab) is taken for binary data: a vocabulary of control codes teaches
# nothing and is almost always a mistake (a wrong file picked in a dialog).
_MAX_NONPRINTABLE_SHARE = 0.3
_WHITESPACE_CONTROLS = frozenset("\t\n\v\f\r")


def _is_control(ch: str) -> bool:
    """Whether ch is a C0/C1 control code (Unicode category Cc) that is not whitespace."""
    code = ord(ch)
    return (code < 0x20 or 0x7F <= code <= 0x9F) and ch not in _WHITESPACE_CONTROLS


def _check_int(name: str, value, minimum: int) -> int:
    """Return value as an int if it is an integer >= minimum, else raise a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def _check_not_binary(text: str, what: str) -> None:
    """Raise a ValueError if text looks like binary data rather than human-readable text."""
    if "\x00" in text:
        raise ValueError(f"{what} contains NUL bytes; it looks like binary data, not text")
    controls = sum(1 for ch in text if _is_control(ch))
    if controls > _MAX_NONPRINTABLE_SHARE * len(text):
        raise ValueError(
            f"{what} is mostly non-printable control characters ({controls} of {len(text)}); "
            "it looks like binary data, not text"
        )


def word_sentences(text: str) -> list[list[str]]:
    """Split text into sentences of lower-cased word and punctuation tokens (no start/end marks).

    Sentences end at . ! ? or at a line break; sentences without any token are dropped.
    """
    sentences = []
    for sentence in _SENTENCE_RE.findall(text.lower()):
        tokens = _TOKEN_RE.findall(sentence)
        if tokens:
            sentences.append(tokens)
    return sentences


class Vocabulary:
    """A fixed list of tokens; a token's id is its position in ``tokens``.

    Build one with ``Vocabulary.from_text`` (or ``from_arrays`` when loading a saved one).
    ``Vocabulary(tokens, level)`` takes the token list directly.
    """

    SENTENCE_START = SENTENCE_START
    SENTENCE_END = SENTENCE_END
    UNKNOWN_TOKEN = UNKNOWN_TOKEN
    LEVELS = LEVELS

    def __init__(self, tokens: Sequence[str], level: str = "char"):
        if level not in LEVELS:
            raise ValueError(f"level must be 'char' or 'word', got {level!r}")
        if isinstance(tokens, str):
            raise ValueError("tokens must be a list of strings, not one string")
        try:
            tokens = [str(t) if isinstance(t, np.str_) else t for t in tokens]
        except TypeError:
            raise ValueError(f"tokens must be a list of strings, got {tokens!r}") from None
        if not tokens:
            raise ValueError("tokens must not be empty")
        for token in tokens:
            if not isinstance(token, str) or token == "":
                raise ValueError(f"tokens must be non-empty strings, got {token!r}")
            if level == "char" and len(token) != 1:
                raise ValueError(
                    f"tokens of a char vocabulary must be single characters, got {token!r}"
                )
        if len(set(tokens)) != len(tokens):
            dupes = sorted(t for t, n in Counter(tokens).items() if n > 1)
            raise ValueError(f"tokens must be unique, but these repeat: {dupes[:5]!r}")
        if level == "word" and UNKNOWN_TOKEN not in tokens:
            raise ValueError(f"tokens of a word vocabulary must include {UNKNOWN_TOKEN!r}")
        self._tokens = tuple(tokens)
        self._level = level
        self._ids = {token: i for i, token in enumerate(tokens)}

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_text(cls, text: str, level: str = "char", max_size: int | None = None):
        """Build a vocabulary from text.

        char: the sorted unique characters of text. ``max_size`` (if given) is a limit: a text
        with more distinct characters than that is an error, since characters are never dropped.

        word: sentences are wrapped in SENTENCE_START/SENTENCE_END, and the ``max_size - 1`` most
        frequent tokens (ties broken alphabetically) are kept, in order of decreasing frequency,
        followed by UNKNOWN_TOKEN, which stands for all the others. ``max_size=None`` keeps
        every token (plus UNKNOWN_TOKEN, for words seen later).
        """
        if level not in LEVELS:
            raise ValueError(f"level must be 'char' or 'word', got {level!r}")
        if max_size is not None:
            max_size = _check_int("max_size", max_size, 2)
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        if text == "":
            raise ValueError("text is empty; give some text to build the vocabulary from")
        _check_not_binary(text, "text")

        if level == "char":
            chars = sorted(set(text))
            if max_size is not None and len(chars) > max_size:
                raise ValueError(
                    f"max_size is {max_size} but the text has {len(chars)} distinct characters; "
                    "a char vocabulary keeps every character, so raise max_size (or leave it "
                    "None) or use level='word'"
                )
            return cls(chars, "char")

        sentences = word_sentences(text)
        if not sentences:
            raise ValueError(
                "text has no words or punctuation to build a word vocabulary from; "
                "give text with words in it"
            )
        counts = Counter()
        for sentence in sentences:
            counts.update([SENTENCE_START, *sentence, SENTENCE_END])
        # Most frequent first; equal counts in alphabetical order so the ids never depend on
        # dictionary ordering.
        ranked = sorted(counts, key=lambda token: (-counts[token], token))
        if max_size is not None:
            ranked = ranked[: max_size - 1]
        return cls([*ranked, UNKNOWN_TOKEN], "word")

    @classmethod
    def from_arrays(cls, tokens, level):
        """Rebuild a vocabulary from the arrays of ``to_arrays`` (as loaded from an .npz file)."""
        level = np.asarray(level)
        if level.ndim != 0 or level.dtype.kind != "U":
            raise ValueError(f"level must be a 0-d unicode array or a str, got {level!r}")
        tokens = np.asarray(tokens)
        if tokens.ndim != 1 or tokens.dtype.kind != "U":
            raise ValueError(
                f"tokens must be a 1-D unicode array, got shape {tokens.shape} "
                f"dtype {tokens.dtype}"
            )
        return cls([str(t) for t in tokens], str(level))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Return ``{"tokens": unicode array (V,), "level": 0-d unicode array}``.

        Both are plain unicode arrays, so ``np.savez`` stores them and ``np.load`` reads them
        with ``allow_pickle=False``; ``Vocabulary.from_arrays(tokens, level)`` rebuilds it.
        """
        return {"tokens": np.array(self._tokens, dtype=np.str_), "level": np.array(self._level)}

    # ----------------------------------------------------------------- inspection
    @property
    def tokens(self) -> list[str]:
        """The tokens; a token's id is its position in this list (a fresh copy each time)."""
        return list(self._tokens)

    @property
    def level(self) -> str:
        """'char' or 'word'."""
        return self._level

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token) -> bool:
        return token in self._ids

    def __eq__(self, other) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self._level == other._level and self._tokens == other._tokens

    def __hash__(self) -> int:
        return hash((self._level, self._tokens))

    def __repr__(self) -> str:
        shown = ", ".join(repr(t) for t in self._tokens[:8])
        more = ", ..." if len(self._tokens) > 8 else ""
        return f"Vocabulary(level={self._level!r}, size={len(self)}, tokens=[{shown}{more}])"

    def index(self, token: str) -> int:
        """The id of token; a token not in the vocabulary is a ValueError (no UNKNOWN mapping)."""
        try:
            return self._ids[token]
        except (KeyError, TypeError):
            raise ValueError(f"token {token!r} is not in the vocabulary") from None

    @property
    def unknown_id(self) -> int | None:
        """The id of UNKNOWN_TOKEN (word level), or None for a char vocabulary."""
        return self._ids.get(UNKNOWN_TOKEN) if self._level == "word" else None

    # ----------------------------------------------------------------- encoding
    def tokenize(self, text: str) -> list[str]:
        """Cut text into tokens the way ``encode`` does (char: characters; word: sentences
        wrapped in SENTENCE_START/SENTENCE_END), without looking anything up."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        if self._level == "char":
            return list(text)
        tokens = []
        for sentence in word_sentences(text):
            tokens += [SENTENCE_START, *sentence, SENTENCE_END]
        return tokens

    def encode(self, text: str) -> np.ndarray:
        """Return the token ids of text as a 1-D int64 array.

        char: a character not in the vocabulary is a ValueError naming it.
        word: text is tokenised like ``from_text`` (sentence marks included); words not in the
        vocabulary become UNKNOWN_TOKEN's id.
        """
        tokens = self.tokenize(text)
        if self._level == "char":
            ids = []
            for position, ch in enumerate(tokens):
                try:
                    ids.append(self._ids[ch])
                except KeyError:
                    raise ValueError(
                        f"text contains the character {ch!r} (at position {position}), which is "
                        "not in the vocabulary; build the vocabulary from text that contains it"
                    ) from None
        else:
            unknown = self._ids[UNKNOWN_TOKEN]
            ids = [self._ids.get(token, unknown) for token in tokens]
        return np.array(ids, dtype=np.int64)

    def decode(self, ids) -> str:
        """Turn token ids back into text.

        char: the characters joined. word: tokens joined by single spaces, one sentence per
        line; SENTENCE_START/SENTENCE_END only mark where lines begin and end and are not
        printed. UNKNOWN_TOKEN is printed as itself. For word-level ids that came from
        ``encode``, ``encode(decode(ids))`` gives the same ids back, unless a sentence-ending
        mark (. ! ?) was missing from the vocabulary and so became UNKNOWN_TOKEN.
        """
        array = np.asarray(ids)
        if array.ndim != 1:
            raise ValueError(f"ids must be a 1-D sequence of token ids, got shape {array.shape}")
        if array.size == 0:
            return ""
        if array.dtype.kind not in "iu":
            raise ValueError(f"ids must be integers, got dtype {array.dtype}")
        bad = (array < 0) | (array >= len(self._tokens))
        if bad.any():
            raise ValueError(
                f"ids must be in 0..{len(self._tokens) - 1} (the vocabulary size is "
                f"{len(self._tokens)}), got {int(array[bad][0])}"
            )
        tokens = [self._tokens[i] for i in array.tolist()]
        if self._level == "char":
            return "".join(tokens)
        lines, current = [], []
        for token in tokens:
            if token in (SENTENCE_START, SENTENCE_END):
                # Either mark closes the sentence in progress: a START without the previous END
                # still begins a new line.
                if current:
                    lines.append(" ".join(current))
                current = []
            else:
                current.append(token)
        if current:
            lines.append(" ".join(current))
        return "\n".join(lines)


# --------------------------------------------------------------------- text files
def load_text(path) -> str:
    """Read a UTF-8 text file (a byte-order mark is dropped, line endings become "\\n").

    Missing files, folders, empty files and binary files (NUL bytes, not UTF-8, mostly
    control characters) are ValueErrors that say what is wrong with path.
    """
    try:
        path = Path(path)
    except TypeError:
        raise ValueError(f"path must be a file path, got {path!r}") from None
    if not path.exists():
        raise ValueError(f"path {str(path)!r} does not exist; choose an existing text file")
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file; choose a text file")
    data = path.read_bytes()
    if not data:
        raise ValueError(f"path {str(path)!r} is an empty file; choose a file with some text")
    if b"\x00" in data:
        raise ValueError(
            f"path {str(path)!r} contains NUL bytes; it looks like a binary file, not text"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"path {str(path)!r} is not UTF-8 text (undecodable byte at offset {error.start}); "
            "save it as UTF-8 or choose another file"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text == "":
        raise ValueError(f"path {str(path)!r} has no text; choose a file with some text")
    _check_not_binary(text, f"path {str(path)!r}")
    return text


# --------------------------------------------------------------------- windows and batches
def windows(ids, length: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cut a 1-D id sequence into training windows.

    Returns ``(inputs, targets)``, each an int64 array of shape (N, length), with window k
    ``inputs[k] = ids[s : s + length]`` and ``targets[k] = ids[s + 1 : s + length + 1]`` for
    ``s = k * stride``: the target at each step is the next token. ``stride`` defaults to
    ``length`` (windows side by side, each token a target once). Tokens after the last full
    window are not used.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D sequence of token ids, got shape {ids.shape}")
    if ids.size and ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be integers, got dtype {ids.dtype}")
    length = _check_int("length", length, 1)
    stride = length if stride is None else _check_int("stride", stride, 1)
    if length > len(ids) - 1:
        raise ValueError(
            f"length is {length} but the text has only {len(ids)} tokens, so a window can be "
            f"at most {max(len(ids) - 1, 0)} long (it needs one more token for the last "
            "target); shorten the window or use a longer text"
        )
    starts = np.arange(0, len(ids) - length, stride)
    offsets = starts[:, None] + np.arange(length)
    ids = ids.astype(np.int64, copy=False)
    return ids[offsets], ids[offsets + 1]


def batches(
    inputs, targets, batch_size: int, shuffle: bool = True, seed=None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of mini-batches of windows, time first.

    inputs, targets: (N, T) arrays from ``windows``. Yields ``(X, Y)``, each of shape (T, B),
    the layout ``Network.loss_and_grads`` takes for a batch. Every window appears exactly once
    per epoch; the last batch is smaller when N is not a multiple of batch_size (and a
    batch_size above N gives one batch of all N). ``shuffle=True`` draws the order from
    ``np.random.default_rng(seed)``; ``shuffle=False`` keeps the windows in order.
    """
    inputs = np.asarray(inputs)
    targets = np.asarray(targets)
    if inputs.ndim != 2:
        raise ValueError(f"inputs must be a 2-D (windows, steps) array, got shape {inputs.shape}")
    if targets.shape != inputs.shape:
        raise ValueError(
            f"targets must have the shape of inputs {inputs.shape}, got {targets.shape}"
        )
    if inputs.shape[0] == 0:
        raise ValueError("inputs must contain at least one window, got none")
    batch_size = _check_int("batch_size", batch_size, 1)
    n = inputs.shape[0]
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)

    # The work happens in an inner generator so that bad arguments fail at the call, not at
    # the first next().
    def generate():
        for first in range(0, n, batch_size):
            chosen = order[first : first + batch_size]
            yield np.ascontiguousarray(inputs[chosen].T), np.ascontiguousarray(targets[chosen].T)

    return generate()


# --------------------------------------------------------------------- bundled corpora
def _corpora_dir():
    """The folder of bundled corpora: the installed package data, else the source tree's."""
    try:
        folder = resources.files("explorer.assets") / "corpora"
        if folder.is_dir():
            return folder
    except (ModuleNotFoundError, TypeError, AttributeError, NotADirectoryError):
        # Running from a source checkout without installing: explorer.assets is not importable.
        pass
    return Path(__file__).resolve().parent.parent / "assets" / "corpora"


def corpus_names() -> list[str]:
    """The names of the bundled corpora (e.g. "prose", "rhymes", "sentences"), sorted."""
    folder = _corpora_dir()
    if not folder.is_dir():
        return []
    return sorted(
        entry.name[: -len(".txt")] for entry in folder.iterdir() if entry.name.endswith(".txt")
    )


def corpus_text(name: str) -> str:
    """The text of the bundled corpus called name (see ``corpus_names()``)."""
    names = corpus_names()
    if name not in names:
        raise ValueError(f"name must be one of {names}, got {name!r}")
    return (_corpora_dir() / f"{name}.txt").read_text(encoding="utf-8")
