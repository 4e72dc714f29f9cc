"""The reference form of every fused operation, in plain NumPy.

:mod:`nnumpy.backend.numba_ops` provides the same functions as JIT-compiled
kernels; the tests hold the two to 1e-12 (float64) and 1e-5 (float32)
element by element, relative to each element (an element that is a sum, like
a GEMM entry or a bias gradient, relative to the sum of its terms' magnitudes),
and the sigmoid and tanh of both to 1e-6 (float32) and 1e-14 (float64) of the
exact functions over z in [-80, 80] and [-700, 700].
Shapes: N batch, K = in_features, M = out_features, C classes.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F

__all__ = ["linear_act_forward", "linear_act_backward", "cross_entropy", "sgd_update", "adam_update",
           "rmsprop_update", "adagrad_update",
           "ACTIVATION_CODES",
           "conv2d_act_forward", "conv2d_act_backward", "max_pool2d_forward", "max_pool2d_backward"]

#: Activations a fused linear layer can apply.
ACTIVATION_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4}


def activation_forward(z, act, slope=0.0):
    if act == "relu":
        return F.relu_forward(z)[0]
    if act == "leaky_relu":
        return F.leaky_relu_forward(z, slope)[0]
    if act == "sigmoid":
        return F.sigmoid(z)
    if act == "tanh":
        return F.tanh_forward(z)
    return z


def activation_backward(dy, y, act, slope=0.0):
    """dz = dy * f'(z), with f'(z) written through the output y = f(z):
    ReLU 1[not y <= 0] (1 where y > 0 or y is NaN, as PyTorch); LeakyReLU 1 or slope (slope > 0, so y > 0 iff z > 0);
    sigmoid y (1 - y); tanh 1 - y^2 = (1 - y)(1 + y); identity 1.  dy, y, dz: (N, M)."""
    if act == "relu":
        return F.relu_backward(dy, ~(y <= 0))
    if act == "leaky_relu":
        return F.leaky_relu_backward(dy, y > 0, slope)
    if act == "sigmoid":
        return F.sigmoid_backward(dy, y)
    if act == "tanh":
        return F.tanh_backward(dy, y)
    return dy


def _store(grad, value, accumulate):
    """grad += value (accumulate) or grad = value, in place (grad keeps its identity)."""
    if accumulate:
        grad += value
    else:
        grad[...] = value


def linear_act_forward(x, W, b, act="identity", slope=0.0, out=None):
    """``y = act(x @ W.T + b)``: x (N, K), W (M, K), b (M,) or None -> y (N, M)."""
    y = activation_forward(F.linear_forward(x, W, b), act, slope)
    if out is None:
        return y
    out[...] = y
    return out


def linear_act_backward(dy, x, W, y, gW, gb, act="identity", slope=0.0, need_dx=True, dz=None, dx=None,
                        acc_w=True, acc_b=True):
    """Backward of :func:`linear_act_forward`, accumulating the parameter gradients.

        dz  = dy * f'(z)       (N, M)
        gb += dz.sum(axis=0)   (M,)
        gW += dz.T @ x         (M, N) @ (N, K) -> (M, K)
        dx  = dz @ W           (N, M) @ (M, K) -> (N, K), only if need_dx

    Returns dx, or None when ``need_dx`` is false.  With ``acc_w``/``acc_b``
    false, gW/gb are overwritten (``=``) instead of added to; gW (or gb) None:
    a frozen parameter, whose gradient is not computed.  (``dz``/``dx``,
    scratch buffers for the numba kernel, are not used here.)
    """
    dz = activation_backward(dy, y, act, slope)
    dx, dW, db = F.linear_backward(dz, x, W, need_bias=gb is not None, need_dx=need_dx, need_weight=gW is not None)
    if gW is not None:
        _store(gW, dW, acc_w)
    if gb is not None:
        _store(gb, db, acc_b)
    return dx


def cross_entropy(logits, target, reduction="mean", weight=None, ignore_index=-100, label_smoothing=0.0):
    """Loss and d(loss)/d(logits) of softmax cross-entropy (dloss = 1), with
    class indices (N,) or class probabilities (N, C) as target (see
    :func:`nnumpy.functional.cross_entropy_forward`; the targets are assumed
    checked).  Returns (loss: 0-d, or (N,) for "none"; dlogits (N, C))."""
    args = (weight, ignore_index, label_smoothing)
    loss, probs = F.cross_entropy_forward(logits, target, reduction, *args)
    return loss, F.cross_entropy_backward(probs, target, reduction, 1.0, *args)


def sgd_update(p, g, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    """One SGD step on ``p`` in place (PyTorch's formulas, see :class:`nnumpy.optim.SGD`).
    p, g (the gradient, never written), buf: one shape.  ``buf`` is the momentum
    buffer (None before the first step; with momentum 0 it stays None).
    Returns the buffer."""
    if maximize:
        g = -g                                   # ascend: every formula below sees -g
    if weight_decay != 0.0:
        g = g + weight_decay * p
    if momentum != 0.0:
        if buf is None:
            buf = g.copy()
        else:
            buf *= momentum
            buf += (1.0 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    p -= lr * g
    return buf


def adam_update(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay=0.0, decoupled=False,
                maximize=False):
    """One Adam/AdamW step on ``p`` in place, at step number ``step`` (1, 2, ...);
    m, v (and vmax for amsgrad, else None) are updated in place
    (PyTorch's formulas, see :class:`nnumpy.optim.Adam`).  All arrays one shape;
    g is never written."""
    if maximize:
        g = -g
    if weight_decay != 0.0:
        if decoupled:
            p *= 1.0 - lr * weight_decay
        else:
            g = g + weight_decay * p
    m += (1.0 - beta1) * (g - m)
    v *= beta2
    v += (1.0 - beta2) * (g * g)
    if vmax is not None:
        np.maximum(vmax, v, out=vmax)
        v = vmax
    step_size = lr / (1.0 - beta1 ** step)
    denom = np.sqrt(v) / math.sqrt(1.0 - beta2 ** step) + eps
    p -= step_size * (m / denom)


def rmsprop_update(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay=0.0, momentum=0.0,
                   maximize=False):
    """One RMSprop step on ``p`` in place (PyTorch's formulas, see :class:`nnumpy.optim.RMSprop`).
    square_avg (v), grad_avg (a; None unless centered) and buf (b; None unless
    momentum > 0) are updated in place.  All arrays one shape; g is never written.

        g <- -g (maximize);  g <- g + weight_decay * p
        v <- alpha v + (1 - alpha) g^2
        a <- a + (1 - alpha) (g - a)                   centered: a running mean of g
        d <- sqrt(v - a^2) + eps   if centered, else  sqrt(v) + eps
        b <- momentum b + g / d;  p <- p - lr b        momentum > 0
        p <- p - lr g / d                              otherwise
    """
    if maximize:
        g = -g
    if weight_decay != 0.0:
        g = g + weight_decay * p
    square_avg *= alpha
    square_avg += (1.0 - alpha) * g * g
    if grad_avg is not None:
        grad_avg += (1.0 - alpha) * (g - grad_avg)
        d = np.sqrt(square_avg - grad_avg * grad_avg)
    else:
        d = np.sqrt(square_avg)
    d += eps
    if buf is not None:
        buf *= momentum
        buf += g / d
        p -= lr * buf
    else:
        p -= lr * g / d


def adagrad_update(p, g, state_sum, step, lr, lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False):
    """One Adagrad step on ``p`` in place at step number ``step`` (1, 2, ...)
    (PyTorch's formulas, see :class:`nnumpy.optim.Adagrad`).  ``state_sum`` (s)
    is updated in place.  All arrays one shape; g is never written.

        g <- -g (maximize);  g <- g + weight_decay * p
        clr = lr / (1 + (step - 1) lr_decay)
        s <- s + g^2
        p <- p - clr g / (sqrt(s) + eps)
    """
    if maximize:
        g = -g
    if weight_decay != 0.0:
        g = g + weight_decay * p
    clr = lr / (1.0 + (step - 1) * lr_decay)
    state_sum += g * g
    p -= clr * g / (np.sqrt(state_sum) + eps)


# ---------------------------------------------------------------------------
# Convolution and max pooling (NCHW)
# ---------------------------------------------------------------------------
def conv2d_act_forward(x, W, b, stride, padding, dilation, groups, act="identity", slope=0.0):
    """``y = act(conv2d(x, W) + b)``: x (N, C, H, W), W (O, C/groups, KH, KW), b (O,) or None
    -> y (N, O, Ho, Wo).  stride, dilation: (h, w); padding ((top, bottom), (left, right)) of
    zeros.  See :func:`nnumpy.functional.conv2d_forward`."""
    return activation_forward(F.conv2d_forward(x, W, b, stride, padding, dilation, groups), act, slope)


def conv2d_act_backward(dy, x, W, y, gW, gb, stride, padding, dilation, groups, act="identity", slope=0.0,
                        need_dx=True, acc_w=True, acc_b=True):
    """Backward of :func:`conv2d_act_forward`, accumulating the parameter gradients.

        dz  = dy * f'(z), written through y          (N, O, Ho, Wo); y may be None for "identity"
        gb += dz.sum(axis=(0, 2, 3))                 (O,)
        gW += dW, the correlation of x with dz       (O, C/groups, KH, KW)
        dx  = col2im(dz @ W)                         (N, C, H, W), only if need_dx

    (see :func:`nnumpy.functional.conv2d_backward`).  Returns dx, or None
    when ``need_dx`` is false.  With ``acc_w``/``acc_b`` false, gW/gb are
    overwritten (``=``) instead of added to.
    """
    dz = activation_backward(dy, y, act, slope)
    dx, dW, db = F.conv2d_backward(dz, x, W, stride, padding, dilation, groups, need_dx=need_dx,
                                   need_bias=gb is not None, need_weight=gW is not None)
    if gW is not None:                       # None: a frozen weight, no gradient computed
        _store(gW, dW, acc_w)
    if gb is not None:
        _store(gb, db, acc_b)
    return dx


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    """``y, indices``: x (N, C, H, W) -> y (N, C, Ho, Wo) and the int64 flat index
    ``h * W + w`` of each window's maximum in its input plane (PyTorch's return_indices).
    kernel_size, stride, padding, dilation: (h, w); padding is implicit -inf.
    See :func:`nnumpy.functional.max_pool2d_forward`."""
    return F.max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool2d_backward(dy, indices, in_shape):
    """dx (in_shape): dy (N, C, Ho, Wo) added at its arg-max ``indices`` (N, C, Ho, Wo),
    summed where windows overlap.  See :func:`nnumpy.functional.max_pool2d_backward`."""
    return F.max_pool2d_backward(dy, indices, in_shape)
