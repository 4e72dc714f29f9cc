"""Sweeps (the practical's exercise 2): tune each variant's learning rate, train it, compare, test the favourite.

A sweep is a set of *trials* (:mod:`nnumpy.trials`): for every variant, one
tuning trial per learning rate (``tune_epochs`` epochs each), then, once all
of them are in, one final trial at the learning rate with the best
validation accuracy (``epochs`` epochs).  Trials are pure tasks: they run in
local worker processes (``jobs``) or on a Dask cluster (``scheduler``),
through one scheduling loop and the ``concurrent.futures`` interface both
offer (:mod:`nnumpy.parallel`), and return their results here.  Only this
process writes the sweep folder:

    .nnumpy-run, config.json    the marker and the sweep (settings, variants, options, backend)
    trials/<variant>/lr-<lr>/   a finished tuning trial: trial.json (status, history, figures,
                                diagnostics), model.npz, config.json
    trials/<variant>/final/     the variant's final trial (trial.json)
    trials/<variant>/<trial>.error.json   what a trial that failed in the last run raised
    variants/<variant>/         the final trial's run folder (see nnumpy.experiments.train_run)
    summary.md, summary.csv     one row per variant, then the favourite's test row
    tuning.csv                  every learning rate tried; diverged ones and errors marked
    results.json, comparison.png

Each trial folder is written under a temporary name and renamed into place
when its trial has finished, so the folder always holds whole trials only:
a sweep stopped in any way (Ctrl-C, ``kill -9`` of this process, a worker
killed, a full disk) is resumed by running the same command again, which
reads the finished trials back instead of training them, and ends with the
summary an uninterrupted sweep would have written.  A changed sweep is
refused naming what changed (``restart=True`` starts over).  A lock beside
the folder keeps a second sweep out of it while one runs.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
import warnings
from pathlib import Path

from . import plots
from ._fileio import make_dirs
from ._progress import progress_bar
from .backend import get_backend
from .datasets import DatasetWarning, fetch
from .experiments import _build, _csv, _title
from .parallel import ClusterError, LocalExecutor, WorkerDied, check_address, connect
from .rundir import (MARKER, RunFolderExistsError, _lock, _publish, _remove_leftovers, is_run_folder,
                     make_temp_dir, write_text)
from .runconfig import ConfigError, check_sweep, slug, variant_config
from .serialization import ModelFileError, load, save
from .training import evaluate
from .trials import DataRef, RawData, prepare, run_trial

__all__ = ["sweep", "SweepInterrupted"]


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a sweep; every finished trial is kept in its folder."""


#: options that say where the data is, not what is trained: a resumed sweep may change them
_WHERE = ("data_root", "download", "mirrors")


# ---------------------------------------------------------------------------------------------
# The plan: which trials a sweep is made of
# ---------------------------------------------------------------------------------------------
def _lr_name(lr):
    return f"lr-{float(lr)!r}"


class _Variant:
    """One variant of the sweep: its tuning trials and, once they are in, its final trial."""

    def __init__(self, variant, settings, overrides, backend):
        self.spec, self.name, self.slug = variant, variant["name"], slug(variant["name"])
        self.settings, self.overrides, self.backend = settings, overrides, backend
        self.tune_epochs, self.epochs = int(settings["tune_epochs"]), int(settings["epochs"])
        self.tune = [self._trial("tune", lr, self.tune_epochs) for lr in variant["lrs"]]
        self.final = None                            # made when every tuning trial is in
        cfg = self.config(variant["lrs"][0], 1)
        model = _build(cfg)[0]
        self.cost = model.num_parameters()           # work per epoch, roughly (for the time estimate)
        if cfg.model == "mlp":
            self.shape = {"arch": "-".join(map(str, cfg.arch)), "layers": len(cfg.arch) - 1,
                          "units": "-".join(map(str, cfg.arch[1:-1])) or "-", "activation": cfg.activation}
        else:
            from . import nn
            weighted = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
            self.shape = {"arch": cfg.model, "layers": len(weighted), "units": "-", "activation": "-"}

    def config(self, lr, epochs, where=False):
        """The RunConfig of one trial; without ``where``, the data's location is left out (a trial gets
        its data from the sweep, and its record must not depend on where the files were)."""
        cfg = variant_config(self.spec, self.settings, self.overrides, lr, epochs)
        return cfg if where else dataclasses.replace(cfg, data_root=None, download=False, mirrors=None)

    def _trial(self, kind, lr, epochs):
        name = _lr_name(lr) if kind == "tune" else "final"
        return {"id": f"{self.slug}/{name}", "kind": kind, "variant": self.name, "lr": float(lr),
                "epochs": epochs, "config": dataclasses.asdict(self.config(lr, epochs)), "backend": self.backend}

    def make_final(self, records):
        """The final trial, at the best learning rate of the tuning ``records`` (None when none finished)."""
        got = [(t, records.get(t["id"])) for t in self.tune]
        if any(r is None for _, r in got):             # a trial failed (or is still to come)
            return None
        ok = [(t, r) for t, r in got if r["status"] == "finished"]
        if not ok:
            return None
        best, _ = max(ok, key=lambda p: (p[1]["metrics"]["val_acc"], -p[1]["metrics"]["val_loss"]))
        self.final = self._trial("final", best["lr"], self.epochs)
        return self.final


