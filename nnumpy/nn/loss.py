"""Losses.  ``loss = crit(output, target)`` returns a Python float (or an
(N,) array with ``reduction="none"``); ``crit.backward()`` then returns
d(loss)/d(output), the gradient that starts back-propagation."""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from .module import Module, check_input

__all__ = ["Loss", "CrossEntropyLoss", "MSELoss"]

_REDUCTIONS = ("mean", "sum", "none")


class Loss(Module):
    """Base class: a module of (output, target) whose backward starts from the loss."""

    def __init__(self, reduction="mean"):
        super().__init__()
        if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def num_terms(self, output):
        """How many terms ``reduction="mean"`` averages over for this output:
        one per sample (``len(output)``) unless a loss says otherwise.  A
        ``"sum"`` loss divided by this is the ``"mean"`` loss (what
        :func:`~nnumpy.fit` and :func:`~nnumpy.evaluate` report)."""
        return len(output)

    def _result(self, loss):
        return float(loss) if self.reduction != "none" else loss

    def _dloss(self, dloss, n, dtype):
        """Check the upstream gradient of the loss itself (1.0 by default)."""
        if self.reduction == "none":
            dloss = np.ones(n, dtype=dtype) if dloss is None else np.asarray(dloss)
            if dloss.shape != (n,):
                raise ValueError(f"{type(self).__name__}(reduction='none').backward expects dloss of "
                                 f"shape ({n},), got {dloss.shape}")
            return dloss
        return 1.0 if dloss is None else float(dloss)

    def get_config(self):
        return {"reduction": self.reduction}

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(Loss):
    """Softmax + negative log-likelihood on logits, fused (PyTorch's
    ``nn.CrossEntropyLoss`` with class-index targets).

    forward(logits (N, C) float, target (N,) int in [0, C)):
        loss_n = logsumexp(z_n) - z_n[t_n], reduced by mean (default), sum or none.
    backward(dloss=1.0) -> dz (N, C):
        dz = (softmax(z) - onehot(t)) * dloss / N   (for "mean").
    Cache: the softmax probabilities (N, C) and the targets (N,).
    Finite for any finite logits (log-sum-exp after subtracting the row max).
    """

    def forward(self, logits, target):
        check_input(self, logits)
        if logits.ndim != 2:
            raise ValueError(f"CrossEntropyLoss expects logits of shape (N, C), got {logits.shape}")
        n, c = logits.shape
        target = np.asarray(target)
        if not np.issubdtype(target.dtype, np.integer):
            raise TypeError(f"CrossEntropyLoss expects integer class indices as target, got dtype "
                            f"{target.dtype} (for one-hot or soft targets use MSELoss)")
        if target.shape != (n,):
            raise ValueError(f"CrossEntropyLoss: target has shape {target.shape}, expected ({n},) "
                             f"for logits of shape {logits.shape}")
        if backend.get_backend() == "numba":
            # fused: loss and dz = (softmax - onehot) * scale in one pass per row (checks targets too)
            loss, dz = backend.ops().cross_entropy(logits, target, self.reduction)
            self._save(dlogits=dz)
            return self._result(loss)
        if n and (target.min() < 0 or target.max() >= c):
            raise ValueError(f"CrossEntropyLoss: target values must lie in [0, {c}), got range "
                             f"[{target.min()}, {target.max()}]")
        loss, probs = F.cross_entropy_forward(logits, target, self.reduction)
        self._save(probs=probs, target=target)
        return self._result(loss)

    def backward(self, dloss=None):
        c = self._take_cache()
        if "dlogits" in c:                    # fused forward: d(loss)/d(logits) for dloss = 1
            dz = c["dlogits"]
            dloss = self._dloss(dloss, dz.shape[0], dz.dtype)
            if self.reduction == "none":
                return dz * dloss[:, None].astype(dz.dtype, copy=False)
            return dz if dloss == 1.0 else dz * dloss
        probs = c["probs"]
        return F.cross_entropy_backward(probs, c["target"], self.reduction,
                                        self._dloss(dloss, probs.shape[0], probs.dtype))


class MSELoss(Loss):
    """Mean squared error over every element, PyTorch's ``nn.MSELoss``.

    forward(pred (any shape), target (same shape)): mean((pred - target)^2).
    backward(dloss=1.0) -> d pred = 2 (pred - target) * dloss / pred.size.
    Cache: the difference pred - target.  For classification use one-hot
    targets: ``nnumpy.one_hot(labels, 10)``.
    """

    def forward(self, pred, target):
        check_input(self, pred)
        target = np.asarray(target)
        if target.shape != pred.shape:
            hint = (" (integer labels? use nnumpy.one_hot(labels, num_classes))"
                    if target.ndim == 1 and pred.ndim == 2 else "")
            raise ValueError(f"MSELoss: target has shape {target.shape}, prediction {pred.shape}{hint}")
        if not (np.issubdtype(target.dtype, np.floating) or np.issubdtype(target.dtype, np.integer)):
            raise TypeError(f"MSELoss: target must be numeric, got {target.dtype}")
        loss, diff = F.mse_forward(pred, target.astype(pred.dtype, copy=False), self.reduction)
        self._save(diff=diff)
        return self._result(loss)

    def num_terms(self, output):
        """Every element of the prediction is a term of the mean."""
        return int(np.size(output))

    def backward(self, dloss=None):
        diff = self._take_cache()["diff"]
        if self.reduction == "none":
            dloss = None if dloss is None else np.asarray(dloss)
            dloss = np.ones_like(diff) if dloss is None else dloss
            if dloss.shape != diff.shape:
                raise ValueError(f"MSELoss(reduction='none').backward expects dloss of shape "
                                 f"{diff.shape}, got {dloss.shape}")
            return F.mse_backward(diff, "none", dloss)
        return F.mse_backward(diff, self.reduction, 1.0 if dloss is None else float(dloss))
