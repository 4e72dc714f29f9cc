"""The practical's exercise 2 as functions: train one MLP, sweep many (with
learning-rate tuning on the validation set), evaluate a finished run.

A run folder (``train``) holds:

    config.json     the resolved configuration
    history.csv     per-epoch training/validation loss and accuracy, learning rate, seconds
    history.json    the same
    curves.png      cost and accuracy against epoch, training and validation
    model.npz       the trained model (nnumpy.save)
    metrics.json    final training/validation figures and the test loss and accuracy

A sweep folder (``sweep``) holds ``summary.md`` / ``summary.csv`` (one row per
variant, then the favourite's test row), ``tuning.csv`` (every learning rate
tried), ``comparison.png`` and one run folder per variant under ``variants/``.
``evaluate`` adds ``evaluation/`` to a run folder: per-class accuracy, a
confusion matrix (PNG and text) and a grid of misclassified test images.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import nn, optim, plots
from .datasets import fetch, get_spec, load_dataset, train_val_split
from .parallel import run_parallel
from .serialization import load, save
from .training import TrainingInterrupted, evaluate, fit, predict

__all__ = ["RunConfig", "train_run", "sweep", "evaluate_run", "PRESETS", "load_sweep_config", "SweepInterrupted",
           "ConfigError"]


class ConfigError(ValueError):
    """A run or sweep is configured wrongly (the command line exits with code 2)."""


@dataclass
class RunConfig:
    """Everything that determines a training run (same config, same numbers)."""

    arch: list = field(default_factory=lambda: [784, 100, 10])
    activation: str = "relu"
    optimizer: str = "sgd"            # "sgd" (with momentum) or "adam"
    lr: float = 0.05
    momentum: float = 0.9
    schedule: str = "cosine"          # "cosine" (to 0 over the epochs) or "constant"
    epochs: int = 20
    batch_size: int = 64
    val_fraction: float = 0.1
    seed: int = 0
    dataset: str = "mnist"
    data_root: str | None = None
    download: bool = True
    mirrors: list | None = None       # base URLs to download from instead of the dataset's own
    limit_train: int | None = None    # use only the first N training images (quick runs, tests)
    limit_test: int | None = None

    def validate(self):
        problems = []
        if len(self.arch) < 2 or min(self.arch) < 1:
            problems.append(f"arch needs at least two positive sizes, got {self.arch}")
        elif self.arch[0] != 784:
            problems.append(f"arch must start with 784 (28x28 images), got {self.arch[0]}")
        elif self.arch[-1] != 10:
            problems.append(f"arch must end with 10 (classes), got {self.arch[-1]}")
        if self.activation not in nn.ACTIVATIONS:
            problems.append(f"activation must be one of {sorted(nn.ACTIVATIONS)}, got {self.activation!r}")
        if self.optimizer not in ("sgd", "adam"):
            problems.append(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.schedule not in ("cosine", "constant"):
            problems.append(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if not self.lr > 0:
            problems.append(f"lr must be positive, got {self.lr}")
        if self.epochs < 1 or self.batch_size < 1:
            problems.append("epochs and batch size must be positive")
        if not 0 < self.val_fraction < 1:
            problems.append(f"val_fraction must lie in (0, 1), got {self.val_fraction}")
        try:
            get_spec(self.dataset)
        except ValueError as e:
            problems.append(str(e))
        if problems:
            raise ConfigError("; ".join(problems))
        return self


def load_data(cfg):
    """(train, val, test) splits of the configured dataset: flattened float32 in [0, 1]."""
    (x, y), (xt, yt) = load_dataset(cfg.dataset, root=cfg.data_root, download=cfg.download, mirrors=cfg.mirrors,
                                    flatten=True, scale=True)
    if cfg.limit_train:
        x, y = x[:cfg.limit_train], y[:cfg.limit_train]
    if cfg.limit_test:
        xt, yt = xt[:cfg.limit_test], yt[:cfg.limit_test]
    train, val = train_val_split(x, y, cfg.val_fraction, seed=cfg.seed, stratify=True)
    return train, val, (xt, yt)


def _build(cfg):
    model = nn.MLP(cfg.arch, activation=cfg.activation, rng=cfg.seed, input_grad=False)
    if cfg.optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=cfg.lr)
    else:
        opt = optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    sched = optim.CosineAnnealingLR(opt, T_max=cfg.epochs) if cfg.schedule == "cosine" else None
    return model, opt, sched


def _write_history(history, out):
    d = history.to_dict()
    (out / "history.json").write_text(json.dumps(d, indent=1))
    with open(out / "history.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(d))
        w.writerows(zip(*d.values()))


def _title(cfg):
    return (f"{'-'.join(map(str, cfg.arch))}, {cfg.activation}, {cfg.optimizer} lr {cfg.lr:g}, "
            f"batch {cfg.batch_size}, {cfg.dataset}")


def train_run(cfg, out, data=None, progress=None, verbose=False, test=True):
    """Train one model as configured and write its run folder ``out``.

    Returns the metrics dict.  On Ctrl-C the finished epochs are written
    (history, curves, model, metrics with ``"interrupted": true``) before
    :class:`~nnumpy.training.TrainingInterrupted` propagates.
    """
    cfg.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
    train, val, tst = data if data is not None else load_data(cfg)
    model, opt, sched = _build(cfg)
    crit = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    interrupted = None
    try:
        history = fit(model, crit, opt, train, val, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                      scheduler=sched, progress=progress, verbose=verbose)
    except TrainingInterrupted as e:
        history, interrupted = e.history, e
    metrics = {"arch": cfg.arch, "activation": cfg.activation, "lr": cfg.lr, "epochs_run": len(history),
               "seconds": time.perf_counter() - t0, "interrupted": interrupted is not None}
    if len(history):
        _write_history(history, out)
        plots.learning_curves(history.to_dict(), out / "curves.png", _title(cfg))
        save(model, out / "model.npz")
        metrics.update(train_loss=history.train_loss[-1], train_acc=history.train_acc[-1],
                       val_loss=history.val_loss[-1], val_acc=history.val_acc[-1])
        if test and interrupted is None:
            metrics["test_loss"], metrics["test_acc"] = evaluate(model, *tst)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    if interrupted is not None:
        raise interrupted
    return metrics


# ---------------------------------------------------------------------------------------------
# Sweeps
# ---------------------------------------------------------------------------------------------
#: The practical's exercise 2: at least five architectures, ReLU and sigmoid, batch 64.
PRESETS = {
    "practical": {
        "settings": {"epochs": 20, "tune_epochs": 3, "batch_size": 64, "optimizer": "sgd", "momentum": 0.9,
                     "val_fraction": 0.1, "seed": 0, "dataset": "mnist"},
        "variants": [
            {"name": "A 784-100-10 relu", "arch": "784-100-10", "activation": "relu",
             "lrs": [0.01, 0.03, 0.1, 0.3]},
            {"name": "B 784-300-100-10 relu", "arch": "784-300-100-10", "activation": "relu",
             "lrs": [0.01, 0.03, 0.1, 0.3]},
            {"name": "C 784-100-200-50-10 relu", "arch": "784-100-200-50-10", "activation": "relu",
             "lrs": [0.01, 0.03, 0.1, 0.3]},
            {"name": "D 784-100-200-50-10 sigmoid", "arch": "784-100-200-50-10", "activation": "sigmoid",
             "lrs": [0.03, 0.1, 0.3, 1.0]},
            {"name": "E 784-500-150-10 relu", "arch": "784-500-150-10", "activation": "relu",
             "lrs": [0.01, 0.03, 0.1, 0.3]},
            {"name": "F 784-300-10 sigmoid", "arch": "784-300-10", "activation": "sigmoid",
             "lrs": [0.03, 0.1, 0.3, 1.0]},
        ],
    },
}


def load_sweep_config(path):
    """A sweep from a TOML file: a ``[settings]`` table (as in the presets) and
    ``[[variants]]`` tables with name, arch, activation and lrs."""
    try:
        import tomllib
    except ImportError:                   # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            spec = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    if not spec.get("variants"):
        raise ConfigError(f"{path}: no [[variants]] tables")
    for v in spec["variants"]:
        if not isinstance(v, dict) or not {"name", "arch", "lrs"} <= set(v) or not v["lrs"]:
            raise ConfigError(f"{path}: every [[variants]] table needs name, arch and a non-empty lrs list")
    return {"settings": spec.get("settings", {}), "variants": spec["variants"]}


def _variant_config(variant, settings, overrides, lr, epochs):
    try:
        arch = [int(s) for s in str(variant["arch"]).split("-")]
    except ValueError:
        raise ConfigError(f"variant {variant.get('name')!r}: arch must look like 784-100-10") from None
    keys = {f.name for f in dataclasses.fields(RunConfig)}
    base = {k: v for k, v in {**settings, **overrides}.items() if k in keys}
    return RunConfig(**{**base, "arch": arch, "activation": variant.get("activation", "relu"), "lr": float(lr),
                        "epochs": int(epochs)}).validate()


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; the finished variants were written."""