# ---------------------------------------------------------------------------------------------
# The sweep folder
# ---------------------------------------------------------------------------------------------
def _identity(plan):
    """What makes a sweep this sweep: every variant's learning rates and the run configuration its
    trials share (as RunConfig fields, so that an option given with its default value, or moved
    between the sweep file and the command line, is the same sweep)."""
    out = {}
    for v in plan:
        cfg = dataclasses.asdict(v.config(v.spec["lrs"][0], v.epochs))
        cfg.pop("lr")
        out[v.name] = {**cfg, "lrs": [float(lr) for lr in v.spec["lrs"]], "tune_epochs": v.tune_epochs}
    return out


def _changes(before, now):
    """What differs between the sweep config.json ``before`` and the sweep ``now`` (strings)."""
    if isinstance(before.get("trials"), dict):
        old, new = before["trials"], json.loads(json.dumps(now["trials"]))
        if list(old) != list(new):
            return [f"variants: {list(old)!r:.120} -> {list(new)!r:.120}"]
        per_key = {}
        for name in new:
            a = old[name] if isinstance(old[name], dict) else {}
            for k in sorted(set(a) | set(new[name])):
                if a.get(k) != new[name].get(k):
                    per_key.setdefault((k, repr(a.get(k)), repr(new[name].get(k))), []).append(name)
        changed = [f"{k}: {a:.40} -> {b:.40}" + ("" if len(names) == len(new) else
                                                 f" (variant{'s' if len(names) > 1 else ''} "
                                                 f"{', '.join(map(repr, names))})")
                   for (k, a, b), names in per_key.items()]
        if before.get("backend") != now["backend"]:
            changed.append(f"backend: {before.get('backend')!r} -> {now['backend']!r} (NNUMPY_BACKEND)")
        return changed
    def diff(a, b, where, skip=()):
        a, b = (a if isinstance(a, dict) else {}), (b if isinstance(b, dict) else {})
        return [f"{where}{k}: {a.get(k)!r:.40} -> {b.get(k)!r:.40}" for k in sorted(set(a) | set(b), key=str)
                if k not in skip and a.get(k) != b.get(k)]
    changed = diff(before.get("settings"), now["settings"], "", _WHERE)
    old_v = ({v.get("name"): v for v in before["variants"] if isinstance(v, dict)}
             if isinstance(before.get("variants"), list) else {})
    new_v = {v["name"]: v for v in now["variants"]}
    if list(old_v) != list(new_v):
        changed.append(f"variants: {list(old_v)!r:.120} -> {list(new_v)!r:.120}")
    else:
        for name in new_v:
            changed += diff(old_v[name], new_v[name], f"variant {name!r}: ")
    changed += diff(before.get("overrides"), now["overrides"], "option ", _WHERE)
    if before.get("backend") != now["backend"]:
        changed.append(f"backend: {before.get('backend')!r} -> {now['backend']!r} (NNUMPY_BACKEND)")
    return changed


def _new_folder(out, config):
    """Create the sweep folder ``out`` in one step (a temporary folder renamed onto it; an old sweep
    folder there is replaced)."""
    tmp = make_temp_dir(out)
    try:
        write_text(tmp / MARKER, json.dumps({"kind": "sweep"}) + "\n")
        write_text(tmp / "config.json", json.dumps(config, indent=1))
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


