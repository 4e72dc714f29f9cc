"""The practical's exercise 2 as functions: train one MLP, sweep many (with
learning-rate tuning on the validation set), evaluate a finished run.

A run folder (``train``) holds:

    config.json     the resolved configuration
    history.csv     per-epoch training/validation loss and accuracy, learning rate, seconds
    history.json    the same
    curves.png      cost and accuracy against epoch, training and validation
    model.npz       the trained model (nnumpy.save)
    checkpoint.npz  model, optimizer, scheduler, history and generator states after the last
                    finished epoch (nnumpy.save_checkpoint): ``nnumpy train --resume RUN``
                    continues from it, bit for bit as if the run had never stopped
    metrics.json    final training/validation figures and the test loss and accuracy

A sweep folder (``sweep``, :mod:`nnumpy.sweeps`) holds the sweep's finished trials
under ``trials/``, one run folder per variant under ``variants/``, the summary
(``summary.md``, ``summary.csv``), ``tuning.csv`` and ``comparison.png``.
``evaluate`` adds ``evaluation/`` to a run folder: per-class accuracy, a
confusion matrix (PNG and text) and a grid of misclassified test images.

Every run folder is one run: it is written under a temporary name beside its
destination and renamed into place when the run ends, finished or
interrupted (see :mod:`nnumpy.rundir`); on Ctrl-C the saved model is the
one of the last finished epoch, so model, history and metrics agree.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
import time
from pathlib import Path

import numpy as np

from . import nn, optim, plots
from .datasets import get_spec, load_dataset, train_val_split
from .rundir import is_run_folder, run_folder, write_text
from .runconfig import PRESETS, ConfigError, RunConfig, load_sweep_config
from .models import build_model
from .serialization import describe, load, save
from .training import ResumeError, TrainingInterrupted, evaluate, fit, predict

__all__ = ["RunConfig", "train_run", "sweep", "evaluate_run", "PRESETS", "load_sweep_config", "SweepInterrupted",
           "ConfigError"]


def load_data(cfg):
    """(train, val, test) splits of the configured dataset, float32 in [0, 1]:
    flattened (N, 784) for an MLP, image batches (N, 1, 28, 28) for a CNN."""
    (x, y), (xt, yt) = load_dataset(cfg.dataset, root=cfg.data_root, download=cfg.download, mirrors=cfg.mirrors,
                                    flatten=cfg.model == "mlp", scale=True)
    if cfg.model != "mlp":
        x, xt = x[:, None], xt[:, None]                 # (N, 28, 28) -> (N, 1, 28, 28), views
    if cfg.limit_train:
        x, y = x[:cfg.limit_train], y[:cfg.limit_train]
    if cfg.limit_test:
        xt, yt = xt[:cfg.limit_test], yt[:cfg.limit_test]
    train, val = train_val_split(x, y, cfg.val_fraction, seed=cfg.seed, stratify=True)
    return train, val, (xt, yt)


def _build(cfg):
    if cfg.model == "mlp":
        model = nn.MLP(cfg.arch, activation=cfg.activation, rng=cfg.seed, input_grad=False)
    else:
        model = build_model(cfg.model, rng=cfg.seed, input_grad=False)
    if cfg.optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=cfg.lr)
    else:
        opt = optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    sched = optim.CosineAnnealingLR(opt, T_max=cfg.epochs) if cfg.schedule == "cosine" else None
    return model, opt, sched


def _csv(fieldnames, rows):
    """CSV text of dict rows (written atomically by the caller)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fieldnames, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _write_history(history, folder):
    d = history.to_dict()
    write_text(folder / "history.json", json.dumps(d, indent=1))
    write_text(folder / "history.csv", _csv(list(d), [dict(zip(d, row)) for row in zip(*d.values())]))


def describe_model(cfg):
    """"784-100-10 (relu)" for an MLP, the model's name otherwise."""
    return f"{'-'.join(map(str, cfg.arch))} ({cfg.activation})" if cfg.model == "mlp" else cfg.model


def _title(cfg):
    return f"{describe_model(cfg)}, {cfg.optimizer} lr {cfg.lr:g}, batch {cfg.batch_size}, {cfg.dataset}"


#: RunConfig fields a resumed run may change: the epochs (a larger total) and where the data is
_RESUMABLE = ("epochs", "data_root", "download", "mirrors")


