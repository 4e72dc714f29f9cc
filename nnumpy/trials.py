"""One trial of a sweep, as a pure task: a function of its configuration and the data alone.

A trial is one model trained with one learning rate for its epochs from its
seed: a *tuning* trial (``tune_epochs``, one per learning rate of a variant)
or a variant's *final* trial (``epochs``, at the learning rate its tuning
trials chose).  :func:`run_trial` trains it wherever it is called (a local
worker process or a Dask worker) and returns everything the sweep keeps:
status, history, final figures, the weights and diagnostics (where and how
it ran).  It writes no file: only the process that started the sweep writes
the sweep folder (:mod:`nnumpy.sweeps`).

The same trial gives the same numbers wherever it runs: the process trains
with one BLAS and one Numba thread (a multi-threaded GEMM adds in another
order), on the backend the client chose, from the data's bytes.  The data
reaches the trial as a :class:`DataRef` (a local worker reads the files the
client verified) or as :class:`RawData` (the arrays themselves, scattered
once to each Dask worker); either way each process prepares the float32
split once and keeps it for the trials that follow.
"""
from __future__ import annotations

import collections
import os
import platform
import time

import numpy as np

__all__ = ["DataRef", "RawData", "run_trial"]


class DataRef:
    """Where a local worker finds the dataset: the folder the client verified it in."""

    def __init__(self, dataset, root):
        self.dataset, self.root = dataset, None if root is None else str(root)

    @property
    def key(self):
        return ("files", self.dataset, self.root)

    def arrays(self):
        from .datasets import load_dataset
        (x, y), (xt, yt) = load_dataset(self.dataset, root=self.root, download=False)
        return x, y, xt, yt


class RawData:
    """The dataset's arrays as the client verified them (uint8 images (N, 28, 28), int64 labels)."""

    def __init__(self, dataset, x, y, xt, yt):
        self.dataset, self.x, self.y, self.xt, self.yt = dataset, x, y, xt, yt
        self.token = (dataset, x.shape, int(x[::997].sum()), int(y.sum()))      # names this copy in a cache

    @property
    def key(self):
        return ("arrays",) + self.token

    def arrays(self):
        return self.x, self.y, self.xt, self.yt


def prepare(cfg, x, y, xt, yt):
    """(train, val, test) of a run configuration from the dataset's raw arrays: float32 in [0, 1],
    rows (N, 784) for an MLP or images (N, 1, 28, 28) for a CNN, limited and split as configured
    (the same arrays as :func:`nnumpy.experiments.load_data` gives)."""
    from .datasets import train_val_split
    if cfg.limit_train:
        x, y = x[:cfg.limit_train], y[:cfg.limit_train]
    if cfg.limit_test:
        xt, yt = xt[:cfg.limit_test], yt[:cfg.limit_test]

    def images(a):
        a = a.astype(np.float32) / np.float32(255)
        return a.reshape(len(a), -1) if cfg.model == "mlp" else a[:, None]
    train, val = train_val_split(images(x), y.astype(np.int64), cfg.val_fraction, seed=cfg.seed, stratify=True)
    return train, val, (images(xt), yt.astype(np.int64))


_PREPARED = collections.OrderedDict()          # (data key, what shapes the split) -> (train, val, test)


def _prepared(cfg, data):
    key = (data.key, cfg.model == "mlp", cfg.limit_train, cfg.limit_test, cfg.val_fraction, cfg.seed)
    if key not in _PREPARED:
        while len(_PREPARED) >= 2:                 # a sweep mixing an MLP and a CNN: two layouts
            _PREPARED.popitem(last=False)
        _PREPARED[key] = prepare(cfg, *data.arrays())
    _PREPARED.move_to_end(key)
    return _PREPARED[key]


_threads = {"limited": False}