#: what each kind of nnumpy folder is, for messages
_KINDS = {"run": "a run of 'nnumpy train'", "evaluation": "the evaluation of a run", "trial": "one trial of a sweep"}


def _check_resumable(out, config, resume):
    """True when ``out`` holds a run of the sweep ``config`` (to resume), False when there is no
    ``out``; a ConfigError (or RunFolderExistsError) naming why otherwise."""
    if not out.exists() and not out.is_symlink():
        if resume:
            raise ConfigError(f"{out} does not exist: there is no stopped sweep to resume (leave out --resume "
                              f"to start it)")
        return False
    if out.is_symlink() or not out.is_dir():
        raise RunFolderExistsError(f"{out} is a {'symbolic link' if out.is_symlink() else 'file'}; nnumpy writes "
                                   f"a sweep folder only where there is none or an earlier sweep's: choose "
                                   f"another output folder")
    if not is_run_folder(out):
        empty = not any(out.iterdir())
        raise RunFolderExistsError(f"{out} exists and was not written by nnumpy (it has no {MARKER} file); it is "
                                   f"left alone: " + ("it is empty: remove it, or choose another output folder"
                                                      if empty else "choose another output folder"))
    try:
        kind = json.loads((out / MARKER).read_text()).get("kind")
        before = json.loads((out / "config.json").read_text())
    except (OSError, ValueError, AttributeError, RecursionError):
        kind, before = None, None
    if kind != "sweep" or not isinstance(before, dict):
        what = _KINDS.get(kind, "no readable sweep") if kind != "sweep" else "a sweep whose config.json is unreadable"
        raise ConfigError(f"{out} holds {what}, not a sweep to resume; choose another output folder, or "
                          f"--restart to replace it")
    try:
        changed = _changes(before, json.loads(json.dumps(config)))
    except (TypeError, AttributeError, KeyError, ValueError, RecursionError):
        raise ConfigError(f"{out} holds a sweep whose config.json is not one nnumpy wrote; choose another output "
                          f"folder, or --restart to replace it") from None
    if changed:
        raise ConfigError(f"{out} holds another sweep ({'; '.join(changed)}); run the same sweep with the same "
                          f"options to resume it, or --restart to start over")
    return True


@contextlib.contextmanager
def _sweep_folder(out, config, restart, resume):
    """Hold the sweep folder ``out`` (locked) for the sweep ``config``: a new one, or the one a stopped
    or finished run of the same sweep left (yields True when resuming)."""
    out = Path(os.path.abspath(out))
    if Path.cwd() == out or out in Path.cwd().parents:
        raise ConfigError(f"the sweep folder {out} holds the current folder; run the command from elsewhere, or "
                          f"choose another output folder")
    for parent in out.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise RunFolderExistsError(f"{parent} is a file, not a folder: it cannot hold {out}")
            break
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise RunFolderExistsError(f"{out} is a {'symbolic link' if out.is_symlink() else 'file'}; nnumpy writes "
                                   f"a sweep folder only where there is none or an earlier sweep's: choose "
                                   f"another output folder")
    with make_dirs(out.parent), _lock(out):
        _remove_leftovers(out)
        resuming = False
        if out.exists() and restart and not is_run_folder(out):
            raise RunFolderExistsError(f"{out} exists and was not written by nnumpy (it has no {MARKER} "
                                       f"file); it is left alone: choose another output folder")
        if not restart:
            resuming = _check_resumable(out, config, resume)
        if not resuming:
            _new_folder(out, config)
        for p in (list(out.glob("trials/*/.*.nnumpy-*.[to][ml][pd]")) + list(out.glob("variants/.*.nnumpy-*.[to][ml][pd]"))
                  + list(out.glob(".nnumpy-*.part"))):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)   # half-written
        yield out, resuming


