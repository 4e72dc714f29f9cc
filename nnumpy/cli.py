"""The ``nnumpy`` command (also ``python -m nnumpy``).

    nnumpy gradcheck --arch 784-100-200-50-10 [--torch]   check backprop by finite differences / PyTorch
    nnumpy download mnist fashion-mnist [--root DIR]       fetch and verify datasets
    nnumpy verify mnist                                    check local dataset copies
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def parse_arch(text):
    """"784-100-10" -> [784, 100, 10] (an argparse type: bad input exits with code 2)."""
    try:
        sizes = [int(s) for s in str(text).split("-")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer sizes like 784-100-10, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"need at least two positive sizes (input and output), got {text!r}")
    return sizes


def _gradcheck(args):
    import nnumpy as nnp

    rng = np.random.default_rng(args.seed)
    model = nnp.MLP(args.arch, activation=args.activation, rng=args.seed)
    x = rng.random((args.batch, args.arch[0]))            # pixel-like inputs in [0, 1)
    y = rng.integers(0, args.arch[-1], args.batch)
    crit = nnp.CrossEntropyLoss()
    print(f"model: {args.arch} with {args.activation}, {model.num_parameters():,} parameters; "
          f"batch of {args.batch} random inputs, seed {args.seed}\n")
    ok = True
    if not args.no_fd:
        report = nnp.gradcheck(model, x, target=y, loss=crit, max_checks=args.max_checks, seed=args.seed)
        print(report, end="\n\n")
        ok &= report.ok
    if args.torch:
        from .interop import compare_with_torch
        try:
            for dt in args.dtype:
                report = compare_with_torch(model, x, y, crit, dtype=dt)
                print(report, end="\n\n")
                ok &= report.ok
        except ImportError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    return 0 if ok else 1


def build_parser():
    from .datasets import cli as data_cli
    from .nn import ACTIVATIONS

    p = argparse.ArgumentParser(prog="nnumpy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    g = sub.add_parser("gradcheck", help="check an MLP's hand-written gradients",
                       description="Check the gradients of an MLP with cross-entropy: by central "
                                   "finite differences in float64 and, with --torch, against PyTorch's "
                                   "autograd on the same weights and batch.")
    g.add_argument("--arch", type=parse_arch, default=parse_arch("784-100-200-50-10"),
                   help="layer sizes (default 784-100-200-50-10)")
    g.add_argument("--activation", default="relu", choices=sorted(ACTIVATIONS))
    g.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--max-checks", type=int, default=50,
                   help="finite differences: entries checked per tensor (default 50)")
    g.add_argument("--no-fd", action="store_true", help="skip the finite-difference check")
    g.add_argument("--torch", action="store_true", help="also compare with PyTorch autograd")
    g.add_argument("--dtype", nargs="+", default=["float64"], choices=["float64", "float32"],
                   help="dtypes of the PyTorch comparison (default float64)")
    g.set_defaults(run=_gradcheck)

    for action, help_ in (("download", "fetch and verify datasets"), ("verify", "check local dataset copies")):
        d = sub.add_parser(action, help=help_, description=help_)
        data_cli.add_action_arguments(d, action)
        d.set_defaults(run=lambda a, action=action: data_cli.run_action(action, a))
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
