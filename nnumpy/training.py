"""The training loop: ``fit``, ``evaluate`` and ``predict``."""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from . import backend
from ._checks import ArgumentTypeError, describe, flag, positive_int, real, seed_rng
from ._fileio import check_writable_target
from ._progress import progress_bar
from .datasets.splits import _batch_indices, _check_pair, iterate_minibatches, num_batches
from .nn.container import Sequential
from .nn.conv import Conv2d
from .nn.loss import CrossEntropyLoss, MSELoss
from .nn.module import Module
from .optim.lr_scheduler import LRScheduler, OneCycleLR, ReduceLROnPlateau
from .optim.optimizer import Optimizer

__all__ = ["fit", "evaluate", "predict", "History", "TrainingDivergedError", "TrainingInterrupted", "StopTraining",
           "ResumeError"]


class TrainingDivergedError(FloatingPointError):
    """Training stopped because a loss (or the model's parameters) stopped being finite.

    Attributes: ``epoch`` (1-based), ``step`` (the 1-based step within the
    epoch whose loss was not finite; None when the validation loss after
    the epoch, or the parameters at its end, were not finite) and ``what``:
    ``"training loss"``, ``"validation loss"`` or ``"parameters"`` (the last
    update of an epoch without validation data made them NaN or inf).
    The message says why when it can tell: NaN/inf in the input batch or
    its targets (naming the samples), parameters that were not finite
    before training, or divergence (try a lower learning rate).

        TrainingDivergedError("the training loss became nan at epoch 2, step 7 of 844 ...",
                              epoch=2, step=7, what="training loss")
    """

    def __init__(self, message, epoch=None, step=None, what="training loss"):
        super().__init__(message)
        self.epoch, self.step, self.what = epoch, step, what

    def __reduce__(self):                 # pickled with its fields (it crosses process boundaries)
        return type(self), (self.args[0] if self.args else "", self.epoch, self.step, self.what), self.__dict__


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`fit`.  ``.history`` holds the epochs that finished
    and ``.state`` the model's ``state_dict()`` as it was at the end of the
    last of them (None if no epoch finished), so that model, history and
    metrics can be saved in agreement (the model itself may already hold
    part of the next epoch's updates).

        TrainingInterrupted(history, state=model.state_dict())
    """

    def __init__(self, history, state=None):
        super().__init__(f"training interrupted after {len(history)} finished epoch(s)")
        self.history = history
        self.state = state

    def __reduce__(self):                 # pickled with its history and state (it crosses process boundaries)
        return type(self), (self.history, self.state), self.__dict__


@dataclass
class History:
    """Per-epoch records of a :func:`fit` run (lists of equal length).

    train_loss / train_acc: means over the epoch's mini-batches, in training
    mode, weighted by batch size (what the optimizer saw); the loss as
    ``reduction="mean"`` reports it, whatever the loss function's
    reduction.  val_loss / val_acc: the validation set after the epoch, in
    evaluation mode (NaN without validation data).  lr: the rate used in the epoch.  seconds:
    wall time of the epoch including its evaluation.

    Accuracy: argmax against class indices (or one-hot targets); for binary
    cross-entropy the outputs thresholded (logits at 0, probabilities at 1/2),
    label by label; NaN where it means nothing (regression targets, a single
    output column without a binary cross-entropy loss).
    """

    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    seconds: list = field(default_factory=list)

    def __len__(self):
        return len(self.epoch)

    def to_dict(self):
        return asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict())

    def best_epoch(self, metric="val_acc"):
        """The epoch (1-based) with the highest ``*_acc`` or lowest ``*_loss``."""
        values = np.asarray(getattr(self, metric), dtype=float)
        if not np.isfinite(values).any():
            raise ValueError(f"History.best_epoch: {metric} has no finite value"
                             + (" (accuracy means nothing for this model and loss: use a loss)"
                                if metric.endswith("acc") else ""))
        i = np.nanargmin(values) if metric.endswith("loss") else np.nanargmax(values)
        return self.epoch[int(i)]

    def __str__(self):
        lines = [f"{'epoch':>5}  {'train loss':>10}  {'train acc':>9}  {'val loss':>9}  "
                 f"{'val acc':>8}  {'lr':>9}  {'time':>7}"]
        for row in zip(self.epoch, self.train_loss, self.train_acc, self.val_loss, self.val_acc,
                       self.lr, self.seconds):
            e, tl, ta, vl, va, lr, s = row
            lines.append(f"{e:>5}  {tl:>10.4f}  {ta:>9.4f}  {vl:>9.4f}  {va:>8.4f}  {lr:>9.3g}  {s:>6.2f}s")
        return "\n".join(lines)


def _correct(output, y, loss_fn=None):
    """How many samples were classified right (a float: a multi-label sample counts the fraction of its
    labels that are right), or NaN where accuracy means nothing (regression):

    * class indices y (N,) and outputs (N, C), C >= 2: argmax of the output;
    * binary cross-entropy (one or several labels per sample): the output
      thresholded at 0 (logits, BCEWithLogitsLoss) or 1/2 (probabilities,
      BCELoss) against y > 1/2, label by label;
    * one-hot targets (N, C), C >= 2 (an MSE classifier): argmax against argmax;
    * anything else (real-valued targets, a single output column): NaN.
    """
    if output.ndim != 2 or len(output) == 0:
        return float("nan")
    kind = type(loss_fn).__name__
    if kind in ("BCEWithLogitsLoss", "BCELoss") and y.shape == output.shape:
        threshold = 0.0 if kind == "BCEWithLogitsLoss" else 0.5
        return float(((output > threshold) == (y > 0.5)).mean(axis=1).sum())
    if output.shape[1] < 2:
        return float("nan")
    if y.ndim == 1:
        return int((output.argmax(axis=1) == y).sum())
    if y.shape == output.shape and np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1):
        return int((output.argmax(axis=1) == y.argmax(axis=1)).sum())
    return float("nan")


def _default_loss(y):
    return CrossEntropyLoss() if np.asarray(y).ndim == 1 else MSELoss()


def _reduction(loss_fn):
    return getattr(loss_fn, "reduction", "mean")


def _mean_loss(loss_fn, loss, out):
    """The batch's loss as ``reduction="mean"`` reports it, whatever the
    loss's reduction: "sum" divided by the number of terms (samples for
    cross-entropy, elements for MSE), "none" averaged."""
    reduction = _reduction(loss_fn)
    if reduction == "sum":
        count = loss_fn.num_terms(out) if hasattr(loss_fn, "num_terms") else len(out)
        return float(loss) / max(count, 1)
    if reduction == "none":
        return float(np.mean(loss))
    return float(loss)


def _check_model(model, owner):
    if isinstance(model, type):
        raise ArgumentTypeError(f"{owner}: model must be a module instance, got the class {model.__name__} "
                                f"(did you mean {model.__name__}(...)?)")
    if not isinstance(model, Module):
        raise ArgumentTypeError(f"{owner}: model must be an nnumpy Module, got {describe(model)}")


def _check_images(model, x, owner, what="x"):
    """A model that starts with a Conv2d takes batches of images (N, C, H, W):
    one image (C, H, W) would pass through the layers as an unbatched sample
    and fail much later, so say it here."""
    first = model
    while first._modules:
        first = next(iter(first._modules.values()))
    if isinstance(first, Conv2d) and isinstance(x, np.ndarray) and x.ndim != 4:
        raise ValueError(f"{owner}: the model starts with {first.short_repr()}, which takes batches of images "
                         f"(N, {first.in_channels}, H, W); {what} has shape {x.shape}"
                         + (": for one image use x[None]" if x.ndim == 3 else ""))


def _check_loss(loss_fn, owner):
    if isinstance(loss_fn, type):
        raise ArgumentTypeError(f"{owner}: loss_fn must be a loss instance, got the class {loss_fn.__name__} "
                                f"(did you mean {loss_fn.__name__}()?)")
    if not callable(loss_fn) or not callable(getattr(loss_fn, "backward", None)):
        raise ArgumentTypeError(f"{owner}: loss_fn must be an nnumpy loss such as CrossEntropyLoss() (callable, "
                                f"with a backward method), got {describe(loss_fn)}")


def _pair(data, what, owner):
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ArgumentTypeError(f"{owner}: {what} must be an (x, y) pair of arrays, got {describe(data)}")
    x, y = data
    _check_pair(x, y, f"{what} inputs and targets")
    if len(x) == 0:
        raise ValueError(f"{owner}: the {what} set has 0 samples (x has shape {x.shape}): nothing to "
                         f"{'train on' if what == 'training' else 'validate on'}")
    return x, y


def _nonfinite_rows(a, rows):
    """Sample numbers (``rows[i]``) of the rows of ``a`` holding NaN or inf
    (only for float arrays; integer data cannot hold them)."""
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating) or a.size == 0:
        return []
    bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
    return [int(i) for i in np.asarray(rows)[bad]]


def _samples(rows, what):
    shown = ", ".join(map(str, rows[:5])) + (f", ... ({len(rows)} in all)" if len(rows) > 5 else "")
    return f"{what} sample{'s' if len(rows) > 1 else ''} {shown}"


def _params_finite(model):
    return all(np.isfinite(p.data).all() for p in model.parameters())


def _why(model, x, y, rows, data, before_training):
    """Why a loss is not finite, in words (called only when it is not: no
    extra pass over the data on the hot path)."""
    bad = _nonfinite_rows(x, rows)
    if bad:
        return (f"the {data} input{' batch' if data == 'training' else 's'} hold{'s' if data == 'training' else ''} "
                f"NaN or inf ({_samples(bad, data)}); clean the data first "
                f"(np.isfinite(x).reshape(len(x), -1).all(axis=1) marks the good rows)")
    bad = _nonfinite_rows(y, rows)
    if bad:
        return (f"the {data} targets hold NaN or inf ({_samples(bad, data)}); clean the targets first")
    if not _params_finite(model):
        if before_training:
            return "the model's parameters held NaN or inf before training began"
        return "the model's parameters became NaN or inf; training diverged: try a lower learning rate"
    return "training diverged: try a lower learning rate"


class ResumeError(ValueError):
    """``fit(resume=...)`` was given a checkpoint of a run with other settings
    (data size, batch size, seed, early stopping, scheduler) or fewer epochs."""


class StopTraining(Exception):
    """Raised by a :func:`fit` callback to end training after the current
    epoch (which is recorded, checkpointed and counted as finished)."""


_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")


def _check_monitor(monitor, mode, has_val, owner):
    """(monitor, mode) checked: a History metric name or a callable of the
    epoch's record; mode "min"/"max" ("auto": from the name)."""
    if monitor is None:
        monitor = "val_loss" if has_val else "train_loss"
    if callable(monitor):
        if mode not in ("min", "max"):
            raise ValueError(f"{owner}: with a callable monitor, say whether lower or higher is better: "
                             f"mode='min' or mode='max' (got {mode!r})")
        return monitor, mode
    if not isinstance(monitor, str) or monitor not in _METRICS:
        raise ValueError(f"{owner}: monitor must be one of {', '.join(_METRICS)} or a function of the epoch's "
                         f"record, got {monitor!r}")
    if monitor.startswith("val_") and not has_val:
        raise ValueError(f"{owner}: monitor={monitor!r} needs validation data (val=(x, y)); without it monitor "
                         f"a training metric (monitor='train_loss')")
    if mode == "auto":
        mode = "min" if monitor.endswith("loss") else "max"
    if mode not in ("min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    return monitor, mode


def _monitored(monitor, record, owner):
    value = monitor(record) if callable(monitor) else record[monitor]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"{owner}: the monitor must give a number, got {describe(value)}")
    if math.isnan(value):
        what = "the monitor function" if callable(monitor) else f"the monitored {monitor}"
        hint = ("" if callable(monitor) or not monitor.endswith("acc") else
                " (accuracy is only defined for (N, C) outputs: monitor a loss)")
        raise ValueError(f"{owner}: {what} is nan at epoch {record['epoch']}, so no epoch can be judged "
                         f"better than another{hint}")
    return float(value)