def _write_folder(dest, fill, kind="run", config=None):
    """Write the folder ``dest`` in one step: ``fill(tmp)`` writes the files into a temporary folder,
    which is then renamed onto ``dest`` (replacing an earlier one)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(dest)
    try:
        write_text(tmp / MARKER, json.dumps({"kind": kind}) + "\n")
        if config is not None:
            write_text(tmp / "config.json", json.dumps(config, indent=1))
        fill(tmp)
        _publish(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _jsonable(record):
    return {k: v for k, v in record.items() if k != "state"}


def _save_model(variant, trial, state, path):
    model = _build(variant.config(trial["lr"], trial["epochs"]))[0]
    model.load_state_dict(state)
    model.input_grad = True
    save(model, path)


def _error_file(folder, trial):
    path = folder / "trials" / trial["id"]
    return path.parent / f"{path.name}.error.json"


def _store(folder, variant, trial, record):
    """Write the finished (or diverged) trial into the sweep folder, or the error a failed one raised.

    A trial folder is written once, when its trial is done, and is never replaced while it holds a
    trial of this sweep; a failure goes to ``trials/<variant>/<trial>.error.json`` beside it (what the
    next run, which tries the trial again, replaces)."""
    meta = {**{k: trial[k] for k in ("id", "kind", "variant", "lr", "epochs", "config", "backend")},
            **_jsonable(record)}
    if record["status"] == "error":
        _error_file(folder, trial).parent.mkdir(parents=True, exist_ok=True)
        write_text(_error_file(folder, trial), json.dumps(meta, indent=1))
        return
    _error_file(folder, trial).unlink(missing_ok=True)
    if trial["kind"] == "final" and record["status"] == "finished":
        cfg = variant.config(trial["lr"], trial["epochs"], where=True)

        def fill_run(tmp):
            _write_history_dict(record["history"], tmp)
            plots.learning_curves(record["history"], tmp / "curves.png", _title(cfg))
            _save_model(variant, trial, record["state"], tmp / "model.npz")
            metrics = {"model": cfg.model, "arch": cfg.arch, "activation": cfg.activation, "lr": cfg.lr,
                       "epochs_run": len(record["history"]["epoch"]), "resumed_after": None,
                       "seconds": record["diagnostics"]["training_seconds"], "interrupted": False,
                       **record["metrics"]}
            write_text(tmp / "metrics.json", json.dumps(metrics, indent=1))
        _write_folder(folder / "variants" / variant.slug, fill_run, config=dataclasses.asdict(cfg))

    def fill(tmp):
        write_text(tmp / "trial.json", json.dumps(meta, indent=1))
        if trial["kind"] == "tune" and record["status"] == "finished":
            _save_model(variant, trial, record["state"], tmp / "model.npz")
    where = dataclasses.asdict(variant.config(trial["lr"], trial["epochs"], where=True))
    _write_folder(folder / "trials" / trial["id"], fill, kind="trial", config=where)


def _write_history_dict(d, folder):
    write_text(folder / "history.json", json.dumps(d, indent=1))
    write_text(folder / "history.csv", _csv(list(d), [dict(zip(d, row)) for row in zip(*d.values())]))


def _read_back(folder, variant, trial):
    """The record of ``trial`` that a stopped run left in ``folder``, or None (not there, failed, damaged
    or not this trial: it is run again)."""
    path = folder / "trials" / trial["id"] / "trial.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    same = {k: trial[k] for k in ("id", "kind", "lr", "epochs", "config", "backend")}
    if not isinstance(meta, dict) or {k: meta.get(k) for k in same} != json.loads(json.dumps(same)):
        return None
    status = meta.get("status")
    if status == "diverged" and isinstance(meta.get("diverged"), str):
        return {"id": trial["id"], "status": "diverged", "diverged": meta["diverged"], "history": None,
                "metrics": None, "state": None, "diagnostics": None, "read_back": True}
    if status != "finished":
        return None                           # an error is tried again; anything else is not ours
    m, h = meta.get("metrics"), meta.get("history")
    if not _figures_ok(m, h, trial["epochs"]):
        return None
    try:                                      # the weights (and a final trial's run folder) must be whole
        if trial["kind"] == "final":
            run = folder / "variants" / variant.slug
            load(run / "model.npz")
            for name in ("metrics.json", "config.json"):
                if not isinstance(json.loads((run / name).read_text()), dict):
                    return None
            if json.loads((run / "history.json").read_text()) != h:
                return None
            if not (run / "curves.png").is_file() or not (run / MARKER).is_file():
                return None
        else:
            load(folder / "trials" / trial["id"] / "model.npz")
    except (ModelFileError, OSError, ValueError, RecursionError):
        return None
    diagnostics = meta.get("diagnostics") if isinstance(meta.get("diagnostics"), dict) else {}
    seconds = diagnostics.get("training_seconds")
    return {"id": trial["id"], "status": "finished", "diverged": "", "history": h, "metrics": m, "state": None,
            "diagnostics": {"training_seconds": seconds if _finite(seconds) else None}, "read_back": True}


def _finite(v):
    try:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    except OverflowError:                 # an integer too large for a float
        return False


def _figures_ok(m, h, epochs):
    """Whether a trial.json's final figures ``m`` and history ``h`` are what a trial of ``epochs``
    epochs records: finite losses >= 0, accuracies in [0, 1], one entry per epoch."""
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    if not isinstance(m, dict) or not isinstance(h, dict) or not isinstance(h.get("epoch"), list):
        return False
    if len(h["epoch"]) != epochs:
        return False
    for k in keys:
        col = h.get(k)
        if not isinstance(col, list) or len(col) != epochs or not _finite(m.get(k)):
            return False
        if not all(_finite(x) and x >= 0 and (not k.endswith("_acc") or x <= 1) for x in col + [m[k]]):
            return False
        if col[-1] != m[k]:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Running the trials
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _executor(jobs, cluster, scheduler, raw, dataset, data_root, n_trials, say):
    """(executor, data for the trials, slots(): how many trials run at once)."""
    if cluster is None:
        jobs = max(1, min(int(jobs), n_trials))
        with LocalExecutor(jobs) as ex:
            yield ex, DataRef(dataset, data_root), (lambda: jobs)
        return
    client, ex = cluster
    data = client.scatter(RawData(dataset, *raw), broadcast=True, hash=False)   # once per worker
    cache = {"t": -1.0, "n": 0}

    def slots():
        if time.monotonic() - cache["t"] > 2:
            with contextlib.suppress(Exception):
                cache["n"] = sum(client.nthreads().values())
            cache["t"] = time.monotonic()
        return cache["n"]
    n = slots()
    try:
        dash = client.dashboard_link
    except (KeyError, AttributeError, ValueError):        # a scheduler without a dashboard (no bokeh)
        dash = None
    say(f"  Dask scheduler {scheduler}: {len(client.nthreads())} worker(s), {n} thread(s)"
        + (f"; dashboard {dash}" if dash else ""))
    try:
        yield ex, data, slots
    finally:
        with contextlib.suppress(Exception):
            ex.shutdown(wait=False)
        with contextlib.suppress(Exception):
            client.cancel([data])


def _failure(exc):
    """A trial's exception as one line for tuning.csv and the summary."""
    name = type(exc).__name__
    if name == "KilledWorker" or isinstance(exc, WorkerDied):
        return f"its worker died each time it ran it ({exc})"
    return f"{name}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


