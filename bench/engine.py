"""Benchmark: Network.loss_and_grads + an SGD update against a straightforward per-step loop.

The reference is written the way the classic min-char-rnn writes it: one-hot column vectors,
per-step dictionaries, every product inside the time loop. Both sides run in the same process,
taking turns, so the ratio holds on any machine; each time is the best of several rounds'
medians. Run:  python bench/engine.py [--quick]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from explorer.network import Network

SHAPES = [(25, 65, 100), (100, 65, 100), (25, 65, 512), (3, 12, 4)]
BATCHES = [1, 32, 128]
LR = 1e-6  # tiny: the cost is the same, and the model does not drift over repeats


def reference_step(params, inputs, targets, hprev):
    """min-char-rnn's lossFun, then a plain SGD update: the straightforward way."""
    U, W, b, V, c = params["U"], params["W"], params["b"], params["V"], params["c"]
    vocab = U.shape[1]
    xs, hs, ps = {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0.0
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab, 1), dtype=U.dtype)
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(U, xs[t]) + np.dot(W, hs[t - 1]) + b)
        ys = np.dot(V, hs[t]) + c
        ps[t] = np.exp(ys - np.max(ys)) / np.sum(np.exp(ys - np.max(ys)))
        loss += -np.log(ps[t][targets[t], 0])
    dU, dW, dV = np.zeros_like(U), np.zeros_like(W), np.zeros_like(V)
    db, dc = np.zeros_like(b), np.zeros_like(c)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dV += np.dot(dy, hs[t].T)
        dc += dy
        dh = np.dot(V.T, dy) + dhnext
        dhraw = (1 - hs[t] * hs[t]) * dh
        db += dhraw
        dU += np.dot(dhraw, xs[t].T)
        dW += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(W.T, dhraw)
    for p, d in ((U, dU), (W, dW), (b, db), (V, dV), (c, dc)):
        p -= LR * d
    return loss


def engine_step(net, inputs, targets):
    loss, grads = net.loss_and_grads(inputs, targets)
    for name, g in grads.items():
        p = net.params[name]
        p -= LR * g
    return loss


def median_us(fn, repeats, min_time=0.2):
    """Median time of one call in µs, over at least ``repeats`` calls and ``min_time`` seconds."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6


def best_of_rounds(timings, rounds):
    """Each timing's result in µs: the best of ``rounds`` medians, the timings taking turns.

    ``timings`` holds (function, repeats, min_time) for `median_us`. A shared machine has slow
    spells (other tenants, frequency changes) that last seconds; as timeit's documentation
    advises, the fastest round is the estimate of the code's own cost, and taking turns
    spreads every timing over the same stretch of time, with the same chances of a quiet round.
    """
    times = [[] for _ in timings]
    for _ in range(rounds):
        for (fn, repeats, min_time), t in zip(timings, times, strict=True):
            t.append(median_us(fn, repeats, min_time))
    return [float(min(t)) for t in times]


def rnn_params(net):
    """The engine's parameters as min-char-rnn's column-vector arrays (copies)."""
    p = net.params
    return {"U": p["U"].copy(), "W": p["W"].copy(), "b": p["b"][:, None].copy(),
            "V": p["V"].copy(), "c": p["c"][:, None].copy()}


def run(quick=False):
    rows = []
    rounds, repeats = (3, 20) if quick else (15, 50)
    rng = np.random.default_rng(0)
    for T, V, H in SHAPES:
        for dtype in ("float64", "float32"):
            net = Network(V, H, seed=0, dtype=dtype)
            ref = rnn_params(net)
            x = rng.integers(0, V, T)
            y = rng.integers(0, V, T)
            h0 = np.zeros((H, 1), dtype=dtype)
            # The two must agree before their speed means anything.
            ref_loss = reference_step(rnn_params(net), x, y, h0)
            eng_loss = net.loss_and_grads(x, y)[0]
            assert abs(ref_loss - eng_loss) <= 1e-4 * abs(ref_loss), (ref_loss, eng_loss)
            batches = {B: (rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B)))
                       for B in BATCHES if B > 1}
            # One round times the reference, the engine on one sequence, then on each batch
            # (a batch call is long: a few repeats of it make a median).
            timings = [(lambda ref=ref, x=x, y=y, h0=h0: reference_step(ref, x, y, h0),
                        repeats, 0.05),
                       (lambda net=net, x=x, y=y: engine_step(net, x, y), repeats, 0.05)]
            timings += [(lambda net=net, xb=xb, yb=yb: engine_step(net, xb, yb), 3, 0.1)
                        for xb, yb in batches.values()]
            t_ref, t_eng, *t_batches = best_of_rounds(timings, rounds)
            ratio = t_ref / t_eng
            row = {"T": T, "V": V, "H": H, "dtype": dtype, "ref_us": t_ref, "eng_us": t_eng,
                   "ratio": ratio, "cps_1": T / (t_eng * 1e-6)}
            for B, t_b in zip(batches, t_batches, strict=True):
                row[f"cps_{B}"] = T * B / (t_b * 1e-6)
            rows.append(row)
            print(f"  T={T:4d} V={V:3d} H={H:4d} {dtype}: reference {t_ref:9.0f} µs, "
                  f"engine {t_eng:8.0f} µs, {ratio:5.2f}x, "
                  f"chars/s " + ", ".join(f"B={B}: {row[f'cps_{B}']:,.0f}" for B in BATCHES),
                  flush=True)
    return rows


def markdown(rows):
    lines = ["| T | V | H | dtype | straightforward loop (µs) | engine (µs) | speed-up | "
             "chars/s B=1 | chars/s B=32 | chars/s B=128 |",
             "|---:|---:|---:|:---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['T']} | {r['V']} | {r['H']} | {r['dtype']} | {r['ref_us']:,.0f} | "
                     f"{r['eng_us']:,.0f} | {r['ratio']:.1f}x | {r['cps_1']:,.0f} | "
                     f"{r['cps_32']:,.0f} | {r['cps_128']:,.0f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    print(f"numpy {np.__version__}, Python {platform.python_version()}, {platform.machine()}")
    rows = run(args.quick)
    print()
    print(markdown(rows))


if __name__ == "__main__":
    main()
