"""``Parameter`` and the ``Module`` base class.

The protocol every module follows:

* ``forward(x)`` (also ``module(x)``) computes the output and keeps in
  ``self._cache`` exactly the arrays that backward needs, nothing more.
* ``backward(dy)`` takes ``dy = dL/dy`` (the shape of forward's output),
  returns ``dx = dL/dx`` and *adds* the parameter gradients into
  ``param.grad``.  It never writes into ``dy`` or into the saved input.  It
  consumes the cache: a second ``backward`` without a new ``forward`` raises.
* One owner per weight: a :class:`Parameter` holds ``.data`` and ``.grad``
  (same shape and dtype); optimizers update ``.data`` in place.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from .._checks import ArgumentTypeError, describe, flag

__all__ = ["Parameter", "Module", "StateDictError", "IncompatibleKeys"]

#: Floating dtypes a model may hold.
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class StateDictError(ValueError):
    """A state dict does not fit the model: missing, unexpected or mis-shaped entries."""


def as_float_dtype(dtype):
    """Normalise ``dtype`` (None means float32) and reject non-float dtypes."""
    try:
        dt = np.dtype(np.float32 if dtype is None else dtype)
    except TypeError:
        raise TypeError(f"nnumpy models hold float32 or float64 weights; {dtype!r:.40} is not a dtype (nnumpy runs "
                        f"on the CPU only: there is no device to move a model to)") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"nnumpy models hold float32 or float64 weights, not {dt}")
    return dt


def check_input(module, x, dtype=None):
    """Reject what a layer cannot take, before NumPy sees it: non-arrays,
    non-float arrays and (for layers with weights) a dtype other than the
    weights' (no silent upcasting)."""
    name = type(module).__name__
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} expects a NumPy array, got {type(x).__name__}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name} holds {dtype} weights but got {x.dtype} input: convert the input "
                        f"with x.astype(np.{dtype}) or the model with .to(np.{x.dtype})"
                        if x.dtype in FLOAT_DTYPES else
                        f"{name} holds {dtype} weights but got {x.dtype} input: convert it with "
                        f"x.astype(np.{dtype}) (and scale images to [0, 1])")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} expects float32 or float64 input, got {x.dtype}")


class CheckedAttribute:
    """A layer's hyper-parameter that is checked, together with the layer's
    others, whenever it is set, also after construction (PyTorch's layers
    read such attributes at every call, so setting one there changes what the
    layer computes; here the setter validates and normalises, and the layer
    computes from the normalised form).  Reads give the value as kept in
    ``layer.__dict__["_given"]``; a write calls ``layer.<setter>(name=value)``,
    which checks and stores it (or raises, changing nothing)."""

    def __init__(self, setter):
        self.setter = setter

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return obj.__dict__["_given"][self.name]

    def __set__(self, obj, value):
        getattr(obj, self.setter)(**{self.name: value})


