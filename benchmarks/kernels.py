"""Each fused Numba kernel against its NumPy reference, and the JIT's start-up cost.

    python benchmarks/kernels.py [--batch 64 1024] [--json out.json]

Per kernel and batch size: microseconds per call (best of several repeats of
many calls, both implementations timed in the same run), and the speed-up.
Then the compile time of every kernel in a fresh process with an empty
on-disk cache ("cold"), and again with the cache filled ("cached").
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from nnumpy.backend import numba_act, numba_loss, numba_ops, numpy_ops  # noqa: E402
from nnumpy import functional as F  # noqa: E402
from nnumpy.functional import activation as act_ref  # noqa: E402


def per_call_us(fn, min_time=0.2):
    fn()
    number = max(1, int(min_time / max(timeit.timeit(fn, number=1), 1e-7)))
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def cases(batch, dtype, rng):
    """(name, shape, numpy call, numba call) for every kernel at this batch size."""
    out = []
    for k, m, act in ((784, 100, "relu"), (784, 800, "relu"), (100, 100, "sigmoid"), (100, 100, "tanh")):
        x = rng.random((batch, k)).astype(dtype)
        W = (rng.standard_normal((m, k)) / np.sqrt(k)).astype(dtype)
        b = rng.standard_normal(m).astype(dtype)
        dy = rng.standard_normal((batch, m)).astype(dtype)
        y = numpy_ops.linear_act_forward(x, W, b, act)
        yb, gW, gb = np.empty_like(y), np.zeros_like(W), np.zeros_like(b)
        shape = f"{batch}x{k} -> {m}"
        out.append((f"linear+{act} forward", shape,
                    lambda x=x, W=W, b=b, a=act: numpy_ops.linear_act_forward(x, W, b, a),
                    lambda x=x, W=W, b=b, a=act, o=yb: numba_ops.linear_act_forward(x, W, b, a, 0.0, o)))
        out.append((f"linear+{act} backward", shape,
                    lambda dy=dy, x=x, W=W, y=y, gW=gW, gb=gb, a=act:
                        numpy_ops.linear_act_backward(dy, x, W, y, gW, gb, a, need_dx=False),
                    lambda dy=dy, x=x, W=W, y=y, gW=gW, gb=gb, a=act:
                        numba_ops.linear_act_backward(dy, x, W, y, gW, gb, a, need_dx=False)))
    pool = ((2, 2), (2, 2), (0, 0), (1, 1), False)
    for c, hw, o, pad in ((1, 28, 6, 2), (6, 14, 16, 0)):          # LeNet-5's two convolutions
        x = rng.standard_normal((batch, c, hw, hw)).astype(dtype)
        W = (rng.standard_normal((o, c, 5, 5)) / np.sqrt(25 * c)).astype(dtype)
        b = rng.standard_normal(o).astype(dtype)
        args = ((1, 1), ((pad, pad), (pad, pad)), (1, 1), 1)
        y = numpy_ops.conv2d_act_forward(x, W, b, *args, "relu")
        dy = rng.standard_normal(y.shape).astype(dtype)
        p, i = numpy_ops.max_pool2d_forward(y, *pool)
        dp = rng.standard_normal(p.shape).astype(dtype)
        gW, gb = np.zeros_like(W), np.zeros_like(b)
        shape = f"{batch}x{c}x{hw}x{hw} -> {o}"
        out.append(("conv5x5+relu forward", shape,
                    lambda x=x, W=W, b=b, a=args: numpy_ops.conv2d_act_forward(x, W, b, *a, "relu"),
                    lambda x=x, W=W, b=b, a=args: numba_ops.conv2d_act_forward(x, W, b, *a, "relu")))
        out.append(("conv5x5+relu backward", shape,
                    lambda dy=dy, x=x, W=W, y=y, gW=gW, gb=gb, a=args:
                        numpy_ops.conv2d_act_backward(dy, x, W, y, gW, gb, *a, "relu"),
                    lambda dy=dy, x=x, W=W, y=y, gW=gW, gb=gb, a=args:
                        numba_ops.conv2d_act_backward(dy, x, W, y, gW, gb, *a, "relu")))
        out.append(("max-pool 2x2 forward", f"{batch}x{o}x{y.shape[2]}x{y.shape[3]}",
                    lambda y=y: numpy_ops.max_pool2d_forward(y, *pool),
                    lambda y=y: numba_ops.max_pool2d_forward(y, *pool)))
        out.append(("max-pool 2x2 backward", f"{batch}x{o}x{y.shape[2]}x{y.shape[3]}",
                    lambda dp=dp, i=i, s=y.shape: numpy_ops.max_pool2d_backward(dp, i, s),
                    lambda dp=dp, i=i, s=y.shape: numba_ops.max_pool2d_backward(dp, i, s)))
        # the fused kernels against the reference pair they replace
        out.append(("conv+relu+pool forward", shape,
                    lambda x=x, W=W, b=b, a=args: numpy_ops.max_pool2d_forward(
                        numpy_ops.conv2d_act_forward(x, W, b, *a, "relu"), *pool),
                    lambda x=x, W=W, b=b, a=args: numba_ops.conv2d_act_pool_forward(x, W, b, *a, "relu", 0.0,
                                                                                   *pool)))
        out.append(("conv+relu+pool backward", shape,
                    lambda dp=dp, i=i, x=x, W=W, y=y, gW=gW, gb=gb, a=args: numpy_ops.conv2d_act_backward(
                        numpy_ops.max_pool2d_backward(dp, i, y.shape), x, W, y, gW, gb, *a, "relu"),
                    lambda dp=dp, i=i, p=p, x=x, W=W, gW=gW, gb=gb, a=args: numba_ops.conv2d_act_pool_backward(
                        dp, i, p, x, W, gW, gb, *a, "relu", 0.0, *pool)))
    z = (3 * rng.standard_normal((batch, 10))).astype(dtype)
    t = rng.integers(0, 10, batch)
    out.append(("softmax cross-entropy", f"{batch}x10", lambda: numpy_ops.cross_entropy(z, t),
                lambda: numba_ops.cross_entropy(z, t)))
    for n in (78400, 627200):
        p, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        buf_a, buf_b = np.zeros(n, dtype), np.zeros(n, dtype)
        m1, v1, m2, v2 = (np.zeros(n, dtype) for _ in range(4))
        out.append(("SGD momentum step", f"{n} params",
                    lambda p=p, g=g, b=buf_a: numpy_ops.sgd_update(p, g, b, 1e-6, 0.9),
                    lambda p=p, g=g, b=buf_b: numba_ops.sgd_update(p, g, b, 1e-6, 0.9)))
        out.append(("Adam step", f"{n} params",
                    lambda p=p, g=g, m=m1, v=v1: numpy_ops.adam_update(p, g, m, v, None, 10, 1e-6, 0.9, 0.999, 1e-8),
                    lambda p=p, g=g, m=m2, v=v2: numba_ops.adam_update(p, g, m, v, None, 10, 1e-6, 0.9, 0.999, 1e-8)))
    return out + activation_cases(batch, dtype, rng) + loss_cases(batch, dtype, rng)


def activation_cases(batch, dtype, rng, features=800):
    """(name, shape, numpy call, numba call) of every activation of numba_act, forward and backward,
    on (batch, features) inputs of scale 3 (the softmaxes along the features)."""
    x = (3 * rng.standard_normal((batch, features))).astype(dtype)
    dy = rng.standard_normal((batch, features)).astype(dtype)
    shape = f"{batch}x{features}"
    out = []
    for name, fn, args, saved in (("GELU", "gelu", ("none",), "x"), ("GELU tanh", "gelu", ("tanh",), "x"),
                                  ("ELU", "elu", (1.0,), "x"), ("SiLU", "silu", (), "x"),
                                  ("Softplus", "softplus", (1.0, 20.0), "x"),
                                  ("Hardtanh", "hardtanh", (-1.0, 1.0), "mask"),
                                  ("Softmax", "softmax", (1,), "y"), ("LogSoftmax", "log_softmax", (1,), "y")):
        y = getattr(act_ref, f"{fn}_forward")(x, *args)
        back = (dy, y[1]) if saved == "mask" else (dy, y, *args) if saved == "y" else (dy, x, *args)
        for step, f, a in (("forward", f"{fn}_forward", (x, *args)), ("backward", f"{fn}_backward", back)):
            out.append((f"{name} {step}", shape, lambda f=f, a=a: getattr(act_ref, f)(*a),
                        lambda f=f, a=a: getattr(numba_act, f)(*a)))
    return out


def loss_cases(batch, dtype, rng):
    """(name, shape, numpy call, numba call) of every loss: what the numpy backend's loss does
    (the target checks, the functional forward, its backward for dloss = 1) against the fused
    call of numba_loss, on (batch, 10) scores, or (batch, 1000) from a batch of 1000."""
    c = 10 if batch < 1000 else 1000
    z = (3 * rng.standard_normal((batch, c))).astype(dtype)
    t = rng.integers(0, c, batch)
    t_ign = np.where(np.arange(batch) % 5 == 0, -100, t)
    y = rng.random((batch, c)).astype(dtype)
    soft = (y / y.sum(axis=1, keepdims=True)).astype(dtype)
    p = rng.uniform(0.01, 0.99, (batch, c)).astype(dtype)
    w = rng.uniform(0.5, 2, c).astype(dtype)

    def ce(t, **kw):
        if t.ndim == 1:
            F.check_class_targets(t, c, kw.get("ignore_index", -100))
        return numpy_ops.cross_entropy(z, t, "mean", *(kw.get(k, d) for k, d in
                                                       (("weight", None), ("ignore_index", -100),
                                                        ("label_smoothing", 0.0))))

    def nll():
        F.check_class_targets(t, c, -100)
        return F.nll_loss_forward(z, t), F.nll_loss_backward(t, c, z.dtype)

    def margin():
        F.check_class_targets(t, c)
        return F.multi_margin_loss_forward(z, t), F.multi_margin_loss_backward(z, t)

    def bce():
        F.check_probabilities("input", p)
        F.check_probabilities("target", y)
        return F.binary_cross_entropy_forward(p, y), F.binary_cross_entropy_backward(p, y)

    def elementwise(name, *k):
        loss, d = getattr(F, f"{name}_forward")(z, y, "mean", *k)
        return loss, getattr(F, f"{name}_backward")(d, "mean", 1.0, *k)

    shape = f"{batch}x{c}"
    return [
        ("CE weight+smooth+ignore", shape, lambda: ce(t_ign, weight=w, label_smoothing=0.1),
         lambda: numba_loss.cross_entropy(z, t_ign, weight=w, label_smoothing=0.1)),
        ("CE soft targets", shape, lambda: ce(soft), lambda: numba_loss.cross_entropy(z, soft)),
        ("NLL", shape, nll, lambda: numba_loss.nll_loss(z, t)),
        ("multi-margin (SVM)", shape, margin, lambda: numba_loss.multi_margin_loss(z, t)),
        ("BCE with logits+pos_w", shape,
         lambda: (F.binary_cross_entropy_with_logits_forward(z, y, pos_weight=w),
                  F.binary_cross_entropy_with_logits_backward(z, y, pos_weight=w)),
         lambda: numba_loss.binary_cross_entropy_with_logits(z, y, pos_weight=w)),
        ("BCE", shape, bce, lambda: numba_loss.binary_cross_entropy(p, y)),
        ("MSE", shape, lambda: elementwise("mse"), lambda: numba_loss.mse_loss(z, y)),
        ("L1", shape, lambda: elementwise("l1_loss"), lambda: numba_loss.l1_loss(z, y)),
        ("Huber", shape, lambda: elementwise("huber_loss", 1.0), lambda: numba_loss.huber_loss(z, y)),
        ("smooth L1", shape, lambda: elementwise("smooth_l1_loss", 1.0), lambda: numba_loss.smooth_l1_loss(z, y)),
    ]


def jit_times():
    """Seconds to compile (cold) and to load from the disk cache (cached) every kernel."""
    code = ("import time, nnumpy.backend.numba_ops as k, nnumpy.backend.numba_act as a; t = time.perf_counter(); "
            "k.warm_up(); a.warm_up(); print(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        run = lambda: float(subprocess.run([sys.executable, "-c", code], env=env, check=True,  # noqa: E731
                                           capture_output=True, text=True).stdout)
        return run(), run()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", nargs="+", type=int, default=[64, 1024])
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--no-jit", action="store_true", help="skip the compile-time measurement")
    p.add_argument("--json")
    args = p.parse_args(argv)
    numba_ops.warm_up([np.dtype(args.dtype)])
    numba_act.warm_up([np.dtype(args.dtype)])
    info = common.machine()
    common.print_machine(info)
    rng = np.random.default_rng(0)
    rows = []
    print(f"{'kernel':<26}{'shape':<22}{'numpy us':>10}{'numba us':>10}{'speed-up':>10}")
    for batch in args.batch:
        for name, shape, ref, fast in cases(batch, np.dtype(args.dtype), rng):
            if "params" in shape and batch != args.batch[0]:
                continue                      # optimizer steps do not depend on the batch
            t_ref, t_fast = per_call_us(ref), per_call_us(fast)
            rows.append({"kernel": name, "shape": shape, "numpy_us": t_ref, "numba_us": t_fast})
            print(f"{name:<26}{shape:<22}{t_ref:>10.1f}{t_fast:>10.1f}{t_ref / t_fast:>9.2f}x")
    jit = None
    if not args.no_jit:
        cold, cached = jit_times()
        jit = {"cold_s": cold, "cached_s": cached}
        print(f"JIT, every kernel for float32 and float64, in a new process: compiled {cold:.2f} s, "
              f"loaded from the disk cache {cached:.2f} s")
    if args.json:
        common.write_json(args.json, {"machine": info, "dtype": args.dtype, "kernels": rows, "jit": jit})
    return 0


if __name__ == "__main__":
    sys.exit(main())
