"""Time one training epoch of an MLP on the CPU: nnumpy's backends side by side
with PyTorch (eager, tensors in memory), scikit-learn and the GEMM floor.

    python benchmarks/epoch_time.py --torch --sklearn --batch 64 1024 --json out.json --plot out.png

An epoch is one pass over the training set (60,000 MNIST images by default)
in shuffled mini-batches, written the way a user writes the loop:

    opt.zero_grad(); crit(model(x), y); model.backward(crit.backward()); opt.step()

(PyTorch: ``opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()``),
plain SGD, cross-entropy, the same initial weights and the same batch order
for every contender.  The input needs no gradient in either framework.

How the figures are made trustworthy on a noisy machine: every contender
runs one warm-up epoch that is not counted; then ``--repeats`` rounds each
time every contender once, in a rotating order, so that drift of the
machine hits all of them alike; each row gives the median, min and max, and
the ratios to PyTorch and to the GEMM floor are medians of the per-round
ratios (paired, so they survive drift).  The GEMM floor is the time of the
epoch's matrix products alone (forward, dW and dx of every layer but the
first, at the same shapes and dtype), measured in the same rounds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import nnumpy as nnp  # noqa: E402

DEFAULT_ARCHS = ["784-100-10", "784-300-100-10", "784-100-200-50-10", "784-800-10"]


def nnumpy_contender(backend_name, arch, bs, dtype, x, y, lr):
    with nnp.backend.use(backend_name):
        model = nnp.MLP(arch, dtype=dtype, rng=0, input_grad=False)
    opt = nnp.optim.SGD(model.parameters(), lr=lr)
    crit = nnp.CrossEntropyLoss()

    def epoch(perm):
        with nnp.backend.use(backend_name):
            for s in range(0, len(perm), bs):
                idx = perm[s:s + bs]
                xb, yb = x[idx], y[idx]
                opt.zero_grad()
                crit(model(xb), yb)
                model.backward(crit.backward())
                opt.step()
    return epoch


def torch_contender(arch, bs, dtype, x, y, lr):
    import torch
    from nnumpy.interop import to_torch
    model = to_torch(nnp.MLP(arch, dtype=dtype, rng=0))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def epoch(perm):
        pt = torch.from_numpy(perm)
        for s in range(0, len(perm), bs):
            idx = pt[s:s + bs]
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return epoch


def sklearn_contender(arch, bs, dtype, x, y, lr):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=tuple(arch[1:-1]), activation="relu", solver="sgd", alpha=0.0,
                        batch_size=bs, learning_rate_init=lr, momentum=0.0, nesterovs_momentum=False,
                        shuffle=True, random_state=0)
    classes = np.arange(arch[-1])

    def epoch(perm):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.partial_fit(x, y, classes=classes)      # one epoch, shuffled by scikit-learn
    return epoch


def gemm_contender(arch, bs, dtype, n):
    """The epoch's matrix products alone, into preallocated outputs."""
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((o, i)).astype(dtype) for i, o in zip(arch[:-1], arch[1:])]
    dWs = [np.empty_like(W) for W in Ws]
    sizes = [bs] * (n // bs) + ([n % bs] if n % bs else [])
    bufs = {}
    for m in set(sizes):
        acts = [rng.random((m, s)).astype(dtype) for s in arch]
        grads = [rng.standard_normal((m, s)).astype(dtype) for s in arch]
        bufs[m] = (acts, grads)

    def epoch(perm):
        for m in sizes:
            acts, grads = bufs[m]
            for i, W in enumerate(Ws):
                np.matmul(acts[i], W.T, out=acts[i + 1])                 # forward
            for i in range(len(Ws) - 1, -1, -1):
                np.matmul(grads[i + 1].T, acts[i], out=dWs[i])           # dW = dy.T @ x
                if i > 0:
                    np.matmul(grads[i + 1], Ws[i], out=grads[i])         # dx = dy @ W
    return epoch


def run_config(arch, bs, dtype, args, x, y):
    x = x.astype(dtype, copy=False)
    contenders = {}
    for b in args.backend:
        contenders[f"nnumpy-{b}"] = nnumpy_contender(b, arch, bs, dtype, x, y, args.lr)
    notes = []
    if args.torch:
        try:
            contenders["torch"] = torch_contender(arch, bs, dtype, x, y, args.lr)
        except ImportError:
            notes.append("PyTorch skipped: not installed (pip install torch)")
    if args.sklearn:
        try:
            contenders["sklearn"] = sklearn_contender(arch, bs, dtype, x, y, args.lr)
        except ImportError:
            notes.append("scikit-learn skipped: not installed (pip install scikit-learn)")
    contenders["gemm"] = gemm_contender(arch, bs, dtype, len(x))
    rng = np.random.default_rng(1)
    names = list(contenders)
    times = {k: [] for k in names}
    warm = rng.permutation(len(x))
    for k in names:                                    # warm-up, not counted
        contenders[k](warm)
    for r in range(args.repeats):
        perm = rng.permutation(len(x))
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            times[k].append(common.timed(lambda k=k: contenders[k](perm)))
    rows = []
    for k in names:
        row = {"arch": "-".join(map(str, arch)), "batch": bs, "dtype": np.dtype(dtype).name, "contender": k,
               **common.summarize(times[k])}
        for ref in ("torch", "gemm"):
            if ref in times and k != ref:
                ratios = [a / b for a, b in zip(times[k], times[ref])]         # one per round
                row[f"x_{ref}"] = statistics.median(ratios)
                row[f"x_{ref}_range"] = [min(ratios), max(ratios)]
        rows.append(row)
    return rows, notes


def print_rows(rows):
    head = (f"{'arch':<19}{'batch':>6} {'dtype':<8}{'contender':<14}{'median':>9}{'min':>9}{'max':>9}"
            f"{'x torch':>9}{'x GEMM':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        xt = f"{r['x_torch']:.2f}" if "x_torch" in r else "-"
        xg = f"{r['x_gemm']:.2f}" if "x_gemm" in r else "-"
        print(f"{r['arch']:<19}{r['batch']:>6} {r['dtype']:<8}{r['contender']:<14}"
              f"{r['median'] * 1e3:>7.0f}ms{r['min'] * 1e3:>7.0f}ms{r['max'] * 1e3:>7.0f}ms{xt:>9}{xg:>8}")


def ratio(row, ref):
    """The median of the per-round ratios to ``ref``, with their range: "0.55 (0.52-0.60)"."""
    if not row or f"x_{ref}" not in row:
        return "-"
    lo, hi = row.get(f"x_{ref}_range", (row[f"x_{ref}"],) * 2)
    return f"{row[f'x_{ref}']:.2f} ({lo:.2f}-{hi:.2f})"


def markdown(rows):
    """The nnumpy rows as a Markdown table (what the README shows): medians of
    the epoch times; ratios as the median of per-round ratios (range)."""
    ref = {(r["arch"], r["batch"], r["dtype"]): r for r in rows}
    out = ["| architecture | batch | nnumpy numba | nnumpy numpy | PyTorch | scikit-learn | GEMMs alone "
           "| numba / PyTorch | numba / GEMMs |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def ms(key, name):
        r = next((r for r in rows if (r["arch"], r["batch"], r["dtype"]) == key and r["contender"] == name), None)
        return (f"{r['median'] * 1e3:.0f} ms", r) if r else ("-", None)

    for key in ref:
        nb, r_nb = ms(key, "nnumpy-numba")
        cells = [nb, ms(key, "nnumpy-numpy")[0], ms(key, "torch")[0], ms(key, "sklearn")[0], ms(key, "gemm")[0]]
        out.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells)
                   + f" | {ratio(r_nb, 'torch')} | {ratio(r_nb, 'gemm')} |")
    return "\n".join(out)


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    configs = list(dict.fromkeys((r["arch"], r["batch"], r["dtype"]) for r in rows))
    names = list(dict.fromkeys(r["contender"] for r in rows))
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(configs)), 4.5))
    for j, name in enumerate(names):
        xs, med, lo, hi = [], [], [], []
        for i, c in enumerate(configs):
            r = next((r for r in rows if (r["arch"], r["batch"], r["dtype"]) == c and r["contender"] == name), None)
            if r:
                xs.append(i + (j - (len(names) - 1) / 2) * width)
                med.append(r["median"] * 1e3)
                lo.append((r["median"] - r["min"]) * 1e3)
                hi.append((r["max"] - r["median"]) * 1e3)
        ax.bar(xs, med, width, yerr=[lo, hi], capsize=2, label=name)
    ax.set_xticks(range(len(configs)))
    ax.set_xticklabels([f"{a}\nbatch {b}, {d}" for a, b, d in configs], fontsize=8)
    ax.set_ylabel("epoch time (ms), median with min-max")
    ax.set_title("One training epoch on the CPU (lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"# wrote {path}", file=sys.stderr)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", nargs="+", default=DEFAULT_ARCHS, help="layer sizes, e.g. 784-100-10")
    p.add_argument("--batch", nargs="+", type=int, default=[64])
    p.add_argument("--backend", nargs="+", default=list(nnp.backend.available_backends()),
                   choices=list(nnp.backend.BACKENDS))
    p.add_argument("--dtype", nargs="+", default=["float32"], choices=["float32", "float64"])
    p.add_argument("--torch", action="store_true", help="time PyTorch (CPU, eager) too")
    p.add_argument("--sklearn", action="store_true", help="time scikit-learn's MLPClassifier too")
    p.add_argument("--repeats", type=int, default=5, help="timed epochs per contender (at least 3)")
    p.add_argument("--samples", type=int, default=60000, help="training samples per epoch")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--data-root", help="folder with the MNIST files (default: nnumpy's search path)")
    p.add_argument("--synthetic", action="store_true", help="use random data of MNIST's shape")
    p.add_argument("--json", help="write the results and the machine description here")
    p.add_argument("--plot", help="draw a bar chart into this PNG file")
    p.add_argument("--markdown", action="store_true", help="also print the results as a Markdown table")
    p.add_argument("--from-json", metavar="FILE", help="do not measure: print (and plot) the results in FILE")
    args = p.parse_args(argv)
    if args.from_json:
        import json
        with open(args.from_json) as f:
            saved = json.load(f)
        common.print_machine(saved["machine"])
        print_rows(saved["results"])
        if args.markdown:
            print(markdown(saved["results"]))
        if args.plot:
            plot(saved["results"], args.plot)
        return 0
    if args.repeats < 3:
        p.error("--repeats must be at least 3")
    try:
        archs = [[int(s) for s in a.split("-")] for a in args.arch]
    except ValueError:
        p.error(f"--arch takes sizes like 784-100-10, got {args.arch}")
    x, y, source = common.mnist(args.data_root, args.synthetic, args.samples)
    if any(a[0] != x.shape[1] for a in archs):
        p.error(f"every --arch must start with {x.shape[1]} (the input size)")
    if "numba" in args.backend:
        from nnumpy.backend import numba_ops
        numba_ops.warm_up([np.dtype(d) for d in args.dtype])
    info = common.machine()
    common.print_machine(info)
    print(f"# data: {source}, {len(x)} samples per epoch; SGD lr {args.lr}; {args.repeats} timed epochs "
          f"per contender after one warm-up, interleaved")
    rows, notes = [], []
    for dtype in args.dtype:
        for bs in args.batch:
            for arch in archs:
                r, n = run_config(arch, bs, np.dtype(dtype), args, x, y)
                rows += r
                notes += [m for m in n if m not in notes]
    for m in notes:
        print(f"# {m}")
    print_rows(rows)
    if args.markdown:
        print(markdown(rows))
    if args.json:
        common.write_json(args.json, {"machine": info, "data": source, "args": vars(args), "results": rows})
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