class Parameter:
    """A learnable array: ``data`` and its gradient ``grad`` (same shape, dtype).

    ``grad`` starts at zero; backward passes add into it and :meth:`zero_grad`
    resets it, so the array object behind ``grad`` (and ``data``) never
    changes identity during training: only an assignment by the user
    (``param.data = a``, ``param.grad = g``) puts another array there.

    Resetting is lazy: :meth:`zero_grad` only marks the gradient as zero.
    Reading ``grad`` clears the array first, and a fused backward (numba
    backend) that would add into a marked gradient writes into it instead,
    which saves a pass over the gradient's memory every step.  (So read the
    gradient through ``param.grad``, not through an old reference to the array.)

    Assigning ``data`` or ``grad`` is checked, because layers, optimizers and
    the fused kernels (which index arrays without bounds checks) rely on
    the pair fitting together:

    * ``param.data = a``: a NumPy array of float32 or float64 of the shape
      the parameter has (its layer and the optimizer's state are sized for
      it; make a new Parameter, and a new optimizer, for another shape).  A
      new dtype is allowed (what :meth:`Module.to` does) and gives a new zero
      gradient of that dtype; with the same dtype the gradient is kept.
    * ``param.grad = g``: a NumPy array of exactly ``data``'s shape and dtype.
    * ``param.grad = None`` (PyTorch's way to drop a gradient) is refused:
      nnumpy keeps one gradient array per parameter; reset it with
      ``param.zero_grad()`` or ``optimizer.zero_grad()`` (a frozen
      parameter, ``requires_grad = False``, is what PyTorch's None gradient
      means to an optimizer).

    A C-contiguous, writeable array is stored as it is (the same object, so
    in-place changes through it reach the parameter); any other (a
    transposed or sliced view, a read-only array) is copied to C order
    first, since the kernels write in place over contiguous memory.  Wrong
    values raise TypeError (a non-array, a non-float dtype, a dtype other
    than ``data``'s) or ValueError (a shape), naming what was expected, and
    change nothing.  Reading either attribute does no checking (optimizers
    and kernels read them every step).

    ``requires_grad`` (default True), as in PyTorch: a frozen parameter
    (``requires_grad = False``) gets no gradient work in backward (its
    ``grad`` stays zero) and optimizers leave it, and their state for it,
    untouched.  ``Module.requires_grad_(False)`` freezes every parameter of a
    module.
    """

    __slots__ = ("_data", "_grad", "_grad_is_zero", "_requires_grad")

    def __init__(self, data, copy=True, requires_grad=True):
        # C order and writeable: the fused kernels rely on both.  copy=False adopts an array the caller just made.
        data = np.array(data, copy=True, order="C") if copy else np.require(data, requirements=["C", "W"])
        if data.dtype not in FLOAT_DTYPES:
            raise TypeError(f"Parameter data must be float32 or float64, got {data.dtype}")
        self._data = data
        self._grad = np.zeros(data.shape, data.dtype)   # calloc'd: no memory is touched until it is used
        self._grad_is_zero = False
        self._requires_grad = True
        if requires_grad is not True:
            self.requires_grad = requires_grad          # (checked)

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` and return the parameter (PyTorch's in-place form)."""
        self.requires_grad = requires_grad
        return self

    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, value):
        value = _param_array(value, "data", "a NumPy array of float32 or float64")
        if value.dtype not in FLOAT_DTYPES:
            raise ArgumentTypeError(f"Parameter.data must be float32 or float64, got dtype {value.dtype}")
        old = self._data
        if value.shape != old.shape:
            raise ValueError(f"Parameter.data must keep the parameter's shape {old.shape}, got shape "
                             f"{value.shape} (a layer holding it and an optimizer's state are sized for {old.shape}; "
                             f"for another shape, create a new Parameter and a new optimizer)")
        if value.dtype != old.dtype:                    # a new zero gradient of the new dtype
            self._grad = np.zeros(value.shape, value.dtype)
            self._grad_is_zero = False
        self._data = value

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self._requires_grad = flag("requires_grad", value, owner="Parameter")

    @property
    def grad(self):
        if self._grad_is_zero:
            self._grad[...] = 0
            self._grad_is_zero = False
        return self._grad

    @grad.setter
    def grad(self, value):
        data = self._data
        if value is None:
            raise ArgumentTypeError(
                "Parameter.grad cannot be set to None: nnumpy keeps one gradient array per parameter; reset "
                "it to zero with param.zero_grad() (or optimizer.zero_grad() / model.zero_grad()), or freeze "
                "the parameter with param.requires_grad = False")
        value = _param_array(value, "grad", f"a NumPy array of shape {data.shape} and dtype {data.dtype} "
                                            f"(the parameter's)")
        if value.dtype != data.dtype:
            raise ArgumentTypeError(f"Parameter.grad must have the parameter's dtype {data.dtype}, got dtype "
                                    f"{value.dtype}")
        if value.shape != data.shape:
            raise ValueError(f"Parameter.grad must have the parameter's shape {data.shape}, got shape "
                             f"{value.shape}")
        self._grad = value
        self._grad_is_zero = False

    def grad_for_update(self):
        """``(array, accumulate)`` for a kernel about to add a gradient: when the
        gradient is marked zero, ``accumulate`` is False and the kernel must
        overwrite the whole array (the mark is then cleared)."""
        accumulate = not self._grad_is_zero
        self._grad_is_zero = False
        return self._grad, accumulate

    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def size(self):
        return self._data.size

    def zero_grad(self):
        """Mark the gradient as zero (see the class docstring)."""
        self._grad_is_zero = True

    def __repr__(self):
        frozen = "" if self._requires_grad else ", requires_grad=False"
        return f"Parameter(shape={self._data.shape}, dtype={self._data.dtype}{frozen})"


def _param_array(value, attr, expected):
    """``value`` for ``Parameter.<attr>``: a NumPy ndarray (not a subclass such as a
    masked array, whose mask would be lost), as it is when C-contiguous and
    writeable, else as a C-ordered copy."""
    if type(value) is not np.ndarray:
        got = (f"a {type(value).__name__} (a subclass of numpy.ndarray; pass a plain array)"
               if isinstance(value, np.ndarray) else describe(value))
        raise ArgumentTypeError(f"Parameter.{attr} must be {expected}, got {got}")
    if value.flags.c_contiguous and value.flags.writeable:
        return value
    return np.array(value, order="C", copy=True)


def grad_target(param):
    """``(array, accumulate)`` for a kernel to put ``param``'s gradient in (see
    :meth:`Parameter.grad_for_update`), or ``(None, True)`` when there is no
    such parameter (a layer without bias) or it is frozen (``requires_grad``
    False): the kernel then computes no gradient for it."""
    if param is None or not param._requires_grad:
        return None, True
    return param.grad_for_update()


class Module:
    """Base class of every layer, container and loss.

    Subclasses assign parameters and sub-modules as attributes (they are
    registered in order, as in PyTorch) and implement ``forward`` and
    ``backward``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_cache", None)

    # -- registration -------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning attributes")
        params, modules = self.__dict__["_parameters"], self.__dict__["_modules"]
        buffers = self.__dict__["_buffers"]
        if name in buffers:
            if not isinstance(value, np.ndarray):
                raise TypeError(f"{type(self).__name__}.{name} is a buffer: assign a NumPy array, "
                                f"got {type(value).__name__}")
            buffers[name] = value
            object.__setattr__(self, name, value)
            return
        if isinstance(value, Module):
            self._check_one_place(name, value)          # (before anything changes)
        if isinstance(value, Parameter):
            modules.pop(name, None)
            params[name] = value                        # (a replaced parameter keeps its place in the order)
        elif isinstance(value, Module):
            params.pop(name, None)
            modules[name] = value
        else:
            params.pop(name, None)
            modules.pop(name, None)
        object.__setattr__(self, name, value)

    def _check_one_place(self, name, module):
        """A module keeps the cache of one forward pass, so it can have only one
        place in a model: refuse ``module`` (or any module inside it) when it is
        already part of this one, other than as the ``name`` it replaces."""
        replaced = self.__dict__["_modules"].get(name)
        gone = {id(m) for m in replaced.modules()} if replaced is not None else set()
        here = {id(m) for m in self.modules()} - gone
        clash = next((m for m in module.modules() if id(m) in here), None)
        if clash is not None:
            what = "it" if clash is module else f"the {type(clash).__name__} inside it"
            raise ValueError(
                f"cannot add this {type(module).__name__} to {type(self).__name__} as {name!r}: {what} is "
                f"already part of the model. A module keeps the cache of one forward pass, so it can appear only "
                f"once; use a second module, and to share weights assign the same Parameter "
                f"(second.weight = first.weight)")

    def register_buffer(self, name, array):
        """Register ``array`` as state that is not learned (batch norm's running
        statistics): it is in :meth:`state_dict` under its dotted name, after the
        module's parameters (PyTorch's order), converted by :meth:`to` when it
        is a float array, saved by :func:`nnumpy.save`, and never seen by an
        optimizer.  Update it in place or by assigning a new array."""
        if not isinstance(array, np.ndarray):
            raise TypeError(f"a buffer is a NumPy array, got {type(array).__name__}")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def add_module(self, name, module):
        """Register ``module`` under ``name`` (used by containers for "0", "1", ...)."""
        if not isinstance(module, Module):
            raise TypeError(f"{module!r} is not an nnumpy Module")
        if not isinstance(name, str):
            raise TypeError(f"add_module: a module's name is a string, got {type(name).__name__}")
        if not name or "." in name:
            raise ValueError(f"add_module: a module's name must be non-empty and without '.' (state-dict keys "
                             f"join names with dots), got {name!r}")
        if name not in self._modules and (hasattr(type(self), name) or name in self.__dict__):
            raise ValueError(f"add_module: {type(self).__name__} already has an attribute {name!r}; choose another "
                             f"name for the module")
        self._check_one_place(str(name), module)
        self._modules[str(name)] = module
        object.__setattr__(self, str(name), module)

    # -- the protocol ---------------------------------------------------------
    def forward(self, *args):
        """The forward pass: the module's output for its input, checked at the boundary.  Keeps
        exactly what backward needs (``self._save``) until the next backward.  The class's
        docstring gives the formula and the shapes."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def backward(self, dy):
        """The backward pass: ``dy`` = dL/d(output), of the output's shape and dtype, gives
        dx = dL/d(input), of the input's shape and dtype.  Adds each parameter's gradient into its
        ``.grad``, consumes what forward kept (a second backward without a new forward raises) and
        never writes into ``dy``.  The class's docstring gives the formulas."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        self.__dict__["_forward_ran"] = True     # (so a forward that saved nothing is named as such)
        return out

    def _save(self, **arrays):
        """Keep what backward needs until the next backward consumes it."""
        self.__dict__["_cache"] = arrays

    def _take_fused_cache(self):
        """Hand the cache to backward once; a second call before forward raises."""
        cache = self._cache
        ran = self.__dict__.pop("_forward_ran", False)
        if cache is None:
            if ran:
                raise RuntimeError(
                    f"{type(self).__name__}.backward() found nothing saved: forward() ran but kept nothing for "
                    f"backward; forward must call self._save(...) with what backward needs")
            raise RuntimeError(
                f"{type(self).__name__}.backward() was called without a preceding forward(): "
                f"each backward consumes what one forward saved; run forward again first (or, if forward "
                f"ran, it kept nothing for backward with self._save(...))")
        self.__dict__["_cache"] = None
        return cache

    def _take_cache(self):
        """As :meth:`_take_fused_cache`, for the module's own backward, which
        cannot undo a forward that a container ran fused (numba backend)."""
        cache = self._take_fused_cache()
        if cache.get("fused"):
            raise RuntimeError(
                f"{type(self).__name__} ran fused with its neighbour (numba backend); call backward on "
                f"the container (Sequential/MLP) that ran the forward pass")
        return cache

    def clear_cache(self):
        """Drop what forward saved, here and in every sub-module (frees memory;
        a backward afterwards raises)."""
        for m in self.modules():
            m.__dict__["_cache"] = None
            m.__dict__.pop("_forward_ran", None)

    def saved_arrays(self):
        """What this module currently keeps for backward (name -> array); empty
        after backward.  Used by :func:`nnumpy.summary`."""
        return {k: v for k, v in (self._cache or {}).items() if isinstance(v, np.ndarray)}

    def _check_dy(self, dy, shape, dtype):
        """Reject an upstream gradient whose shape or dtype differs from the output's."""
        module = type(self).__name__
        if not isinstance(dy, np.ndarray):
            raise TypeError(f"{module}.backward expects a NumPy array dy, got {type(dy).__name__}")
        if dy.shape != tuple(shape):
            raise ValueError(f"{module}.backward: dy has shape {dy.shape}, expected "
                             f"{tuple(shape)} (the shape of forward's output)")
        if dy.dtype != dtype:
            raise TypeError(f"{module}.backward: dy has dtype {dy.dtype}, expected {dtype} "
                            f"(the dtype of forward's output)")

    # -- traversal ------------------------------------------------------------
    def children(self):
        return iter(self._modules.values())

    def named_children(self):
        return iter(self._modules.items())

    def modules(self):
        """This module and every sub-module, depth first."""
        yield self
        for m in self._modules.values():
            yield from m.modules()

    def named_parameters(self, prefix="", remove_duplicate=True):
        """(dotted name, Parameter) pairs, in registration order: "0.weight", ...
        A Parameter shared by two modules (``b.weight = a.weight``, tied
        weights) comes once, under its first name, unless ``remove_duplicate``
        is False (PyTorch's rule): so an optimizer updates it once, with the
        gradient both uses added into its ``.grad``."""
        seen = set()
        for name, p in self._all_parameters(prefix):
            if remove_duplicate:
                if id(p) in seen:
                    continue
                seen.add(id(p))
            yield name, p

    def _all_parameters(self, prefix):
        for name, p in self._parameters.items():
            yield prefix + name, p
        for mname, m in self._modules.items():
            yield from m._all_parameters(prefix + mname + ".")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        """(dotted name, array) pairs of every buffer: "1.running_mean", ..."""
        for name, b in self._buffers.items():
            yield prefix + name, b
        for mname, m in self._modules.items():
            yield from m.named_buffers(prefix + mname + ".")

    def buffers(self):
        return [b for _, b in self.named_buffers()]

    def _state_items(self, prefix=""):
        """(dotted name, owner module, attribute, array) of every state entry in
        PyTorch's order: a module's parameters, then its buffers, then its children's."""
        for name, p in self._parameters.items():
            yield prefix + name, self, name, p.data
        for name, b in self._buffers.items():
            yield prefix + name, self, name, b
        for mname, m in self._modules.items():
            yield from m._state_items(prefix + mname + ".")

    def num_parameters(self):
        """Total number of learnable scalars."""
        return int(sum(p.size for p in self.parameters()))

    def zero_grad(self, set_to_none=True):
        """Reset every gradient to zero (the arrays keep their identity).
        ``set_to_none``: PyTorch's argument, accepted and without effect (see
        :meth:`nnumpy.optim.Optimizer.zero_grad`)."""
        flag("set_to_none", set_to_none, owner="zero_grad")
        for p in self.parameters():
            p.zero_grad()

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` of every parameter (``False`` freezes the
        module: backward computes no parameter gradients for it, optimizers
        skip it).  Returns the module, as PyTorch's does."""
        value = flag("requires_grad", requires_grad, owner=f"{type(self).__name__}.requires_grad_")
        for p in self.parameters():
            p.requires_grad = value
        return self

    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    @property
    def dtype(self):
        """The dtype of the module's parameters, else of its float buffers (batch
        norm without affine keeps running statistics only); None for a module
        with neither."""
        for p in self.parameters():
            return p.data.dtype
        for b in self.buffers():
            if b.dtype in FLOAT_DTYPES:
                return b.dtype
        return None

    def double(self):
        """``self.to(np.float64)``, PyTorch's name."""
        return self.to(np.float64)

    def float(self):
        """``self.to(np.float32)``, PyTorch's name."""
        return self.to(np.float32)

    def to(self, dtype):
        """Convert every parameter (and its gradient) to ``dtype`` in place; returns self."""
        dt = as_float_dtype(dtype)
        for m in self.modules():
            m._cache = None
            m.__dict__.pop("_forward_ran", None)
            for p in m._parameters.values():
                if p.data.dtype != dt:
                    grad = p.grad                  # (setting data of a new dtype resets the gradient)
                    p.data = p.data.astype(dt, order="C")
                    p.grad = grad.astype(dt, order="C")
            for name, b in m._buffers.items():
                if b.dtype in FLOAT_DTYPES and b.dtype != dt:
                    setattr(m, name, b.astype(dt, order="C"))
        return self

    # -- state ------------------------------------------------------------------
    def state_dict(self):
        """An ordered dict of dotted names to copies of the parameters' data
        and of the buffers (batch norm's running statistics).

        The keys and their order are those of the equivalent PyTorch module
        ("0.weight", "0.bias", "1.running_mean", ...), so ``{k: v.numpy() for
        k, v in torch_model.state_dict().items()}`` loads into the nnumpy model.
        """
        return OrderedDict((name, a.copy()) for name, _, _, a in self._state_items())

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` into the parameters, in place.

        Values are converted to each parameter's dtype.  A shape mismatch
        always raises :class:`StateDictError`; with ``strict`` so do missing
        and unexpected keys.  Returns ``(missing_keys, unexpected_keys)``.
        Nothing is written unless every entry fits.
        """
        items = list(self._state_items())
        own = OrderedDict((name, a) for name, _, _, a in items)
        owners = {name: (m, attr) for name, m, attr, _ in items}
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and missing:
            problems.append("missing key(s): " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected key(s): " + ", ".join(map(str, unexpected)))
        values = {}
        for k, p in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            if hasattr(v, "detach"):          # a torch tensor: no torch import needed
                v = v.detach().cpu().numpy()
            v = np.asarray(v)
            if v.shape != p.shape:
                problems.append(f"{k}: shape {v.shape} in the state dict, {p.shape} in the model")
            elif not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
                problems.append(f"{k}: dtype {v.dtype} is not numeric")
            else:
                problem = owners[k][0].check_state_entry(owners[k][1], v)
                if problem is not None:
                    problems.append(f"{k}: {problem}")
                else:
                    values[k] = v
        if problems:
            raise StateDictError(f"cannot load state dict into {type(self).__name__}: "
                                 + "; ".join(problems))
        for k, v in values.items():
            own[k][...] = v
        return IncompatibleKeys(missing, unexpected)

    def check_state_entry(self, name, value):
        """Why ``value`` cannot be this module's state entry ``name`` (a string),
        or None when it can.  Called by :meth:`load_state_dict` and
        :func:`nnumpy.load` for every entry, after the shape check; modules
        whose buffers have rules (batch norm's counter and variances) override
        it.  NaN weights are not refused: they load as they are."""
        return None

    def get_config(self):
        """The constructor arguments that rebuild this module (JSON-able);
        used by :func:`nnumpy.save`.  Modules without arguments return {}."""
        return {}

    # -- printing ---------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"