def _resume_point(out, cfg):
    """The checkpoint of the run folder ``out`` to resume ``cfg`` from (ConfigError when there is none,
    or when it already holds cfg.epochs epochs)."""
    from .checkpoint import CheckpointError, load_checkpoint
    out = Path(out)
    if not is_run_folder(out):
        raise ConfigError(f"{out} is not a run folder written by 'nnumpy train': nothing to resume")
    path = out / "checkpoint.npz"
    if not path.is_file():
        raise ConfigError(f"{out} holds no checkpoint.npz (no epoch had finished, or an older nnumpy wrote it): "
                          f"it cannot be resumed")
    try:
        ck = load_checkpoint(path, restore_rng=False)
    except CheckpointError as e:
        raise ConfigError(f"cannot resume {out}: {e}") from None
    done = ck.epoch
    trained = ((ck.extra or {}).get("user") or {}).get("run_config")
    if isinstance(trained, dict):                     # what the run was trained with, against config.json now
        now = dataclasses.asdict(cfg)
        changed = [f"{k} {trained.get(k)!r:.40} -> {v!r:.40}" for k, v in now.items()
                   if k not in _RESUMABLE and trained.get(k) != v]
        if changed:
            raise ConfigError(f"cannot resume {out}: its config.json no longer describes the run in its checkpoint "
                              f"({'; '.join(changed)}); put config.json back, or start a new run")
    before = _run_config_of(out, need_model=False)
    if cfg.schedule == "cosine" and before.epochs != cfg.epochs:
        raise ConfigError(f"{out} anneals its learning rate over {before.epochs} epochs (--schedule cosine): "
                          f"it can be resumed to those {before.epochs} epochs only, not {cfg.epochs}")
    if done >= cfg.epochs:
        raise ConfigError(f"{out} has finished {done} of its {cfg.epochs} epochs; to train it further pass "
                          f"--epochs with a larger total (with --schedule constant)")
    return path, done


