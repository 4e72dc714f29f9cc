"""Fused kernels for the hot paths, JIT-compiled by Numba.

Each public function has the signature and the meaning of its namesake in
:mod:`nnumpy.backend.numpy_ops` (read that first: it is the mathematics);
here the same computation is arranged for speed:

* the matrix products are NumPy's BLAS GEMMs writing straight into
  preallocated outputs (the weight gradient straight into ``param.grad``
  when it is to be overwritten), so nnumpy shares one BLAS and one thread
  pool with the rest of the process;
* bias and activation are applied in the same pass over the GEMM's output
  (tanh and the sigmoid with NumPy's SIMD tanh/exp between passes); the
  activation derivative and the bias gradient in one pass over dy;
* softmax cross-entropy (and every other loss) gives the loss and d(input)
  in one call (:mod:`nnumpy.backend.numba_loss`);
* optimizer updates are one loop over each parameter, in place;
* 2-d convolution + activation (optionally + max-pool) and max pooling live
  in :mod:`nnumpy.backend.numba_conv` (direct loops or im2col + BLAS by
  shape, spread over ``numba.get_num_threads()`` threads; see there).

Kernels are compiled on first use per dtype and cached on disk
(``cache=True``), so later processes start warm.  No ``fastmath``: the
results agree with the NumPy reference to rounding, element by element
(matrix products and sums to the rounding of their terms); the sigmoid and
tanh are within a few ulps of the exact functions (see
:func:`linear_act_forward`), their derivatives as accurate as the stored
output allows.  Inputs that are not C-contiguous are copied to contiguous
arrays by the wrappers.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import numba_conv, numba_loss
from .numba_conv import (conv2d_act_backward, conv2d_act_forward, conv2d_act_pool_backward,
                         conv2d_act_pool_forward, kept_cols_shape, max_pool2d_backward, max_pool2d_forward)
from .numpy_ops import ACTIVATION_CODES

__all__ = ["linear_act_forward", "linear_act_backward", "cross_entropy", "sgd_update", "adam_update",
           "rmsprop_update", "adagrad_update",
           "conv2d_act_forward", "conv2d_act_backward", "max_pool2d_forward", "max_pool2d_backward",
           "conv2d_act_pool_forward", "conv2d_act_pool_backward", "kept_cols_shape", "ACTIVATION_CODES", "warm_up"]

_IDENTITY, _RELU, _LEAKY, _SIGMOID, _TANH = (ACTIVATION_CODES[k] for k in
                                             ("identity", "relu", "leaky_relu", "sigmoid", "tanh"))


# ---------------------------------------------------------------------------
# Linear + activation.  The GEMMs are NumPy's (np.matmul into preallocated
# outputs, so this backend shares NumPy's BLAS and its thread pool); Numba
# fuses everything around them into single passes.
# ---------------------------------------------------------------------------
@njit(cache=True)
def _bias_act(y, b, has_bias, act, slope, t):
    """In place, one pass over the GEMM's output y (N, M), with z = y + b
    (b (M,)): y <- act(z) for the piecewise-linear activations (NaN and
    +-inf propagate as in PyTorch: relu(NaN) = NaN), y <- z for tanh and
    the sigmoid, and for the sigmoid also t <- -|z| (t (N, M), written only
    for the sigmoid)."""
    n, m = y.shape
    for i in range(n):
        for j in range(m):
            v = y[i, j] + b[j] if has_bias else y[i, j]
            if act == _RELU:
                v = 0.0 if v <= 0 else v         # NaN stays NaN (as in PyTorch)
            elif act == _LEAKY:
                v = v if v > 0 else v * slope
            elif act == _SIGMOID:
                t[i, j] = -abs(v)
            y[i, j] = v


@njit(cache=True, error_model="numpy")      # IEEE division, no zero check: the loop vectorises
def _sigmoid_from_exp(y, e, one):
    """In place, y (N, M) holding z and e = exp(-|z|) (N, M):
    y <- 1 / (1 + e) where z >= 0, e / (1 + e) where z < 0 (NaN stays NaN).
    ``one`` is 1 in y's dtype, so the arithmetic is the NumPy reference's."""
    f, g = y.reshape(-1), e.reshape(-1)
    for i in range(f.size):
        ei = g[i]
        f[i] = (one if f[i] >= 0 else ei) / (one + ei)


@njit(cache=True)
def _act_grad_bias(dy, y, act, slope, dz, gb, has_bias, acc_b):
    """One pass over dy (N, M): dz = dy * f'(y) (skipped for the identity,
    where dz is dy) and the bias gradient gb (M,) (+)= sum over rows of dz,
    summed in float64.  f'(y) = y (1 - y) for the sigmoid and (1 - y)(1 + y)
    for tanh: one of 1 - y, 1 + y is exact, so near saturation only the
    rounding of the stored y itself remains (see nnumpy.functional)."""
    n, m = dy.shape
    colsum = np.zeros(m)
    for i in range(n):
        for j in range(m):
            d = dy[i, j]
            if act == _RELU:
                d = 0.0 if y[i, j] <= 0 else d   # a NaN output passes d on (PyTorch's rule)
            elif act == _LEAKY:
                d = d if y[i, j] > 0 else d * slope
            elif act == _SIGMOID:
                d = d * y[i, j] * (1.0 - y[i, j])
            elif act == _TANH:
                d = d * ((1.0 - y[i, j]) * (1.0 + y[i, j]))
            if act != _IDENTITY:
                dz[i, j] = d
            colsum[j] += d
    if has_bias:
        for j in range(m):
            gb[j] = gb[j] + colsum[j] if acc_b else colsum[j]


@njit(cache=True)
def _add_into(a, b):
    """a += b, element by element (same shapes, C-contiguous)."""
    fa, fb = a.reshape(-1), b.reshape(-1)
    for i in range(fa.size):
        fa[i] += fb[i]


def _c(a):
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


_NO_BIAS = {np.dtype(np.float32): np.zeros(1, np.float32), np.dtype(np.float64): np.zeros(1, np.float64)}


def _same_dtype(*arrays):
    """The kernels are compiled per dtype: every array must share the first one's."""
    dt = arrays[0].dtype
    ok = dt in _NO_BIAS
    for a in arrays:                                 # (a loop, not any(...): this runs every step)
        if a is not None and a.dtype != dt:
            ok = False
    if not ok:
        raise TypeError("numba kernels need float32 or float64 arrays of one dtype, got "
                        + ", ".join(str(a.dtype) for a in arrays if a is not None))


