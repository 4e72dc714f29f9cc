"""Moving models between nnumpy and PyTorch, and checking one against the other.

PyTorch is an optional extra (``pip install -e ".[torch]"``); it is imported
here, lazily, and nowhere else in nnumpy.

* :func:`to_torch` builds the equivalent ``torch.nn.Sequential`` with the same
  weights, :func:`from_torch` the reverse.  Weight layouts and parameter names
  are identical, so no transposes or renames happen: the exchange is exact.
* :func:`compare_with_torch` runs both frameworks on the same weights and batch
  and reports how far nnumpy's loss, outputs and every gradient are from
  PyTorch's autograd.
"""
from __future__ import annotations

import copy
import inspect

import numpy as np

from . import nn
from .gradcheck import backward_with_input_grad, gradient_problem
from .report import ErrorReport, check_tolerance

__all__ = ["to_torch", "from_torch", "compare_with_torch", "require_torch", "TorchComparisonReport"]


def require_torch():
    """Import torch, or fail with a message that says how to get it."""
    try:
        import torch
    except ImportError:
        raise ImportError("this feature needs PyTorch, an optional extra of nnumpy: "
                          "pip install -e \".[torch]\" (for a CPU-only build: pip install torch "
                          "--index-url https://download.pytorch.org/whl/cpu)") from None
    return torch


def _torch_dtype(torch, dtype):
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


#: Layers whose get_config() holds exactly the keyword arguments of their torch.nn namesake.
_SAME_CONFIG = ("Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d",
                "LayerNorm", "GroupNorm", "Dropout2d",
                "GELU", "ELU", "SiLU", "Softplus", "Hardtanh", "Softmax", "LogSoftmax")


def to_torch(model):
    """The ``torch.nn`` equivalent of an nnumpy model, holding copies of its weights.

    Linear, Conv2d, the pooling and normalisation layers, the activations,
    Identity, Flatten, Dropout, Dropout2d, Sequential and MLP (which becomes a
    Sequential with the same state-dict keys) are supported, buffers (batch
    norm's running statistics) included;
    the training/eval mode is carried over.  Anything else raises TypeError
    naming the module.
    """
    torch = require_torch()
    tnn = torch.nn

    def convert(m, path):
        if isinstance(m, nn.Sequential):                 # MLP included
            return tnn.Sequential(*(convert(c, f"{path}.{i}" if path else str(i))
                                    for i, c in enumerate(m.children())))
        if isinstance(m, nn.Linear):
            t = tnn.Linear(m.in_features, m.out_features, bias=m.bias is not None,
                           dtype=_torch_dtype(torch, m.weight.dtype))
            with torch.no_grad():
                t.weight.copy_(torch.from_numpy(m.weight.data))
                if m.bias is not None:
                    t.bias.copy_(torch.from_numpy(m.bias.data))
            return t
        simple = {nn.ReLU: tnn.ReLU, nn.Sigmoid: tnn.Sigmoid, nn.Tanh: tnn.Tanh, nn.Identity: tnn.Identity}
        if type(m) in simple:
            return simple[type(m)]()
        if isinstance(m, nn.LeakyReLU):
            return tnn.LeakyReLU(m.negative_slope)
        if isinstance(m, nn.Flatten):
            return tnn.Flatten(m.start_dim, m.end_dim)
        if isinstance(m, nn.Dropout):
            return tnn.Dropout(m.p)
        if type(m).__name__ in _SAME_CONFIG and type(m) is getattr(nn, type(m).__name__):
            cfg = {k: tuple(v) if isinstance(v, list) and k != "normalized_shape" else v
                   for k, v in m.get_config().items()}
            floats = [a for _, _, _, a in m._state_items() if a.dtype.kind == "f"]
            if floats:
                cfg["dtype"] = _torch_dtype(torch, floats[0].dtype)
            t = getattr(tnn, type(m).__name__)(**cfg)
            t.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in m.state_dict().items()})
            return t
        raise TypeError(f"to_torch: no PyTorch equivalent for {type(m).__name__}"
                        + (f" at '{path}'" if path else ""))

    out = convert(model, "")
    # tied weights (one nnumpy Parameter under two names) become one torch Parameter
    first = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first:
            owner, _, attr = name.rpartition(".")
            src_owner, _, src_attr = first[id(p)].rpartition(".")
            shared = getattr(out.get_submodule(src_owner), src_attr)
            setattr(out.get_submodule(owner), attr, shared)
        else:
            first[id(p)] = name
    out.train(model.training)
    return out


