"""Element-wise activations, and softmax along a dimension.  Each keeps the
smallest thing its derivative needs: ReLU, LeakyReLU and Hardtanh a boolean
mask (1 byte per element), Sigmoid, Tanh and the softmaxes their output, and
the smooth activations GELU, ELU, SiLU and Softplus their input.  (For GELU
and SiLU the derivative is no function of the output alone; for Softplus,
sigma(beta x) = 1 - exp(-beta y), and for ELU, y + alpha where x <= 0, it is, but
from the output the formula loses precision where exp(-beta y) or y + alpha
nears 1 or 0, while the input gives it to full precision.)  Input and output
have the same shape and dtype.

GELU, ELU, SiLU, Softplus, Hardtanh, Softmax and LogSoftmax compute with
:mod:`nnumpy.functional.activation`, or on the numba backend with the
kernels of :mod:`nnumpy.backend.numba_act` (same results to a few ulps).
Their hyper-parameters are checked whenever they are set, also after
construction, and backward uses those that the forward pass ran with."""
from __future__ import annotations

from .. import backend
from .. import functional as F
from .._checks import ArgumentTypeError, describe, integer, real
from ..functional import activation as FA
from .module import CheckedAttribute, Module, check_input

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity",
           "GELU", "ELU", "SiLU", "Softplus", "Hardtanh", "Softmax", "LogSoftmax"]




class ReLU(Module):
    """``y = max(x, 0)``; backward ``dx = dy * 1[x > 0]``.  Cache: mask (x's shape, bool)."""

    def forward(self, x):
        check_input(self, x)
        y, mask = F.relu_forward(x)
        self._save(mask=mask, dtype=x.dtype)
        return y

    def backward(self, dy):
        c = self._take_cache()
        self._check_dy(dy, c["mask"].shape, c["dtype"])
        return F.relu_backward(dy, c["mask"])                  # (x's shape)


class LeakyReLU(Module):
    """``y = x if x > 0 else negative_slope * x``; backward ``dx = dy * (1 or
    negative_slope)``.  Cache: mask (x's shape, bool)."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = real("negative_slope", negative_slope, owner="LeakyReLU")

    def forward(self, x):
        check_input(self, x)
        y, mask = F.leaky_relu_forward(x, self.negative_slope)
        self._save(mask=mask, dtype=x.dtype, slope=self.negative_slope)   # the forward's slope, for backward
        return y

    def backward(self, dy):
        c = self._take_cache()
        self._check_dy(dy, c["mask"].shape, c["dtype"])
        return F.leaky_relu_backward(dy, c["mask"], c["slope"])

    def get_config(self):
        return {"negative_slope": self.negative_slope}

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """``y = 1 / (1 + exp(-x))`` (overflow-free); backward ``dx = dy * y * (1 - y)``.
    Cache: y (x's shape)."""

    def forward(self, x):
        check_input(self, x)
        y = F.sigmoid(x)
        self._save(y=y)
        return y

    def backward(self, dy):
        y = self._take_cache()["y"]
        self._check_dy(dy, y.shape, y.dtype)
        return F.sigmoid_backward(dy, y)


class Tanh(Module):
    """``y = tanh(x)``; backward ``dx = dy * (1 - y^2)``.  Cache: y (x's shape)."""

    def forward(self, x):
        check_input(self, x)
        y = F.tanh_forward(x)
        self._save(y=y)
        return y

    def backward(self, dy):
        y = self._take_cache()["y"]
        self._check_dy(dy, y.shape, y.dtype)
        return F.tanh_backward(dy, y)


class Identity(Module):
    """``y = x``; ``dx = dy`` (a copy, so dx can be written to freely).
    Cache: only the input's shape and dtype, to check dy."""

    def forward(self, x):
        check_input(self, x)
        self._save(shape=x.shape, dtype=x.dtype)
        return x

    def backward(self, dy):
        c = self._take_cache()
        self._check_dy(dy, c["shape"], c["dtype"])
        return dy.copy()


# ---------------------------------------------------------------------------
# Activations computed by nnumpy.functional.activation or, on the numba
# backend, by nnumpy.backend.numba_act (the same functions, same signatures)
# ---------------------------------------------------------------------------
def _kernels():
    """The module computing the activations for the backend in use."""
    if backend.get_backend() == "numba":
        from ..backend import numba_act
        return numba_act
    return FA


class _Configured(Module):
    """An activation whose hyper-parameters are CheckedAttributes:
    ``_checked(**given)`` checks all of them together and returns them
    normalised; get_config() gives them back under their PyTorch names."""

    def _set_hyper(self, **changes):
        given = dict(self.__dict__.get("_given", {}), **changes)
        self.__dict__["_given"] = self._checked(**given)

    def _checked(self, **given):
        raise NotImplementedError

    def get_config(self):
        return dict(self.__dict__["_given"])

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self.__dict__["_given"].items())