def _tune_and_train(variant, settings, overrides, out, progress=False, data=None):
    """Try each of the variant's learning rates for a few epochs, keep the best
    on the validation set, train that one fully.  Returns the variant's result.
    ``data``: the (train, val, test) splits, or None to load them here (a worker)."""
    name = variant["name"]
    tune_epochs = int(settings.get("tune_epochs", 3))
    if data is None:
        data = load_data(_variant_config(variant, settings, overrides, variant["lrs"][0], tune_epochs))
    trials = []
    for lr in variant["lrs"]:
        cfg = _variant_config(variant, settings, overrides, lr, tune_epochs)
        model, opt, sched = _build(cfg)
        h = fit(model, nn.CrossEntropyLoss(), opt, data[0], data[1], epochs=cfg.epochs,
                batch_size=cfg.batch_size, seed=cfg.seed, scheduler=sched, progress=False)
        trials.append({"variant": name, "lr": lr, "epochs": cfg.epochs, "val_loss": h.val_loss[-1],
                       "val_acc": h.val_acc[-1]})
    best = max(trials, key=lambda t: (t["val_acc"], -t["val_loss"]))
    cfg = _variant_config(variant, settings, overrides, best["lr"], settings.get("epochs", 20))
    run_dir = Path(out) / "variants" / _slug(name)
    metrics = train_run(cfg, run_dir, data=data, progress=progress, test=False)
    return {"variant": name, "arch": "-".join(map(str, cfg.arch)), "layers": len(cfg.arch) - 1,
            "units": "-".join(map(str, cfg.arch[1:-1])) or "-", "activation": cfg.activation,
            "best_lr": best["lr"], "epochs": cfg.epochs, "train_loss": metrics["train_loss"],
            "train_acc": metrics["train_acc"], "val_loss": metrics["val_loss"], "val_acc": metrics["val_acc"],
            "seconds": metrics["seconds"], "run": str(run_dir), "trials": trials}