class _EarlyStopping:
    """Best value of the monitored metric, its epoch, the epochs since it
    improved by more than min_delta, and (restore_best) the weights then."""

    def __init__(self, monitor, mode, patience, min_delta, keep_best):
        self.monitor, self.mode, self.patience, self.min_delta, self.keep_best = (monitor, mode, patience,
                                                                                   min_delta, keep_best)
        self.best, self.best_epoch, self.bad_epochs, self.weights, self.stopped = None, None, 0, None, False

    def improved(self, value):
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        return value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta

    def update(self, epoch, value, model):
        """Record the epoch's value; True when training should stop."""
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            if self.keep_best:
                self.weights = model.state_dict()
        else:
            self.bad_epochs += 1
        return self.patience is not None and self.bad_epochs >= self.patience

    def state(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "stopped": self.stopped}

    def load(self, state, weights):
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs, self.stopped = int(state["bad_epochs"]), bool(state["stopped"])
        self.weights = weights


def _fit_settings(model, x_tr, val, batch_size, seed, drop_last, monitor, mode, patience, min_delta, restore_best,
                  interval):
    """What must not change between a run and its resumption (checked on resume)."""
    return {"n_train": int(len(x_tr)), "n_val": int(len(val[0])) if val is not None else 0,
            "frozen": [name for name, p in model.named_parameters() if not p.requires_grad],
            "batch_size": batch_size, "drop_last": drop_last,
            "seed": int(seed) if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else None,
            "monitor": monitor if isinstance(monitor, str) else "<function>", "mode": mode,
            "patience": patience, "min_delta": min_delta, "restore_best": restore_best,
            "scheduler_interval": interval}