class GELU(_Configured):
    """Gaussian error linear unit, ``y = x * Phi(x)`` with Phi the standard
    normal CDF (``approximate="none"``), or ``x/2 * (1 + tanh(sqrt(2/pi) *
    (x + 0.044715 x^3)))`` (``approximate="tanh"``).

    Backward ``dx = dy * (Phi(x) + x phi(x))``, phi the normal density (tanh
    form: see :func:`nnumpy.functional.activation.gelu_backward`).
    Cache: x (input's shape) and the forward's ``approximate``.

    The exact form is accurate to a few ulps for every x, also in the negative
    tail, where PyTorch's x/2 (1 + erf(x/sqrt 2)) cancels: there the two
    differ by up to about |x| * 1e-16 in float64, which is more than y itself
    from x = -8 on (PyTorch gives 0 from x = -8.37 on).
    """

    approximate = CheckedAttribute("_set_hyper")

    def __init__(self, approximate="none"):
        super().__init__()
        self._set_hyper(approximate=approximate)

    def _checked(self, approximate):
        if not isinstance(approximate, str):
            raise ArgumentTypeError(f"GELU: approximate must be 'none' or 'tanh', got {describe(approximate)}")
        if approximate not in FA.GELU_APPROXIMATIONS:
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {describe(approximate)}")
        return {"approximate": approximate}

    def forward(self, x):
        check_input(self, x)
        approximate = self.approximate
        self._save(x=x, approximate=approximate)
        return _kernels().gelu_forward(x, approximate)

    def backward(self, dy):
        c = self._take_cache()
        x = c["x"]
        self._check_dy(dy, x.shape, x.dtype)
        return _kernels().gelu_backward(dy, x, c["approximate"])       # (x's shape)


class ELU(_Configured):
    """Exponential linear unit, ``y = x`` for x > 0 and ``alpha * (exp(x) - 1)``
    for x <= 0; backward ``dx = dy * (1 if x > 0 else alpha * exp(x))``.
    alpha: any finite number (default 1.0).  Cache: x (input's shape) and the
    forward's alpha."""

    alpha = CheckedAttribute("_set_hyper")

    def __init__(self, alpha=1.0):
        super().__init__()
        self._set_hyper(alpha=alpha)

    def _checked(self, alpha):
        return {"alpha": real("alpha", alpha, owner="ELU")}

    def forward(self, x):
        check_input(self, x)
        alpha = self.alpha
        self._save(x=x, alpha=alpha)
        return _kernels().elu_forward(x, alpha)

    def backward(self, dy):
        c = self._take_cache()
        x = c["x"]
        self._check_dy(dy, x.shape, x.dtype)
        return _kernels().elu_backward(dy, x, c["alpha"])


class SiLU(Module):
    """Sigmoid linear unit (swish), ``y = x * sigmoid(x)``; backward
    ``dx = dy * s * (1 + x * (1 - s))``, s = sigmoid(x).  Cache: x (input's shape)."""

    def forward(self, x):
        check_input(self, x)
        self._save(x=x)
        return _kernels().silu_forward(x)

    def backward(self, dy):
        x = self._take_cache()["x"]
        self._check_dy(dy, x.shape, x.dtype)
        return _kernels().silu_backward(dy, x)