def _slug(name):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("_")


def sweep(spec, out, jobs=1, overrides=None, progress=None, log=print):
    """Tune and train every variant of ``spec`` (a preset or
    :func:`load_sweep_config`), pick the favourite by validation accuracy,
    test it once, and write the sweep folder ``out``.  ``jobs`` > 1 trains
    variants in parallel processes with one BLAS thread each.  Returns the
    summary rows (the favourite's has ``test_loss``/``test_acc``).

    Everything is checked before anything is written or trained: the
    variants, and the data (found, verified, downloaded if allowed) once,
    here, so that parallel workers never download.  The first failure of
    any variant stops the sweep and is raised as it was raised in its
    worker."""
    out = Path(out)
    settings, variants, overrides = dict(spec["settings"]), list(spec["variants"]), dict(overrides or {})
    names = [v.get("name") for v in variants]
    if len(set(names)) != len(names) or None in names:
        raise ConfigError("every variant needs a distinct name")
    configs = [_variant_config(v, settings, overrides, v["lrs"][0], 1) for v in variants]   # fail early
    if jobs <= 1:
        data, worker_overrides = load_data(configs[0]), overrides
    else:
        c = configs[0]
        fetch(c.dataset, root=c.data_root, download=c.download, mirrors=c.mirrors, progress=progress)
        data, worker_overrides = None, {**overrides, "download": False}     # the workers only read
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps({"settings": settings, "variants": variants,
                                                "overrides": overrides}, indent=1))
    tasks = [(v, settings, worker_overrides, str(out)) for v in variants]
    results, t0 = [], time.perf_counter()

    def finished(r):
        results.append(r)
        log(f"  {r['variant']}: lr {r['best_lr']:g}, validation accuracy {100 * r['val_acc']:.2f} %")

    try:
        if jobs <= 1:
            for task in tasks:
                finished(_tune_and_train(*task, progress=progress, data=data))
        else:
            run_parallel(_tune_and_train, tasks, jobs, finished)
    except KeyboardInterrupt:
        if results:
            _write_sweep(out, sorted(results, key=lambda r: names.index(r["variant"])), None, t0)
        raise SweepInterrupted(f"sweep stopped; {len(results)} of {len(tasks)} variant(s) had finished"
                               + (f" and are summarised in {out}" if results else "")) from None
    results.sort(key=lambda r: names.index(r["variant"]))
    fav = max(results, key=lambda r: (r["val_acc"], -r["val_loss"]))
    model = load(Path(fav["run"]) / "model.npz")
    _, _, tst = data if data is not None else load_data(configs[0])
    fav["test_loss"], fav["test_acc"] = evaluate(model, *tst)
    metrics_path = Path(fav["run"]) / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics.update(test_loss=fav["test_loss"], test_acc=fav["test_acc"])
    metrics_path.write_text(json.dumps(metrics, indent=1))
    _write_sweep(out, results, fav, t0)
    return results