class _Progress:
    """One updating line: trials done / running / left, time elapsed and an estimate of the rest."""

    def __init__(self, enabled, plan, records, skipped):
        self.work = {t["id"]: v.cost * t["epochs"] for v in plan for t in v.tune}
        self.work.update({f"{v.slug}/final": v.cost * v.epochs for v in plan})
        self.total = len(self.work)
        self.done_ids = {i for i in records if i in self.work} | set(skipped)
        left = sum(w for i, w in self.work.items() if i not in self.done_ids)    # this run's work: the
        self.bar = progress_bar(enabled, total=left, unit="", smoothing=0,     # estimate is of its pace
                                bar_format="{desc} |{bar:20}| {elapsed} elapsed, ~{remaining} to go")
        self.set(0)

    def set(self, running, waiting=""):
        if self.bar is not None:
            left = self.total - len(self.done_ids) - running
            self.bar.set_description_str(f"trials: {len(self.done_ids)} done, {running} running, {left} left"
                                         + (f" {waiting}" if waiting else ""), refresh=True)

    def finished(self, trial_id, skipped=()):
        for i in (trial_id, *skipped):
            if i in self.work and i not in self.done_ids:
                self.done_ids.add(i)
                if self.bar is not None and i == trial_id:
                    self.bar.update(self.work[i])
                elif self.bar is not None:
                    self.bar.total -= self.work[i]

    def write(self, text, log):
        if self.bar is not None and log is print:
            self.bar.write(text)
        else:
            log(text)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def sweep(spec, out, jobs=1, overrides=None, progress=None, log=print, restart=False, resume=False,
          scheduler=None, connect_timeout=10.0, overwrite=None):
    """Tune and train every variant of ``spec`` (a preset or
    :func:`~nnumpy.runconfig.load_sweep_config`), pick the favourite by
    validation accuracy, test it once, and write the sweep folder ``out``.
    Returns the summary rows (the favourite's has ``test_loss``/``test_acc``).

    Trials run in ``jobs`` local worker processes or, with ``scheduler``
    (``"tcp://HOST:PORT"``), on that Dask cluster (``pip install
    "nnumpy[distributed]"``; :class:`~nnumpy.parallel.ClusterError` if it
    cannot be reached within ``connect_timeout`` seconds).  Every trial trains
    with one BLAS and one Numba thread, so the numbers do not depend on
    ``jobs`` or on where a trial ran.  The data is verified here, once; local
    workers read those files, Dask workers receive the arrays once each.

    Everything is checked before anything is written or trained.  If ``out``
    holds a stopped or finished run of the same sweep (same settings, variants,
    options and backend; the data's location may differ), it is resumed: its
    finished trials are read back, not trained again.  A different sweep there
    is a ConfigError naming what changed; ``restart`` replaces it.
    ``resume=True`` insists on resuming (a ConfigError when there is nothing
    to resume).  A learning rate whose training diverges is recorded and ruled
    out.  A trial that raises is recorded (in ``tuning.csv`` and its variant's
    note), its variant is left unfinished, and the sweep goes on; the next run
    of the command tries it again.  On Ctrl-C the finished variants are
    summarised and :class:`SweepInterrupted` is raised.
    """
    if overwrite is not None:                        # the name of restart before resuming was the default
        restart = restart or overwrite
    if restart and resume:
        raise ConfigError("restart (start over) and resume (insist on resuming) exclude each other: give one")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be a positive integer, got {jobs!r}")
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError(f"overrides must be a dict of settings, got {overrides!r:.60}")
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise ConfigError(f"out must be a folder name, got {out!r}")
    for name, flag in (("restart", restart), ("resume", resume)):
        if not isinstance(flag, bool):
            raise ConfigError(f"{name} must be True or False, got {flag!r}")
    overrides = dict(overrides or {})
    settings, variants = check_sweep(spec, overrides)
    settings = {**settings, **{k: overrides.pop(k) for k in ("epochs", "tune_epochs") if k in overrides}}
    first = variant_config(variants[0], settings, overrides, variants[0]["lrs"][0], 1)
    if scheduler is not None:
        check_address(scheduler)
    if isinstance(connect_timeout, bool) or not (_finite(connect_timeout) and 0 < connect_timeout <= 3600):
        raise ConfigError(f"connect_timeout must be a number of seconds in (0, 3600], got {connect_timeout!r}")
    backend = get_backend()
    worker_overrides = {**overrides, "download": False}                   # the workers only read
    plan = [_Variant(v, settings, worker_overrides, backend) for v in variants]
    config = {"settings": settings, "variants": variants, "overrides": overrides, "backend": backend,
              "trials": _identity(plan)}
    if not restart:                                   # a changed sweep is refused before the data is read
        _check_resumable(Path(os.path.abspath(out)), config, resume)
    got = fetch(first.dataset, root=first.data_root, download=first.download, mirrors=first.mirrors,
                progress=progress)
    raw = (got["train_images"][0], got["train_labels"][0], got["test_images"][0], got["test_labels"][0])
    try:
        prepare(first, *raw)                          # the split, here, not in every trial
    except ValueError as e:
        raise ConfigError(f"the data cannot be split as configured: {e}") from None
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(connect(scheduler, connect_timeout, backend)) if scheduler else None
        folder, resuming = stack.enter_context(_sweep_folder(out, config, restart, resume))
        records = {}                                  # trial id -> record
        for v in plan:
            for t in v.tune:
                r = _read_back(folder, v, t) if resuming else None
                if r is not None:
                    records[t["id"]] = r
            if all(t["id"] in records for t in v.tune) and v.make_final(records) is not None and resuming:
                r = _read_back(folder, v, v.final)
                if r is not None:
                    records[v.final["id"]] = r
        todo = [t for v in plan for t in v.tune if t["id"] not in records]
        todo = [v.final for v in plan if v.final is not None and v.final["id"] not in records] + todo
        skipped = [f"{v.slug}/final" for v in plan
                   if v.final is None and all(t["id"] in records for t in v.tune)]     # all diverged
        if resuming:
            log(f"  resuming {out}: {len(records)} finished trial(s) read back, {len(todo)} to train"
                + (" (and the final trials their tuning leads to)" if any(v.final is None for v in plan
                                                                          if v.slug + "/final" not in skipped)
                   else ""))
        bar = _Progress(progress, plan, records, skipped)
        say = lambda text: bar.write(text, log)            # noqa: E731
        errors = {}                                    # trial id -> failure text (this run)
        trained = []                                   # trial ids trained (and stored) in this run
        by_id = {t["id"]: v for v in plan for t in v.tune}

        def finished_variant(v):
            r = records.get(v.final["id"]) if v.final else None
            if r is None:
                return
            say(f"  {v.name}: " + (f"lr {v.final['lr']:g}, validation accuracy {100 * r['metrics']['val_acc']:.2f} %"
                                   if r["status"] == "finished" else f"final training {r['diverged']}"))
        try:
            if todo:
                with warnings.catch_warnings():     # the data was checked above, and any warning reported
                    warnings.simplefilter("ignore", DatasetWarning)
                    most = len(todo) + sum(1 for v in plan if v.final is None)    # (finals still to come)
                    with _executor(jobs, cluster, scheduler, raw, first.dataset, first.data_root, most,
                                   say) as (ex, data, slots):
                        _run(ex, data, slots, todo, plan, by_id, records, errors, folder, bar, say,
                             finished_variant, trained)
        except KeyboardInterrupt:
            bar.close()
            results = _results(plan, records, errors)
            done = [r for r in results if r["status"] == "finished"]
            _write_sweep(folder, results, None, interrupted=True)
            raise SweepInterrupted(f"sweep stopped; {len(records)} trial(s) have finished and are kept "
                                   f"in {out} ({len(done)} of {len(plan)} variant(s) complete); run the same "
                                   f"command again to resume") from None
        bar.close()
        results = _results(plan, records, errors)
        done = [r for r in results if r["status"] == "finished"]
        fav = max(done, key=lambda r: (r["val_acc"], -r["val_loss"])) if done else None
        if fav is not None:
            v = plan[[p.name for p in plan].index(fav["variant"])]
            model = load(folder / fav["run"] / "model.npz")
            _, _, tst = prepare(v.config(v.final["lr"], v.epochs), *raw)   # its own layout: images or rows
            fav["test_loss"], fav["test_acc"] = evaluate(model, *tst)
            metrics_path = folder / fav["run"] / "metrics.json"
            metrics = json.loads(metrics_path.read_text())
            metrics.update(test_loss=fav["test_loss"], test_acc=fav["test_acc"])
            write_text(metrics_path, json.dumps(metrics, indent=1))
        _write_sweep(folder, results, fav)
        log(f"  wall time {_duration(time.perf_counter() - t0)}"
            + (f" ({len(trained)} trial(s) trained, the others read back)" if resuming else ""))
    return results


