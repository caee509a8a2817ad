"""The command line, run as a user runs it: train, sample, gradcheck, presets, and bad input."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.io import load_model, save_model
from explorer.network import Network
from explorer.presets import PRESETS

ROOT = Path(__file__).resolve().parent.parent


def run(args, cwd, timeout=60):
    """``python -m explorer ARGS`` in cwd, importable without installing the project."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "explorer", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def hello_model(workdir):
    """A model trained on the hello preset by the command line."""
    proc = run(["train", "--preset", "hello", "--iterations", "300", "--save", "hello.npz"],
               workdir)
    assert proc.returncode == 0, proc.stderr
    return workdir / "hello.npz", proc


# --------------------------------------------------------------------- what works


def test_train_on_a_preset_saves_a_model(hello_model):
    path, proc = hello_model
    assert path.is_file()
    assert "Traceback" not in proc.stderr
    assert "saved hello.npz" in proc.stdout
    assert "300/300" in proc.stderr                    # the progress bar reached the end
    net, vocab, extra = load_model(path)
    assert sorted(vocab.tokens) == ["e", "h", "l", "o"]
    assert (net.cell, net.hidden_size, net.input_size) == ("rnn", 8, 4)
    assert extra["preset"] == "hello" and extra["iterations"] == 300


def test_sample_at_temperature_zero_reproduces_hello(hello_model, workdir):
    path, _ = hello_model
    proc = run(["sample", "--model", str(path), "--prime", "h", "--length", "4",
                "--temperature", "0"], workdir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello\n"
    assert proc.stderr == ""


def test_train_on_a_text_file_then_sample(workdir):
    (workdir / "song.txt").write_text("la la lo, la la li. " * 30, encoding="utf-8")
    proc = run(["train", "--text", "song.txt", "--window", "20", "--hidden", "24",
                "--iterations", "60", "--seed", "3", "--optimizer", "adam", "--lr", "0.01",
                "--save", "song.npz"], workdir)
    assert proc.returncode == 0, proc.stderr
    assert "loss per window" in proc.stdout and "after 60 iterations" in proc.stdout
    first, last = (float(v) for v in
                   proc.stdout.split("loss per window ")[1].split(" after")[0].split(" -> "))
    assert last < first
    net, vocab, _ = load_model(workdir / "song.npz")
    assert sorted(vocab.tokens) == sorted(set("la la lo, la la li. "))
    assert net.hidden_size == 24
    proc = run(["sample", "--model", "song.npz", "--prime", "la", "--length", "30",
                "--seed", "1"], workdir)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.rstrip("\n")
    assert out.startswith("la") and len(out) == 32
    assert set(out) <= set(vocab.tokens)
    # the same seed gives the same text
    again = run(["sample", "--model", "song.npz", "--prime", "la", "--length", "30",
                 "--seed", "1"], workdir)
    assert again.stdout == proc.stdout


def test_gradcheck_prints_a_passing_table(workdir):
    proc = run(["gradcheck", "--preset", "gradient-check"], workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines if line.split()
            and line.split()[0] in ("U", "W", "b", "V", "c")}
    assert set(rows) == {"U", "W", "b", "V", "c"}
    assert all(row.rstrip().endswith("pass") for row in rows.values())
    assert "FAIL" not in proc.stdout
    assert any(line.startswith("param") for line in lines)


def test_gradcheck_of_a_saved_model(hello_model, workdir):
    path, _ = hello_model
    proc = run(["gradcheck", "--model", str(path), "--truncate", "2"], workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "truncate = 2" in proc.stdout and "FAIL" not in proc.stdout


def test_list_presets_prints_one_line_per_preset(workdir):
    proc = run(["--list-presets"], workdir)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(PRESETS)
    for line, (name, preset) in zip(lines, PRESETS.items(), strict=True):
        assert line == f"{name}\t{preset.description}"


# --------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bad_files(workdir, hello_model):
    (workdir / "empty.txt").write_bytes(b"")
    (workdir / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (workdir / "short.txt").write_text("hello", encoding="utf-8")
    (workdir / "corrupt.npz").write_bytes(b"this is not a model at all\n" * 10)
    good = hello_model[0].read_bytes()
    (workdir / "truncated.npz").write_bytes(good[:len(good) // 2])
    net = Network(4, 3, seed=0)
    save_model(workdir / "novocab.npz", net)
    return workdir


BAD = {
    "missing file": ["train", "--text", "missing.txt", "--save", "out.npz"],
    "empty file": ["train", "--text", "empty.txt", "--save", "out.npz"],
    "binary file": ["train", "--text", "binary.bin", "--save", "out.npz"],
    "a folder": ["train", "--text", ".", "--save", "out.npz"],
    "window longer than the text": ["train", "--text", "short.txt", "--window", "50",
                                    "--save", "out.npz"],
    "hidden 0": ["train", "--preset", "hello", "--hidden", "0", "--save", "out.npz"],
    "lr nan": ["train", "--preset", "hello", "--lr", "nan", "--save", "out.npz"],
    "lr -1": ["train", "--preset", "hello", "--lr", "-1", "--save", "out.npz"],
    "unknown preset": ["train", "--preset", "no-such-lesson", "--save", "out.npz"],
    "unknown preset, window": ["--preset", "no-such-lesson"],
    "unknown preset, gradcheck": ["gradcheck", "--preset", "no-such-lesson"],
    "corrupt model file": ["sample", "--model", "corrupt.npz"],
    "truncated model file": ["sample", "--model", "truncated.npz"],
    "missing model file": ["sample", "--model", "nowhere.npz"],
    "model without vocabulary": ["sample", "--model", "novocab.npz"],
    "temperature -1": ["sample", "--model", "hello.npz", "--temperature", "-1"],
    "prime outside the vocabulary": ["sample", "--model", "hello.npz", "--prime", "xyz"],
    "unknown subcommand option": ["train", "--preset", "hello", "--bogus", "--save", "out.npz"],
    "unknown option": ["--bogus"],
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gives_one_clear_line(case, bad_files):
    proc = run(BAD[case], bad_files)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"{case}: stderr has {len(lines)} lines:\n{proc.stderr}"
    assert "error" in lines[0]
    assert proc.stdout == ""
    assert not (bad_files / "out.npz").exists()
