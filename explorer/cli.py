"""The ``rnn-explorer`` command: the window, and the train / sample / gradcheck subcommands."""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import time

import numpy as np

from . import __version__

SUBCOMMANDS = ("train", "sample", "gradcheck")


class CommandError(Exception):
    """A problem to report in one line on stderr (exit status 2)."""


def _number(kind, minimum, strict):
    """An argparse type: ``kind`` (int or float), finite, > minimum (strict) or ≥ minimum."""
    if kind is int:
        what = "a positive integer" if strict else f"an integer >= {minimum}"
    else:
        what = "a finite positive number" if strict else f"a finite number >= {minimum}"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, 0, strict=True)
_nonnegative_int = _number(int, 0, strict=False)
_positive_float = _number(float, 0.0, strict=True)
_nonnegative_float = _number(float, 0.0, strict=False)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr, like every other error."""

    def error(self, message):
        raise CommandError(f"{message} (see {self.prog} --help)")


def gui_parser():
    parser = _Parser(
        prog="rnn-explorer",
        description="Step a recurrent network through forward passes and backpropagation "
                    "through time. Without a subcommand, opens the explorer window.",
        epilog="subcommands: " + ", ".join(SUBCOMMANDS) + " (rnn-explorer SUBCOMMAND --help)")
    parser.add_argument("--version", action="version", version=f"rnn-explorer {__version__}")
    parser.add_argument("--preset", default=None, help="the lesson to open (see --list-presets)")
    parser.add_argument("--list-presets", action="store_true",
                        help="print the presets, one per line, and exit")
    parser.add_argument("--steps", type=_nonnegative_int, default=0,
                        help="perform this many steps of the cycle after opening")
    parser.add_argument("--screenshot", metavar="FILE.png", default=None,
                        help="build the window offscreen, perform --steps, save it as a PNG "
                             "and exit")
    return parser


def command_parser():
    parser = _Parser(prog="rnn-explorer")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model on a text file or a preset's text")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", metavar="FILE", help="a UTF-8 text file")
    source.add_argument("--preset", metavar="NAME", help="a preset (see --list-presets)")
    train.add_argument("--level", choices=("char", "word"), default=None)
    train.add_argument("--window", type=_positive_int, default=None, help="steps per window")
    train.add_argument("--cell", choices=("rnn", "lstm", "gru"), default=None)
    train.add_argument("--hidden", type=_positive_int, default=None, help="hidden units")
    train.add_argument("--activation", choices=("tanh", "relu", "identity", "sigmoid"),
                       default=None)
    train.add_argument("--optimizer", choices=("sgd", "momentum", "adagrad", "rmsprop", "adam"),
                       default=None)
    train.add_argument("--lr", type=_positive_float, default=None, help="learning rate")
    train.add_argument("--clip-norm", type=_positive_float, default=None)
    train.add_argument("--truncate", type=_nonnegative_int, default=None,
                       help="truncated BPTT: steps each loss reaches back (default: full)")
    train.add_argument("--batch-size", type=_positive_int, default=None)
    length = train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive_int, default=None)
    length.add_argument("--iterations", type=_positive_int, default=None)
    train.add_argument("--seed", type=_nonnegative_int, default=None)
    train.add_argument("--save", metavar="MODEL.npz", required=True,
                       help="where to write the trained model")

    sample = sub.add_parser("sample", help="generate text from a saved model")
    sample.add_argument("--model", metavar="MODEL.npz", required=True)
    sample.add_argument("--length", type=_positive_int, default=200)
    sample.add_argument("--temperature", type=_nonnegative_float, default=1.0,
                        help="0 picks the most probable token; higher is more random")
    sample.add_argument("--prime", default="", help="text to start from")
    sample.add_argument("--seed", type=_nonnegative_int, default=None)

    check = sub.add_parser("gradcheck", help="compare BPTT with finite differences")
    what = check.add_mutually_exclusive_group()
    what.add_argument("--preset", metavar="NAME", default=None)
    what.add_argument("--model", metavar="MODEL.npz", default=None)
    check.add_argument("--max-checks", type=_positive_int, default=None,
                       help="entries checked per parameter (default: all, or 30 for big ones)")
    check.add_argument("--truncate", type=_nonnegative_int, default=None)
    return parser


# --------------------------------------------------------------------- train


def _train_setup(args):
    from .data import load_text
    from .presets import Preset, build, get_preset

    if args.preset is not None:
        base = get_preset(args.preset)
    else:
        base = Preset("text", "a text file", text=load_text(args.text), window=25, hidden=100,
                      optimizer="adagrad", lr=0.1)
    changes = {k: v for k, v in {
        "level": args.level, "window": args.window, "cell": args.cell, "hidden": args.hidden,
        "activation": args.activation, "optimizer": args.optimizer, "lr": args.lr,
        "clip_norm": args.clip_norm, "truncate": args.truncate, "batch_size": args.batch_size,
        "seed": args.seed}.items() if v is not None}
    preset = base.with_changes(**changes)
    if preset.cell != "rnn" and args.activation is None:
        preset = preset.with_changes(activation="tanh")
    return preset, build(preset)


def _format_eta(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """A one-line progress bar on stderr (a line per 10% when stderr is not a terminal)."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.last_tenth = -1

    def __call__(self, p):
        frac = p.iteration / p.total
        if not self.tty:
            tenth = int(frac * 10)
            if tenth == self.last_tenth:
                return
            self.last_tenth = tenth
        bar = "#" * int(frac * 30)
        line = (f"[{bar:<30}] {p.iteration}/{p.total}  loss {p.loss:.4f} "
                f"(smooth {p.smooth_loss:.4f})  {p.chars_per_second:,.0f} chars/s  "
                f"ETA {_format_eta(p.eta_seconds)}")
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write("\n")


