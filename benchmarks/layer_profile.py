"""Where a training step's time goes: each layer's forward and backward, the
loss, the optimizer and the rest, for a model on each nnumpy backend (and
optionally in PyTorch).

    python benchmarks/layer_profile.py --model lenet5 [--torch] [--json out.json]
    python benchmarks/layer_profile.py --model small-cnn 784-100-10 --steps 200

A step is the training loop of ``epoch_time.py`` (plain SGD, cross-entropy,
no input gradient), on MNIST (or --synthetic data of its shape) in shuffled
batches of --batch; --warmup steps first (JIT compilation, caches), then
--steps timed steps (default: one epoch of --samples).  Each backend runs
in its own fresh process.

What is timed is what really runs.  A Sequential executes a plan of steps:
on the numba backend a Conv2d or Linear and the activation after it are one
fused kernel ("7-8 Linear+ReLU"; a Conv2d, its ReLU and the MaxPool2d after
it: "0-2 Conv2d+ReLU+MaxPool2d"), every other module is a step of its own
(on the numpy backend every module is).  The rows are those steps: a module
that runs by itself is timed around its own forward/backward (per-instance
wrappers, removed afterwards); a fused step is timed around the backend
kernel it calls (``nnumpy.backend.numba_ops`` functions, temporarily wrapped,
attributed to the step through the weight array they receive).  The Python
around the steps inside ``Sequential.forward/backward`` (input checks,
caches, buffer bookkeeping) is the row "other (in Sequential)"; "loss" is
CrossEntropyLoss forward and backward, "optimizer" is zero_grad + step,
"batch gather" is ``x[idx], y[idx]``.  The rows add up to the measured step
time.  Each wrapper costs about a microsecond a call (small next to layers
that take tens of microseconds or more).

PyTorch (--torch): forward times from forward pre/post hooks on each child
of the converted ``torch.nn.Sequential``; backward times from hooks on each
child's output tensor (called when its gradient is ready: the time from one
to the next is the backward of the module between them), so PyTorch's
backward rows partition ``loss.backward()`` exactly.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import nnumpy as nnp  # noqa: E402
from nnumpy import backend  # noqa: E402
from nnumpy.models import MODELS  # noqa: E402
from nnumpy.nn.module import Module  # noqa: E402

perf = time.perf_counter


def parse_model(name):
    """A MODELS name -> ("cnn", name); an MLP architecture "784-100-10" -> ("mlp", [784, 100, 10])."""
    if name in MODELS:
        return "cnn", name
    try:
        arch = [int(s) for s in name.split("-")]
    except ValueError:
        arch = []
    if len(arch) < 2 or min(arch) < 1 or arch[0] != 784:
        raise ValueError(f"--model takes a name from {sorted(MODELS)} or an MLP architecture starting with "
                         f"784, such as 784-100-10; got {name!r}")
    return "mlp", arch


def build(spec):
    kind, what = parse_model(spec["model"])
    if kind == "cnn":
        return nnp.models.build_model(what, dtype=spec["dtype"], rng=0, input_grad=False)
    return nnp.MLP(what, dtype=spec["dtype"], rng=0, input_grad=False)


def batches(n, bs, count, seed):
    """``count`` index arrays of mini-batches, epoch after epoch, each epoch shuffled."""
    out, e = [], 0
    while len(out) < count:
        perm = np.random.default_rng([seed, e]).permutation(n)
        out += [perm[s:s + bs] for s in range(0, n, bs)]
        e += 1
    return out[:count]


# -- nnumpy ------------------------------------------------------------------------------
class StepProfiler:
    """Accumulates the time of each step of a Sequential's execution plan.

    ``self.phase`` ("forward"/"backward", set by the training loop around the
    model's forward and backward) says which column a timing goes to; only
    calls made directly by the Sequential are timed (``depth`` 0): a
    module's own calls into the backend are part of that module's time."""

    def __init__(self, model):
        if not isinstance(model, nnp.Sequential):
            raise TypeError(f"layer_profile times a Sequential, got {type(model).__name__}")
        self.model = model
        self.mods = list(model.children())
        self.steps = self._steps(backend.get_backend() == "numba")
        self.labels, row_of = [], {}
        index = {id(m): i for i, m in enumerate(self.mods)}
        for step in self.steps:
            idx = [index[id(m)] for m in step]
            span = str(idx[0]) if len(idx) == 1 else f"{idx[0]}-{idx[-1]}"
            row_of.update({id(m): len(self.labels) for m in step})
            self.labels.append(f"{span} " + "+".join(type(m).__name__ for m in step))
        self.row_of = row_of
        self.weight_row = {id(p.data): row_of[id(m)] for m in self.mods for p in m.parameters()}
        self.phase, self.depth = None, 0
        self.reset()

    def _steps(self, fuse):
        """The modules of each step of the plan the Sequential will run
        (``Sequential._plan``), or one step per child when that is not
        available in the form expected."""
        try:
            plan = self.model._plan(fuse)
            steps = [[s for s in step if isinstance(s, Module)] for step in plan]
            flat = [id(m) for step in steps for m in step]
            if all(steps) and flat == [id(m) for m in self.mods]:
                return steps
        except (AttributeError, TypeError, ValueError, KeyError):   # a plan of another shape: time per child
            pass
        return [[m] for m in self.mods]

    def reset(self):
        self.time = {"forward": [0.0] * len(self.labels), "backward": [0.0] * len(self.labels)}
        self.calls = {"forward": [0] * len(self.labels), "backward": [0] * len(self.labels)}
        self.unattributed = defaultdict(float)           # (phase, op name) -> seconds

    def _timed(self, f, row=None, op=None):
        def wrapper(*args, **kwargs):
            phase = self.phase
            if self.depth or phase is None:
                return f(*args, **kwargs)
            r = row
            if op is not None:       # a backend kernel called by the Sequential itself: whose weights?
                r = next((self.weight_row[id(a)] for a in args if id(a) in self.weight_row), None)
            self.depth += 1
            t0 = perf()
            try:
                return f(*args, **kwargs)
            finally:
                dt = perf() - t0
                self.depth -= 1
                if r is None:
                    self.unattributed[(phase, op)] += dt
                else:
                    self.time[phase][r] += dt
                    self.calls[phase][r] += 1
        wrapper.__wrapped__ = f
        return wrapper

    @contextlib.contextmanager
    def installed(self):
        """Wrap each child's forward/backward (instance attributes, shadowing the
        class's) and the public functions of the loaded backend op modules; undo
        it all on exit."""
        undo = []
        for m in self.mods:
            for meth in ("forward", "backward"):
                vars(m)[meth] = self._timed(getattr(m, meth), row=self.row_of[id(m)])
                undo.append(lambda m=m, meth=meth: vars(m).pop(meth, None))
        for ops in {backend.ops(b) for b in backend.available_backends()}:
            for name in getattr(ops, "__all__", ()):
                f = getattr(ops, name, None)
                if not callable(f) or name == "warm_up":
                    continue
                own = vars(ops).get(name, _MISSING)
                setattr(ops, name, self._timed(f, op=name))
                undo.append(lambda ops=ops, name=name, own=own: (
                    delattr(ops, name) if own is _MISSING else setattr(ops, name, own)))
        try:
            yield self
        finally:
            for u in reversed(undo):
                u()


_MISSING = object()


def profile_nnumpy(spec, x, y):
    nnp.set_backend(spec["backend"])
    model = build(spec)
    opt = nnp.optim.SGD(model.parameters(), lr=spec["lr"])
    crit = nnp.CrossEntropyLoss()
    prof = StepProfiler(model)
    idx_list = batches(len(x), spec["batch"], spec["warmup"] + spec["steps"], spec["seed"])
    t = defaultdict(float)
    with prof.installed():
        for i, idx in enumerate(idx_list):
            if i == spec["warmup"]:
                prof.reset()
                t.clear()
            t0 = perf()
            xb, yb = x[idx], y[idx]
            t1 = perf()
            opt.zero_grad()
            t2 = perf()
            prof.phase = "forward"
            out = model(xb)
            prof.phase = None
            t3 = perf()
            crit(out, yb)
            t4 = perf()
            dl = crit.backward()
            t5 = perf()
            prof.phase = "backward"
            model.backward(dl)
            prof.phase = None
            t6 = perf()
            opt.step()
            t7 = perf()
            for k, v in (("gather", t1 - t0), ("zero_grad", t2 - t1), ("forward", t3 - t2), ("loss_f", t4 - t3),
                         ("loss_b", t5 - t4), ("backward", t6 - t5), ("step", t7 - t6), ("total", t7 - t0)):
                t[k] += v
    rows = [{"name": lab, "forward": f, "backward": b, "calls": [cf, cb]} for lab, f, b, cf, cb in
            zip(prof.labels, prof.time["forward"], prof.time["backward"], prof.calls["forward"],
                prof.calls["backward"])]
    for (phase, op), v in sorted(prof.unattributed.items()):
        rows.append({"name": f"op {op} (no layer)", "forward": v if phase == "forward" else 0.0,
                     "backward": v if phase == "backward" else 0.0})
    rows.append({"name": "other (in Sequential)", "forward": t["forward"] - sum(r["forward"] for r in rows),
                 "backward": t["backward"] - sum(r["backward"] for r in rows)})
    rows += [{"name": "loss (cross-entropy)", "forward": t["loss_f"], "backward": t["loss_b"]},
             {"name": "optimizer (zero_grad + step)", "forward": None, "backward": None,
              "total": t["zero_grad"] + t["step"]},
             {"name": "batch gather x[idx], y[idx]", "forward": None, "backward": None, "total": t["gather"]}]
    return finish(rows, t["total"], spec["steps"])


# -- PyTorch -------------------------------------------------------------------------------
def profile_torch(spec, x, y):
    import torch
    from nnumpy.interop import to_torch
    model = to_torch(build(spec))
    children = list(model.children())
    opt = torch.optim.SGD(model.parameters(), lr=spec["lr"])
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    fwd, bwd = [0.0] * len(children), [0.0] * len(children)
    start, ready = [0.0] * len(children), [None] * len(children)

    def pre(i):
        def hook(mod, inputs):
            start[i] = perf()
        return hook

    def post(i):
        def hook(mod, inputs, out):
            fwd[i] += perf() - start[i]
            if out.requires_grad:
                out.register_hook(lambda g: ready.__setitem__(i, perf()))   # d(out_i) computed
        return hook

    handles = []
    for i, c in enumerate(children):
        handles += [c.register_forward_pre_hook(pre(i)), c.register_forward_hook(post(i))]
    idx_list = batches(len(x), spec["batch"], spec["warmup"] + spec["steps"], spec["seed"])
    t = defaultdict(float)
    try:
        for i, idx in enumerate(idx_list):
            if i == spec["warmup"]:
                t.clear()
                fwd[:], bwd[:] = [0.0] * len(children), [0.0] * len(children)
            t0 = perf()
            it = torch.from_numpy(idx)
            xb, yb = xt[it], yt[it]
            t1 = perf()
            opt.zero_grad()
            t2 = perf()
            out = model(xb)
            t3 = perf()
            loss = loss_fn(out, yb)
            t4 = perf()
            ready[:] = [None] * len(children)
            loss.backward()
            t5 = perf()
            opt.step()
            t6 = perf()
            # backward of child k runs from d(out_k) ready to d(out_{k-1}) ready (child 0: to the end)
            prev_end = t5
            for k in range(len(children)):
                if ready[k] is None:
                    continue
                bwd[k] += prev_end - ready[k]
                prev_end = ready[k]
            loss_b = prev_end - t4                      # from the call to the logits' gradient
            for k, v in (("gather", t1 - t0), ("zero_grad", t2 - t1), ("forward", t3 - t2), ("loss_f", t4 - t3),
                         ("loss_b", loss_b), ("step", t6 - t5), ("total", t6 - t0)):
                t[k] += v
    finally:
        for h in handles:
            h.remove()
    rows = [{"name": f"{i} {type(c).__name__}", "forward": fwd[i], "backward": bwd[i]}
            for i, c in enumerate(children)]
    rows.append({"name": "other (in Sequential)", "forward": t["forward"] - sum(fwd), "backward": 0.0})
    rows += [{"name": "loss (cross-entropy)", "forward": t["loss_f"], "backward": t["loss_b"]},
             {"name": "optimizer (zero_grad + step)", "forward": None, "backward": None,
              "total": t["zero_grad"] + t["step"]},
             {"name": "batch gather x[idx], y[idx]", "forward": None, "backward": None, "total": t["gather"]}]
    return finish(rows, t["total"], spec["steps"])


def finish(rows, total, steps):
    """Per-step milliseconds and the share of the step of every row."""
    out = []
    for r in rows:
        f, b = r["forward"], r["backward"]
        tot = r.get("total", (f or 0.0) + (b or 0.0))
        out.append({"name": r["name"], **({"calls": r["calls"]} if "calls" in r else {}),
                    "forward_ms": None if f is None else 1e3 * f / steps,
                    "backward_ms": None if b is None else 1e3 * b / steps,
                    "ms": 1e3 * tot / steps, "percent": 100 * tot / total if total > 0 else 0.0})
    return {"rows": out, "step_ms": 1e3 * total / steps, "accounted_percent": sum(r["percent"] for r in out)}


# -- worker and parent -------------------------------------------------------------------------
def worker(spec):
    kind, _ = parse_model(spec["model"])
    x, y, source = common.mnist(spec["data_root"], spec["synthetic"], spec["samples"], images=kind == "cnn")
    x = np.ascontiguousarray(x, dtype=spec["dtype"])
    result = profile_torch(spec, x, y) if spec["backend"] == "torch" else profile_nnumpy(spec, x, y)
    result.update(source=source, threads=common.thread_info())
    common.emit_result(result)
    return 0


def print_table(res):
    print(f"{'step':<36}{'forward ms':>11}{'backward ms':>12}{'ms':>9}{'% of step':>10}")
    for r in res["rows"]:
        f = "-" if r["forward_ms"] is None else f"{r['forward_ms']:.3f}"
        b = "-" if r["backward_ms"] is None else f"{r['backward_ms']:.3f}"
        print(f"{r['name']:<36}{f:>11}{b:>12}{r['ms']:>9.3f}{r['percent']:>9.1f}%")
    print(f"{'step total':<36}{'':>11}{'':>12}{res['step_ms']:>9.3f}{res['accounted_percent']:>9.1f}%")
    for r in res["rows"]:
        if "calls" in r and r["calls"][0] == 0:
            print(f"# WARNING: step {r['name']!r} was never timed (its kernel was not called through "
                  f"nnumpy.backend.ops() nor its module's forward): its time is in 'other (in Sequential)'")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", nargs="+", default=["lenet5"],
                   help=f"names from nnumpy.models ({', '.join(MODELS)}) or MLP architectures like 784-100-10")
    p.add_argument("--backend", nargs="+", default=list(backend.available_backends()),
                   choices=list(backend.BACKENDS))
    p.add_argument("--torch", action="store_true", help="profile the same model in PyTorch too (hooks)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--samples", type=int, default=60000, help="training samples (one epoch)")
    p.add_argument("--steps", type=int, help="timed steps (default: one epoch of --samples)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first (JIT, caches)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    common.add_common_args(p)
    args = common.parse_or_work(p, argv, worker)
    for m in args.model:
        try:
            parse_model(m)
        except ValueError as e:
            p.error(str(e))
    if args.batch < 1 or args.samples < 1 or args.warmup < 0 or (args.steps is not None and args.steps < 1):
        p.error("--batch, --samples and --steps must be positive, --warmup not negative")
    if not (math.isfinite(args.lr) and args.lr > 0):
        p.error(f"--lr must be a positive number, got {args.lr}")
    common.check_common(p, args, [args.batch])
    steps = args.steps or -(-args.samples // args.batch)
    frameworks = common.with_torch(args.backend, args.torch)
    info = common.machine()
    common.print_machine(info)
    print(f"# batch {args.batch}, {args.dtype}, SGD lr {args.lr}, cross-entropy, no input gradient; "
          f"{args.warmup} warm-up steps, then {steps} timed steps; each backend in a fresh process; "
          f"times are per step")
    results = []
    for model in args.model:
        for fw in frameworks:
            spec = {"model": model, "backend": fw, "batch": args.batch, "dtype": args.dtype,
                    "samples": args.samples, "steps": steps, "warmup": args.warmup, "lr": args.lr,
                    "seed": args.seed, "data_root": args.data_root, "synthetic": args.synthetic}
            try:
                res = common.run_worker(__file__, spec)
            except common.WorkerError as e:
                print(f"layer_profile.py: {e}", file=sys.stderr)
                return 1
            who = "PyTorch" if fw == "torch" else f"nnumpy, {fw} backend"
            extra = f", {res['threads']['torch_threads']} threads" if "torch_threads" in res["threads"] else ""
            print(f"\n## {model} ({who}{extra}): {res['step_ms']:.3f} ms per step; data: {res['source']}")
            print_table(res)
            results.append({"model": model, "framework": fw, **res})
    common.save_json(args, info, steps=steps, profiles=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
