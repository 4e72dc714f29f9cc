"""Containers: ``Sequential`` and the ``MLP`` builder."""
from __future__ import annotations

from .. import backend
from ..backend.threads import single_threaded_blas
from .._checks import ArgumentTypeError, describe, flag, positive_int, real
from ..random import resolve_rng
from .activation import ELU, GELU, Hardtanh, Identity, LeakyReLU, ReLU, Sigmoid, SiLU, Softplus, Tanh
from ..functional.pool import pool2d_output_size
from .conv import Conv2d
from .pooling import MaxPool2d
from .layers import Dropout
from .linear import Linear
from .module import Module, as_float_dtype, grad_target

import numpy as np

__all__ = ["Sequential", "MLP", "ACTIVATIONS"]

#: Activations that the numba backend fuses into the Linear or Conv2d before them.
_FUSABLE = {ReLU: "relu", LeakyReLU: "leaky_relu", Sigmoid: "sigmoid", Tanh: "tanh", Identity: "identity"}

#: Activations after which a MaxPool2d joins the fused Conv2d step.  The fused backward forms dz
#: at the arg-maxima only (elsewhere dz = 0 * f'(y) = 0); for these, 0 * f'(y) is 0 for every y,
#: but the sigmoid's and tanh's y (1 - y) and 1 - y^2 are NaN where y is NaN, which PyTorch (and the
#: unfused layers) carry into dx, dW and db: those keep the pool as a step of its own.
_POOL_FUSABLE = ("relu", "leaky_relu", "identity")

#: Activation names accepted by :class:`MLP` (the ones outside _FUSABLE, with their default
#: hyper-parameters, run as steps of their own after the Linear).
ACTIVATIONS = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "identity": Identity,
    "gelu": GELU,
    "elu": ELU,
    "silu": SiLU,
    "softplus": Softplus,
    "hardtanh": Hardtanh,
}


def _trains(step):
    """Whether a plan step (modules, names, None) holds a parameter that
    requires a gradient.  A module without sub-modules (a Linear, an
    activation) is read from its own parameter table, the fast path that
    runs every backward; any other through parameters()."""
    for s in step:
        if not isinstance(s, Module):
            continue
        own = s.__dict__["_parameters"].values() if not s.__dict__["_modules"] else s.parameters()
        for p in own:
            if p is not None and p.requires_grad:
                return True
    return False


