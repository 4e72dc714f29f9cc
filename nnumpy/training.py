"""The training loop: ``fit``, ``evaluate`` and ``predict``."""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ._progress import progress_bar
from .datasets.splits import _check_pair, iterate_minibatches, num_batches
from .nn.container import Sequential
from .nn.loss import CrossEntropyLoss, MSELoss

__all__ = ["fit", "evaluate", "predict", "History", "TrainingDivergedError", "TrainingInterrupted"]


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite during training."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`fit`; ``.history`` holds the epochs that finished."""

    def __init__(self, history):
        super().__init__(f"training interrupted after {len(history)} finished epoch(s)")
        self.history = history

    def __reduce__(self):                 # pickled with its history (it crosses process boundaries)
        return type(self), (self.history,)


@dataclass
class History:
    """Per-epoch records of a :func:`fit` run (lists of equal length).

    train_loss / train_acc: means over the epoch's mini-batches, in training
    mode, weighted by batch size (what the optimizer saw).  val_loss /
    val_acc: the validation set after the epoch, in evaluation mode (NaN
    without validation data).  lr: the rate used in the epoch.  seconds:
    wall time of the epoch including its evaluation.
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


def _correct(output, y):
    """Number of correct predictions: argmax of the output against integer
    labels, or against the argmax of one-hot targets."""
    if output.ndim != 2:
        return float("nan")
    pred = output.argmax(axis=1)
    labels = y if y.ndim == 1 else y.argmax(axis=1)
    return int((pred == labels).sum())


def _default_loss(y):
    return CrossEntropyLoss() if np.asarray(y).ndim == 1 else MSELoss()


def fit(model, loss_fn, optimizer, train, val=None, epochs=10, batch_size=64, seed=0,
        scheduler=None, drop_last=False, progress=None, verbose=False):
    """Train ``model`` with mini-batch gradient descent and return a :class:`History`.

    Each step is the explicit loop a reader would write::

        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)          # forward
        model.backward(loss_fn.backward())     # back-propagation by hand
        optimizer.step()

    (For a Sequential model, backward is asked for no input gradient: the
    data needs none.)

    train, val: ``(x, y)`` pairs; y holds integer labels (cross-entropy) or
    targets of the output's shape.  seed: the batch order of every epoch
    comes from ``numpy.random.default_rng(seed)``, so the same seed (and the
    same initial model) gives the same history.  scheduler: stepped after
    every epoch.  progress: a progress bar (None: only on a terminal).
    verbose: print a line per epoch.

    Raises :class:`TrainingDivergedError` naming the epoch and step when the
    loss stops being finite, and :class:`TrainingInterrupted` (a
    KeyboardInterrupt carrying the finished epochs' history) on Ctrl-C.
    """
    x_tr, y_tr = train
    _check_pair(x_tr, y_tr, "training inputs and targets")
    if val is not None:
        _check_pair(val[0], val[1], "validation inputs and targets")
    if int(epochs) < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    rng = np.random.default_rng(seed)
    history = History()
    try:
        _run_epochs(model, loss_fn, optimizer, x_tr, y_tr, val, epochs, batch_size, rng, scheduler,
                    drop_last, progress, verbose, history)
    except KeyboardInterrupt:
        model.clear_cache()
        raise TrainingInterrupted(history) from None
    model.clear_cache()
    return history


def _run_epochs(model, loss_fn, optimizer, x_tr, y_tr, val, epochs, batch_size, rng, scheduler, drop_last,
                progress, verbose, history):
    steps = num_batches(len(x_tr), batch_size, drop_last)
    for epoch in range(1, int(epochs) + 1):
        t0 = time.perf_counter()
        model.train()
        lr = float(optimizer.param_groups[0]["lr"])
        total_loss, total_correct, seen = 0.0, 0, 0
        batches = iterate_minibatches(x_tr, y_tr, batch_size, shuffle=True, rng=rng, drop_last=drop_last)
        bar = progress_bar(progress, total=steps, desc=f"epoch {epoch}/{epochs}", unit="batch")
        for step, (xb, yb) in enumerate(batches, start=1):
            optimizer.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            if not math.isfinite(loss):
                raise TrainingDivergedError(
                    f"the loss became {loss} at epoch {epoch}, step {step} of {steps} (learning rate "
                    f"{lr:g}); training diverged: try a lower learning rate")
            if isinstance(model, Sequential):       # the data needs no gradient: skip the first dx
                model.backward(loss_fn.backward(), input_grad=False)
            else:
                model.backward(loss_fn.backward())
            optimizer.step()
            total_loss += loss * len(xb)
            total_correct += _correct(out, yb)
            seen += len(xb)
            if bar is not None:
                bar.update()
                if step % 20 == 0:
                    bar.set_postfix(loss=f"{total_loss / seen:.4f}")
        if bar is not None:
            bar.close()
        if scheduler is not None:
            scheduler.step()
        v_loss, v_acc = (evaluate(model, val[0], val[1], loss_fn) if val is not None
                         else (float("nan"), float("nan")))
        history.epoch.append(epoch)
        history.train_loss.append(total_loss / max(seen, 1))
        history.train_acc.append(total_correct / max(seen, 1))
        history.val_loss.append(v_loss)
        history.val_acc.append(v_acc)
        history.lr.append(lr)
        history.seconds.append(time.perf_counter() - t0)
        if verbose:
            print(f"epoch {epoch:>3}/{epochs}: train loss {history.train_loss[-1]:.4f} "
                  f"acc {history.train_acc[-1]:.4f} | val loss {v_loss:.4f} acc {v_acc:.4f} "
                  f"| {history.seconds[-1]:.2f}s", flush=True)


def evaluate(model, x, y, loss_fn=None, batch_size=1000):
    """Mean loss and accuracy of ``model`` on ``(x, y)``, in evaluation mode
    (dropout off), in batches.  loss_fn defaults to cross-entropy for integer
    labels and MSE otherwise.  Returns ``(loss, accuracy)`` as floats.  The
    model's training/eval mode is restored afterwards."""
    _check_pair(x, y)
    if len(x) == 0:
        raise ValueError("evaluate needs at least one sample")
    loss_fn = _default_loss(y) if loss_fn is None else loss_fn
    was_training = model.training
    model.eval()
    try:
        total, correct = 0.0, 0
        for xb, yb in iterate_minibatches(x, y, batch_size, shuffle=False):
            out = model(xb)
            total += loss_fn(out, yb) * len(xb)
            correct += _correct(out, yb)
    finally:
        model.train(was_training)
        model.clear_cache()
        loss_fn.clear_cache()
    return total / len(x), correct / len(x)


def predict(model, x, batch_size=1000):
    """Predicted class indices (argmax of the outputs), in evaluation mode."""
    was_training = model.training
    model.eval()
    try:
        out = [model(x[i:i + batch_size]).argmax(axis=1) for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
        model.clear_cache()
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