class Softplus(_Configured):
    """``y = log(1 + exp(beta * x)) / beta``, and ``y = x`` where
    ``beta * x > threshold`` (PyTorch's switch to the asymptote); backward
    ``dx = dy * sigmoid(beta * x)``, and dy where beta * x > threshold.
    beta: a finite number > 0 (default 1.0); threshold: any finite number
    (default 20.0).  Cache: x (input's shape), the forward's beta and threshold.

    PyTorch accepts beta <= 0 (beta = 0 divides by zero); nnumpy refuses it.
    """

    beta = CheckedAttribute("_set_hyper")
    threshold = CheckedAttribute("_set_hyper")

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self._set_hyper(beta=beta, threshold=threshold)

    def _checked(self, beta, threshold):
        return {"beta": real("beta", beta, low=0.0, low_open=True, owner="Softplus"),
                "threshold": real("threshold", threshold, owner="Softplus")}

    def forward(self, x):
        check_input(self, x)
        beta, threshold = self.beta, self.threshold
        self._save(x=x, beta=beta, threshold=threshold)
        return _kernels().softplus_forward(x, beta, threshold)

    def backward(self, dy):
        c = self._take_cache()
        x = c["x"]
        self._check_dy(dy, x.shape, x.dtype)
        return _kernels().softplus_backward(dy, x, c["beta"], c["threshold"])


class Hardtanh(_Configured):
    """``y = min(max(x, min_val), max_val)``; backward ``dx = dy`` strictly
    between the bounds, 0 on and beyond them.  min_val < max_val, both finite
    (defaults -1.0 and 1.0).  Cache: mask (x's shape, bool)."""

    min_val = CheckedAttribute("_set_hyper")
    max_val = CheckedAttribute("_set_hyper")

    def __init__(self, min_val=-1.0, max_val=1.0):
        super().__init__()
        self._set_hyper(min_val=min_val, max_val=max_val)

    def _checked(self, min_val, max_val):
        lo = real("min_val", min_val, owner="Hardtanh")
        hi = real("max_val", max_val, owner="Hardtanh")
        if not lo < hi:
            raise ValueError(f"Hardtanh: max_val ({hi!r}) must be greater than min_val ({lo!r})")
        return {"min_val": lo, "max_val": hi}

    def forward(self, x):
        check_input(self, x)
        y, mask = _kernels().hardtanh_forward(x, self.min_val, self.max_val)
        self._save(mask=mask, dtype=x.dtype)
        return y

    def backward(self, dy):
        c = self._take_cache()
        self._check_dy(dy, c["mask"].shape, c["dtype"])
        return _kernels().hardtanh_backward(dy, c["mask"])


class _SoftmaxBase(_Configured):
    """Softmax and LogSoftmax: ``dim`` is None or an integer (checked when set;
    its range when the input's number of dimensions is known)."""

    dim = CheckedAttribute("_set_hyper")

    def __init__(self, dim=None):
        super().__init__()
        self._set_hyper(dim=dim)

    def _checked(self, dim):
        return {"dim": None if dim is None else integer("dim", dim, owner=type(self).__name__)}

    def _dim(self, x):
        """The dim to use on x, normalised to [0, ndim) (a 0-d x counts as 1-d);
        None gives PyTorch's deprecated implicit choice, with a warning."""
        return FA.softmax_dim(self.dim, x.ndim, owner=type(self).__name__, stacklevel=4)

    #: the pair of kernels (``<_op>_forward``, ``<_op>_backward``) of the backend in use
    _op = None

    def forward(self, x):
        check_input(self, x)
        dim = self._dim(x)
        y = getattr(_kernels(), f"{self._op}_forward")(x, dim)
        self._save(y=y, dim=dim)
        return y

    def backward(self, dy):
        c = self._take_cache()
        y = c["y"]
        self._check_dy(dy, y.shape, y.dtype)
        return getattr(_kernels(), f"{self._op}_backward")(dy, y, c["dim"])


class Softmax(_SoftmaxBase):
    """``y = exp(x - m) / sum_dim exp(x - m)`` along ``dim`` (m the maximum
    along dim: no overflow), for an input of any number of dimensions.
    Backward ``dx = y * (dy - sum_dim(dy * y))``.  Cache: y (x's shape) and the
    forward's dim (normalised).

    dim: an integer in [-ndim, ndim) of the input, or None (the default, as
    in PyTorch), which picks dim 0 for 0-, 1- and 3-d input and 1 otherwise
    (PyTorch's deprecated rule, with a warning): pass dim.
    """

    _op = "softmax"


class LogSoftmax(_SoftmaxBase):
    """``y = x - m - log(sum_dim exp(x - m))`` along ``dim`` (m the maximum
    along dim), for an input of any number of dimensions.  Backward
    ``dx = dy - exp(y) * sum_dim(dy)``.  Cache: y (x's shape) and the forward's
    dim (normalised).  dim: as for :class:`Softmax`."""

    _op = "log_softmax"
