"""Reproduce the published test errors of fully connected networks on MNIST
(no distortions, no preprocessing) and of an MLP on Fashion-MNIST.

    python benchmarks/accuracy.py [--rows 784-800-10 ...] [--json out.json]

Published figures (LeCun et al. 1998 and the MNIST page's table; Simard et
al. 2003; the Fashion-MNIST README's benchmark table):

    784-300-10        4.7 %   (LeCun et al., MSE)
    784-1000-10       4.5 %   (LeCun et al., MSE)
    784-300-100-10    3.05 %  (LeCun et al., MSE)
    784-500-150-10    2.95 %  (LeCun et al., MSE)
    784-800-10        1.6 %   (Simard et al., cross-entropy)
    Fashion-MNIST, MLP 256-128-100: 88.33 % accuracy

Every network here is trained with cross-entropy on the 60,000 training
images and evaluated once, at the end, on the 10,000 test images; the
recipe of each row (optimizer, learning rate and schedule, epochs, batch,
dropout, weight decay, seed) is printed beside its result.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import nnumpy as nnp  # noqa: E402

#: name -> (dataset, arch, published test error in %, source, recipe)
ROWS = {
    "784-300-10": ("mnist", [784, 300, 10], 4.7, "LeCun et al. 1998",
                   dict(lr=0.05, momentum=0.9, epochs=15, batch=64, dropout=0.0, wd=0.0)),
    "784-1000-10": ("mnist", [784, 1000, 10], 4.5, "LeCun et al. 1998",
                    dict(lr=0.05, momentum=0.9, epochs=15, batch=64, dropout=0.0, wd=0.0)),
    "784-300-100-10": ("mnist", [784, 300, 100, 10], 3.05, "LeCun et al. 1998",
                       dict(lr=0.05, momentum=0.9, epochs=15, batch=64, dropout=0.0, wd=0.0)),
    "784-500-150-10": ("mnist", [784, 500, 150, 10], 2.95, "LeCun et al. 1998",
                       dict(lr=0.05, momentum=0.9, epochs=15, batch=64, dropout=0.0, wd=0.0)),
    "784-800-10": ("mnist", [784, 800, 10], 1.6, "Simard et al. 2003",
                   dict(lr=0.05, momentum=0.9, epochs=40, batch=64, dropout=0.3, wd=1e-4)),
    "fashion 784-256-128-100-10": ("fashion-mnist", [784, 256, 128, 100, 10], 100 - 88.33,
                                   "Fashion-MNIST README (MLP 256-128-100)",
                                   dict(lr=0.05, momentum=0.9, epochs=30, batch=64, dropout=0.2, wd=1e-4)),
}


def recipe_text(r):
    return (f"SGD lr {r['lr']} momentum {r['momentum']} Nesterov, cosine to 0 over {r['epochs']} epochs, "
            f"batch {r['batch']}, dropout {r['dropout']}, weight decay {r['wd']}, ReLU, seed {r['seed']}")


def run_row(name, data, args):
    dataset, arch, published, source, recipe = ROWS[name]
    recipe = {**recipe, "seed": args.seed}
    if args.quick:
        recipe.update(epochs=1)
    (x, y), (xt, yt) = data[dataset]
    model = nnp.MLP(arch, activation="relu", dropout=recipe["dropout"], rng=recipe["seed"])
    opt = nnp.optim.SGD(model.parameters(), lr=recipe["lr"], momentum=recipe["momentum"], nesterov=True,
                        weight_decay=recipe["wd"])
    sched = nnp.optim.CosineAnnealingLR(opt, T_max=recipe["epochs"])
    t0 = time.perf_counter()
    nnp.fit(model, nnp.CrossEntropyLoss(), opt, (x, y), epochs=recipe["epochs"], batch_size=recipe["batch"],
            seed=recipe["seed"], scheduler=sched, progress=args.progress)
    seconds = time.perf_counter() - t0
    _, acc = nnp.evaluate(model, xt, yt)
    err = 100 * (1 - acc)
    return {"row": name, "dataset": dataset, "arch": "-".join(map(str, arch)), "published_error": published,
            "source": source, "error": err, "at_or_below": err <= published, "seconds": seconds,
            "recipe": recipe, "recipe_text": recipe_text(recipe)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="ROW",
                   help="rows to run (default all): " + ", ".join(ROWS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="one epoch on 2,000 samples (a smoke test)")
    p.add_argument("--data-root", help="MNIST folder (default: nnumpy's search path, downloading if needed)")
    p.add_argument("--progress", action="store_true", help="show a progress bar per epoch")
    p.add_argument("--json")
    args = p.parse_args(argv)
    from nnumpy.datasets import load_fashion_mnist, load_mnist
    data = {}
    if any(ROWS[r][0] == "mnist" for r in args.rows):
        data["mnist"] = load_mnist(args.data_root, flatten=True, scale=True)
    if any(ROWS[r][0] == "fashion-mnist" for r in args.rows):
        data["fashion-mnist"] = load_fashion_mnist(flatten=True, scale=True)
    if args.quick:
        data = {k: ((x[:2000], y[:2000]), (xt[:1000], yt[:1000])) for k, ((x, y), (xt, yt)) in data.items()}
    info = common.machine()
    common.print_machine(info)
    print(f"# backend {nnp.get_backend()}; test error after training on the full training set"
          + (" (QUICK: 1 epoch, 2,000 samples: not comparable)" if args.quick else ""))
    print(f"{'row':<28}{'published':>10}{'nnumpy':>9}{'time':>8}  recipe")
    rows, t_all = [], time.perf_counter()
    for name in args.rows:
        r = run_row(name, data, args)
        rows.append(r)
        mark = "quick run" if args.quick else ("ok" if r["at_or_below"] else "ABOVE")
        print(f"{name:<28}{r['published_error']:>9.2f}%{r['error']:>8.2f}%{r['seconds']:>7.0f}s  "
              f"{mark}; {r['recipe_text']}  [{r['source']}]", flush=True)
    total = time.perf_counter() - t_all
    print(f"# total wall time {total:.0f} s")
    if args.json:
        common.write_json(args.json, {"machine": info, "backend": nnp.get_backend(), "quick": args.quick,
                                      "rows": rows, "total_seconds": total})
    return 0 if all(r["at_or_below"] for r in rows) or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
