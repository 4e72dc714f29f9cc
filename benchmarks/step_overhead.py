"""The cost of one training step where the matrix products are small: time
per step and Python function calls per step, for nnumpy's backends and
PyTorch, at batch 1, 10 and 64 (Nielsen's 784-30-10 by default).

    python benchmarks/step_overhead.py --torch --batch 1 10 64 --json out.json

A step is the loop of ``epoch_time.py``: gather the batch (``x[idx],
y[idx]``), zero the gradients, forward, cross-entropy, backward, plain SGD.
Every (round, contender) runs in its own fresh process, in an order rotated
every round (--repeats rounds, at least 3; 5 or more for a claim): after
--warmup steps it times --steps steps (microseconds per step), then counts
the Python function calls of 200 more steps with cProfile (calls into C,
such as NumPy's and PyTorch's, count once each; what they do inside does
not).  The ratio to PyTorch is the median of the per-round ratios, with
their range.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import nnumpy as nnp  # noqa: E402

COUNTED_STEPS = 200


def make_step(spec, x, y):
    """One training step as a function of the batch's indices."""
    name = spec["contender"]
    if name == "torch":
        import torch
        from nnumpy.interop import to_torch
        model = to_torch(nnp.MLP(spec["arch"], dtype="float32", rng=0))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        loss_fn = torch.nn.CrossEntropyLoss()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def step(idx):
            idx = torch.from_numpy(idx)
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
        return step
    nnp.set_backend(name.split("-", 1)[1])
    model = nnp.MLP(spec["arch"], dtype="float32", rng=0, input_grad=False)
    opt = nnp.optim.SGD(model.parameters(), lr=0.01)
    crit = nnp.CrossEntropyLoss()

    def step(idx):
        xb, yb = x[idx], y[idx]
        opt.zero_grad()
        crit(model(xb), yb)
        model.backward(crit.backward())
        opt.step()
    return step


def worker(spec):
    x, y, source = common.mnist(spec["data_root"], spec["synthetic"], spec["samples"])
    step = make_step(spec, x, y)
    bs, n = spec["batch"], len(x)
    order = np.random.default_rng([spec["round"], bs]).permutation(n)
    batches = [order[(i * bs) % (n - bs + 1):][:bs] for i in range(spec["warmup"] + spec["steps"] + COUNTED_STEPS)]
    for idx in batches[:spec["warmup"]]:
        step(idx)
    timed = batches[spec["warmup"]:spec["warmup"] + spec["steps"]]
    t0 = time.perf_counter()
    for idx in timed:
        step(idx)
    per_step = (time.perf_counter() - t0) / len(timed)
    prof = cProfile.Profile()
    prof.enable()
    for idx in batches[-COUNTED_STEPS:]:
        step(idx)
    prof.disable()
    calls = pstats.Stats(prof).total_calls / COUNTED_STEPS
    common.emit_result({"us_per_step": per_step * 1e6, "calls_per_step": calls, "source": source,
                        "pid": os.getpid(), "threads": common.thread_info()})
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=common.HelpFormatter)
    p.add_argument("--arch", default="784-30-10", help="MLP layer sizes (default 784-30-10)")
    p.add_argument("--batch", nargs="+", type=int, default=[1, 10, 64])
    p.add_argument("--backend", nargs="+", default=list(nnp.backend.available_backends()),
                   choices=list(nnp.backend.BACKENDS))
    p.add_argument("--torch", action="store_true", help="time PyTorch (CPU, eager) too")
    p.add_argument("--repeats", type=int, default=5, help="rounds, each contender in a fresh process (>= 3)")
    p.add_argument("--steps", type=int, default=3000, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=300, help="untimed steps first (JIT, caches)")
    p.add_argument("--samples", type=int, default=60000)
    common.add_common_args(p)
    args = common.parse_or_work(p, argv, worker)
    arch = common.parse_arch(p, args.arch)
    if args.repeats < 3:
        p.error("--repeats must be at least 3")
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be positive, --warmup at least 0")
    common.check_common(p, args, args.batch)
    args.batch = list(dict.fromkeys(args.batch))
    names = common.with_torch([f"nnumpy-{b}" for b in dict.fromkeys(args.backend)], args.torch)
    info = common.machine()
    common.print_machine(info)
    rows, source = [], None
    for bs in args.batch:
        us, calls = {k: [] for k in names}, {k: [] for k in names}
        for r in range(args.repeats):
            for k in names[r % len(names):] + names[:r % len(names)]:
                spec = {"arch": arch, "batch": bs, "contender": k, "round": r, "steps": args.steps,
                        "warmup": args.warmup, "samples": args.samples, "data_root": args.data_root,
                        "synthetic": args.synthetic}
                try:
                    res = common.run_worker(__file__, spec)
                except common.WorkerError as e:
                    print(f"step_overhead.py: {e}", file=sys.stderr)
                    return 1
                us[k].append(res["us_per_step"])
                calls[k].append(res["calls_per_step"])
                source = res["source"]
                print(f"# batch {bs}: round {r + 1}/{args.repeats} {k:<13}{res['us_per_step']:8.1f} us/step "
                      f"{res['calls_per_step']:7.1f} calls/step", file=sys.stderr, flush=True)
        for k in names:
            row = {"arch": args.arch, "batch": bs, "contender": k, **common.summarize(us[k]),
                   "calls_per_step": statistics.median(calls[k])}
            if "torch" in us and k != "torch":
                ratios = [a / b for a, b in zip(us[k], us["torch"])]
                row["x_torch"], row["x_torch_range"] = statistics.median(ratios), [min(ratios), max(ratios)]
            rows.append(row)
    print(f"# {args.arch}; {args.steps} timed steps per process after {args.warmup}; {args.repeats} rounds, "
          f"each contender in a fresh process; data: {source}")
    head = f"{'batch':>5} {'contender':<14}{'us/step':>9}{'min':>8}{'max':>8}{'calls/step':>11}{'x torch':>18}"
    print(head)
    print("-" * len(head))
    for r in rows:
        xt = (f"{r['x_torch']:.2f} ({r['x_torch_range'][0]:.2f}-{r['x_torch_range'][1]:.2f})"
              if "x_torch" in r else "-")
        print(f"{r['batch']:>5} {r['contender']:<14}{r['median']:>9.1f}{r['min']:>8.1f}{r['max']:>8.1f}"
              f"{r['calls_per_step']:>11.0f}{xt:>18}")
    common.save_json(args, info, results=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
