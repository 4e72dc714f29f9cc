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

A sweep folder (``sweep``) holds ``config.json`` (the sweep), ``summary.md`` /
``summary.csv`` (one row per variant, then the favourite's test row),
``tuning.csv`` (every learning rate tried, diverged ones marked),
``comparison.png`` and one run folder per variant under ``variants/``.
``evaluate`` adds ``evaluation/`` to a run folder: per-class accuracy, a
confusion matrix (PNG and text) and a grid of misclassified test images.

Every folder is one run: it is written under a temporary name beside its
destination and renamed into place when the run ends, finished or
interrupted (see :mod:`nnumpy.rundir`); on Ctrl-C the saved model is the
one of the last finished epoch, so model, history and metrics agree.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

from . import nn, optim, plots
from .datasets import DatasetWarning, fetch, get_spec, load_dataset, train_val_split
from .parallel import run_parallel
from .rundir import is_run_folder, run_folder, write_text
from .runconfig import PRESETS, ConfigError, RunConfig, check_sweep, load_sweep_config, slug, variant_config
from .models import build_model
from .serialization import ModelFileError, describe, load, save
from .training import ResumeError, TrainingDivergedError, TrainingInterrupted, evaluate, fit, predict

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
# Sweeps
# ---------------------------------------------------------------------------------------------
class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; the finished variants were written."""


def _diverged(e):
    where = f"epoch {e.epoch}" if e.epoch is not None else "training"
    if e.step is not None:
        where += f", step {e.step}"
    return f"diverged ({where})"


def _tune_and_train(variant, settings, overrides, out):
    """In a worker process: try each of the variant's learning rates for a few
    epochs, keep the best on the validation set, train that one fully into
    ``out/variants/<name>``.  A learning rate whose training diverges is
    recorded as such and ruled out.  Returns the variant's result
    (``status`` says whether it finished)."""
    name, lrs = variant["name"], variant["lrs"]
    tune_epochs, epochs = int(settings["tune_epochs"]), int(settings["epochs"])
    cfg = variant_config(variant, settings, overrides, lrs[0], tune_epochs)
    with warnings.catch_warnings():     # the parent checked the data and reported any warning
        warnings.simplefilter("ignore", DatasetWarning)
        data = load_data(cfg)
    if cfg.model == "mlp":
        shape = {"arch": "-".join(map(str, cfg.arch)), "layers": len(cfg.arch) - 1,
                 "units": "-".join(map(str, cfg.arch[1:-1])) or "-", "activation": cfg.activation}
    else:
        weighted = [m for m in _build(cfg)[0].modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        shape = {"arch": cfg.model, "layers": len(weighted), "units": "-", "activation": "-"}
    result = {"variant": name, **shape, "epochs": epochs, "trials": [], "run": None}
    for lr in lrs:
        cfg = variant_config(variant, settings, overrides, lr, tune_epochs)
        model, opt, sched = _build(cfg)
        trial = {"variant": name, "lr": lr, "epochs": tune_epochs, "val_loss": math.nan, "val_acc": math.nan,
                 "diverged": ""}
        try:
            h = fit(model, nn.CrossEntropyLoss(), opt, data[0], data[1], epochs=tune_epochs,
                    batch_size=cfg.batch_size, seed=cfg.seed, scheduler=sched, progress=False)
            trial.update(val_loss=h.val_loss[-1], val_acc=h.val_acc[-1])
        except TrainingDivergedError as e:
            trial["diverged"] = _diverged(e)
        result["trials"].append(trial)
    tried = [t for t in result["trials"] if not t["diverged"]]
    if not tried:
        return {**result, "status": "every learning rate diverged"}
    best = max(tried, key=lambda t: (t["val_acc"], -t["val_loss"]))
    result["best_lr"] = best["lr"]
    cfg = variant_config(variant, settings, overrides, best["lr"], epochs)
    run = Path("variants") / slug(name)
    try:
        metrics = train_run(cfg, Path(out) / run, data=data, progress=False, test=False)
    except TrainingDivergedError as e:
        return {**result, "status": f"final training {_diverged(e)}"}
    return {**result, "train_loss": metrics["train_loss"], "train_acc": metrics["train_acc"],
            "val_loss": metrics["val_loss"], "val_acc": metrics["val_acc"], "seconds": metrics["seconds"],
            "run": str(run), "status": "finished"}


#: overrides that say where the data is, not what is trained: a resumed sweep may change them
_WHERE = ("data_root", "download", "mirrors")


def _finished_variants(out, config):
    """The results of the variants that a stopped sweep folder ``out`` of the same ``config`` holds
    (ConfigError when ``out`` is not such a folder, naming what changed)."""
    out = Path(out)
    if not is_run_folder(out) or not (out / "config.json").is_file():
        raise ConfigError(f"{out} is not a sweep folder written by 'nnumpy sweep': nothing to resume")
    try:
        before = json.loads((out / "config.json").read_text())
        results = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else []
    except (OSError, ValueError, RecursionError) as e:
        raise ConfigError(f"cannot resume {out}: its config.json or results.json is unreadable ({e})") from None
    if (not isinstance(before, dict) or set(before) != {"settings", "variants", "overrides"}
            or not isinstance(before["overrides"], dict)):
        raise ConfigError(f"{out} is not a sweep folder (its config.json is not a sweep's)")
    now = json.loads(json.dumps(config))               # tuples as lists, as they were stored

    def diff(a, b, where):
        a, b = (a if isinstance(a, dict) else {}), (b if isinstance(b, dict) else {})
        return [f"{where}{k}: {a.get(k)!r:.40} -> {b.get(k)!r:.40}" for k in sorted(set(a) | set(b), key=str)
                if a.get(k) != b.get(k)]
    changed = diff(before["settings"], now["settings"], "")
    old_v = {v.get("name"): v for v in before["variants"] if isinstance(v, dict)} \
        if isinstance(before["variants"], list) else {}
    new_v = {v["name"]: v for v in now["variants"]}
    if list(old_v) != list(new_v):
        changed.append(f"variants: {list(old_v)!r:.120} -> {list(new_v)!r:.120}")
    else:
        for name in new_v:
            changed += diff(old_v[name], new_v[name], f"variant {name!r}: ")
    changed += diff({k: v for k, v in before["overrides"].items() if k not in _WHERE},
                    {k: v for k, v in now["overrides"].items() if k not in _WHERE}, "option ")
    if changed:
        raise ConfigError(f"{out} was written by another sweep ({'; '.join(changed)}); resume it with the same "
                          f"sweep and options, or start over with --overwrite")
    names = [v["name"] for v in config["variants"]]
    damaged = f"cannot resume {out}: its results.json is damaged"
    if not isinstance(results, list):
        raise ConfigError(f"{damaged} (not a list); start over with --overwrite")
    kept = []
    for i, r in enumerate(results):
        why = _bad_result(r, names)
        if why:
            raise ConfigError(f"{damaged} (entry {i}: {why}); start over with --overwrite")
        if r["run"] is not None:
            try:
                load(out / r["run"] / "model.npz")        # the kept model must be whole
            except ModelFileError as e:
                raise ConfigError(f"cannot resume {out}: the model of finished variant {r['variant']!r} is "
                                  f"damaged ({e}); start over with --overwrite") from None
        kept.append(r)
    if len({r["variant"] for r in kept}) != len(kept):
        raise ConfigError(f"{damaged} (a variant appears twice); start over with --overwrite")
    return kept


def _finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _bad_result(r, names):
    """What is wrong with one entry of a sweep's results.json (None: nothing)."""
    if not isinstance(r, dict) or r.get("variant") not in names:
        return "not a result of one of the sweep's variants"
    if not isinstance(r.get("trials"), list) or not all(isinstance(t, dict) for t in r["trials"]):
        return "'trials' must be a list of records"
    status = r.get("status")
    if status == "finished":
        if r.get("run") != f"variants/{slug(r['variant'])}":
            return f"'run' must be variants/{slug(r['variant'])}"
        bad = [k for k in ("best_lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")
               if not _finite(r.get(k))]
        return f"{', '.join(bad)} must be finite numbers" if bad else None
    if status == "every learning rate diverged" or (isinstance(status, str)
                                                   and status.startswith("final training diverged")):
        return None if r.get("run") is None else "a variant that did not finish has no run folder"
    return f"unknown status {status!r:.40}"


def sweep(spec, out, jobs=1, overrides=None, progress=None, log=print, overwrite=False, resume=False):
    """Tune and train every variant of ``spec`` (a preset or
    :func:`load_sweep_config`), pick the favourite by validation accuracy,
    test it once, and write the sweep folder ``out``.  Variants train in
    ``jobs`` worker processes with one BLAS thread each, also when ``jobs``
    is 1, so the numbers do not depend on ``jobs`` (a multi-threaded GEMM
    sums in another order).  Returns the summary rows (the favourite's has
    ``test_loss``/``test_acc``).

    Everything is checked before anything is written or trained: the sweep
    (:func:`~nnumpy.runconfig.check_sweep`: keys, types, names, every
    learning rate) and the data (found, verified, downloaded if allowed)
    once, here, so that parallel workers never download.  A diverging
    learning rate is recorded and ruled out, and the summary is always
    written, also when every rate of a variant diverged.  The first failure
    of another kind stops the sweep, writes nothing, and is raised as it was
    raised in its worker.  On Ctrl-C the finished variants are summarised
    and the folder is written (:class:`SweepInterrupted`).

    With ``resume``, ``out`` is a sweep folder of the same sweep (and options)
    that stopped (Ctrl-C) or finished: its finished variants are kept as they
    are (results and run folders) and only the others are tuned and trained;
    the new folder replaces it.  A changed sweep is a ConfigError naming what
    changed."""
    overrides = dict(overrides or {})
    settings, variants = check_sweep(spec, overrides)
    settings = {**settings, **{k: overrides.pop(k) for k in ("epochs", "tune_epochs") if k in overrides}}
    first = variant_config(variants[0], settings, overrides, variants[0]["lrs"][0], 1)
    fetch(first.dataset, root=first.data_root, download=first.download, mirrors=first.mirrors, progress=progress)
    worker_overrides = {**overrides, "download": False}                   # the workers only read
    names = [v["name"] for v in variants]
    config = {"settings": settings, "variants": variants, "overrides": overrides}
    kept = _finished_variants(out, config) if resume else []
    with run_folder(out, overwrite=overwrite or resume, kind="sweep", config=config) as staged:
        folder = staged.path
        for r in kept:                          # the finished variants of the stopped sweep, as they were
            if r["run"] is not None:
                shutil.copytree(Path(out) / r["run"], folder / r["run"])
            r.pop("test_loss", None), r.pop("test_acc", None)       # the favourite is tested anew below
        if kept:
            log(f"  resuming: {len(kept)} of {len(variants)} variant(s) finished already: "
                + ", ".join(r["variant"] for r in kept))
        done_names = {r["variant"] for r in kept}
        tasks = [(v, settings, worker_overrides, str(folder)) for v in variants if v["name"] not in done_names]
        results, t0 = list(kept), time.perf_counter()

        def finished(r):
            results.append(r)
            log(f"  {r['variant']}: " + (f"lr {r['best_lr']:g}, validation accuracy {100 * r['val_acc']:.2f} %"
                                         if r["status"] == "finished" else r["status"]))

        try:
            run_parallel(_tune_and_train, tasks, jobs, finished, name=lambda t: f"variant {t[0]['name']!r}")
        except KeyboardInterrupt:
            results.sort(key=lambda r: names.index(r["variant"]))
            if results:
                _tidy(folder / "variants")
                _write_sweep(folder, results, None, t0, interrupted=True)
                staged.commit()
            raise SweepInterrupted(f"sweep stopped; {len(results)} of {len(variants)} variant(s) had finished"
                                   + (f" and are summarised in {out} (rerun with --resume to train the rest)"
                                      if results else "; nothing was written")) from None
        results.sort(key=lambda r: names.index(r["variant"]))
        done = [r for r in results if r["status"] == "finished"]
        fav = max(done, key=lambda r: (r["val_acc"], -r["val_loss"])) if done else None
        if fav is not None:
            model = load(folder / fav["run"] / "model.npz")
            fav_variant = variants[names.index(fav["variant"])]
            _, _, tst = load_data(variant_config(fav_variant, settings, overrides, fav_variant["lrs"][0], 1))
                                                        # its own layout: images for a CNN, rows for an MLP
            fav["test_loss"], fav["test_acc"] = evaluate(model, *tst)
            metrics_path = folder / fav["run"] / "metrics.json"
            metrics = json.loads(metrics_path.read_text())
            metrics.update(test_loss=fav["test_loss"], test_acc=fav["test_acc"])
            write_text(metrics_path, json.dumps(metrics, indent=1))
        _write_sweep(folder, results, fav, t0)
        staged.commit()
    return results


def _tidy(variants):
    """Remove what stopped workers left in ``variants/``: their temporary folders and locks."""
    for p in variants.glob(".*") if variants.is_dir() else ():
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


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


def _write_sweep(folder, results, fav, t0, interrupted=False):
    """summary.csv/.md, tuning.csv, results.json (what a resumed sweep reads back) and comparison.png
    of ``results`` into ``folder``."""
    write_text(folder / "results.json", json.dumps(results, indent=1))
    rows = [{k: v for k, v in r.items() if k not in ("test_loss", "test_acc")} for r in results]
    for r in rows:
        r["note"] = "" if r["status"] == "finished" else r["status"]
    if fav is not None:
        rows.append({**{k: fav[k] for k in _COLUMNS if k in fav}, "variant": f"favourite: {fav['variant']}",
                     "note": ""})
    columns = _COLUMNS + (["note"] if any(r["note"] for r in rows) else [])
    write_text(folder / "summary.csv", _csv(columns, rows))
    write_text(folder / "tuning.csv", _csv(["variant", "lr", "epochs", "val_loss", "val_acc", "diverged"],
                                           [t for r in results for t in r["trials"]]))
    head = [c.replace("_", " ") for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_fmt(k, r.get(k)) for k in columns) + " |" for r in rows]
    if fav is not None:
        note = (f"Favourite by validation accuracy: **{fav['variant']}**, test accuracy "
                f"**{100 * fav['test_acc']:.2f} %** (evaluated once on the test set).")
    elif interrupted:
        note = "Interrupted: only the finished variants are listed; no favourite was tested."
    else:
        note = "No variant finished (see the note column and tuning.csv): no favourite was tested."
    write_text(folder / "summary.md", "\n".join(lines) + f"\n\n{note}\n\nWall time: "
               f"{_duration(time.perf_counter() - t0)}.\n")
    histories = {r["variant"]: json.loads((folder / r["run"] / "history.json").read_text())
                 for r in results if r["run"] is not None}
    if histories:
        plots.compare_runs(histories, folder / "comparison.png", "final training runs, each at its best "
                                                                 "learning rate")


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