def fit(model, loss_fn, optimizer, train, val=None, epochs=10, batch_size=64, seed=0,
        scheduler=None, drop_last=False, progress=None, verbose=False, *, callbacks=(), monitor=None,
        mode="auto", patience=None, min_delta=0.0, restore_best=False, checkpoint=None, checkpoint_every=1,
        resume=None, scheduler_interval="epoch", checkpoint_extra=None):
    """Train ``model`` with mini-batch gradient descent and return a :class:`History`.

    Each step is the explicit loop a reader would write::

        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)          # forward
        model.backward(loss_fn.backward())     # back-propagation by hand
        optimizer.step()

    (For a Sequential model, backward is asked for no input gradient: the
    data needs none.)

    train, val: ``(x, y)`` pairs with at least one sample each; y holds
    integer labels (cross-entropy) or targets of the output's shape.
    epochs, batch_size: positive integers (``epochs=0`` is refused: there
    would be nothing to return); with ``resume``, ``epochs`` is the total,
    counting the epochs already done.  seed: the batch order of every epoch comes
    from ``numpy.random.default_rng(seed)``, so the same seed (and the same
    initial model) gives the same history.  scheduler: a learning-rate
    scheduler of ``optimizer``, stepped after every epoch (or after every
    batch with ``scheduler_interval="batch"``, as OneCycleLR expects); a
    ``ReduceLROnPlateau`` is stepped after every epoch with the monitored
    metric.  progress: a progress bar (None: only
    on a terminal).  verbose: print a line per epoch.

    Callbacks, early stopping, best weights:

    * ``callbacks``: functions called after every epoch with the epoch's
      record, a dict with the History's fields (``epoch``, ``train_loss``,
      ``train_acc``, ``val_loss``, ``val_acc``, ``lr``, ``seconds``); a
      callback ends training after this epoch by raising :class:`StopTraining`.
    * ``monitor``: the metric that decides which epoch is best, a History
      field name (default ``"val_loss"``, or ``"train_loss"`` without
      validation data) or a function of the record; ``mode``: ``"min"``,
      ``"max"`` or ``"auto"`` (from the name).
    * ``patience``: stop when the monitored metric has not improved by more
      than ``min_delta`` for this many epochs (None: never stop early).
    * ``restore_best``: keep the weights of the best epoch and put them back
      into the model when training ends.

    Checkpoints and resuming:

    * ``checkpoint``: a file path; after every ``checkpoint_every``-th epoch
      (and after the last) a checkpoint (:func:`nnumpy.save_checkpoint`:
      model, optimizer, scheduler, history, every generator's state, the
      early-stopping state) is written there, atomically.
    * ``resume``: the path of such a checkpoint: the model, optimizer and
      scheduler given are loaded from it and training continues after its
      last epoch up to ``epochs`` in all.  The result is bit for bit that of
      a run that never stopped (same backend and machine).  The data's size
      and the settings that shape the run (batch_size, drop_last, an integer
      seed, early stopping) must be those of the checkpointed run; a
      difference is a ValueError naming it.  A run that had stopped early
      returns its history at once.
    * ``checkpoint_extra``: a JSON-able dict stored in every checkpoint (as
      ``extra["user"]``; e.g. the run's configuration, to compare on resume).

    Losses: the optimizer minimises whatever ``loss_fn`` returns (with
    ``reduction="sum"`` the gradients are sums), but the History always
    reports the loss as ``reduction="mean"`` would (per sample for
    cross-entropy, per element for MSE), so runs with different reductions
    compare.  ``reduction="none"`` is refused: there is no scalar to minimise.

    Raises :class:`TrainingDivergedError` (with ``epoch``, ``step`` and
    ``what``) when the training loss of a step, the validation loss after an
    epoch, or the parameters at the end of an epoch are not finite, saying
    why when it can tell (NaN/inf in the data, naming the samples); and
    :class:`TrainingInterrupted` (a KeyboardInterrupt carrying the finished
    epochs' history and the model's state after the last of them) on Ctrl-C.
    """
    owner = "fit"
    _check_model(model, owner)
    _check_loss(loss_fn, owner)
    if _reduction(loss_fn) == "none":
        raise ValueError(f"fit: {type(loss_fn).__name__}(reduction='none') returns one loss per sample, not a "
                         f"scalar to minimise: use reduction='mean' (or 'sum')")
    if not isinstance(optimizer, Optimizer):
        raise ArgumentTypeError(f"fit: optimizer must be an nnumpy optimizer such as "
                                f"nnumpy.optim.SGD(model.parameters(), lr=0.1), got {describe(optimizer)}")
    own = {id(p) for p in model.parameters()}
    if not any(id(p) in own for g in optimizer.param_groups for p in g["params"]):
        raise ValueError("fit: the optimizer holds none of the model's parameters (was it built for another "
                         "model?); create it with the model's: SGD(model.parameters(), ...)")
    if scheduler is not None:
        if not isinstance(scheduler, (LRScheduler, ReduceLROnPlateau)):
            raise ArgumentTypeError(f"fit: scheduler must be an nnumpy learning-rate scheduler or None, got "
                                    f"{describe(scheduler)}")
        if scheduler.optimizer is not optimizer:
            raise ValueError("fit: the scheduler drives another optimizer than the one given to fit")
    if scheduler_interval not in ("epoch", "batch"):
        raise ValueError(f"fit: scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
    if scheduler_interval == "batch" and isinstance(scheduler, ReduceLROnPlateau):
        raise ValueError("fit: ReduceLROnPlateau is stepped once per epoch with the monitored metric; "
                         "scheduler_interval='batch' does not apply to it")
    x_tr, y_tr = _pair(train, "training", owner)
    _check_images(model, x_tr, owner, "the training x")
    if val is not None:
        val = _pair(val, "validation", owner)
        _check_images(model, val[0], owner, "the validation x")
    epochs = positive_int("epochs", epochs, owner=owner)
    batch_size = positive_int("batch_size", batch_size, owner=owner)
    drop_last = flag("drop_last", drop_last, owner=owner)
    if drop_last and len(x_tr) < batch_size:
        raise ValueError(f"fit: drop_last=True with batch_size={batch_size} leaves no batch of the "
                         f"{len(x_tr)} training sample(s)")
    if isinstance(callbacks, (str, bytes)) or callable(callbacks):
        raise ArgumentTypeError(f"fit: callbacks must be a list of functions, got {describe(callbacks)}"
                                + (" (wrap it in a list: callbacks=[f])" if callable(callbacks) else ""))
    try:
        callbacks = list(callbacks or ())
    except TypeError:
        raise ArgumentTypeError(f"fit: callbacks must be a list of functions, got {describe(callbacks)}") from None
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise ArgumentTypeError(f"fit: callbacks[{i}] is not callable: {describe(cb)}")
    monitor, mode = _check_monitor(monitor, mode, val is not None, owner)
    if isinstance(scheduler, ReduceLROnPlateau) and scheduler.mode != mode:
        raise ValueError(f"fit: the scheduler ReduceLROnPlateau(mode={scheduler.mode!r}) is stepped with the "
                         f"monitored metric ({monitor if isinstance(monitor, str) else 'the monitor function'}), "
                         f"which is better when {'lower' if mode == 'min' else 'higher'}: create it with "
                         f"mode={mode!r}")
    if isinstance(scheduler, OneCycleLR):
        steps = num_batches(len(x_tr), batch_size, drop_last)
        per = "batch" if scheduler_interval == "batch" else "epoch"
        need = epochs * steps if per == "batch" else epochs
        if per == "epoch" and scheduler.total_steps != epochs:
            raise ValueError(f"fit: OneCycleLR has {scheduler.total_steps} steps but would be stepped once per "
                             f"epoch ({epochs} epochs): pass scheduler_interval='batch' (it is a per-batch "
                             f"schedule: steps_per_epoch={steps} here), or total_steps={epochs}")
        if scheduler.total_steps < need:
            raise ValueError(f"fit: OneCycleLR has {scheduler.total_steps} steps, but {epochs} epochs of {steps} "
                             f"batches need {need} (steps_per_epoch={steps}: the last batch counts, unless "
                             f"drop_last=True)")
    if patience is not None:
        patience = positive_int("patience", patience, owner=owner)
    min_delta = real("min_delta", min_delta, low=0.0, owner=owner)
    restore_best = flag("restore_best", restore_best, owner=owner)
    checkpoint_every = positive_int("checkpoint_every", checkpoint_every, owner=owner)
    if checkpoint is not None:
        if not isinstance(checkpoint, (str, os.PathLike)) or not os.fspath(checkpoint).strip():
            raise ArgumentTypeError(f"fit: checkpoint must be a file path, got {describe(checkpoint)}")
        check_writable_target(os.fspath(checkpoint), "write the checkpoint")
    if checkpoint_extra is not None:
        if not isinstance(checkpoint_extra, dict):
            raise ArgumentTypeError(f"fit: checkpoint_extra must be a dict or None, got {describe(checkpoint_extra)}")
        try:
            json.dumps(checkpoint_extra, allow_nan=True)
        except (TypeError, ValueError) as e:
            raise ArgumentTypeError(f"fit: checkpoint_extra must be JSON-able ({e})") from None
    if resume is not None and not isinstance(resume, (str, os.PathLike)):
        raise ArgumentTypeError(f"fit: resume must be the path of a checkpoint, got {describe(resume)}")
    rng = seed_rng("seed", seed, owner=owner)
    settings = _fit_settings(model, x_tr, val, batch_size, seed, drop_last, monitor, mode, patience, min_delta,
                             restore_best, scheduler_interval)
    stopper = _EarlyStopping(monitor, mode, patience, min_delta, restore_best)
    history = History()
    start = 0
    if resume is not None:
        start, history = _resume(resume, model, optimizer, scheduler, rng, settings, stopper, epochs)
        if stopper.stopped or start >= epochs:
            if restore_best and stopper.weights is not None:
                model.load_state_dict(stopper.weights)
            return history
    finished = (start, model.state_dict() if start else None)    # (epochs finished, the model's state then)

    def done(n, state):
        nonlocal finished
        finished = (n, state)

    def after_epoch(epoch, record, last):
        """Early stopping, callbacks, checkpoint; returns None to go on, or why training stops here."""
        plateau = isinstance(scheduler, ReduceLROnPlateau)
        value = _monitored(monitor, record, owner)
        stop = stopper.update(epoch, value, model)
        why = (f"no improvement of the monitored metric for {stopper.bad_epochs} epochs (best at epoch "
               f"{stopper.best_epoch})" if stop else None)
        if plateau:
            scheduler.step(value)
        try:
            for cb in callbacks:
                cb(dict(record))
        except StopTraining as e:
            stop, why = True, f"a callback raised StopTraining({str(e)!r})" if str(e) else "a callback asked to"
        if stop:
            stopper.stopped = True
        if checkpoint is not None and (epoch % checkpoint_every == 0 or last or stop):
            _write_checkpoint(checkpoint, model, optimizer, scheduler, epoch, history, rng, settings, stopper,
                              checkpoint_extra)
        return why if stop else None

    try:
        with np.errstate(over="ignore", invalid="ignore"):    # a run going to inf/NaN is reported below,
            _run_epochs(model, loss_fn, optimizer, x_tr, y_tr, val, start, epochs, batch_size, rng,
                        scheduler, scheduler_interval, drop_last, progress, verbose, history, done,
                        after_epoch)                          # once, as TrainingDivergedError
    except KeyboardInterrupt:
        n, state = finished
        for f in fields(history):         # an interrupt between two appends leaves no ragged row
            del getattr(history, f.name)[n:]
        raise TrainingInterrupted(history, state) from None
    finally:
        model.clear_cache()
        if callable(getattr(loss_fn, "clear_cache", None)):
            loss_fn.clear_cache()
    if restore_best and stopper.weights is not None:
        model.load_state_dict(stopper.weights)
    return history


def _write_checkpoint(path, model, optimizer, scheduler, epoch, history, rng, settings, stopper, user=None):
    from .checkpoint import save_checkpoint
    save_checkpoint(path, model, optimizer, scheduler, epoch=epoch, history=history,
                    rng_state=rng.bit_generator.state,
                    extra={"fit": settings, "early_stopping": stopper.state(),
                           "backend": backend.get_backend(), "user": user},
                    best=stopper.weights)


def _early_stopping_state(path, state, epoch, restore_best, best):
    """The checkpoint's early-stopping state, checked (CheckpointError naming the defect)."""
    from .checkpoint import CheckpointError

    def bad(what):
        raise CheckpointError(f"{path}: damaged metadata: the early-stopping state's {what}")
    if not isinstance(state, dict) or set(state) != {"best", "best_epoch", "bad_epochs", "stopped"}:
        bad("keys must be best, best_epoch, bad_epochs and stopped")
    b, be, n, stopped = state["best"], state["best_epoch"], state["bad_epochs"], state["stopped"]
    if not isinstance(stopped, bool):
        bad(f"'stopped' must be true or false, got {stopped!r:.40}")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= epoch:
        bad(f"'bad_epochs' must be an integer in [0, {epoch}], got {n!r:.40}")
    if (b is None) != (be is None):
        bad("'best' and 'best_epoch' must both be set or both be null")
    if b is not None:
        if isinstance(b, bool) or not isinstance(b, (int, float)) or math.isnan(b):
            bad(f"'best' must be a number, got {b!r:.40}")
        if isinstance(be, bool) or not isinstance(be, int) or not 1 <= be <= epoch or be + n > epoch:
            bad(f"'best_epoch' must be an epoch in [1, {epoch - n}], got {be!r:.40}")
    elif n != 0 and epoch:
        bad("'bad_epochs' must be 0 before any best epoch")
    if restore_best and be is not None and best is None:
        bad("best weights are missing (the run kept them: restore_best=True)")
    if best is not None and not all(np.isfinite(a).all() for a in best.values()):
        bad("best weights hold NaN or inf")
    return state


def _resume(path, model, optimizer, scheduler, rng, settings, stopper, epochs):
    """Load the checkpoint at ``path`` into the model, optimizer, scheduler,
    the batch-order generator and the early-stopping state; returns
    (finished epochs, history).  Everything is checked first; on any error
    nothing has changed."""
    from .checkpoint import CheckpointError, _checkpoint_of, _parse, _prepare, _read
    owner = "fit(resume=...)"
    path = os.fspath(path)
    parsed = _parse(path, *_read(path))          # (CheckpointError for a bad file, before anything changes)
    extra = parsed["extra"] or {}
    saved = extra.get("fit")
    if not isinstance(saved, dict) or not isinstance(extra.get("early_stopping"), dict):
        raise CheckpointError(f"{path}: not a checkpoint written by fit (it has no fit settings): load it "
                              f"with nnumpy.load_checkpoint")
    changed = [f"{k}: {saved.get(k)!r:.60} in the checkpointed run, {v!r} now" for k, v in settings.items()
               if saved.get(k) != v and not (k == "seed" and (saved.get(k) is None or v is None))]
    if changed:
        raise ResumeError(f"{owner}: {path} was written by a run with other settings ({'; '.join(changed)}); "
                          f"resume it with the same data and settings, or start a new run")
    done = parsed["epoch"]
    if done > epochs:
        raise ResumeError(f"{owner}: {path} holds {done} finished epochs, more than epochs={epochs}: "
                          f"pass epochs >= {done} (the total, counting the epochs done)")
    if parsed["optimizer"] is None or (scheduler is not None and parsed["scheduler"] is None):
        raise CheckpointError(f"{path}: it holds no {'optimizer' if parsed['optimizer'] is None else 'scheduler'} "
                              f"state, which fit needs to resume")
    if scheduler is None and parsed["scheduler"] is not None:
        raise ResumeError(f"{owner}: {path} was written by a run with a {parsed['scheduler'][0]:.40} scheduler; "
                          f"pass one (the same) to resume it")
    if len(parsed["history"]) != done:
        raise CheckpointError(f"{path}: its history has {len(parsed['history'])} epochs, its epoch count is {done}")
    if parsed["rng_state"] is None or parsed["rng_state"].get("bit_generator") != type(rng.bit_generator).__name__:
        raise CheckpointError(f"{path}: it holds no {type(rng.bit_generator).__name__} state of the batch order")
    if not all(np.isfinite(a).all() for a in parsed["state"].values()):
        raise CheckpointError(f"{path}: the model's weights in it hold NaN or inf (the run it comes from had "
                              f"diverged?): resume from an earlier checkpoint or start again")
    es = _early_stopping_state(path, extra["early_stopping"], done, stopper.keep_best, parsed["best"])
    _, commit = _prepare(path, parsed, model, optimizer, scheduler, restore_rng=True)
    # -- everything checked: commit -------------------------------------------------------------
    commit()
    rng.bit_generator.state = parsed["rng_state"]
    if extra.get("backend") not in (None, backend.get_backend()):
        warnings.warn(f"{path} was written on the {extra['backend']} backend and training resumes on "
                      f"{backend.get_backend()}: the run continues correctly but not bit for bit as it would have "
                      f"on {extra['backend']} (the backends round differently)", RuntimeWarning, stacklevel=3)
    stopper.load(es, parsed["best"])
    ck = _checkpoint_of(path, parsed, model)
    return ck.epoch, ck.history


def _run_epochs(model, loss_fn, optimizer, x_tr, y_tr, val, start, epochs, batch_size, rng, scheduler, interval,
                drop_last, progress, verbose, history, done, after_epoch):
    n = len(x_tr)
    steps = num_batches(n, batch_size, drop_last)
    sequential = isinstance(model, Sequential)
    per_batch = scheduler is not None and interval == "batch"
    per_epoch = scheduler is not None and interval == "epoch" and isinstance(scheduler, LRScheduler)
    for epoch in range(start + 1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        lr = float(optimizer.param_groups[0]["lr"])
        total_loss, total_correct, seen = 0.0, 0, 0
        batches = _batch_indices(n, batch_size, True, rng, drop_last, "fit")
        bar = progress_bar(progress, total=steps, desc=f"epoch {epoch}/{epochs}", unit="batch")
        try:
            for step, idx in enumerate(batches, start=1):
                xb, yb = x_tr[idx], y_tr[idx]
                optimizer.zero_grad()
                out = model(xb)
                loss = loss_fn(out, yb)
                if not math.isfinite(loss):
                    rows = np.arange(n)[idx]
                    raise TrainingDivergedError(
                        f"the training loss became {float(loss)} at epoch {epoch}, step {step} of {steps} "
                        f"(learning rate {float(optimizer.param_groups[0]['lr']):g}): "
                        f"{_why(model, xb, yb, rows, 'training', epoch == 1 and step == 1)}",
                        epoch=epoch, step=step, what="training loss")
                if sequential:                          # the data needs no gradient: skip the first dx
                    model.backward(loss_fn.backward(), input_grad=False)
                else:
                    model.backward(loss_fn.backward())
                optimizer.step()
                if per_batch:
                    scheduler.step()
                total_loss += _mean_loss(loss_fn, loss, out) * len(xb)
                total_correct += _correct(out, yb, loss_fn)
                seen += len(xb)
                if bar is not None:
                    bar.update()
                    if step % 20 == 0:
                        bar.set_postfix(loss=f"{total_loss / seen:.4f}")
        finally:
            if bar is not None:
                bar.close()
        if per_epoch:
            scheduler.step()
        if val is not None:
            v_loss, v_acc = evaluate(model, val[0], val[1], loss_fn)
            if not math.isfinite(v_loss):
                raise TrainingDivergedError(
                    f"the validation loss became {v_loss} after epoch {epoch} (learning rate {lr:g}): "
                    f"{_why(model, val[0], val[1], np.arange(len(val[0])), 'validation', False)}",
                    epoch=epoch, step=None, what="validation loss")
        else:
            v_loss, v_acc = float("nan"), float("nan")
        if not _params_finite(model):
            raise TrainingDivergedError(
                f"the model's parameters became NaN or inf in epoch {epoch} (learning rate {lr:g}), after the "
                f"last finite training loss; training diverged: try a lower learning rate",
                epoch=epoch, step=None, what="parameters")
        state = model.state_dict()                      # one copy per epoch: TrainingInterrupted.state
        record = {"epoch": epoch, "train_loss": total_loss / seen, "train_acc": total_correct / seen,
                  "val_loss": v_loss, "val_acc": v_acc, "lr": lr, "seconds": time.perf_counter() - t0}
        for key, value in record.items():
            getattr(history, key).append(value)
        # early stopping, callbacks, the checkpoint; only then is the epoch finished (an interrupt before
        # this point drops its row: the history, the model state kept and the checkpoint always agree)
        stop = after_epoch(epoch, record, epoch == epochs)
        done(epoch, state)
        if verbose:
            print(f"epoch {epoch:>3}/{epochs}: train loss {history.train_loss[-1]:.4f} "
                  f"acc {history.train_acc[-1]:.4f} | val loss {v_loss:.4f} acc {v_acc:.4f} "
                  f"| {history.seconds[-1]:.2f}s", flush=True)
        if stop is not None:
            if verbose:
                print(f"stopping after epoch {epoch}: {stop}", flush=True)
            break


def evaluate(model, x, y, loss_fn=None, batch_size=1000):
    """Mean loss and accuracy of ``model`` on ``(x, y)``, in evaluation mode
    (dropout off), in batches.  loss_fn defaults to cross-entropy for integer
    labels and MSE otherwise.  Returns ``(loss, accuracy)`` as floats.  The
    model's training/eval mode is restored afterwards.

    The loss is reported as ``reduction="mean"`` would report it, whatever
    the loss's reduction ("sum" divided by the number of terms, "none"
    averaged), so it does not depend on the batch size.  A NaN or inf loss
    is returned as it is (see :func:`fit` for a check that stops)."""
    _check_model(model, "evaluate")
    _check_pair(x, y, "evaluate(model, x, y, loss_fn): x and y")
    if len(x) == 0:
        raise ValueError("evaluate needs at least one sample")
    _check_images(model, x, "evaluate")
    batch_size = positive_int("batch_size", batch_size, owner="evaluate")
    if loss_fn is None:
        loss_fn = _default_loss(y)
    _check_loss(loss_fn, "evaluate")
    was_training = model.training
    model.eval()
    try:
        total, correct = 0.0, 0
        for xb, yb in iterate_minibatches(x, y, batch_size, shuffle=False):
            out = model(xb)
            total += _mean_loss(loss_fn, loss_fn(out, yb), out) * len(xb)
            correct += _correct(out, yb, loss_fn)
    finally:
        model.train(was_training)
        model.clear_cache()
        if callable(getattr(loss_fn, "clear_cache", None)):
            loss_fn.clear_cache()
    return total / len(x), correct / len(x)


def predict(model, x, batch_size=1000):
    """Predicted class indices (argmax of the outputs), in evaluation mode.
    A model with a single output column has no argmax to take: threshold its
    outputs yourself (``model(x)[:, 0] > 0`` for logits); that is an error here."""
    _check_model(model, "predict")
    batch_size = positive_int("batch_size", batch_size, owner="predict")
    if not isinstance(x, np.ndarray) or x.ndim < 2:
        raise ArgumentTypeError(f"predict: x must be a NumPy array with one row per sample ((N, features), or "
                                f"(N, C, H, W) images for a CNN), got "
                                f"{describe(x)}" + (f" of shape {x.shape}: for one sample use x[None]"
                                                    if isinstance(x, np.ndarray) else ""))
    _check_images(model, x, "predict")
    was_training = model.training
    model.eval()
    try:
        out = []
        for i in range(0, len(x), batch_size):
            o = model(x[i:i + batch_size])
            if o.ndim != 2 or o.shape[1] < 2:
                raise ValueError(f"predict: the model's output has shape {o.shape}, not (N, classes): there is no "
                                 f"class to pick by argmax; for one output column threshold it yourself "
                                 f"(model(x)[:, 0] > 0 for a logit)")
            out.append(o.argmax(axis=1))
    finally:
        model.train(was_training)
        model.clear_cache()
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