def _run(ex, data, slots, todo, plan, by_id, records, errors, folder, bar, say, finished_variant, trained):
    """The scheduling loop (one for both executors): keep every slot busy, final trials first (they are
    the longest), store each trial as it comes back, and make a variant's final trial once its tuning
    trials are in."""
    queue, running = list(todo), {}
    variant_of = {**by_id, **{v.final["id"]: v for v in plan if v.final is not None}}
    try:
        while queue or running:
            free = max(slots(), 1) + 1 - len(running)         # one queued ahead, so no worker waits
            while queue and free > 0:
                t = queue.pop(0)
                running[ex.submit(run_trial, t, data)] = t
                free -= 1
            n = slots()
            bar.set(min(len(running), n), "" if n else "(waiting for workers)")
            done, _ = cf.wait(list(running), timeout=1.0, return_when=cf.FIRST_COMPLETED)
            for f in done:
                t = running.pop(f)
                v = variant_of[t["id"]]
                try:
                    record = f.result()
                except cf.CancelledError:
                    raise ClusterError("the cluster lost a trial (every worker that held the data died, or the "
                                       "scheduler restarted or lost this client); the finished trials are kept: "
                                       "run the command again to resume") from None
                except Exception as e:                 # recorded, not retried in this run
                    errors[t["id"]] = _failure(e)
                    record = {"id": t["id"], "status": "error", "error": errors[t["id"]], "diverged": "",
                              "history": None, "metrics": None, "state": None, "diagnostics": None}
                    say(f"  {v.name}: trial {t['id']} failed: {errors[t['id']]}")
                _store(folder, v, t, record)
                trained.append(t["id"])
                if record["status"] != "error":
                    records[t["id"]] = record
                skipped = ()
                if t["kind"] == "tune" and all(x["id"] in records or x["id"] in errors for x in v.tune):
                    final = v.make_final(records)
                    kept = _read_back(folder, v, final) if final is not None else None
                    if kept is not None:                # (an earlier run trained it at this same rate)
                        records[final["id"]] = kept
                        skipped = (final["id"],)
                        finished_variant(v)
                    elif final is not None:
                        variant_of[final["id"]] = v
                        queue.insert(0, final)
                    else:
                        skipped = (f"{v.slug}/final",)
                bar.finished(t["id"], skipped)
                if t["kind"] == "final":
                    finished_variant(v)
    finally:
        for f in running:
            f.cancel()


