"""Tests for explorer.data: vocabularies, text files, windows, batches and bundled corpora."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer import data
from explorer.data import (
    SENTENCE_END,
    SENTENCE_START,
    UNKNOWN_TOKEN,
    Vocabulary,
    batches,
    corpus_names,
    corpus_text,
    load_text,
    windows,
)

# ---------------------------------------------------------------------------- char vocabulary


def test_char_vocabulary_is_sorted_unique_characters():
    vocab = Vocabulary.from_text("hello world", level="char")
    assert vocab.tokens == [" ", "d", "e", "h", "l", "o", "r", "w"]
    assert vocab.level == "char"
    assert len(vocab) == 8
    assert vocab.index("h") == 3
    assert "l" in vocab and "z" not in vocab
    assert vocab.unknown_id is None


def test_char_encode_gives_int64_ids_in_order():
    vocab = Vocabulary.from_text("hello", level="char")  # e h l o
    ids = vocab.encode("hello")
    assert ids.dtype == np.int64 and ids.ndim == 1
    assert ids.tolist() == [1, 0, 2, 2, 3]
    assert vocab.encode("").tolist() == []
    assert vocab.decode(ids) == "hello"
    assert vocab.decode([]) == ""


def test_char_encode_unknown_character_names_it():
    vocab = Vocabulary.from_text("abc", level="char")
    with pytest.raises(ValueError, match=r"character 'z' \(at position 2\)"):
        vocab.encode("abz")


@settings(max_examples=60, deadline=None)
@given(
    st.text(
        alphabet=st.characters(exclude_categories=("Cs", "Cc"), include_characters="\n\t\r"),
        min_size=1,
    )
)
def test_char_round_trip(text):
    vocab = Vocabulary.from_text(text, level="char")
    assert vocab.decode(vocab.encode(text)) == text
    assert vocab.tokens == sorted(set(text))


def test_a_few_control_characters_are_allowed_but_not_mostly():
    assert len(Vocabulary.from_text("abcd\x01", level="char")) == 5  # 1 in 5 is fine
    assert len(Vocabulary.from_text("a\tb\r\n\f\v", level="char")) == 7  # whitespace
    with pytest.raises(ValueError, match=r"text is mostly non-printable .*\(1 of 3\)"):
        Vocabulary.from_text("ab\x7f", level="char")


def test_char_max_size_is_a_limit_not_a_cut():
    assert len(Vocabulary.from_text("abcd", level="char", max_size=4)) == 4
    with pytest.raises(ValueError, match="max_size is 3 but the text has 4 distinct characters"):
        Vocabulary.from_text("abcd", level="char", max_size=3)


def test_tokens_property_is_a_copy():
    vocab = Vocabulary.from_text("abc")
    vocab.tokens.append("z")
    assert vocab.tokens == ["a", "b", "c"]


# ---------------------------------------------------------------------------- word vocabulary

TEXT = "The cat sat. The dog sat!\nA cat ran? the end"


def test_word_vocabulary_counts_sentence_marks_and_sorts_by_frequency():
    vocab = Vocabulary.from_text(TEXT, level="word")
    # 4 sentences: "the cat sat ." "the dog sat !" "a cat ran ?" "the end"
    counts = {SENTENCE_START: 4, SENTENCE_END: 4, "the": 3, "cat": 2, "sat": 2}
    assert vocab.tokens[:5] == sorted(counts, key=lambda t: (-counts[t], t))
    # Ties among the singletons are alphabetical; UNKNOWN_TOKEN is always last.
    assert vocab.tokens[5:] == ["!", ".", "?", "a", "dog", "end", "ran", UNKNOWN_TOKEN]
    assert vocab.level == "word"
    assert vocab.unknown_id == len(vocab) - 1


def test_word_sentence_splitting_and_tokens():
    assert data.word_sentences("Hi, Bob. Don't go!\n\nOK  ...") == [
        ["hi", ",", "bob", "."],
        ["don't", "go", "!"],
        ["ok", ".", ".", "."],
    ]


def test_word_encode_wraps_sentences_and_maps_unknown_words():
    vocab = Vocabulary.from_text(TEXT, level="word")
    ids = vocab.encode("The cat flew. A zebra")
    tokens = [vocab.tokens[i] for i in ids]
    assert tokens == [
        SENTENCE_START, "the", "cat", UNKNOWN_TOKEN, ".", SENTENCE_END,
        SENTENCE_START, "a", UNKNOWN_TOKEN, SENTENCE_END,
    ]  # fmt: skip
    assert vocab.decode(ids) == f"the cat {UNKNOWN_TOKEN} .\na {UNKNOWN_TOKEN}"


def test_word_max_size_keeps_most_frequent_and_unknown():
    vocab = Vocabulary.from_text(TEXT, level="word", max_size=4)
    assert vocab.tokens == [SENTENCE_END, SENTENCE_START, "the", UNKNOWN_TOKEN]
    ids = vocab.encode("The cat sat.")
    assert [vocab.tokens[i] for i in ids] == [
        SENTENCE_START, "the", UNKNOWN_TOKEN, UNKNOWN_TOKEN, UNKNOWN_TOKEN, SENTENCE_END,
    ]  # fmt: skip
    assert len(Vocabulary.from_text(TEXT, level="word", max_size=2)) == 2
    # A max_size above the number of distinct tokens keeps them all.
    assert len(Vocabulary.from_text(TEXT, level="word", max_size=1000)) == 13


def test_word_ties_do_not_depend_on_text_order():
    a = Vocabulary.from_text("zebra apple. mango", level="word")
    b = Vocabulary.from_text("mango apple. zebra", level="word")
    assert a == b
    assert a.tokens[2:6] == [".", "apple", "mango", "zebra"]


def test_word_decode_handles_marks_sensibly():
    vocab = Vocabulary.from_text(TEXT, level="word")
    s, e = vocab.index(SENTENCE_START), vocab.index(SENTENCE_END)
    the, cat = vocab.index("the"), vocab.index("cat")
    assert vocab.decode([s, the, cat, e, s, cat, e]) == "the cat\ncat"
    # A START without the previous END still begins a new line; stray marks print nothing.
    assert vocab.decode([the, s, cat]) == "the\ncat"
    assert vocab.decode([e, e, s]) == ""


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(["the", "Cat", "zebra", "don't", ".", "!", "?", ",", " ", "\n", "..."]),
        min_size=1,
        max_size=30,
    ).map(" ".join)
)
def test_word_encode_decode_encode_is_stable(text):
    # Every sentence-ending mark is known, so UNKNOWN_TOKEN only replaces words.
    vocab = Vocabulary.from_text("the cat sat on the mat. A dog! Why?", level="word")
    ids = vocab.encode(text)
    assert vocab.encode(vocab.decode(ids)).tolist() == ids.tolist()


def test_index_of_missing_token_is_an_error():
    vocab = Vocabulary.from_text(TEXT, level="word")
    with pytest.raises(ValueError, match="token 'zebra' is not in the vocabulary"):
        vocab.index("zebra")


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text": ""}, "text is empty"),
        ({"text": "abc\x00def"}, "text contains NUL"),
        ({"text": "\x01\x02\x03\x04ab"}, "text is mostly non-printable"),
        ({"text": 42}, "text must be a str"),
        ({"text": "abc", "level": "byte"}, "level must be 'char' or 'word'"),
        ({"text": "abc", "max_size": 1}, "max_size must be an integer >= 2, got 1"),
        ({"text": "abc", "max_size": 2.5}, "max_size must be an integer >= 2"),
        ({"text": "abc", "max_size": True}, "max_size must be an integer >= 2"),
        ({"text": "  \n\t ", "level": "word"}, "text has no words"),
        ({"text": "", "level": "word"}, "text is empty"),
    ],
)
def test_from_text_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Vocabulary.from_text(**kwargs)


@pytest.mark.parametrize(
    ("tokens", "level", "match"),
    [
        ([], "char", "tokens must not be empty"),
        (["a", "bc"], "char", "single characters"),
        (["a", "a"], "char", "tokens must be unique"),
        (["a", ""], "word", "non-empty strings"),
        (["a", 3], "word", "non-empty strings"),
        (["a", "b"], "word", "must include 'UNKNOWN_TOKEN'"),
        ("abc", "char", "not one string"),
        (["a"], "words", "level must be"),
    ],
)
def test_constructor_rejects_bad_tokens(tokens, level, match):
    with pytest.raises(ValueError, match=match):
        Vocabulary(tokens, level)


def test_decode_rejects_bad_ids():
    vocab = Vocabulary.from_text("abc")
    with pytest.raises(ValueError, match=r"ids must be in 0\.\.2 .* got 3"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match="got -1"):
        vocab.decode([-1])
    with pytest.raises(ValueError, match="ids must be integers"):
        vocab.decode([0.5])
    with pytest.raises(ValueError, match="ids must be a 1-D"):
        vocab.decode([[0, 1]])


def test_encode_rejects_non_text():
    with pytest.raises(ValueError, match="text must be a str"):
        Vocabulary.from_text("abc").encode(b"abc")


# ---------------------------------------------------------------------------- saving


@pytest.mark.parametrize("level", ["char", "word"])
def test_arrays_round_trip_through_npz_without_pickle(tmp_path, level):
    vocab = Vocabulary.from_text("Hello, world.\nNew line: tabs\there!", level=level)
    arrays = vocab.to_arrays()
    assert arrays["tokens"].dtype.kind == "U" and arrays["level"].dtype.kind == "U"
    path = tmp_path / "vocab.npz"
    np.savez(path, vocab_tokens=arrays["tokens"], vocab_level=arrays["level"])
    with np.load(path, allow_pickle=False) as f:
        loaded = Vocabulary.from_arrays(f["vocab_tokens"], f["vocab_level"])
    assert loaded == vocab
    assert loaded.tokens == vocab.tokens and loaded.level == level
    assert all(type(t) is str for t in loaded.tokens)
    text = "Hello, world."
    assert loaded.encode(text).tolist() == vocab.encode(text).tolist()


def test_from_arrays_rejects_bad_arrays():
    with pytest.raises(ValueError, match="tokens must be a 1-D unicode array"):
        Vocabulary.from_arrays(np.arange(3), "char")
    with pytest.raises(ValueError, match="level must be a 0-d unicode array"):
        Vocabulary.from_arrays(np.array(["a"]), np.array(["char"]))
    with pytest.raises(ValueError, match="level must be 'char' or 'word'"):
        Vocabulary.from_arrays(np.array(["a"]), "bytes")


def test_vocabularies_compare_by_level_and_tokens():
    assert Vocabulary.from_text("ab") == Vocabulary(["a", "b"])
    assert Vocabulary.from_text("ab") != Vocabulary.from_text("abc")
    assert Vocabulary(["a", UNKNOWN_TOKEN], "word") != Vocabulary(["a", UNKNOWN_TOKEN[0]], "char")
    assert "size=3" in repr(Vocabulary.from_text("abc"))


# ---------------------------------------------------------------------------- load_text


def test_load_text_reads_utf8_and_normalises_line_endings(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffcaf\u00e9\r\nline two\rthree\n".encode())
    assert load_text(path) == "caf\u00e9\nline two\nthree\n"
    assert load_text(str(path)) == load_text(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "is an empty file"),
        (b"\xef\xbb\xbf", "has no text"),
        (b"abc\x00def", "contains NUL bytes"),
        (b"caf\xe9", "is not UTF-8 text"),
        (b"\x01\x02\x03\x04\x05ok", "mostly non-printable"),
    ],
)
def test_load_text_rejects_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"path .*bad.txt.* {match}"):
        load_text(path)


def test_load_text_rejects_missing_files_and_folders(tmp_path):
    with pytest.raises(ValueError, match="path .*nope.txt.* does not exist"):
        load_text(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="is not a file"):
        load_text(tmp_path)
    with pytest.raises(ValueError, match="path must be a file path"):
        load_text(None)


# ---------------------------------------------------------------------------- windows


def test_windows_shift_targets_by_one():
    ids = np.arange(10) * 3
    inputs, targets = windows(ids, 4)
    assert inputs.shape == targets.shape == (2, 4)
    assert inputs.dtype == np.int64 and targets.dtype == np.int64
    assert inputs.tolist() == [[0, 3, 6, 9], [12, 15, 18, 21]]
    assert targets.tolist() == [[3, 6, 9, 12], [15, 18, 21, 24]]


@pytest.mark.parametrize(("n", "length", "stride"), [(10, 3, 1), (10, 3, 2), (11, 5, None),
                                                     (6, 5, 1), (100, 7, 3), (50, 1, 4)])
def test_windows_count_and_content(n, length, stride):
    ids = np.random.default_rng(n).integers(0, 50, size=n)
    inputs, targets = windows(ids, length, stride)
    step = length if stride is None else stride
    expected = len(range(0, n - length, step))
    assert inputs.shape == (expected, length) and targets.shape == (expected, length)
    for k in range(expected):
        s = k * step
        assert inputs[k].tolist() == ids[s : s + length].tolist()
        assert targets[k].tolist() == ids[s + 1 : s + length + 1].tolist()
    # Every window uses one token past its inputs, which must still exist.
    assert (expected - 1) * step + length <= n - 1


def test_windows_accept_lists_and_are_independent_copies():
    ids = [0, 1, 2, 3, 4]
    inputs, targets = windows(ids, 2, stride=1)
    inputs[0, 0] = 99
    assert targets[0].tolist() == [1, 2] and inputs[1].tolist() == [1, 2]


def test_windows_too_long_says_how_long_the_text_is():
    with pytest.raises(ValueError, match="the text has only 5 tokens.*at most 4.*shorten"):
        windows(np.arange(5), 5)
    assert windows(np.arange(5), 4)[0].shape == (1, 4)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.arange(10), 0), "length must be a positive integer, got 0"),
        ((np.arange(10), 2.0), "length must be a positive integer"),
        ((np.arange(10), 2, 0), "stride must be a positive integer, got 0"),
        ((np.arange(10), 2, -1), "stride must be a positive integer"),
        ((np.zeros((2, 5), dtype=int), 2), "ids must be a 1-D"),
        ((np.linspace(0, 1, 10), 2), "ids must be integers"),
        (([], 1), "only 0 tokens"),
    ],
)
def test_windows_reject_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        windows(*args)


# ---------------------------------------------------------------------------- batches


def _windows(n=23, length=4):
    return windows(np.arange(n * length + 1), length)


def test_batches_are_time_first_and_cover_every_window_once():
    inputs, targets = _windows()
    seen = []
    shapes = []
    for X, Y in batches(inputs, targets, batch_size=5, seed=0):
        shapes.append(X.shape)
        assert X.shape == Y.shape
        assert (Y == X + 1).all()  # targets stay paired with their inputs
        seen += [tuple(col) for col in X.T]
    assert shapes == [(4, 5)] * 4 + [(4, 3)]
    assert sorted(seen) == sorted(tuple(row) for row in inputs)


def test_batches_without_shuffle_keep_order():
    inputs, targets = _windows(n=6)
    got = [X for X, _ in batches(inputs, targets, batch_size=4, shuffle=False)]
    assert np.array_equal(np.concatenate([X.T for X in got]), inputs)


def test_batches_shuffle_is_seeded_and_differs_between_seeds():
    inputs, targets = _windows(n=40)

    def order(seed):
        return np.concatenate([X[0] for X, _ in batches(inputs, targets, 8, seed=seed)])

    assert np.array_equal(order(1), order(1))
    assert not np.array_equal(order(1), order(2))
    assert not np.array_equal(order(1), inputs[:, 0])  # actually shuffled
    # Several epochs in a row, each a permutation of all windows.
    for seed in range(3):
        assert sorted(order(seed).tolist()) == sorted(inputs[:, 0].tolist())


def test_batch_size_above_window_count_gives_one_batch():
    inputs, targets = _windows(n=3)
    (X, Y), *rest = list(batches(inputs, targets, batch_size=10))
    assert rest == [] and X.shape == (4, 3)


@pytest.mark.parametrize(
    ("inputs", "targets", "batch_size", "match"),
    [
        (np.zeros((3, 4), int), np.zeros((3, 4), int), 0, "batch_size must be a positive"),
        (np.zeros((3, 4), int), np.zeros((3, 5), int), 2, r"targets must have the shape"),
        (np.zeros(4, int), np.zeros(4, int), 2, "inputs must be a 2-D"),
        (np.zeros((0, 4), int), np.zeros((0, 4), int), 2, "at least one window"),
    ],
)
def test_batches_reject_bad_arguments_at_the_call(inputs, targets, batch_size, match):
    with pytest.raises(ValueError, match=match):
        batches(inputs, targets, batch_size)  # no next(): the check must not wait


# ---------------------------------------------------------------------------- corpora


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("prose", 6_000, 10_000), ("rhymes", 2_000, 3_000), ("sentences", 4_000, 6_000)],
)
def test_corpora_exist_with_promised_sizes(name, low, high):
    text = corpus_text(name)
    assert low <= len(text.encode("utf-8")) <= high
    Vocabulary.from_text(text, level="char").encode(text)  # loadable and encodable


def test_corpus_names():
    assert {"prose", "rhymes", "sentences"} <= set(corpus_names())
    with pytest.raises(ValueError, match="name must be one of .*'prose'.* got 'poems'"):
        corpus_text("poems")


def test_sentences_corpus_is_one_short_sentence_per_line_with_a_small_vocabulary():
    text = corpus_text("sentences")
    lines = text.strip().split("\n")
    assert len(lines) >= 100
    assert all(line.endswith((".", "!", "?")) and line[0].isupper() for line in lines)
    vocab = Vocabulary.from_text(text, level="word")
    words = [t for t in vocab.tokens if t[0].isalpha() and t not in (
        SENTENCE_START, SENTENCE_END, UNKNOWN_TOKEN)]
    assert 120 <= len(words) <= 180
    # Every line is exactly one sentence for the word model.
    assert vocab.encode(text).tolist().count(vocab.index(SENTENCE_START)) == len(lines)


def test_corpora_are_plain_printable_text():
    for name in ("prose", "rhymes", "sentences"):
        text = corpus_text(name)
        assert text.isascii()
        assert all(ch.isprintable() or ch == "\n" for ch in text)
