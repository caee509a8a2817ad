"""Tests for explorer.io: exact save/load round trips, atomic writes, and refusing bad files."""

import json
import os
import pathlib
import zipfile

import numpy as np
import pytest

from explorer import io as model_io
from explorer.data import Vocabulary
from explorer.io import FORMAT_NAME, FORMAT_VERSION, load_model, save_model
from explorer.network import Network

TEXT = "hello world, the quick brown fox jumps over the lazy dog."


def _model(cell="rnn", dtype="float64", level="char", seed=3):
    vocab = Vocabulary.from_text(TEXT, level=level)
    net = Network(len(vocab), 7, cell=cell, seed=seed, dtype=dtype)
    # Move away from the seeded initialisation, so a load that silently re-initialised from
    # the config (instead of reading the parameters) would be caught.
    rng = np.random.default_rng(seed + 100)
    for p in net.params.values():
        p += rng.normal(scale=0.1, size=p.shape).astype(p.dtype)
    return net, vocab


def _entries(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _write_npz(path, entries, allow_pickle=False):
    with open(path, "wb") as f:
        np.savez(f, allow_pickle=allow_pickle, **entries)


def _saved(tmp_path, name="model.npz", **kwargs):
    net, vocab = _model(**kwargs)
    path = tmp_path / name
    save_model(path, net, vocab)
    return path, net, vocab


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_round_trip_is_exact(tmp_path, cell, dtype):
    net, vocab = _model(cell=cell, dtype=dtype)
    path = tmp_path / "model.npz"
    save_model(path, net, vocab)
    loaded, loaded_vocab, extra = load_model(path)

    assert loaded.config() == net.config()
    assert loaded.dtype == np.dtype(dtype)
    assert list(loaded.params) == list(net.params)
    for name, value in net.params.items():
        assert loaded.params[name].dtype == value.dtype
        assert np.array_equal(loaded.params[name], value), name
    assert loaded_vocab == vocab
    assert loaded_vocab.tokens == vocab.tokens and loaded_vocab.level == "char"
    assert extra == {}

    # The loaded network computes exactly what the original does.
    ids = vocab.encode(TEXT)
    loss, grads = net.loss_and_grads(ids[:-1], ids[1:])
    loss2, grads2 = loaded.loss_and_grads(ids[:-1], ids[1:])
    assert loss2 == loss
    for name in grads:
        assert np.array_equal(grads2[name], grads[name])


def test_round_trip_word_vocabulary_and_no_vocabulary(tmp_path):
    net, vocab = _model(level="word")
    save_model(tmp_path / "w.npz", net, vocab)
    _, loaded_vocab, _ = load_model(tmp_path / "w.npz")
    assert loaded_vocab == vocab and loaded_vocab.level == "word"
    assert Vocabulary.UNKNOWN_TOKEN in loaded_vocab.tokens

    save_model(tmp_path / "n.npz", net)
    loaded, loaded_vocab, _ = load_model(str(tmp_path / "n.npz"))
    assert loaded_vocab is None
    assert all(np.array_equal(loaded.params[k], v) for k, v in net.params.items())


def test_round_trip_extra_values_and_arrays(tmp_path):
    net, vocab = _model()
    losses = np.array([4.2, 3.9, 3.5], dtype=np.float32)
    extra = {
        "iteration": np.int64(1200),
        "optimizer": "adam",
        "lr": 0.01,
        "settings": {"clip": 5.0, "truncate": None, "ok": True},
        "losses": losses,
        "windows": np.arange(6).reshape(2, 3),
    }
    save_model(tmp_path / "m.npz", net, vocab, extra=extra)
    _, _, loaded = load_model(tmp_path / "m.npz")
    assert set(loaded) == set(extra)
    assert loaded["iteration"] == 1200 and isinstance(loaded["iteration"], int)
    assert loaded["optimizer"] == "adam" and loaded["lr"] == 0.01
    assert loaded["settings"] == {"clip": 5.0, "truncate": None, "ok": True}
    assert loaded["losses"].dtype == np.float32 and np.array_equal(loaded["losses"], losses)
    assert np.array_equal(loaded["windows"], extra["windows"])


def test_saved_file_is_plain_npz_with_format_entries(tmp_path):
    path, net, vocab = _saved(tmp_path, cell="gru")
    entries = _entries(path)  # allow_pickle=False: nothing in it needs pickle
    assert str(entries["format"]) == FORMAT_NAME
    assert int(entries["format_version"]) == FORMAT_VERSION
    assert json.loads(str(entries["config"])) == net.config()
    assert {k for k in entries if k.startswith("param/")} == {f"param/{k}" for k in net.params}
    assert entries["vocab/tokens"].dtype.kind == "U"
    assert list(entries["vocab/tokens"]) == vocab.tokens


def test_path_is_used_exactly_and_overwriting_replaces(tmp_path):
    net, vocab = _model()
    path = tmp_path / "model.weights"  # no ".npz" may be appended
    save_model(str(path), net, vocab)
    assert os.listdir(tmp_path) == ["model.weights"]

    net.params["W"] *= 2.0
    save_model(pathlib.Path(path), net, vocab)
    loaded, _, _ = load_model(path)
    assert np.array_equal(loaded.params["W"], net.params["W"])
    assert os.listdir(tmp_path) == ["model.weights"]


def test_several_saves_in_a_row_each_load_back_the_latest(tmp_path):
    net, vocab = _model(cell="lstm")
    path = tmp_path / "m.npz"
    for i in range(3):
        net.params["V"] += 0.5
        save_model(path, net, vocab, extra={"iteration": i})
        loaded, _, extra = load_model(path)
        assert extra == {"iteration": i}
        assert np.array_equal(loaded.params["V"], net.params["V"])


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------


def test_failed_write_keeps_the_old_file_and_removes_the_temp_file(tmp_path, monkeypatch):
    path, net, vocab = _saved(tmp_path)
    old_bytes = path.read_bytes()

    def broken_savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a zip")  # a partial write, then the failure
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    net.params["W"] += 1.0
    with pytest.raises(OSError, match="No space left"):
        save_model(path, net, vocab)
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == [path.name]
    monkeypatch.undo()
    loaded, _, _ = load_model(path)
    assert not np.array_equal(loaded.params["W"], net.params["W"])  # still the old model


def test_failed_rename_keeps_the_old_file_and_removes_the_temp_file(tmp_path, monkeypatch):
    path, net, vocab = _saved(tmp_path)
    old_bytes = path.read_bytes()

    def broken_replace(src, dst):
        raise PermissionError("denied")

    monkeypatch.setattr(model_io.os, "replace", broken_replace)
    with pytest.raises(PermissionError):
        save_model(path, net, vocab)
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == [path.name]


def test_interrupted_first_save_leaves_nothing_behind(tmp_path, monkeypatch):
    net, vocab = _model()

    def interrupted(file, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(tmp_path / "m.npz", net, vocab)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Refusing to save what could not be loaded
# ---------------------------------------------------------------------------------------------


def test_save_refuses_non_finite_parameters_and_keeps_the_old_file(tmp_path):
    path, net, vocab = _saved(tmp_path)
    old_bytes = path.read_bytes()
    net.params["W"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"net.params\['W'\] contains NaN or infinite"):
        save_model(path, net, vocab)
    assert path.read_bytes() == old_bytes


def test_save_argument_checks(tmp_path):
    net, vocab = _model()
    with pytest.raises(ValueError, match="vocab has .* tokens but the network's input_size"):
        save_model(tmp_path / "m.npz", Network(len(vocab) + 1, 4), vocab)
    with pytest.raises(ValueError, match="net must be a Network"):
        save_model(tmp_path / "m.npz", {"W": np.ones(2)})
    with pytest.raises(ValueError, match="vocab must be a Vocabulary"):
        save_model(tmp_path / "m.npz", net, vocab.tokens)
    with pytest.raises(ValueError, match="does not exist"):
        save_model(tmp_path / "no_such_dir" / "m.npz", net)
    with pytest.raises(ValueError, match="it is a folder"):
        save_model(tmp_path, net)
    with pytest.raises(ValueError, match="extra must be a dict"):
        save_model(tmp_path / "m.npz", net, extra=[1, 2])
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_model(tmp_path / "m.npz", net, extra={"f": object()})
    with pytest.raises(ValueError, match="object array"):
        save_model(tmp_path / "m.npz", net, extra={"o": np.array([{}, None], dtype=object)})
    assert os.listdir(tmp_path) == []


def test_save_refuses_a_token_npz_cannot_store(tmp_path):
    vocab = Vocabulary(["\x00", "a", "b"], "char")
    with pytest.raises(ValueError, match="NUL"):
        save_model(tmp_path / "m.npz", Network(3, 2), vocab)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Refusing bad files with a message that says what is wrong
# ---------------------------------------------------------------------------------------------


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_model(tmp_path / "absent.npz")
    with pytest.raises(ValueError, match="it is a folder"):
        load_model(tmp_path)


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1])
def test_truncated_file(tmp_path, keep):
    path, _, _ = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="damaged or incomplete"):
        load_model(path)


