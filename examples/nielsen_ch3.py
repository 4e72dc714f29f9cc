"""Michael Nielsen's improved network (Neural Networks and Deep Learning, chapter 3) in nnumpy.

    python examples/nielsen_ch3.py [--data-root DIR] [--offline] [--epochs 30] [--hidden 100]

The book's network2.py: 784-100-10, sigmoid hidden and output neurons, the
cross-entropy cost of each sigmoid output, L2 regularisation of the weights
only, weights drawn from N(0, 1/n_in) and biases from N(0, 1), plain SGD with
eta = 0.5, lambda = 5.0, mini-batches of 10, 30 epochs, trained on the first
50,000 MNIST training images and validated on the last 10,000.  The book
reports 97.92 % validation accuracy for this network.

How the book's formulas map to nnumpy's public API:

* cost per image  C_x = sum_j -[y_j ln a_j + (1 - y_j) ln(1 - a_j)],  a = sigmoid(z):
  ``BCEWithLogitsLoss(reduction="sum")`` on the logits z and one-hot targets y
  (log-sum-exp form: no log(0) however saturated the sigmoid);
* the update  w <- (1 - eta lambda / n) w - (eta / m) sum_x dC_x/dw  (m = 10, n = 50,000):
  summed losses, so SGD's ``lr = eta / m``; the decay term
  ``lr * weight_decay = eta lambda / n`` gives ``weight_decay = lambda m / n``,
  in a parameter group of the weights alone (biases: 0);
* initialisation: ``nn.init.normal_(W, 0, 1 / sqrt(n_in))`` and ``nn.init.normal_(b, 0, 1)``.
"""
import argparse
import sys

import numpy as np

import nnumpy as nnp
from nnumpy.datasets import DatasetNotFoundError, DownloadError, load_mnist


def build(hidden, seed):
    """784-hidden-10 with the book's initialisation; sigmoid outputs live in the loss."""
    f64 = np.float64
    model = nnp.Sequential(nnp.Linear(784, hidden, dtype=f64, init=False), nnp.Sigmoid(),
                           nnp.Linear(hidden, 10, dtype=f64, init=False))
    rng = np.random.default_rng(seed)
    for layer in (model[0], model[2]):
        nnp.nn.init.normal_(layer.weight, 0.0, 1.0 / np.sqrt(layer.in_features), rng=rng)
        nnp.nn.init.normal_(layer.bias, 0.0, 1.0, rng=rng)
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", help="folder with the four MNIST IDX files (default: search, then download)")
    p.add_argument("--offline", action="store_true", help="never download")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--eta", type=float, default=0.5)
    p.add_argument("--lmbda", type=float, default=5.0)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        (x, labels), _ = load_mnist(args.data_root, download=not args.offline, flatten=True, scale=True)
    except (DatasetNotFoundError, DownloadError) as e:
        sys.exit(f"error: {e.message(cli=True)}")
    x = x.astype(np.float64)
    y = nnp.one_hot(labels, 10, dtype=np.float64)              # the book's vectorised targets
    train, val = (x[:50000], y[:50000]), (x[50000:], y[50000:])
    n, m = len(train[0]), args.batch_size

    model = build(args.hidden, args.seed)
    weights = [q for name, q in model.named_parameters() if name.endswith("weight")]
    biases = [q for name, q in model.named_parameters() if name.endswith("bias")]
    opt = nnp.optim.SGD([{"params": weights, "weight_decay": args.lmbda * m / n},
                         {"params": biases, "weight_decay": 0.0}], lr=args.eta / m)
    history = nnp.fit(model, nnp.BCEWithLogitsLoss(reduction="sum"), opt, train, val, epochs=args.epochs,
                      batch_size=m, seed=args.seed, verbose=True, progress=False)
    best = int(np.argmax(history.val_acc))
    print(f"validation accuracy: {100 * history.val_acc[-1]:.2f} % after {len(history)} epochs "
          f"(best {100 * history.val_acc[best]:.2f} % at epoch {best + 1}; the book: 97.92 %)")


if __name__ == "__main__":
    main()
