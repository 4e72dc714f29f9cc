"""Train an MLP on MNIST with nnumpy: split, train, validate, test, save.

    python examples/train_mnist.py --data-root DIR [--arch 784-100-10] [--epochs 10]

DIR holds the four MNIST IDX files (train-images-idx3-ubyte.gz, ...; gzip or
not).  Prints the per-epoch history, the test accuracy and the parameter
count, and saves the model as an .npz file.
"""
import argparse
import os
import sys
import time

import numpy as np

import nnumpy as nnp
from nnumpy.datasets import read_idx

FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
         "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def load_folder(root):
    """The four MNIST arrays from ``root`` (each file with or without .gz)."""
    out = {}
    for key, stem in FILES.items():
        for name in (stem + ".gz", stem):
            if os.path.isfile(os.path.join(root, name)):
                out[key] = read_idx(os.path.join(root, name))
                break
        else:
            sys.exit(f"error: {stem}[.gz] not found in {root}")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", required=True, help="folder with the four MNIST IDX files")
    p.add_argument("--arch", default="784-100-10", help="layer sizes, e.g. 784-100-200-50-10")
    p.add_argument("--activation", default="relu", choices=sorted(nnp.nn.ACTIVATIONS))
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--val-fraction", type=float, default=1 / 6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="mnist_mlp.npz", help="where to save the trained model")
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.arch.split("-")]
    except ValueError:
        p.error(f"--arch must look like 784-100-10, got {args.arch!r}")

    d = load_folder(args.data_root)
    x = d["x_train"].reshape(len(d["x_train"]), -1).astype(np.float32) / 255.0
    x_test = d["x_test"].reshape(len(d["x_test"]), -1).astype(np.float32) / 255.0
    train, val = nnp.train_val_split(x, d["y_train"].astype(np.int64), args.val_fraction, seed=args.seed)
    print(f"training {len(train[0])}, validation {len(val[0])}, test {len(x_test)} samples")

    model = nnp.MLP(sizes, activation=args.activation, rng=args.seed)
    print(model, f"\n{model.num_parameters():,} parameters")
    opt = nnp.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    t0 = time.perf_counter()
    nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=args.epochs,
            batch_size=args.batch_size, seed=args.seed, verbose=True)
    loss, acc = nnp.evaluate(model, x_test, d["y_test"].astype(np.int64))
    print(f"test loss {loss:.4f}, test accuracy {acc:.2%} ({time.perf_counter() - t0:.1f} s in all)")
    nnp.save(model, args.out)
    print(f"model saved to {args.out}")


if __name__ == "__main__":
    main()
