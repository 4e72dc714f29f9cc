"""The compute backend: ``"numpy"`` (the readable reference) or ``"numba"``
(JIT-compiled fused kernels for the hot paths).

    nnumpy.set_backend("numba")          # or "numpy"
    nnumpy.get_backend()                 # -> "numba"
    with nnumpy.backend.use("numpy"):    # temporarily
        ...

The default comes from the ``NNUMPY_BACKEND`` environment variable, else
``"numba"`` when Numba imports, else ``"numpy"`` (with a one-time warning).

What changes on the numba backend (results agree with the numpy backend to
rounding, element by element; the sigmoid and tanh on both are within a few
ulps of the exact functions, relative to each element: below 3e-7 in float32
and 5e-16 in float64; state dicts, module structure and the module protocol
do not change):

* containers (``Sequential``, ``MLP``) run each ``Linear`` together with the
  activation that follows it as one fused kernel, forward
  ``y = act(x @ W.T + b)`` and backward (activation derivative and bias
  gradient in one pass, ``dW = dz.T @ x`` written straight into
  ``param.grad`` when it was zeroed, ``dx``), with every GEMM through
  NumPy's BLAS, and reuse their hidden-layer buffers from step to step;
* every loss computes its value and d(input) together, in one fused pass
  where it pays (:mod:`nnumpy.backend.numba_loss`: cross-entropy with class
  weights, ignore_index, label smoothing or soft targets, NLL, binary
  cross-entropy, multi-margin, L1, Huber, smooth L1, MSE);
* the activations GELU, ELU, SiLU, Softplus, Hardtanh, Softmax and
  LogSoftmax run their forward and backward as fused passes
  (:mod:`nnumpy.backend.numba_act`);
* ``SGD``, ``Adam``, ``AdamW``, ``RMSprop`` and ``Adagrad`` update each
  parameter in one fused pass.

See :mod:`nnumpy.backend.numpy_ops` (and :mod:`nnumpy.functional`) for the
reference form of every fused operation and :mod:`nnumpy.backend.numba_ops`,
``numba_conv``, ``numba_loss`` and ``numba_act`` for the kernels.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import warnings

__all__ = ["set_backend", "get_backend", "use", "available_backends", "ops", "BACKENDS"]

BACKENDS = ("numpy", "numba")
_state = {"name": None, "warned": False}


def _numba_importable():
    try:
        importlib.import_module("numba")
        return True
    except Exception:        # ImportError, or a numba/numpy version mismatch
        return False


def available_backends():
    """The backends that can be used on this machine."""
    return tuple(b for b in BACKENDS if b == "numpy" or _numba_importable())


def _check(name):
    name = str(name).lower()
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose 'numpy' or 'numba'")
    if name == "numba" and not _numba_importable():
        raise ImportError("the numba backend needs Numba: pip install numba")
    return name


def _default():
    env = os.environ.get("NNUMPY_BACKEND", "").strip()
    if env:
        return _check(env)
    if _numba_importable():
        return "numba"
    if not _state["warned"]:
        _state["warned"] = True
        warnings.warn("Numba is not available; nnumpy uses its NumPy backend (slower). "
                      "pip install numba for the fused kernels.", RuntimeWarning, stacklevel=3)
    return "numpy"


def get_backend():
    """The name of the backend in use."""
    name = _state["name"]
    if name is None:
        name = _state["name"] = _default()
    return name


def set_backend(name):
    """Use backend ``name`` ("numpy" or "numba") from now on."""
    _state["name"] = _check(name)


@contextlib.contextmanager
def use(name):
    """Use backend ``name`` inside a ``with`` block."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        _state["name"] = previous


_OPS = {}


def ops(name=None):
    """The module of fused operations of backend ``name`` (default: the one in use)."""
    name = name or _state["name"] or get_backend()
    mod = _OPS.get(name)
    if mod is None:
        mod = _OPS[name] = importlib.import_module(f".{name}_ops", __name__)
    return mod