def _heap_for_arrays():
    """Undo ``MALLOC_TRIM_THRESHOLD_`` (glibc) in a worker process that was started with it.

    Dask's nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, so that
    they hand freed memory back to the system.  Setting it also freezes glibc's
    threshold for serving an allocation with its own ``mmap`` at 128 KB, so every
    activation and gradient array of a training step (a 64 x 500 float32 batch is
    already 125 KB) is mapped, zero-filled by the kernel and unmapped again: a
    trial trained 15 % slower in a Dask worker than in a local one (0.80 s against
    0.69 s for a tuning trial of 784-300-100-10, measured one at a time).  The
    thresholds are set to the ceilings that glibc's own adjustment reaches (32 MB
    for ``mmap``, twice that for trimming), which keeps those arrays on the heap.
    """
    if not any(k in os.environ for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")):
        return
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
    except OSError:                                # not glibc: nothing to undo
        return
    m_trim_threshold, m_mmap_threshold = -1, -3    # glibc's mallopt parameters (malloc.h)
    libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    libc.mallopt(m_trim_threshold, 64 * 1024 * 1024)


def _one_thread():
    """BLAS and Numba on one thread in this process from now on (a worker process runs one trial per
    thread it was given; the numbers then do not depend on how many cores the machine has), and
    glibc's heap as training wants it (:func:`_heap_for_arrays`)."""
    if not _threads["limited"]:
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(1)
        except ImportError:
            pass
        _heap_for_arrays()
        _threads["limited"] = True
    try:
        import numba
        numba.set_num_threads(1)
    except (ImportError, ValueError):
        pass


def _diverged(e):
    where = f"epoch {e.epoch}" if e.epoch is not None else "training"
    if e.step is not None:
        where += f", step {e.step}"
    return f"diverged ({where})"


def run_trial(trial, data):
    """Train one trial and return its record (no file is written).

    ``trial``: a dict with ``id``, ``kind`` ("tune" or "final"), ``variant``,
    ``config`` (the :class:`~nnumpy.runconfig.RunConfig` fields) and ``backend``.
    ``data``: a :class:`DataRef` or :class:`RawData`.

    Returns a dict: ``status`` ("finished" or "diverged", with ``diverged``
    saying where), ``history`` (per-epoch figures, as ``History.to_dict``),
    ``metrics`` (the last epoch's training and validation loss and accuracy),
    ``state`` (the weights: a state dict of arrays; None when diverged) and
    ``diagnostics`` (host, process, seconds, backend, BLAS threads).  Any
    other exception propagates: the sweep records it.
    """
    from . import nn
    from .backend import use
    from .experiments import _build
    from .runconfig import RunConfig
    from .training import TrainingDivergedError, fit

    if (not isinstance(trial, dict) or not isinstance(trial.get("config"), dict)
            or not all(k in trial for k in ("id", "backend"))):
        raise ValueError(f"run_trial: trial must be a dict with id, config (RunConfig fields) and backend, "
                         f"got {trial!r:.80}")
    if not isinstance(data, (DataRef, RawData)):
        raise TypeError(f"run_trial: data must be a DataRef or RawData, got {type(data).__name__}")
    t0 = time.perf_counter()
    _one_thread()
    cfg = RunConfig(**trial["config"]).validate()
    with use(trial["backend"]):
        train, val, _ = _prepared(cfg, data)
        model, opt, sched = _build(cfg)
        record = {"id": trial["id"], "status": "finished", "diverged": "", "history": None, "metrics": None,
                  "state": None}
        t1 = time.perf_counter()
        try:
            h = fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=cfg.epochs, batch_size=cfg.batch_size,
                    seed=cfg.seed, scheduler=sched, progress=False)
        except TrainingDivergedError as e:
            record.update(status="diverged", diverged=_diverged(e))
        else:
            record.update(history=h.to_dict(), state={k: np.array(v) for k, v in model.state_dict().items()},
                          metrics={"train_loss": h.train_loss[-1], "train_acc": h.train_acc[-1],
                                   "val_loss": h.val_loss[-1], "val_acc": h.val_acc[-1]})
    record["diagnostics"] = {"host": platform.node(), "pid": os.getpid(), "worker": _dask_worker(),
                             "seconds": time.perf_counter() - t0,
                             "training_seconds": time.perf_counter() - t1, "backend": trial["backend"],
                             "blas_threads": _blas_threads()}
    return record


def _dask_worker():
    """The address of the Dask worker running this trial (None outside one)."""
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return None


def _blas_threads():
    try:
        from threadpoolctl import threadpool_info
        return sorted({i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"})
    except ImportError:
        return []