def cmd_train(args):
    from .io import save_model
    from .sampling import sample

    preset, (vocab, net, ctl) = _train_setup(args)
    if args.iterations is not None:
        amount = {"iterations": args.iterations}
    elif args.epochs is not None:
        amount = {"epochs": args.epochs}
    else:
        amount = {"iterations": preset.train_iterations}
    print(f"training {net.description()} on {ctl.n_windows} windows of {ctl.T} "
          f"{'words' if vocab.level == 'word' else 'characters'} "
          f"({preset.optimizer}, lr {preset.lr:g}"
          + (f", truncate {preset.truncate}" if preset.truncate is not None else "") + ")",
          file=sys.stderr)
    bar = ProgressBar()
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        result = ctl.train(batch_size=preset.batch_size, on_progress=bar, **amount)
    bar.close()
    elapsed = time.perf_counter() - start
    if result.diverged:
        print(f"rnn-explorer: warning: {result.message}", file=sys.stderr)
    save_model(args.save, net, vocab, extra={"preset": preset.name,
                                             "iterations": result.iterations})
    first, last = (result.losses[0], result.losses[-1]) if result.losses else (math.nan,) * 2
    print(f"loss per window {first:.4f} -> {last:.4f} after {result.iterations} iterations "
          f"in {elapsed:.1f} s; saved {args.save}")
    if vocab.level == "char":
        print("sample: " + repr(sample(net, vocab, 80, temperature=0.5, seed=0)))
    return 1 if result.diverged else 0


def cmd_sample(args):
    from .io import load_model
    from .sampling import sample

    net, vocab, _ = load_model(args.model)
    if vocab is None:
        raise CommandError(f"{args.model} has no vocabulary: it cannot turn tokens into text")
    text = sample(net, vocab, args.length, temperature=args.temperature, prime=args.prime,
                  seed=args.seed)
    sys.stdout.write(args.prime + text + ("" if text.endswith("\n") else "\n"))
    return 0


def cmd_gradcheck(args):
    from .gradcheck import gradcheck
    from .io import load_model
    from .presets import DEFAULT_PRESET, build

    if args.model is not None:
        net, vocab, _ = load_model(args.model)
        from .network import Network
        if net.dtype != np.float64:
            cfg = net.config()
            cfg["dtype"] = "float64"
            net64 = Network(**cfg)
            for k, v in net.params.items():
                net64.params[k][...] = v
            net = net64
        rng = np.random.default_rng(0)
        T = 8
        inputs = rng.integers(0, net.input_size, T)
        targets = rng.integers(0, net.output_size, T)
        label = args.model
    else:
        name = args.preset or DEFAULT_PRESET
        _, net, ctl = build(name)
        inputs, targets = ctl.inputs, ctl.targets
        label = f"preset {name}"
    size = max(v.size for v in net.params.values())
    max_checks = args.max_checks or (None if size <= 400 else 30)
    results = gradcheck(net, inputs, targets, truncate=args.truncate, max_checks=max_checks)
    print(f"gradient check of {label}: {net.description()}, T = {len(inputs)}, "
          f"truncate = {args.truncate}")
    print(format_gradcheck(results, net))
    failed = [r.name for r in results.values() if not r.passed()]
    if failed:
        print(f"FAILED: {', '.join(failed)} (relative error >= 1e-6)")
        return 1
    print("all parameters pass: relative error < 1e-6, or for gradients too small to resolve, "
          "an absolute error within the round-off of the finite differences "
          f"({next(iter(results.values())).noise:.1e})")
    return 0


def verdict(check):
    """'pass', 'pass (round-off)' or 'FAIL' for one parameter's check."""
    if not check.passed():
        return "FAIL"
    return "pass (round-off)" if check.within_round_off else "pass"


def format_gradcheck(results, net):
    """The per-parameter table of a gradient check, as text."""
    lines = [f"{'param':<6} {'shape':>10} {'checked':>8} {'max rel. error':>15} "
             f"{'at':>10} {'analytic':>13} {'numerical':>13}  result"]
    for r in results.values():
        shape = "×".join(str(n) for n in net.params[r.name].shape)
        at = ",".join(str(i) for i in r.index)
        lines.append(f"{r.name:<6} {shape:>10} {r.checked:>8} {r.max_rel_error:>15.2e} "
                     f"{at:>10} {r.analytic:>13.6g} {r.numerical:>13.6g}  "
                     f"{verdict(r)}")
    return "\n".join(lines)


# --------------------------------------------------------------------- the window


def run_gui(args):
    from .presets import DEFAULT_PRESET, PRESETS, get_preset

    if args.list_presets:
        for name, preset in PRESETS.items():
            print(f"{name}\t{preset.description}")
        return 0
    get_preset(args.preset or DEFAULT_PRESET)       # a clear error before Qt starts
    # The engine never depends on the front end: the window is looked up only when asked for.
    try:
        gui_main = importlib.import_module("ui.app").main
    except ImportError as exc:
        raise CommandError(f"the window cannot start: {exc}. Install the project with its "
                           "dependencies (pip install .)") from None
    return gui_main(preset=args.preset or DEFAULT_PRESET, steps=args.steps,
                    screenshot=args.screenshot)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            args = command_parser().parse_args(argv)
            return {"train": cmd_train, "sample": cmd_sample,
                    "gradcheck": cmd_gradcheck}[args.command](args)
        return run_gui(gui_parser().parse_args(argv))
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): nothing more to say, and nothing to complain of.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, CommandError, OSError) as exc:
        print(f"rnn-explorer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnn-explorer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