def from_torch(module):
    """The nnumpy equivalent of a ``torch.nn`` Sequential stack (or single layer)
    of Linear, ReLU, LeakyReLU, Sigmoid, Tanh, Identity, Flatten, Dropout and
    the layers of :data:`_SAME_CONFIG` (Conv2d, pooling, normalisation,
    Dropout2d), holding exact copies of its weights and buffers (float32 or
    float64).  Anything else
    raises TypeError naming the layer."""
    torch = require_torch()
    tnn = torch.nn
    params = {}        # id of a torch Parameter -> the nnumpy Parameter made for it (tied weights stay tied)
    seen = set()       # ids of the torch modules converted so far (a module used twice)

    def tie(t, m):
        for attr, tp in t._parameters.items():
            if tp is None:
                continue
            if id(tp) in params:
                setattr(m, attr, params[id(tp)])
            else:
                params[id(tp)] = getattr(m, attr)
        return m

    def convert(t, path):
        where = f" at '{path}'" if path else ""
        if id(t) in seen and any(True for _ in t.buffers()):
            raise TypeError(f"from_torch: torch.nn.{type(t).__name__}{where} appears twice in the model and has "
                            f"buffers (running statistics) that both places update; nnumpy cannot share "
                            f"buffers between two modules: use two modules in the torch model")
        seen.add(id(t))
        if isinstance(t, tnn.Sequential):
            return nn.Sequential(*(convert(c, f"{path}.{name}" if path else name)
                                   for name, c in t._modules.items() if c is not None))
        return tie(t, convert_layer(t, path, where))

    def convert_layer(t, path, where):
        if isinstance(t, tnn.Linear):
            w = t.weight.detach().cpu().numpy()
            if w.dtype not in (np.float32, np.float64):
                raise TypeError(f"from_torch: Linear{where} has dtype {t.weight.dtype}; nnumpy holds "
                                f"float32 or float64")
            m = nn.Linear(t.in_features, t.out_features, bias=t.bias is not None, dtype=w.dtype, rng=0)
            m.weight.data[...] = w
            if t.bias is not None:
                m.bias.data[...] = t.bias.detach().cpu().numpy()
            return m
        simple = {tnn.ReLU: nn.ReLU, tnn.Sigmoid: nn.Sigmoid, tnn.Tanh: nn.Tanh, tnn.Identity: nn.Identity}
        if type(t) in simple:
            return simple[type(t)]()
        if type(t) is tnn.LeakyReLU:
            return nn.LeakyReLU(t.negative_slope)
        if type(t) is tnn.Flatten:
            return nn.Flatten(t.start_dim, t.end_dim)
        if type(t) is tnn.Dropout:
            return nn.Dropout(t.p)
        name = type(t).__name__
        if name in _SAME_CONFIG and type(t) is getattr(tnn, name):
            cls = getattr(nn, name)
            kwargs = {}
            for k in inspect.signature(cls).parameters:
                if k == "bias":
                    kwargs[k] = getattr(t, "bias", None) is not None or not getattr(t, "affine", True)
                elif k not in ("dtype", "rng", "init") and hasattr(t, k):
                    v = getattr(t, k)
                    kwargs[k] = list(v) if isinstance(v, tuple) and k == "normalized_shape" else v
            for k, v in t.state_dict().items():
                if v.device.type == "meta":
                    raise TypeError(f"from_torch: {name}{where} lives on the meta device (no values); "
                                    f"materialise it first (e.g. .to_empty(device='cpu') and initialise it)")
                if v.dtype not in (torch.float32, torch.float64, torch.int64):
                    raise TypeError(f"from_torch: {name}{where}.{k} has dtype {v.dtype}; nnumpy holds float32 "
                                    f"or float64 (convert the module with .float() or .double())")
            state = {k: v.detach().cpu().numpy() for k, v in t.state_dict().items()}
            floats = [v.dtype for v in state.values() if v.dtype.kind == "f"]
            if "dtype" in inspect.signature(cls).parameters:
                kwargs["dtype"] = floats[0] if floats else np.float32
            m = cls(**kwargs)
            m.load_state_dict(state)
            return m
        raise TypeError(f"from_torch: nnumpy has no equivalent of torch.nn.{type(t).__name__}{where}; "
                        f"supported: Sequential, Linear, ReLU, LeakyReLU, Sigmoid, Tanh, Identity, "
                        f"Flatten, Dropout, " + ", ".join(_SAME_CONFIG))

    out = convert(module, "")
    if isinstance(module, tnn.Sequential) and not any(True for _ in module.children()):
        raise TypeError("from_torch: the Sequential is empty")
    out.train(module.training)
    return out


def _torch_loss(torch, loss, dtype):
    """The torch.nn loss of the same name and settings (nnumpy's losses take PyTorch's arguments:
    ``get_config()`` is the constructor's keywords, class weights as lists, made tensors of ``dtype`` here)."""
    name = type(loss).__name__
    cls = getattr(torch.nn, name, None)
    if cls is None or not isinstance(loss, nn.Loss) or getattr(nn, name, None) is not type(loss):
        raise TypeError(f"compare_with_torch: no PyTorch equivalent for {name}")
    kwargs = {k: torch.tensor(np.asarray(v, dtype=dtype)) if k in ("weight", "pos_weight") and v is not None else v
              for k, v in loss.get_config().items()}
    return cls(**kwargs)


class TorchComparisonReport(ErrorReport):
    """A :class:`~nnumpy.report.ErrorReport` of nnumpy's values (``a``)
    against PyTorch's (``b``)."""

    labels = ("nnumpy", "torch")