def train_run(cfg, out, data=None, progress=None, verbose=False, test=True, overwrite=False, resume=False):
    """Train one model as configured and write its run folder ``out``.

    With ``resume``, ``out`` is a run folder of this configuration (its
    ``epochs`` may be larger) that stopped early (Ctrl-C) or finished: training
    continues from its ``checkpoint.npz`` to ``cfg.epochs`` in all, exactly as
    an uninterrupted run would have gone, and the new folder replaces it.

    The configuration and the data are checked before any folder is made;
    the folder is written under a temporary name and renamed onto ``out``
    at the end (an existing ``out`` is replaced only with ``overwrite`` and
    only if nnumpy wrote it).  Returns the metrics dict.  On Ctrl-C the
    finished epochs are written (history, curves, the model as it was after
    the last finished epoch, metrics with ``"interrupted": true``) before
    :class:`~nnumpy.training.TrainingInterrupted` propagates.  A diverging
    run (:class:`~nnumpy.training.TrainingDivergedError`) writes nothing.
    """
    cfg.validate()
    start, done = (_resume_point(out, cfg) if resume else (None, 0))
    train, val, tst = data if data is not None else load_data(cfg)
    model, opt, sched = _build(cfg)
    with run_folder(out, overwrite=overwrite or resume, kind="run", config=dataclasses.asdict(cfg)) as staged:
        folder = staged.path
        t0 = time.perf_counter()
        interrupted = None
        try:
            history = fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=cfg.epochs,
                          batch_size=cfg.batch_size, seed=cfg.seed, scheduler=sched, progress=progress,
                          verbose=verbose, checkpoint=folder / "checkpoint.npz", resume=start,
                          checkpoint_extra={"run_config": dataclasses.asdict(cfg)})
        except ResumeError as e:
            raise ConfigError(f"cannot resume {out}: {e}") from None
        except TrainingInterrupted as e:
            history, interrupted = e.history, e
            if e.state is not None:
                model.load_state_dict(e.state)            # the model of the last finished epoch
        if interrupted is not None and start is not None and len(history) == done:
            shutil.copyfile(start, folder / "checkpoint.npz")    # stopped before a new epoch: keep the old one
        metrics = {"model": cfg.model, "arch": cfg.arch, "activation": cfg.activation, "lr": cfg.lr,
                   "epochs_run": len(history), "resumed_after": done if resume else None,
                   "seconds": time.perf_counter() - t0, "interrupted": interrupted is not None}
        if len(history):
            _write_history(history, folder)
            plots.learning_curves(history.to_dict(), folder / "curves.png", _title(cfg))
            model.input_grad = True             # (trained without: the data needs no gradient; a user's may)
            save(model, folder / "model.npz")
            metrics.update(train_loss=history.train_loss[-1], train_acc=history.train_acc[-1],
                           val_loss=history.val_loss[-1], val_acc=history.val_acc[-1])
            if test and interrupted is None:
                metrics["test_loss"], metrics["test_acc"] = evaluate(model, *tst)
        write_text(folder / "metrics.json", json.dumps(metrics, indent=1))
        staged.commit()
    if interrupted is not None:
        raise interrupted
    return metrics


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
def _run_config_of(run_dir, need_model=True):
    """The RunConfig stored in a run folder (ConfigError if it is not one)."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ConfigError(f"{run_dir} does not exist (no run folder there)")
    if not (run_dir / "config.json").is_file() or (need_model and not (run_dir / "model.npz").is_file()):
        missing = "config.json" if not (run_dir / "config.json").is_file() else "model.npz"
        if (run_dir / "variants").is_dir() and (run_dir / "trials").is_dir():
            raise ConfigError(f"{run_dir} is a sweep folder: its run folders are {run_dir}/variants/NAME (one per "
                              f"variant) and {run_dir}/trials/NAME/lr-LR (one per learning rate tried)")
        raise ConfigError(f"{run_dir} is not a run folder of 'nnumpy train' ({missing} is missing)")
    try:
        raw = json.loads((run_dir / "config.json").read_text())
        names = {f.name for f in dataclasses.fields(RunConfig)}
        if not need_model and isinstance(raw, dict) and set(raw) != names:    # (resuming: the file must be whole)
            odd = sorted(set(raw) - names) + [f"missing {k}" for k in sorted(names - set(raw))]
            raise ConfigError(f"{run_dir}/config.json is not the configuration nnumpy wrote ({', '.join(odd)})")
        cfg = RunConfig(**{k: v for k, v in raw.items() if k in names})
        return cfg.validate()
    except ConfigError:
        raise
    except (ValueError, TypeError, AttributeError, OSError, RecursionError) as e:
        raise ConfigError(f"{run_dir}/config.json is not a valid run configuration: {e}") from None


def evaluate_run(run_dir):
    """Test a run folder's model: loss, accuracy, per-class accuracy, a
    confusion matrix (PNG and text) and misclassified images, written to
    ``run_dir/evaluation/`` (as one piece, replacing an earlier evaluation).
    Returns the figures as a dict."""
    run_dir = Path(run_dir)
    cfg = _run_config_of(run_dir)
    model = load(run_dir / "model.npz")
    built = _build(cfg)[0]
    built.input_grad = model.input_grad = True          # (saved with or without: not part of the architecture)
    if describe(model) != describe(built):
        raise ConfigError(f"{run_dir}: config.json describes the model {describe_model(cfg)}, but model.npz holds "
                          f"another network; one of the two files was replaced or edited")
    _, _, (xt, yt) = load_data(cfg)
    loss, acc = evaluate(model, xt, yt)
    pred = predict(model, xt)
    classes = list(get_spec(cfg.dataset).classes)
    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (yt, pred), 1)
    per_class = (np.diag(cm) / np.maximum(cm.sum(axis=1), 1)).tolist()
    result = {"test_loss": loss, "test_acc": acc, "per_class_acc": dict(zip(classes, per_class)),
              "confusion_matrix": cm.tolist(), "misclassified": int((pred != yt).sum())}
    out = run_dir / "evaluation"
    with run_folder(out, overwrite=is_run_folder(out), kind="evaluation") as staged:
        folder = staged.path
        plots.confusion_matrix_figure(cm, classes, folder / "confusion.png")
        wrong = np.flatnonzero(pred != yt)[:40]
        plots.misclassified_grid(xt[wrong].reshape(-1, 28, 28), pred[wrong], yt[wrong], classes,
                                 folder / "misclassified.png")
        width = max(len(c) for c in classes) + 2
        lines = [f"test loss {loss:.4f}, test accuracy {100 * acc:.2f} % on {len(yt)} images", "",
                 "confusion matrix (rows: true class, columns: predicted class)",
                 " " * width + "".join(f"{c[:5]:>6}" for c in classes)]
        lines += [f"{classes[i]:<{width}}" + "".join(f"{v:>6}" for v in row) for i, row in enumerate(cm)]
        lines += ["", "per-class accuracy"] + [f"{c:<{width}}{100 * a:6.2f} %" for c, a in zip(classes, per_class)]
        write_text(folder / "confusion.txt", "\n".join(lines) + "\n")
        write_text(folder / "evaluation.json", json.dumps(result, indent=1))
        staged.commit()
    return result


def __getattr__(name):
    """``sweep`` and ``SweepInterrupted`` live in :mod:`nnumpy.sweeps` (which builds on this module)."""
    if name in ("sweep", "SweepInterrupted"):
        from . import sweeps
        return getattr(sweeps, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
