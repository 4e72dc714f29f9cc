"""Train an MLP on MNIST with nnumpy: split, train, validate, test, save.

    python examples/train_mnist.py [--data-root DIR] [--arch 784-100-10] [--epochs 10]

MNIST is found and verified by ``nnumpy.datasets.load_mnist`` (downloaded
once if missing; ``--data-root DIR`` uses the four IDX files in DIR, and
``--offline`` never touches the network).  Prints the per-epoch history and
the test accuracy, and saves the model as an .npz file.
"""
import argparse
import os
import sys
import time

import nnumpy as nnp
from nnumpy.datasets import DatasetNotFoundError, DownloadError, load_mnist


class Help(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The docstring as written, and each option's default."""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=Help)
    p.add_argument("--data-root", help="folder with the four MNIST IDX files (default: search, then download)")
    p.add_argument("--offline", action="store_true", help="never download")
    p.add_argument("--arch", default="784-100-10", help="layer sizes, e.g. 784-100-200-50-10")
    p.add_argument("--activation", default="relu", choices=sorted(nnp.nn.ACTIVATIONS))
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="held out for validation, stratified (as in nnumpy train)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/mnist_mlp.npz", help="where to save the trained model")
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.arch.split("-")]
    except ValueError:
        p.error(f"--arch must look like 784-100-10, got {args.arch!r}")

    try:
        (x, y), (x_test, y_test) = load_mnist(args.data_root, download=not args.offline,
                                              flatten=True, scale=True)
    except (DatasetNotFoundError, DownloadError) as e:
        sys.exit(f"error: {e.message(cli=True)}")
    train, val = nnp.train_val_split(x, y, args.val_fraction, seed=args.seed, stratify=True)
    print(f"training {len(train[0])}, validation {len(val[0])}, test {len(x_test)} samples")

    model = nnp.MLP(sizes, activation=args.activation, rng=args.seed)
    print(model, f"\n{model.num_parameters():,} parameters")
    opt = nnp.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    t0 = time.perf_counter()
    nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=args.epochs,
            batch_size=args.batch_size, seed=args.seed, verbose=True)
    loss, acc = nnp.evaluate(model, x_test, y_test)
    print(f"test loss {loss:.4f}, test accuracy {acc:.2%} ({time.perf_counter() - t0:.1f} s in all)")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    nnp.save(model, args.out)
    print(f"model saved to {args.out}")


if __name__ == "__main__":
    main()