def _shapes(*checks):
    """Each (shape, array or None, name): the kernels index by the shapes of x and W, so an array of
    another shape (a parameter replaced by one of another size) would be read or written out of bounds."""
    for shape, a, name in checks:
        if a is not None and a.shape != shape:
            raise ValueError(f"linear layer kernel: {name} has shape {a.shape}, expected {shape} (was a parameter "
                             f"replaced by one of another shape?)")


def linear_act_forward(x, W, b, act="identity", slope=0.0, out=None):
    """``y = act(x @ W.T + b)``: x (N, K), W (M, K), b (M,) or None -> y (N, M),
    written into ``out`` (N, M) when given.

    z = x @ W.T by BLAS, straight into y      (N, K) @ (K, M) -> (N, M)
    z += b and the activation, one pass       (N, M)

    tanh and the sigmoid use NumPy's vectorised (SIMD) tanh and exp, several
    times faster than a scalar libm call per element inside the loop:

    * tanh: y = tanh(z), NumPy's tanh in place;
    * sigmoid: the bias pass also writes -|z| into a scratch array e (N, M),
      NumPy's exp makes it e = exp(-|z|) in (0, 1], and a second pass sets
      y = 1 / (1 + e) where z >= 0 and y = e / (1 + e) where z < 0, in y's
      dtype: the arithmetic of the NumPy reference, so the same y bit for
      bit.  Both forms equal 1 / (1 + exp(-z)); exp never overflows and
      nothing cancels.  (Not 1/2 + tanh(z/2)/2: it cancels for z < 0 and in
      float32 returns 0 from z = -17 on.)

    Accuracy, element by element, relative to the exact value (measured):
    sigmoid below 3e-7 (float32, z in [-80, 80]) and 5e-16 (float64, z in
    [-700, 700]); tanh below 2e-7 and 3e-16.
    """
    _same_dtype(x, W, b, out)
    _shapes(((x.shape[0], W.shape[0]), out, "out"), ((W.shape[0],), b, "b"))
    y = np.empty((x.shape[0], W.shape[0]), dtype=x.dtype) if out is None else out
    np.matmul(x, W.T, out=y)
    has_bias, code = b is not None, ACTIVATION_CODES[act]
    bias = _c(b) if has_bias else _NO_BIAS[x.dtype]
    if code == _SIGMOID:
        e = np.empty_like(y)                                 # (N, M)
        _bias_act(y, bias, has_bias, code, float(slope), e)  # y = z, e = -|z|
        np.exp(e, out=e)                                     # e = exp(-|z|)
        _sigmoid_from_exp(y, e, x.dtype.type(1))             # y = (1 or e) / (1 + e)
    else:
        _bias_act(y, bias, has_bias, code, float(slope), y)  # (no scratch: t is only written for the sigmoid)
        if code == _TANH:
            np.tanh(y, out=y)
    return y


