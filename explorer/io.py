"""Save a network (with its vocabulary) to an .npz file and load it back, safely and atomically.

File layout (every entry a plain NumPy array, so ``np.load(path, allow_pickle=False)`` reads it):

==================  =====================================================================
format              0-d str, ``FORMAT_NAME``: marks the file as an RNN Explorer model
format_version      0-d int, ``FORMAT_VERSION``; files from newer versions are refused
config              0-d str, ``net.config()`` as JSON: ``Network(**config)`` rebuilds it
param/<name>        one array per parameter (U, W, b, V, c, and bh for the GRU), net.dtype
vocab/tokens        (optional) 1-D str array, the tokens in id order
vocab/level         (optional) 0-d str, "char" or "word"
extra               (optional) 0-d str, the JSON-serialisable values of ``extra`` as JSON
extra/<key>         (optional) the NumPy-array values of ``extra``, one entry each
==================  =====================================================================

No entry is ever a pickled Python object: loading a pickle can run arbitrary code.
"""

from __future__ import annotations

import json
import os
import secrets
import struct
import zipfile
import zlib

import numpy as np

from .data import Vocabulary
from .network import Network

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load_model", "save_model"]

FORMAT_NAME = "rnn-explorer-model"
FORMAT_VERSION = 1

_PARAM = "param/"
_EXTRA = "extra/"


# ---------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------


def _json_default(value):
    # NumPy scalars (np.int64, np.float32, np.bool_) are common in training statistics.
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _extra_entries(extra) -> dict[str, np.ndarray]:
    if extra is None:
        return {}
    if not isinstance(extra, dict):
        raise ValueError(f"extra must be a dict (or None), got {type(extra).__name__}")
    entries, plain = {}, {}
    for key, value in extra.items():
        if not isinstance(key, str) or key == "":
            raise ValueError(f"extra keys must be non-empty strings, got {key!r}")
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise ValueError(
                    f"extra[{key!r}] is an object array, which could only be stored by pickling; "
                    "convert it to numbers or strings"
                )
            entries[_EXTRA + key] = value
        else:
            plain[key] = value
    if plain:
        try:
            text = json.dumps(plain, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                "extra values must be NumPy arrays or JSON-serialisable (numbers, strings, "
                f"bools, None, lists and dicts of them): {exc}"
            ) from None
        entries["extra"] = np.array(text)
    return entries


def _vocab_entries(vocab, net) -> dict[str, np.ndarray]:
    if vocab is None:
        return {}
    if not isinstance(vocab, Vocabulary):
        raise ValueError(f"vocab must be a Vocabulary or None, got {type(vocab).__name__}")
    if len(vocab) != net.input_size:
        raise ValueError(
            f"vocab has {len(vocab)} tokens but the network's input_size is {net.input_size}; "
            "save the vocabulary the network was built for"
        )
    # NumPy's fixed-width strings drop trailing NUL characters, so a token such as "\0" would
    # not come back; refuse now rather than write a file that cannot be loaded.
    if any(token.endswith("\x00") for token in vocab.tokens):
        raise ValueError(
            "vocab has a token ending in a NUL character ('\\x00'), which an .npz file cannot "
            "store; remove NUL characters from the text and rebuild the vocabulary"
        )
    arrays = vocab.to_arrays()
    return {"vocab/tokens": arrays["tokens"], "vocab/level": arrays["level"]}