def _results(plan, records, errors):
    """The summary rows, one per variant (in the sweep's order) that has all it needs, or a status."""
    results = []
    for v in plan:
        trials = []
        for t in v.tune:
            r = records.get(t["id"])
            row = {"variant": v.name, "lr": t["lr"], "epochs": t["epochs"], "val_loss": math.nan,
                   "val_acc": math.nan, "diverged": "", "error": errors.get(t["id"], "")}
            if r is not None and r["status"] == "finished":
                row.update(val_loss=r["metrics"]["val_loss"], val_acc=r["metrics"]["val_acc"])
            elif r is not None:
                row["diverged"] = r["diverged"]
            if r is not None or row["error"]:
                trials.append(row)
        result = {"variant": v.name, **v.shape, "epochs": v.epochs, "trials": trials, "run": None}
        failed = [t for t in v.tune if t["id"] in errors]
        final = records.get(v.final["id"]) if v.final is not None else None
        if failed:
            result["status"] = f"{len(failed)} tuning trial(s) failed ({errors[failed[0]['id']]})"
        elif v.final is None and len(trials) == len(v.tune):
            result["status"] = "every learning rate diverged"
        elif v.final is not None and v.final["id"] in errors:
            result.update(best_lr=v.final["lr"], status=f"final training failed ({errors[v.final['id']]})")
        elif final is None:
            continue                                  # not finished yet (interrupted)
        elif final["status"] == "diverged":
            result.update(best_lr=v.final["lr"], status=f"final training {final['diverged']}")
        else:
            result.update(best_lr=v.final["lr"], **final["metrics"],
                          seconds=(final.get("diagnostics") or {}).get("training_seconds"),
                          run=f"variants/{v.slug}", status="finished")
        results.append(result)
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