def linear_act_backward(dy, x, W, y, gW, gb, act="identity", slope=0.0, need_dx=True, dz=None, dx=None,
                        acc_w=True, acc_b=True):
    """Backward of :func:`linear_act_forward`: accumulates into gW and gb (in
    place, C-contiguous; overwrites them when acc_w/acc_b are false) and
    returns dx (N, K), or None without ``need_dx``.  ``dz`` (N, M) and ``dx``
    are optional scratch/output buffers.  gW (or gb) None: a frozen parameter,
    whose gradient is not computed.

    dz = dy * f'(y) and gb (+)= sum_n dz   one pass   (N, M), (M,)
    gW (+)= dz.T @ x     (M, N) @ (N, K) -> (M, K); written straight into gW when not accumulating
                         (N = 1: the outer product dz[0] x[0] by np.multiply, the same numbers)
    dx = dz @ W          (N, M) @ (M, K) -> (N, K)
    """
    _same_dtype(dy, x, W, y, gW, gb, dz, dx)
    n, m = x.shape[0], W.shape[0]
    _shapes(((n, W.shape[1]), x, "x"), ((n, m), dy, "dy"), ((n, m), y, "y"), (W.shape, gW, "gW"), ((m,), gb, "gb"),
            ((n, m), dz, "dz"), ((n, W.shape[1]), dx, "dx"))
    dy, y = _c(dy), _c(y)
    code = ACTIVATION_CODES[act]
    if code == _IDENTITY:
        dz = dy                                      # f' = 1: dy itself (never written)
    elif dz is None:
        dz = np.empty_like(dy)
    has_bias = gb is not None
    _act_grad_bias(dy, y, code, float(slope), dz, gb if has_bias else _NO_BIAS[dy.dtype], has_bias,
                   bool(acc_b))
    if gW is None:                                   # a frozen weight: no dW
        pass
    elif n == 1:
        # one sample: dz.T @ x is the outer product dz[0, j] * x[0, i], a sum of one term, so
        # np.multiply gives the same numbers; OpenBLAS's GEMM with an inner dimension of 1
        # measured 4-40x slower (2 GFLOP/s; 23 us for 784 -> 30, 590 us for 784 -> 800)
        if acc_w:
            _add_into(gW, np.multiply(dz.T, x))      # (M, 1) * (1, K) -> (M, K)
        else:
            np.multiply(dz.T, x, out=gW)
    elif acc_w:
        _add_into(gW, dz.T @ x)
    else:
        np.matmul(dz.T, x, out=gW)
    if not need_dx:
        return None
    if dx is None:
        dx = np.empty((dy.shape[0], W.shape[1]), dtype=dy.dtype)
    return np.matmul(dz, W, out=dx)


# ---------------------------------------------------------------------------
# Softmax cross-entropy: the fused kernel (every option of CrossEntropyLoss)
# lives with the other losses' in numba_loss
# ---------------------------------------------------------------------------
from .numba_loss import cross_entropy  # noqa: E402


# ---------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------
@njit(cache=True)
def _sgd(p, g, buf, sign, lr, mu, damp1, wd, nesterov, first):
    """Scalars arrive in p's dtype, so float32 parameters are updated in
    float32 arithmetic, exactly like the NumPy reference.  sign is -1 to
    maximize, else 1 (a product with +-1 is exact: the reference's -g).
    The common cases get loops without branches (they vectorise)."""
    n = p.size
    if mu == 0.0:
        if wd == 0.0:
            for i in range(n):
                p[i] -= lr * (sign * g[i])
        else:
            for i in range(n):
                p[i] -= lr * (sign * g[i] + wd * p[i])
        return
    for i in range(n):
        gi = sign * g[i] + wd * p[i]                 # wd = 0 adds nothing
        b = gi if first else mu * buf[i] + damp1 * gi
        buf[i] = b
        p[i] -= lr * (gi + mu * b if nesterov else b)


@njit(cache=True)
def _sgd_plain(p, g, lr):
    """Plain SGD, p -= lr * g, on flat arrays; ``lr`` in p's dtype, negated to
    maximize (lr * (-g) and (-lr) * g are the same number: negation is exact)."""
    for i in range(p.size):
        p[i] -= lr * g[i]


def _check_in_place(*arrays):
    for a in arrays:
        if not a.flags.c_contiguous:
            raise ValueError("optimizer updates need C-contiguous parameter arrays (they are updated "
                             "in place through a flat view)")