_COLUMNS = ["variant", "layers", "units", "activation", "best_lr", "epochs", "train_loss", "train_acc",
            "val_loss", "val_acc", "test_loss", "test_acc"]


def _fmt(key, value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if key.endswith("_acc"):
        return f"{100 * value:.2f} %"
    if key.endswith("_loss"):
        return f"{value:.4f}"
    if key == "best_lr":
        return f"{value:g}"
    return str(value)


def _duration(seconds):
    """12.3 s, or 2.8 min from a minute on."""
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def _write_sweep(out, results, fav, t0):
    rows = [dict(r) for r in results]
    for r in rows:
        r.pop("test_loss", None), r.pop("test_acc", None)
    if fav is not None:
        rows.append({**{k: fav[k] for k in _COLUMNS if k in fav}, "variant": f"favourite: {fav['variant']}"})
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    with open(out / "tuning.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["variant", "lr", "epochs", "val_loss", "val_acc"])
        w.writeheader()
        for r in results:
            w.writerows(r["trials"])
    head = ["variant", "layers", "units", "activation", "best lr", "epochs", "train loss", "train acc",
            "val loss", "val acc", "test loss", "test acc"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(k, r.get(k)) for k in _COLUMNS) + " |")
    seconds = time.perf_counter() - t0
    note = (f"\nFavourite by validation accuracy: **{fav['variant']}**, test accuracy "
            f"**{100 * fav['test_acc']:.2f} %** (evaluated once on the test set).\n" if fav else
            "\nInterrupted: only the finished variants are listed; no favourite was tested.\n")
    (out / "summary.md").write_text("\n".join(lines) + "\n" + note + f"\nWall time: {_duration(seconds)}.\n")
    histories = {}
    for r in results:
        h = json.loads((Path(r["run"]) / "history.json").read_text())
        histories[r["variant"]] = h
    plots.compare_runs(histories, out / "comparison.png", "final training runs, each at its best learning rate")


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
def evaluate_run(run_dir):
    """Test a run folder's model: loss, accuracy, per-class accuracy, a
    confusion matrix (PNG and text) and misclassified images, written to
    ``run_dir/evaluation/``.  Returns the figures as a dict."""
    run_dir = Path(run_dir)
    for name in ("config.json", "model.npz"):
        if not (run_dir / name).is_file():
            raise ConfigError(f"{run_dir} is not a run folder of 'nnumpy train': {name} is missing")
    raw = json.loads((run_dir / "config.json").read_text())
    cfg = RunConfig(**{k: v for k, v in raw.items() if k in {f.name for f in dataclasses.fields(RunConfig)}})
    model = load(run_dir / "model.npz")
    _, _, (xt, yt) = load_data(cfg)
    loss, acc = evaluate(model, xt, yt)
    pred = predict(model, xt)
    classes = list(get_spec(cfg.dataset).classes)
    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (yt, pred), 1)
    per_class = (np.diag(cm) / np.maximum(cm.sum(axis=1), 1)).tolist()
    out = run_dir / "evaluation"
    out.mkdir(exist_ok=True)
    plots.confusion_matrix_figure(cm, classes, out / "confusion.png")
    wrong = np.flatnonzero(pred != yt)[:40]
    plots.misclassified_grid(xt[wrong].reshape(-1, 28, 28), pred[wrong], yt[wrong], classes,
                             out / "misclassified.png")
    width = max(len(c) for c in classes) + 2
    lines = [f"test loss {loss:.4f}, test accuracy {100 * acc:.2f} % on {len(yt)} images", "",
             "confusion matrix (rows: true class, columns: predicted class)",
             " " * width + "".join(f"{c[:5]:>6}" for c in classes)]
    lines += [f"{classes[i]:<{width}}" + "".join(f"{v:>6}" for v in row) for i, row in enumerate(cm)]
    lines += ["", "per-class accuracy"] + [f"{c:<{width}}{100 * a:6.2f} %" for c, a in zip(classes, per_class)]
    (out / "confusion.txt").write_text("\n".join(lines) + "\n")
    result = {"test_loss": loss, "test_acc": acc, "per_class_acc": dict(zip(classes, per_class)),
              "confusion_matrix": cm.tolist(), "misclassified": int((pred != yt).sum())}
    (out / "evaluation.json").write_text(json.dumps(result, indent=1))
    return result