def _write_atomically(path: str, entries: dict[str, np.ndarray]) -> None:
    directory, name = os.path.split(os.path.abspath(path))
    # A hidden temporary file in the same directory, so os.replace is an atomic rename on the
    # same file system: readers see either the old file or the complete new one, never half.
    tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    created = False
    try:
        # Write to an open file object: np.savez appends ".npz" to file names it is given.
        with open(tmp, "xb") as f:
            created = True
            np.savez(f, allow_pickle=False, **entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if created:
            try:
                os.remove(tmp)
            except OSError:
                pass
        raise


def save_model(path, net: Network, vocab: Vocabulary | None = None, extra: dict | None = None):
    """Write ``net`` (and ``vocab``, ``extra``) to the .npz file ``path``, replacing it atomically.

    ``path`` is used exactly as given (no ".npz" is appended). ``extra`` holds anything else worth
    keeping with the model, e.g. ``{"iteration": 1200, "losses": np.array([...])}``: NumPy-array
    values are stored as arrays, every other value must be JSON-serialisable (tuples come back as
    lists). If writing fails, an existing file at ``path`` is left untouched.
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise ValueError(f"path must be a str or path-like, got {type(path).__name__}") from None
    if not isinstance(path, str):
        path = os.fsdecode(path)
    if not isinstance(net, Network):
        raise ValueError(f"net must be a Network, got {type(net).__name__}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"cannot save to {path!r}: the folder {directory!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"cannot save to {path!r}: it is a folder; give a file name")

    entries = {
        "format": np.array(FORMAT_NAME),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "config": np.array(json.dumps(net.config(), sort_keys=True)),
    }
    for name, value in net.params.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(
                f"net.params[{name!r}] contains NaN or infinite values (training diverged); "
                "such a model cannot be loaded again — lower the learning rate or clip gradients "
                "and retrain, or restore an earlier state before saving"
            )
        entries[_PARAM + name] = value
    entries.update(_vocab_entries(vocab, net))
    entries.update(_extra_entries(extra))
    _write_atomically(path, entries)


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

# What a damaged, truncated or foreign file can raise while NumPy reads it.
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    struct.error,
    # zipfile raises these for damaged headers that claim encryption or unknown compression.
    NotImplementedError,
    RuntimeError,
)


def _read_entries(path: str) -> dict[str, np.ndarray]:
    """Every array in the file, or a ValueError explaining why the file cannot be read."""
    if not os.path.exists(path):
        raise ValueError(f"cannot load {path!r}: no such file; check the path")
    if os.path.isdir(path):
        raise ValueError(f"cannot load {path!r}: it is a folder; choose a saved model file")
    damaged = (
        f"cannot load {path!r}: it is not a valid .npz file, or it is damaged or incomplete "
        "(e.g. a copy that did not finish); choose another file or save the model again"
    )
    try:
        f = open(path, "rb")  # closed by the with block below
    except OSError as exc:
        raise ValueError(f"cannot load {path!r}: {exc.strerror or exc}") from None
    with f:
        if os.fstat(f.fileno()).st_size == 0:
            raise ValueError(f"cannot load {path!r}: the file is empty; save the model again")
        try:
            data = np.load(f, allow_pickle=False)
        except ValueError as exc:
            if "pickle" not in str(exc):
                raise ValueError(f"{damaged} ({type(exc).__name__}: {exc})") from None
            # NumPy falls back to "maybe a pickle" for any bytes it does not recognise; its
            # advice to allow pickles is wrong here, so it is not passed on.
            raise ValueError(
                f"cannot load {path!r}: it is not an .npz file (neither a zip archive of NumPy "
                "arrays nor NumPy data); choose a file written by save_model"
            ) from None
        except _READ_ERRORS as exc:
            raise ValueError(f"{damaged} ({type(exc).__name__}: {exc})") from None
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(
                f"cannot load {path!r}: it holds a single NumPy array (.npy data), not a saved "
                "model; choose a file written by save_model"
            )
        with data:
            entries = {}
            for key in data.files:
                try:
                    entries[key] = data[key]
                except ValueError as exc:
                    if "pickle" in str(exc):
                        raise ValueError(
                            f"cannot load {path!r}: entry {key!r} holds pickled Python objects, "
                            "which are never loaded because they could run arbitrary code; "
                            "this is not a model saved by RNN Explorer"
                        ) from None
                    raise ValueError(f"{damaged} ({type(exc).__name__}: {exc})") from None
                except _READ_ERRORS as exc:
                    raise ValueError(f"{damaged} ({type(exc).__name__}: {exc})") from None
    return entries


def _text(entries, key, path) -> str:
    value = entries[key]
    if value.ndim != 0 or value.dtype.kind != "U":
        raise ValueError(
            f"cannot load {path!r}: entry {key!r} should be a text string but is an array of "
            f"shape {value.shape} and dtype {value.dtype}; the file is damaged"
        )
    return str(value)


def _json_object(entries, key, path, what) -> dict:
    """Entry ``key`` read as a JSON object; ``what`` names it in the error ("its network
    config")."""
    try:
        value = json.loads(_text(entries, key, path))
    except json.JSONDecodeError as exc:
        raise ValueError(f"cannot load {path!r}: {what} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"cannot load {path!r}: {what} is not a JSON object")
    return value


def _check_format(entries, path) -> None:
    marker = entries.get("format")
    if marker is None or marker.ndim != 0 or marker.dtype.kind != "U" or str(marker) != FORMAT_NAME:
        raise ValueError(
            f"cannot load {path!r}: it is not an RNN Explorer model (it has no 'format' entry "
            f"saying {FORMAT_NAME!r}); choose a file written by save_model"
        )
    version = entries.get("format_version")
    if version is None or version.ndim != 0 or version.dtype.kind not in "iu" or version < 1:
        raise ValueError(
            f"cannot load {path!r}: its 'format_version' entry is missing or not a positive "
            "integer; the file is damaged — save the model again"
        )
    if int(version) > FORMAT_VERSION:
        raise ValueError(
            f"cannot load {path!r}: it was saved by a newer RNN Explorer (model format version "
            f"{int(version)}; this version reads up to {FORMAT_VERSION}); update RNN Explorer "
            "to open it"
        )


def _build_network(entries, path) -> Network:
    if "config" not in entries:
        raise ValueError(
            f"cannot load {path!r}: it has no 'config' entry describing the network; the file is "
            "incomplete — save the model again"
        )
    config = _json_object(entries, "config", path, "its network config")
    try:
        net = Network(**config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot load {path!r}: its network config is invalid: {exc}") from None

    shapes = {name: p.shape for name, p in net.params.items()}
    stored = {k[len(_PARAM) :] for k in entries if k.startswith(_PARAM)}
    unexpected = sorted(stored - set(shapes))
    if unexpected:
        raise ValueError(
            f"cannot load {path!r}: it has parameters {unexpected} that a {net.cell} network "
            f"does not have (expected {', '.join(shapes)}); the parameters do not match the config"
        )
    for name, shape in shapes.items():
        key = _PARAM + name
        if key not in entries:
            raise ValueError(
                f"cannot load {path!r}: parameter {name!r} is missing (a {net.cell} network has "
                f"{', '.join(shapes)}); the file is incomplete — save the model again"
            )
        value = entries[key]
        if value.dtype.kind != "f":
            raise ValueError(
                f"cannot load {path!r}: parameter {name!r} has dtype {value.dtype}, not floating "
                "point numbers; the file is damaged"
            )
        if value.shape != shape:
            raise ValueError(
                f"cannot load {path!r}: parameter {name!r} has shape {value.shape}, but the "
                f"network config (input_size={net.input_size}, hidden_size={net.hidden_size}, "
                f"output_size={net.output_size}, cell={net.cell!r}) needs {shape}; the "
                "parameters and config are mismatched"
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(
                f"cannot load {path!r}: parameter {name!r} contains NaN or infinite values; "
                "the model diverged — load an earlier save or retrain"
            )
    # Copy into the network's own arrays (not replace them), which keeps them live.
    for name in shapes:
        np.copyto(net.params[name], entries[_PARAM + name], casting="same_kind")
    return net


def _build_vocab(entries, path, net) -> Vocabulary | None:
    has_tokens, has_level = "vocab/tokens" in entries, "vocab/level" in entries
    if not has_tokens and not has_level:
        return None
    if has_tokens != has_level:
        missing = "vocab/level" if has_tokens else "vocab/tokens"
        raise ValueError(
            f"cannot load {path!r}: its vocabulary is incomplete ({missing!r} is missing); "
            "save the model again"
        )
    try:
        vocab = Vocabulary.from_arrays(entries["vocab/tokens"], entries["vocab/level"])
    except ValueError as exc:
        raise ValueError(f"cannot load {path!r}: its vocabulary is invalid: {exc}") from None
    if len(vocab) != net.input_size:
        raise ValueError(
            f"cannot load {path!r}: its vocabulary has {len(vocab)} tokens but the network's "
            f"input_size is {net.input_size}; the vocabulary does not belong to this network"
        )
    return vocab


def _build_extra(entries, path) -> dict:
    extra = {}
    if "extra" in entries:
        extra = _json_object(entries, "extra", path, "its 'extra' entry")
    for key, value in entries.items():
        if key.startswith(_EXTRA):
            extra[key[len(_EXTRA) :]] = value
    return extra


def load_model(path) -> tuple[Network, Vocabulary | None, dict]:
    """Load a file written by ``save_model``: returns ``(net, vocab or None, extra)``.

    ``extra`` is a dict (empty if nothing extra was saved). Any problem with the file — missing,
    not an .npz, damaged or truncated, not an RNN Explorer model, from a newer version,
    parameters missing, of the wrong shape or not finite, a vocabulary that does not fit the
    network — raises ValueError saying what is wrong and what to do. Nothing is unpickled.
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise ValueError(f"path must be a str or path-like, got {type(path).__name__}") from None
    if not isinstance(path, str):
        path = os.fsdecode(path)
    entries = _read_entries(path)
    _check_format(entries, path)
    net = _build_network(entries, path)
    vocab = _build_vocab(entries, path, net)
    extra = _build_extra(entries, path)
    return net, vocab, extra