def sgd_update(p, g, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    """One SGD step on ``p`` in place; see numpy_ops.  Returns the momentum buffer."""
    _check_in_place(p)
    if momentum == 0.0 and weight_decay == 0.0:        # plain SGD: the short call (it runs every step)
        lr = p.dtype.type(lr)
        _sgd_plain(p.reshape(-1), _c(g).reshape(-1), -lr if maximize else lr)
        return None
    first = buf is None and momentum != 0.0
    if first:
        buf = np.empty_like(p)
    t = p.dtype.type
    _sgd(p.reshape(-1), _c(g).reshape(-1), (buf if buf is not None else p).reshape(-1), t(-1.0 if maximize else 1.0),
         t(lr), t(momentum), t(1.0 - dampening), t(weight_decay), bool(nesterov), first)
    return buf


@njit(cache=True, inline="always", error_model="numpy")
def _adam_moments(i, p, g, m, v, sign, one_minus_b1, b2, one_minus_b2, wd, decay):
    """Element i: decay (AdamW) or L2 term (Adam), then both moments, updated
    in place (sign: -1 to maximize, else 1).  Returns the decayed parameter
    and the new moments."""
    pi = p[i] * decay
    gi = sign * g[i] + wd * pi
    mi = m[i] + one_minus_b1 * (gi - m[i])
    vi = v[i] * b2 + one_minus_b2 * (gi * gi)
    m[i] = mi
    v[i] = vi
    return pi, mi, vi


# error_model="numpy": IEEE division without a per-element zero check, so the loops vectorise.
@njit(cache=True, error_model="numpy")
def _adam(p, g, m, v, sign, one_minus_b1, b2, one_minus_b2, eps, wd, decay, step_size, bc2_sqrt):
    """Scalars arrive in p's dtype (float32 stays float32, like the reference).
    decay = 1 - lr * wd for AdamW (1 for Adam); wd is Adam's L2 term (0 for AdamW)."""
    for i in range(p.size):
        pi, mi, vi = _adam_moments(i, p, g, m, v, sign, one_minus_b1, b2, one_minus_b2, wd, decay)
        p[i] = pi - step_size * (mi / (np.sqrt(vi) / bc2_sqrt + eps))


@njit(cache=True, error_model="numpy")
def _adam_amsgrad(p, g, m, v, vmax, sign, one_minus_b1, b2, one_minus_b2, eps, wd, decay, step_size, bc2_sqrt):
    """As :func:`_adam`, with the running maximum of v in the denominator."""
    for i in range(p.size):
        pi, mi, vi = _adam_moments(i, p, g, m, v, sign, one_minus_b1, b2, one_minus_b2, wd, decay)
        vm = vmax[i] if vmax[i] > vi else vi
        vmax[i] = vm
        p[i] = pi - step_size * (mi / (np.sqrt(vm) / bc2_sqrt + eps))


def adam_update(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay=0.0, decoupled=False,
                maximize=False):
    """One Adam/AdamW step on ``p`` in place; see numpy_ops."""
    _check_in_place(p, m, v)
    t = p.dtype.type
    decay = 1.0 - lr * weight_decay if decoupled else 1.0
    l2 = 0.0 if decoupled else weight_decay
    scalars = (t(-1.0 if maximize else 1.0), t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(eps), t(l2), t(decay),
               t(lr / (1.0 - beta1 ** step)), t(math.sqrt(1.0 - beta2 ** step)))
    arrays = (p.reshape(-1), _c(g).reshape(-1), m.reshape(-1), v.reshape(-1))
    if vmax is None:
        _adam(*arrays, *scalars)
    else:
        _adam_amsgrad(*arrays, vmax.reshape(-1), *scalars)


@njit(cache=True, inline="always", error_model="numpy")
def _rmsprop_element(i, p, g, v, a, b, sign, lr, alpha, one_minus_alpha, eps, wd, mu, centered, has_momentum):
    """Element i of the flat arrays p, g, v (square_avg), a (grad_avg, read
    and written only when centered) and b (momentum buffer, only with
    has_momentum), in place: the reference's arithmetic (wd = 0 adds
    nothing, as there)."""
    gi = sign * g[i]
    if wd != 0.0:
        gi = gi + wd * p[i]
    vi = v[i] * alpha + one_minus_alpha * gi * gi
    v[i] = vi
    if centered:
        ai = a[i] + one_minus_alpha * (gi - a[i])
        a[i] = ai
        d = np.sqrt(vi - ai * ai) + eps
    else:
        d = np.sqrt(vi) + eps
    if has_momentum:
        bi = b[i] * mu + gi / d
        b[i] = bi
        p[i] -= lr * bi
    else:
        p[i] -= lr * gi / d


@njit(cache=True, error_model="numpy")
def _rmsprop(p, g, v, a, b, sign, lr, alpha, one_minus_alpha, eps, wd, mu, centered, has_momentum):
    """One pass of :func:`_rmsprop_element` over the arrays; scalars in p's
    dtype.  One loop per case with the flags as constants, so that a loop
    holds only the arrays it uses: an unused stand-in (the wrapper passes
    v for a missing a or b) aliasing a used array makes the vectoriser's
    run-time overlap check fail, and the loop ran scalar, 10x slower."""
    n = p.size
    if centered and has_momentum:
        for i in range(n):
            _rmsprop_element(i, p, g, v, a, b, sign, lr, alpha, one_minus_alpha, eps, wd, mu, True, True)
    elif centered:
        for i in range(n):
            _rmsprop_element(i, p, g, v, a, b, sign, lr, alpha, one_minus_alpha, eps, wd, mu, True, False)
    elif has_momentum:
        for i in range(n):
            _rmsprop_element(i, p, g, v, a, b, sign, lr, alpha, one_minus_alpha, eps, wd, mu, False, True)
    else:
        for i in range(n):
            _rmsprop_element(i, p, g, v, a, b, sign, lr, alpha, one_minus_alpha, eps, wd, mu, False, False)


def rmsprop_update(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay=0.0, momentum=0.0,
                   maximize=False):
    """One RMSprop step on ``p`` in place, in one pass; see numpy_ops."""
    _check_in_place(p, square_avg, *(x for x in (grad_avg, buf) if x is not None))
    t = p.dtype.type
    v = square_avg.reshape(-1)
    _rmsprop(p.reshape(-1), _c(g).reshape(-1), v, v if grad_avg is None else grad_avg.reshape(-1),
             v if buf is None else buf.reshape(-1),                 # (unused stand-ins are never touched)
             t(-1.0 if maximize else 1.0), t(lr), t(alpha), t(1.0 - alpha), t(eps), t(weight_decay), t(momentum),
             grad_avg is not None, buf is not None)


@njit(cache=True, error_model="numpy")
def _adagrad(p, g, s, sign, clr, eps, wd):
    """One pass over the flat arrays p, g, s (the sum of squares); scalars in
    p's dtype; the reference's arithmetic element by element."""
    for i in range(p.size):
        gi = sign * g[i]
        if wd != 0.0:
            gi = gi + wd * p[i]
        si = s[i] + gi * gi
        s[i] = si
        p[i] -= clr * gi / (np.sqrt(si) + eps)


def adagrad_update(p, g, state_sum, step, lr, lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False):
    """One Adagrad step on ``p`` in place, in one pass; see numpy_ops."""
    _check_in_place(p, state_sum)
    t = p.dtype.type
    clr = lr / (1.0 + (step - 1) * lr_decay)
    _adagrad(p.reshape(-1), _c(g).reshape(-1), state_sum.reshape(-1), t(-1.0 if maximize else 1.0), t(clr),
             t(eps), t(weight_decay))


def warm_up(dtypes=(np.float32, np.float64)):
    """Compile (or load from the disk cache) every kernel for ``dtypes``."""
    for dt in dtypes:
        x = np.ones((2, 3), dt)
        W = np.ones((4, 3), dt)
        b = np.ones(4, dt)
        for act in ACTIVATION_CODES:
            y = linear_act_forward(x, W, b, act, 0.1)
            linear_act_backward(np.ones_like(y), x, W, y, np.zeros_like(W), np.zeros_like(b), act, 0.1)
        cross_entropy(np.ones((2, 4), dt), np.array([0, 3]))
        p = np.ones(3, dt)
        sgd_update(p, np.ones(3, dt), None, 0.1, 0.9)
        sgd_update(p, np.ones(3, dt), None, 0.1)
        for vmax in (None, np.zeros(3, dt)):                 # Adam, AMSGrad
            adam_update(p, np.ones(3, dt), np.zeros(3, dt), np.zeros(3, dt), vmax, 1, 0.1, 0.9, 0.999, 1e-8)
        # (one signature per dtype: centered and momentum are run-time flags)
        rmsprop_update(p, np.ones(3, dt), np.zeros(3, dt), None, None, 0.01, 0.99, 1e-8)
        adagrad_update(p, np.ones(3, dt), np.zeros(3, dt), 1, 0.01)
    numba_conv.warm_up(dtypes)
    numba_loss.warm_up(dtypes)