def _write_sweep(folder, results, fav, interrupted=False):
    """summary.csv/.md, tuning.csv, results.json and comparison.png of ``results`` into ``folder``
    (each file written atomically; the same trials always give the same files)."""
    write_text(folder / "results.json", json.dumps(results, indent=1))
    rows = [{k: v for k, v in r.items() if k not in ("test_loss", "test_acc")} for r in results]
    for r in rows:
        r["note"] = "" if r["status"] == "finished" else r["status"]
    if fav is not None:
        rows.append({**{k: fav[k] for k in _COLUMNS if k in fav}, "variant": f"favourite: {fav['variant']}",
                     "note": ""})
    columns = _COLUMNS + (["note"] if any(r["note"] for r in rows) else [])
    write_text(folder / "summary.csv", _csv(columns, rows))
    tuning = [t for r in results for t in r["trials"]]
    write_text(folder / "tuning.csv", _csv(["variant", "lr", "epochs", "val_loss", "val_acc", "diverged"]
                                           + (["error"] if any(t["error"] for t in tuning) else []), tuning))
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
    write_text(folder / "summary.md", "\n".join(lines) + f"\n\n{note}\n")
    histories = {r["variant"]: json.loads((folder / r["run"] / "history.json").read_text())
                 for r in results if r["run"] is not None}
    path = folder / "comparison.png"
    if histories:
        plots.compare_runs(histories, path, "final training runs, each at its best learning rate")
    elif path.exists():
        path.unlink()