class Sequential(Module):
    """Modules applied in order: ``y = f_k(...f_1(x))``.

    Backward is the chain rule run in reverse:
    ``dx = f_1.backward(... f_k.backward(dy))``.  Children are registered as
    "0", "1", ..., so parameter names match ``torch.nn.Sequential``.

    ``input_grad``: whether :meth:`backward` returns d(loss)/d(input).  The
    data entering a network needs no gradient (PyTorch's
    ``requires_grad=False``); ``input_grad=False`` skips the first layer's
    ``dy @ W`` and makes backward return None.  Default True.

    On the numba backend each ``Linear`` or ``Conv2d`` and the activation
    after it run as one fused kernel (see :mod:`nnumpy.backend`), and
    hidden-layer buffers of the fully connected layers are reused from step
    to step: the arrays a forward pass keeps for backward stay valid until
    the next forward pass.  A fused step reads its activation's derivative
    from the output it returned (ReLU's mask, the sigmoid's y(1 - y)), so do
    not write into a hidden layer's output between forward and backward; nor
    into the network's input: what backward then uses of it is undefined (the
    numpy backend reads the input again, a fused convolution may have kept
    its im2col from the forward pass).  Backward uses the hyper-parameters
    (stride, padding, pooling window, slope) that the forward pass ran with.
    """

    def __init__(self, *modules, input_grad=True):
        super().__init__()
        self.__dict__["_plans"] = {}
        for i, m in enumerate(modules):
            self.add_module(str(i), m)
        self.input_grad = flag("input_grad", input_grad, owner=type(self).__name__)
        self.__dict__["_scratch"] = {}

    def add_module(self, name, module):
        super().add_module(name, module)
        self.__dict__["_plans"] = {}

    def __setattr__(self, name, value):
        # a child replaced or removed by assignment (setattr(seq, "0", layer)) changes the plan too
        was_child = name in self.__dict__.get("_modules", ())
        super().__setattr__(name, value)
        if was_child or isinstance(value, Module):
            self.__dict__["_plans"] = {}

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(*mods[idx])
        return mods[idx]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    # -- execution plan -----------------------------------------------------------
    def _plan(self, fuse):
        """Steps (module, activation module or None, activation name or None,
        max-pool module or None): with ``fuse``, every Linear with the
        activation after it (or alone, with the identity), and every Conv2d
        with the activation after it and, when one follows (after a ReLU,
        LeakyReLU or Identity: see _POOL_FUSABLE), the MaxPool2d after that
        (conv + activation + max-pool in one kernel: the convolution's output
        is never stored); otherwise one step per module."""
        plans = self.__dict__["_plans"]
        if fuse in plans:
            return plans[fuse]
        mods, steps, i = list(self._modules.values()), [], 0
        while i < len(mods):
            m, nxt = mods[i], mods[i + 1] if i + 1 < len(mods) else None
            act = _FUSABLE.get(type(nxt)) if fuse and type(m) in (Linear, Conv2d) else None
            if act == "leaky_relu" and nxt.negative_slope <= 0:
                act = None                 # f' is then not recoverable from the output's sign
            pool = mods[i + 2] if act is not None and type(m) is Conv2d and i + 2 < len(mods) else None
            if type(pool) is not MaxPool2d or pool.return_indices or act not in _POOL_FUSABLE:
                pool = None
            if act is not None:
                steps.append((m, nxt, act, pool))
                i += 2 if pool is None else 3
            elif fuse and type(m) is Linear:
                steps.append((m, None, "identity", None))
                i += 1
            else:
                steps.append((m, None, None, None))
                i += 1
        plans[fuse] = steps
        return steps

    def _buffer(self, key, shape, dtype):
        """A scratch array reused across steps (never handed to the caller)."""
        key = (key, shape, dtype)
        buf = self._scratch.get(key)
        if buf is None:
            if len(self._scratch) > 32:
                self._scratch.clear()
            buf = self._scratch[key] = np.empty(shape, dtype)
        return buf

    # -- forward / backward -----------------------------------------------------------
    def _has_conv(self, fuse):
        """Whether the plan runs a Conv2d on the numba backend (BLAS then keeps to one
        thread: see :mod:`nnumpy.backend.threads`); kept with the plan."""
        if not fuse:
            return False
        plans = self.__dict__["_plans"]
        if "conv" not in plans:
            plans["conv"] = any(type(m) is Conv2d for m, *_ in self._plan(fuse))
        return plans["conv"]

    def forward(self, x):
        self.__dict__["_at"] = None
        fuse = backend.get_backend() == "numba"
        try:
            if self._has_conv(fuse):
                with single_threaded_blas():
                    return self._forward(x)
            return self._forward(x)
        except BaseException as e:
            # a forward that stopped half-way leaves no caches behind: the layers before the failure
            # saved this input, the ones after it the previous one, and a backward would mix the two
            self.clear_cache()
            if not isinstance(e, (ValueError, TypeError)):
                raise
            m = self.__dict__["_at"]
            name = next((k for k, v in self._modules.items() if v is m), None)
            if (type(e) not in (ValueError, TypeError, ArgumentTypeError) or name is None
                    or getattr(e, "_nnumpy_located", False) or not isinstance(x, np.ndarray)):
                raise
            located = type(e)(f"{e} (in layer '{name}' of the {type(self).__name__}, whose input had shape "
                              f"{x.shape})")
            located._nnumpy_located = True              # an outer Sequential adds nothing more
            raise located from None

    def _forward(self, x):
        fuse = backend.get_backend() == "numba"
        self.__dict__["_fused"] = fuse          # backward follows the same plan
        ops = backend.ops()
        steps = self._plan(fuse)
        last = len(steps) - 1
        fresh = True                       # is x a new array (not one of the reused buffers)?
        for k, (m, act_mod, act, pool) in enumerate(steps):
            self.__dict__["_at"] = m                       # named in an error about the input
            if act is not None and type(m) is Conv2d and getattr(x, "ndim", 0) == 4:
                geo = m.check_input(x)
                x = np.ascontiguousarray(x)                                   # (N, C, H, W)
                b = m.bias.data if m.bias is not None else None
                slope = getattr(act_mod, "negative_slope", 0.0)
                hyper = (m.stride, m._pad, m.dilation, m.groups)         # backward uses these
                # the im2col matrix, kept from forward to backward where both use it (else None)
                shape = ops.kept_cols_shape(x.shape, m.weight.shape, *hyper)
                cols = self._buffer(("cols", k), shape, x.dtype) if shape is not None else None
                if pool is None:
                    y = ops.conv2d_act_forward(x, m.weight.data, b, *hyper, act, slope, cols=cols)
                    # x (N, C, H, W), y = act(conv) (N, O, Ho, Wo), cols (N, G, C/G*KH*KW, Ho*Wo) or None
                    m._save(fused=True, x=x, y=y, act=act, cols=cols, hyper=hyper, slope=slope)
                else:
                    self.__dict__["_at"] = pool
                    pool2d_output_size(geo.out_size, pool._k, pool._s, pool._p, pool._d, pool.ceil_mode,
                                       owner=f"MaxPool2d({pool.extra_repr()})")      # a clear error first
                    self.__dict__["_at"] = m
                    # p = maxpool(act(conv(x) + b)) (N, O, Hq, Wq) and its arg-max in the (Ho, Wo) plane
                    pool_hyper = (pool._k, pool._s, pool._p, pool._d, pool.ceil_mode)
                    y, idx = ops.conv2d_act_pool_forward(x, m.weight.data, b, *hyper, act, slope, *pool_hyper,
                                                         cols=cols)
                    m._save(fused=True, x=x, y=y, idx=idx, act=act, cols=cols, hyper=hyper, slope=slope,
                            pool_hyper=pool_hyper)
                    pool._save(fused=True)
                act_mod._save(fused=True)
                x, fresh = y, True
                continue
            if act is None or getattr(x, "ndim", 2) != 2 or type(m) is not Linear:
                # the step's input shape: backward checks that the layer's dx has it
                self.__dict__.setdefault("_in_shapes", {})[k] = getattr(x, "shape", None)
                if act is not None:        # N-d input: run this pair (or triple) unfused
                    x = m(x)
                    x = act_mod(x) if act_mod is not None else x
                    x = pool(x) if pool is not None else x
                else:
                    x = m(x)
                fresh = False              # a module may return a view of its input
                continue
            m.check_input(x)
            W, b = m.weight.data, m.bias.data if m.bias is not None else None
            out = None if k == last else self._buffer(("y", k), (x.shape[0], m.out_features), x.dtype)
            slope = getattr(act_mod, "negative_slope", 0.0)
            y = ops.linear_act_forward(x, W, b, act, slope, out)
            m._save(fused=True, x=x, y=y, act=act, slope=slope)       # x (N, in) and y = act(z) (N, out)
            if act_mod is not None:
                act_mod._save(fused=True)
            x, fresh = y, out is None
        return x if fresh or not fuse else self._own(x)

    def backward(self, dy, input_grad=None):
        """dy = dL/d(output) -> dL/d(input) (None when the input needs no gradient)."""
        input_grad = self.input_grad if input_grad is None else bool(input_grad)
        if not self._modules:
            return dy.copy() if input_grad else None
        if self._has_conv(self.__dict__.get("_fused", False)):
            with single_threaded_blas():
                return self._backward(dy, input_grad)
        return self._backward(dy, input_grad)

    def _backward(self, dy, input_grad):
        fused = self.__dict__.get("_fused", False)
        steps = self._plan(fused)
        # Frozen layers (requires_grad False) need no gradient of their own; when the input needs none
        # either, back-propagation ends at the first step with a trainable parameter (`first`): the
        # steps before it are skipped (their caches dropped), a frozen feature extractor costs nothing.
        first = next((k for k, step in enumerate(steps) if _trains(step)), len(steps))
        fresh = True
        for k in range(len(steps) - 1, -1, -1):
            m, act_mod, act, pool = steps[k]
            if k < first and not input_grad:
                for step in steps[:k + 1]:
                    for s in step:
                        if isinstance(s, Module):
                            s.clear_cache()
                return None
            need = input_grad or k > first
            cache = m._cache or {}
            if act is None or not cache.get("fused"):
                if pool is not None:       # this triple ran unfused (an unbatched input)
                    dy = self._returned(pool, pool.backward(dy))
                if act is not None:        # this pair ran unfused (N-d input)
                    dy = self._returned(act_mod, act_mod.backward(dy)) if act_mod is not None else dy
                if isinstance(m, (Linear, Conv2d, Sequential)):    # ask for dx exactly when it is needed
                    if not need:
                        return m.backward(dy, input_grad=False)
                    dy = self._returned(m, m.backward(dy, input_grad=True), to_caller=k == 0, step=k)
                else:
                    dy = self._returned(m, m.backward(dy), to_caller=k == 0, step=k)
                fresh = False
                continue
            c = m._take_fused_cache()
            if act_mod is not None:
                act_mod._take_fused_cache()
            self._check_dy(dy, c["y"].shape, c["y"].dtype)
            x, y = c["x"], c["y"]
            if type(m) is Conv2d:
                # dz = dy * f'(y); gW (+)= x (*) dz; gb (+)= sum dz; dx = col2im(dz @ W)  (see conv2d_act_backward);
                # after a fused max-pool, dy first goes back to the arg-max of each window
                gW, acc_w = grad_target(m.weight)        # (None: no bias, or frozen; not computed)
                gb, acc_b = grad_target(m.bias)
                kernels = backend.ops("numba")
                # the forward's hyper-parameters (and slope), whatever was set on the layers since
                hyper, slope = c["hyper"], c["slope"]
                if pool is None:
                    dy = kernels.conv2d_act_backward(
                        np.ascontiguousarray(dy), x, m.weight.data, y, gW, gb, *hyper, act, slope, need_dx=need,
                        acc_w=acc_w, acc_b=acc_b, cols=c["cols"])
                else:
                    pool._take_fused_cache()
                    dy = kernels.conv2d_act_pool_backward(
                        np.ascontiguousarray(dy), c["idx"], y, x, m.weight.data, gW, gb, *hyper, act, slope,
                        *c["pool_hyper"], need_dx=need, acc_w=acc_w, acc_b=acc_b, cols=c["cols"])
                fresh = True
                if not need:
                    return None
                continue
            dz = self._buffer(("dz", k), y.shape, y.dtype) if act != "identity" else None
            dx = self._buffer(("dx", k), x.shape, x.dtype) if k > 0 else None
            gW, acc_w = grad_target(m.weight)            # (None: no bias, or frozen; not computed)
            gb, acc_b = grad_target(m.bias)
            dy = backend.ops("numba").linear_act_backward(
                dy, x, m.weight.data, y, gW, gb, act, c["slope"], need,
                dz=dz, dx=dx, acc_w=acc_w, acc_b=acc_b)
            fresh = dx is None
        if not input_grad:
            return None
        return dy if fresh or not fused else self._own(dy)

    def _returned(self, module, dx, to_caller=False, step=None):
        """``dx`` if a layer's backward returned an array of its input's shape (as forward recorded it
        for ``step``), or whatever the first step returned that is no array (it goes to the caller as it
        is: gradcheck reports a missing input gradient); else an error naming the layer (the layer below
        would otherwise complain about a dy it never produced, or the caller get a wrong dx)."""
        def name():
            return next((n for n, mod in self._modules.items() if mod is module), "?")
        if isinstance(dx, np.ndarray):
            shape = self.__dict__.get("_in_shapes", {}).get(step)
            if step is not None and shape is not None and dx.shape != shape:
                raise ValueError(f"layer {name()} ({type(module).__name__}) of the Sequential returned dx of shape "
                                 f"{dx.shape} from backward, but its input had shape {shape}: dx = dL/dx has "
                                 f"the input's shape")
            return dx
        if to_caller:
            return dx
        raise TypeError(f"layer {name()} ({type(module).__name__}) of the Sequential returned "
                        f"{type(dx).__name__} from backward: a backward must return dx = dL/dx, an array "
                        f"of its input's shape")

    def _own(self, a):
        """``a``, copied if it shares memory with a reused buffer (so what the
        caller receives is never overwritten by a later step)."""
        if any(np.may_share_memory(a, b) for b in self._scratch.values()):
            return a.copy()
        return a