def test_every_truncation_is_refused_with_a_value_error(tmp_path):
    path, _, _ = _saved(tmp_path, cell="gru")
    data = path.read_bytes()
    for cut in range(0, len(data), 97):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cannot load"):
            load_model(path)


def test_empty_file(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="the file is empty"):
        load_model(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(ValueError, match="not an .npz file") as info:
        load_model(path)
    assert "allow_pickle" not in str(info.value)  # never advise loading pickles


def test_corrupted_parameter_bytes_are_detected(tmp_path):
    path, net, _ = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    start = bytes(data).find(net.params["W"].tobytes())
    assert start > 0
    data[start + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged or incomplete"):
        load_model(path)


def test_a_plain_zip_is_not_a_model(tmp_path):
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(ValueError, match="cannot load"):
        load_model(path)


def test_a_single_npy_array_is_not_a_model(tmp_path):
    path = tmp_path / "m.npz"
    with open(path, "wb") as f:
        np.save(f, np.ones(3))
    with pytest.raises(ValueError, match=r"single NumPy array \(.npy data\)"):
        load_model(path)


def test_npz_without_format_entry(tmp_path):
    path, _, _ = _saved(tmp_path)
    entries = _entries(path)
    del entries["format"]
    _write_npz(path, entries)
    with pytest.raises(ValueError, match="not an RNN Explorer model"):
        load_model(path)
    _write_npz(path, {"x": np.ones(3)})
    with pytest.raises(ValueError, match="not an RNN Explorer model"):
        load_model(path)
    entries["format"] = np.array("some-other-format")
    _write_npz(path, entries)
    with pytest.raises(ValueError, match="not an RNN Explorer model"):
        load_model(path)


def test_newer_format_version(tmp_path):
    path, _, _ = _saved(tmp_path)
    entries = _entries(path)
    entries["format_version"] = np.array(FORMAT_VERSION + 1)
    _write_npz(path, entries)
    with pytest.raises(ValueError, match="saved by a newer RNN Explorer.*update"):
        load_model(path)
    entries["format_version"] = np.array("one")
    _write_npz(path, entries)
    with pytest.raises(ValueError, match="format_version"):
        load_model(path)


@pytest.mark.parametrize("name", ["U", "W", "b", "bh", "V", "c"])
def test_missing_parameter(tmp_path, name):
    path, _, _ = _saved(tmp_path, cell="gru")
    entries = _entries(path)
    del entries[f"param/{name}"]
    _write_npz(path, entries)
    with pytest.raises(ValueError, match=f"parameter '{name}' is missing"):
        load_model(path)


def test_parameter_of_the_wrong_shape(tmp_path):
    path, _, _ = _saved(tmp_path)
    entries = _entries(path)
    entries["param/W"] = np.zeros((6, 6))  # hidden_size is 7
    _write_npz(path, entries)
    with pytest.raises(ValueError, match=r"'W' has shape \(6, 6\).*needs \(7, 7\).*mismatched"):
        load_model(path)


def test_parameters_of_another_cell(tmp_path):
    # An LSTM's parameters under an RNN's config: every shape is wrong.
    path, _, _ = _saved(tmp_path, cell="lstm")
    entries = _entries(path)
    config = json.loads(str(entries["config"]))
    config["cell"] = "rnn"
    entries["config"] = np.array(json.dumps(config))
    _write_npz(path, entries)
    with pytest.raises(ValueError, match="'U' has shape .* mismatched"):
        load_model(path)
    config["cell"] = "gru"
    entries["config"] = np.array(json.dumps(config))
    _write_npz(path, entries)
    with pytest.raises(ValueError, match=r"'U' has shape \(28, 29\).*needs \(21, 29\)"):
        load_model(path)


def test_unexpected_parameter(tmp_path):
    path, _, _ = _saved(tmp_path)
    entries = _entries(path)
    entries["param/bh"] = np.zeros(7)
    _write_npz(path, entries)
    with pytest.raises(ValueError, match=r"parameters \['bh'\] that a rnn network does not have"):
        load_model(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_parameter(tmp_path, bad):
    path, _, _ = _saved(tmp_path)
    entries = _entries(path)
    entries["param/V"][2, 1] = bad
    _write_npz(path, entries)
    with pytest.raises(ValueError, match="'V' contains NaN or infinite values"):
        load_model(path)


def test_parameter_that_is_not_numbers(tmp_path):
    path, _, _ = _saved(tmp_path)
    entries = _entries(path)
    entries["param/c"] = np.array(["x"] * entries["param/c"].size)
    _write_npz(path, entries)
    with pytest.raises(ValueError, match="'c' has dtype <U1, not floating point"):
        load_model(path)


def test_pickled_object_array_is_refused(tmp_path):
    path, _, _ = _saved(tmp_path)
    entries = _entries(path)
    entries["extra/payload"] = np.array([{"run": "code"}], dtype=object)
    _write_npz(path, entries, allow_pickle=True)
    with pytest.raises(ValueError, match="'extra/payload' holds pickled Python objects"):
        load_model(path)


def test_vocabulary_size_not_matching_input_size(tmp_path):
    path, net, _ = _saved(tmp_path)
    entries = _entries(path)
    entries["vocab/tokens"] = entries["vocab/tokens"][:-1]
    _write_npz(path, entries)
    with pytest.raises(ValueError, match=f"vocabulary has {net.input_size - 1} tokens but"):
        load_model(path)


def test_broken_vocabulary(tmp_path):
    path, _, _ = _saved(tmp_path)
    entries = _entries(path)
    tokens = entries["vocab/tokens"].copy()
    tokens[1] = tokens[0]
    entries["vocab/tokens"] = tokens
    _write_npz(path, entries)
    with pytest.raises(ValueError, match="vocabulary is invalid: tokens must be unique"):
        load_model(path)
    del entries["vocab/level"]
    _write_npz(path, entries)
    with pytest.raises(ValueError, match="vocabulary is incomplete"):
        load_model(path)


def test_bad_config(tmp_path):
    path, _, _ = _saved(tmp_path)
    entries = _entries(path)
    config = json.loads(str(entries["config"]))
    config["cell"] = "transformer"
    entries["config"] = np.array(json.dumps(config))
    _write_npz(path, entries)
    with pytest.raises(ValueError, match="network config is invalid: cell must be one of"):
        load_model(path)
    entries["config"] = np.array("{not json")
    _write_npz(path, entries)
    with pytest.raises(ValueError, match="network config is not valid JSON"):
        load_model(path)
    del entries["config"]
    _write_npz(path, entries)
    with pytest.raises(ValueError, match="no 'config' entry"):
        load_model(path)