def compare_with_torch(model, x, y, loss=None, dtype=np.float64, tolerance=None, verbose=False, train=False):
    """Run ``model`` and its PyTorch twin on the same weights and batch and
    compare everything back-propagation produces.

    x: a batch of inputs (at least one sample); y: the loss's targets (class
    indices for cross-entropy, the default; arrays of the output's shape for
    MSELoss).  dtype: both frameworks compute in this dtype (float64 by
    default, where agreement should be near 1e-12; float32 near 1e-6).  The
    model is copied, not changed; both copies run in evaluation mode (dropout
    off), or with ``train=True`` in training mode: batch normalisation then
    normalises with the batch's statistics (its backward couples the samples)
    and updates its running statistics, which are compared too (a model with
    active dropout is refused: the two frameworks would draw different masks).  d loss/dx is compared even for a model built with
    ``input_grad=False`` (its copy is asked for it); a module that still
    returns None fails that row, saying so.

    Returns a :class:`TorchComparisonReport` (an
    :class:`~nnumpy.report.ErrorReport`) with rows for the loss, the output
    (logits), d(loss)/d(logits), d(loss)/dx and every parameter gradient,
    with tolerance 1e-6 (float64) or 1e-4 (float32) unless given (> 0).  Each
    row's relative error is normwise, over the entries i of one tensor with
    a = nnumpy and b = PyTorch::

        rel_err = max_i |a_i - b_i| / max(max_i |a_i|, max_i |b_i|)

    (see :func:`nnumpy.report.tensor_errors`), and any NaN or inf on either
    side fails the row and the report.  A row shows its worst entry (the
    first non-finite one, else the largest |a_i - b_i|) by index, with both
    values.
    """
    torch = require_torch()
    dt = np.dtype(dtype)
    tolerance = check_tolerance(tolerance if tolerance is not None else (1e-6 if dt == np.float64 else 1e-4))
    x = np.array(x, dtype=dt)
    if x.ndim == 0 or x.shape[0] == 0 or x.size == 0:
        raise ValueError(f"compare_with_torch: x has shape {x.shape} and no samples or no entries: "
                         f"there would be nothing to compare; pass a batch of at least one sample")
    crit = loss if loss is not None else nn.CrossEntropyLoss()
    if not isinstance(train, bool):
        raise TypeError(f"compare_with_torch: train must be True or False, got {train!r}")
    ours = copy.deepcopy(model).to(dt).train(train)
    if train and any(isinstance(m, (nn.Dropout, nn.Dropout2d)) and m.p > 0 for m in ours.modules()):
        raise ValueError("compare_with_torch(train=True): the model has dropout, whose random masks differ "
                         "between nnumpy and PyTorch; compare in evaluation mode (train=False) or set p=0")
    theirs = to_torch(ours).train(train)
    y = np.asarray(y)
    if y.dtype == np.bool_ or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise TypeError(f"compare_with_torch: targets must be integer class indices or float arrays, got dtype "
                        f"{y.dtype}")
    y_ours = y.astype(np.int64) if np.issubdtype(y.dtype, np.integer) else y.astype(dt)

    # nnumpy: explicit forward and backward (backward gets a copy of d loss/d logits, so a
    # backward that writes into its dy, which the protocol forbids, cannot hide behind it)
    ours.zero_grad()
    out = ours(x)
    value = crit(out, y_ours)
    dout = crit.backward()
    given = np.array(dout, copy=True)
    dx = backward_with_input_grad(ours, given)

    # PyTorch: autograd
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.as_tensor(y_ours)
    out_t = theirs(xt)
    out_t.retain_grad()
    value_t = _torch_loss(torch, crit, x.dtype)(out_t, yt)
    value_t.backward(torch.ones_like(value_t) if value_t.ndim else None)

    def row(name, a, b):
        b = b.detach().cpu().numpy()
        problem = gradient_problem(a, b.shape, dt)
        if problem is not None:
            return TorchComparisonReport.failed_row(name, b.shape, problem.replace("backward", "nnumpy"))
        return TorchComparisonReport.row(name, a, b)

    rows = [row("loss", np.asarray(value, dtype=dt), value_t), row("logits", out, out_t),
            row("d loss/d logits", dout, out_t.grad), row("d loss/d x", dx, xt.grad)]
    if not np.array_equal(given, dout, equal_nan=True):
        rows.append(TorchComparisonReport.failed_row(
            "dy", dout.shape, "nnumpy's backward wrote into its upstream gradient dy (it must not)"))
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        rows.append(row(name + ".grad", p.grad, tparams[name].grad))
    if train:                                       # running statistics after the step
        tbufs = dict(theirs.named_buffers())
        for name, b in ours.named_buffers():
            if b.dtype.kind == "f":
                rows.append(row(name, b, tbufs[name]))
    title = (f"nnumpy vs PyTorch {torch.__version__} autograd: {type(model).__name__}, "
             f"{type(crit).__name__}, batch {x.shape[0]}, {dt.name}" + (", training mode" if train else ""))
    report = TorchComparisonReport(title, rows, tolerance)
    if verbose:
        print(report)
    return report