class MLP(Sequential):
    """A multilayer perceptron from its layer sizes.

    ``MLP([784, 100, 200, 50, 10])`` is ``Sequential(Linear(784, 100), ReLU(),
    Linear(100, 200), ReLU(), Linear(200, 50), ReLU(), Linear(50, 10))``: no
    activation after the last layer (losses take logits).  With ``dropout >
    0`` a ``Dropout`` follows each hidden activation, as it would in the
    equivalent PyTorch stack, so the state-dict keys match that stack.

    activation: a name from :data:`ACTIVATIONS`, or a list with one name per
    hidden layer.  input_grad: see :class:`Sequential`.  init: see :class:`Linear`.
    ``rng``: an int seed or Generator for the initial weights
    (and dropout masks); the same seed gives the same model.
    """

    def __init__(self, sizes, activation="relu", dropout=0.0, bias=True, dtype=None, rng=None,
                 input_grad=True, init=True):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or not hasattr(sizes, "__iter__"):
            raise ArgumentTypeError(f"MLP: sizes must be a list of layer sizes such as [784, 100, 10], "
                                    f"got {describe(sizes)}")
        sizes = [positive_int(f"sizes[{i}]", s, owner="MLP") for i, s in enumerate(sizes)]
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least two positive layer sizes (input and output), got {sizes}")
        n_hidden = len(sizes) - 2
        if isinstance(activation, str):
            acts = [activation] * n_hidden
        elif isinstance(activation, (list, tuple)):
            acts = list(activation)
        else:
            raise ArgumentTypeError(f"MLP: activation must be a name from {sorted(ACTIVATIONS)} or a list "
                                    f"of names, one per hidden layer, got {describe(activation)}")
        if len(acts) != n_hidden:
            raise ValueError(f"MLP with sizes {sizes} has {n_hidden} hidden layer(s) but "
                             f"{len(acts)} activation(s) were given")
        for a in acts:
            if not isinstance(a, str):
                raise ArgumentTypeError(f"MLP: activations are names from {sorted(ACTIVATIONS)}, got "
                                        f"{describe(a)}")
            if a not in ACTIVATIONS:
                raise ValueError(f"unknown activation {a!r}; choose from {sorted(ACTIVATIONS)}")
        dropout = real("dropout", dropout, 0.0, 1.0, owner="MLP")
        bias = flag("bias", bias, owner="MLP")
        dt = as_float_dtype(dtype)
        gen = resolve_rng(rng)
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(Linear(sizes[i], sizes[i + 1], bias=bias, dtype=dt, rng=gen, init=init))
            if i < n_hidden:
                layers.append(ACTIVATIONS[acts[i]]())
                if dropout > 0:
                    layers.append(Dropout(dropout, rng=gen))
        super().__init__(*layers, input_grad=input_grad)
        self.sizes = sizes
        self.activations = acts
        self.dropout = dropout
        self.bias = bool(bias)

    def get_config(self):
        return {"sizes": self.sizes, "activation": self.activations, "dropout": self.dropout,
                "bias": self.bias, "input_grad": self.input_grad}
