"""2-d convolution, NCHW, by im2col and col2im.

Shapes: ``N`` batch, ``C`` input channels, ``O`` output channels, ``g``
groups, ``H, W`` input height and width, ``KH, KW`` kernel height and width,
``Ho, Wo`` output height and width.  Hyper-parameters, once normalised (see
:func:`conv2d_geometry`): stride ``(sh, sw)``, dilation ``(dh, dw)``, padding
``((top, bottom), (left, right))`` of zeros, as PyTorch's ``Conv2d``:

    y[n, o, i, j] = b[o] + sum_{c, p, q} W[o, c, p, q] * xp[n, c0 + c, i*sh + p*dh, j*sw + q*dw]

where xp is x zero-padded, c runs over the C/g channels of o's group and c0
is the first of them (group k = o // (O/g) sees channels k*C/g ... (k+1)*C/g - 1).
Output size, per axis:  Ho = (H + top + bottom - dh*(KH - 1) - 1) // sh + 1.

This is a cross-correlation (the kernel is not flipped), as in every deep
learning framework.  The helpers here also normalise and check the arguments
that :class:`~nnumpy.nn.Conv2d` and the pooling layers take.
"""
from __future__ import annotations

import numbers
from collections import namedtuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._checks import ArgumentTypeError, describe, integer

__all__ = [
    "pair", "conv2d_padding", "conv2d_output_size", "conv2d_geometry", "Conv2dGeometry",
    "conv2d_forward", "conv2d_backward",
]


# ---------------------------------------------------------------------------
# Arguments: int-or-pair sizes, padding, output size
# ---------------------------------------------------------------------------
def _prefix(owner):
    return f"{owner}: " if owner else ""


#: Sizes, strides, paddings and dilations above this are refused: no image is that large, and the
#: kernels index with 64-bit integers that products of such numbers would overflow.
MAX_SIZE = 2 ** 31 - 1


def _bounded(name, value, low, owner):
    v = integer(name, value, low=low, owner=owner)
    if v > MAX_SIZE:
        raise ValueError(f"{_prefix(owner)}{name} must be at most {MAX_SIZE:,} (2**31 - 1), got {v:,}")
    return v


def pair(name, value, low=1, owner=None):
    """``value`` as a pair of Python ints (h, w), each ``>= low``.

    An integer ``k`` means ``(k, k)``; a tuple or list gives ``(h, w)``
    (PyTorch's ``kernel_size=3`` or ``kernel_size=(3, 2)``).  Anything else,
    or a pair of the wrong length, raises :class:`ArgumentTypeError`; values
    below ``low`` or above :data:`MAX_SIZE` raise ValueError.  Both errors
    name the argument."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]                                # a 0-d array: its scalar
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ArgumentTypeError(f"{_prefix(owner)}{name} must be an integer or a pair (h, w) of "
                                    f"integers, got {describe(tuple(value))} with {len(value)} entries")
        return tuple(_bounded(f"{name}[{i}]", v, low, owner) for i, v in enumerate(value))
    if isinstance(value, (numbers.Number, np.generic)) and not isinstance(value, (bool, np.bool_)):
        v = _bounded(name, value, low, owner)
        return (v, v)
    raise ArgumentTypeError(f"{_prefix(owner)}{name} must be an integer or a pair (h, w) of integers, "
                            f"got {describe(value)}")


def conv2d_padding(padding, kernel_size, stride=(1, 1), dilation=(1, 1), owner=None, asymmetric=True):
    """Padding in every form PyTorch's ``Conv2d`` takes -> ``((top, bottom), (left, right))``.

    * ``p`` (int): p on every side; ``(ph, pw)``: ph above and below, pw left and right;
    * ``"valid"``: no padding;
    * ``"same"``: the output has the input's size (stride must be 1).  Along an
      axis the total padding is ``d*(k - 1)``; half of it (rounded down) goes
      before, the rest after, so an odd total puts the extra row at the bottom
      and the extra column on the right, as PyTorch does;
    * ``((top, bottom), (left, right))``: as given (only with ``asymmetric``,
      which the functional interface allows and the module does not, since
      PyTorch's Conv2d cannot express it).

    kernel_size, stride, dilation: (h, w) pairs of positive ints."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            if tuple(stride) != (1, 1):
                raise ValueError(f"{_prefix(owner)}padding='same' needs stride 1 (the output of a strided "
                                 f"convolution cannot keep the input's size), got stride={tuple(stride)}")
            totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise ValueError(f"{_prefix(owner)}padding must be an integer, a pair (h, w), 'same' or 'valid', "
                         f"got {padding!r}")
    if (asymmetric and isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(p, (tuple, list)) for p in padding)):
        return tuple(pair(f"padding[{i}]", p, low=0, owner=owner) for i, p in enumerate(padding))
    ph, pw = pair("padding", padding, low=0, owner=owner)
    return ((ph, ph), (pw, pw))


def conv2d_output_size(in_size, kernel_size, stride, padding, dilation, owner=None):
    """(Ho, Wo) of a convolution of an (H, W) plane; all arguments normalised
    (pairs, padding ((top, bottom), (left, right))).  Per axis:
    ``Ho = (H + top + bottom - dh*(KH - 1) - 1) // sh + 1``.  Raises ValueError,
    naming the sizes, when the dilated kernel is larger than the padded input."""
    out = []
    for axis, n, k, s, (lo, hi), d in zip(("height", "width"), in_size, kernel_size, stride, padding, dilation):
        span = d * (k - 1) + 1                       # the dilated kernel's extent
        if n + lo + hi < span:
            raise ValueError(
                f"{_prefix(owner)}the input is too small: padded input size {_size(in_size, padding)}, "
                f"kernel size {tuple(kernel_size)} with dilation {tuple(dilation)} spans "
                f"{_span(kernel_size, dilation)}; the kernel cannot be larger than the padded input "
                f"(the {axis} fails)")
        out.append((n + lo + hi - span) // s + 1)
    return tuple(out)


def _size(in_size, padding):
    return f"({in_size[0] + sum(padding[0])} x {in_size[1] + sum(padding[1])})"


def _span(kernel_size, dilation):
    return f"({dilation[0] * (kernel_size[0] - 1) + 1} x {dilation[1] * (kernel_size[1] - 1) + 1})"


#: Normalised hyper-parameters of one convolution and the output size they give.
Conv2dGeometry = namedtuple("Conv2dGeometry", ["stride", "padding", "dilation", "groups", "out_size"])


def conv2d_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, owner="conv2d"):
    """Check that an input of shape x_shape (N, C, H, W) and a weight of shape
    w_shape (O, C/g, KH, KW) go together under these hyper-parameters, and
    normalise them.  Returns a :class:`Conv2dGeometry` (stride (sh, sw),
    padding ((top, bottom), (left, right)), dilation (dh, dw), groups,
    out_size (Ho, Wo)).  Every error is a ValueError (or ArgumentTypeError)
    that names the numbers involved."""
    stride = pair("stride", stride, owner=owner)
    dilation = pair("dilation", dilation, owner=owner)
    groups = integer("groups", groups, low=1, owner=owner)
    if len(w_shape) != 4:
        raise ValueError(f"{owner}: the weight must have shape (O, C/groups, KH, KW), got {tuple(w_shape)}")
    if len(x_shape) != 4:
        raise ValueError(f"{owner}: the input must have shape (N, C, H, W), got {tuple(x_shape)}")
    o, cg, kh, kw = w_shape
    c = x_shape[1]
    if min(o, cg, kh, kw) < 1:
        raise ValueError(f"{owner}: the weight has an empty dimension: shape {tuple(w_shape)}")
    if o % groups:
        raise ValueError(f"{owner}: out_channels must be divisible by groups, got {o} output channels "
                         f"and groups={groups}")
    if c != cg * groups:
        raise ValueError(f"{owner}: the input has {c} channels (shape {tuple(x_shape)}) but the weight "
                         f"{tuple(w_shape)} with groups={groups} expects {cg * groups}")
    padding = conv2d_padding(padding, (kh, kw), stride, dilation, owner=owner)
    out_size = conv2d_output_size(x_shape[2:], (kh, kw), stride, padding, dilation, owner=owner)
    return Conv2dGeometry(stride, padding, dilation, groups, out_size)


# ---------------------------------------------------------------------------
# im2col
# ---------------------------------------------------------------------------
def _im2col(x, kernel_size, geo):
    """The windows of x as a strided view: (N, C, Ho, Wo, KH, KW), with
    cols[n, c, i, j, p, q] = xp[n, c, i*sh + p*dh, j*sw + q*dw] (xp: x zero-padded).

    sliding_window_view gives every window of the dilated kernel's extent at
    stride 1; keeping every sh-th/sw-th window and every dh-th/dw-th element
    inside it gives the strided, dilated windows.  No copy is made here."""
    (top, bottom), (left, right) = geo.padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))) if top or bottom or left or right else x
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel_size, geo.stride, geo.dilation, geo.out_size
    win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    return win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :ho, :wo]


def _group_cols(cols, groups, k):
    """Group k's windows as one matrix (N*Ho*Wo, C/g*KH*KW), rows in (n, i, j) order,
    columns in (c, p, q) order, the order of a weight row W[o].ravel()."""
    n, c, ho, wo, kh, kw = cols.shape
    cg = c // groups
    block = cols[:, k * cg:(k + 1) * cg]                         # (N, C/g, Ho, Wo, KH, KW)
    return block.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, cg * kh * kw)   # the copy: im2col


def conv2d_forward(x, W, b=None, stride=1, padding=0, dilation=1, groups=1):
    """``y = conv2d(x, W) + b``, as PyTorch's ``F.conv2d``.

    x: (N, C, H, W); W: (O, C/g, KH, KW), PyTorch's layout; b: (O,) or None.
    stride, dilation: int or (h, w); padding: int, (h, w), ((top, bottom),
    (left, right)), "same" or "valid"; groups g divides C and O.
    Returns y: (N, O, Ho, Wo).  Backward needs x (and W, which the layer owns).

    im2col turns the convolution into matrix products, one per group k::

        cols  = windows of the padded x             (N, C/g, Ho, Wo, KH, KW) view
             -> transposed and reshaped (a copy)    (N*Ho*Wo, C/g*KH*KW)   = X_k
        W_k   = W[k*O/g:(k+1)*O/g].reshape          (O/g, C/g*KH*KW)
        Y_k   = X_k @ W_k.T                         (N*Ho*Wo, O/g)
        y[:, k*O/g:(k+1)*O/g] = Y_k.reshape(N, Ho, Wo, O/g).transpose  (N, O/g, Ho, Wo)

    Each row of X_k is one receptive field, each row of W_k one filter, so
    each entry of Y_k is one filter applied at one position.
    """
    geo = conv2d_geometry(x.shape, W.shape, stride, padding, dilation, groups, owner="conv2d_forward")
    n, g = x.shape[0], geo.groups
    o, _, kh, kw = W.shape
    og, (ho, wo) = o // g, geo.out_size
    cols = _im2col(x, (kh, kw), geo)                             # (N, C, Ho, Wo, KH, KW), a view
    y = np.empty((n, o, ho, wo), dtype=np.result_type(x, W))
    for k in range(g):
        Xk = _group_cols(cols, g, k)                             # (N*Ho*Wo, C/g*KH*KW)
        Wk = W[k * og:(k + 1) * og].reshape(og, -1)              # (O/g, C/g*KH*KW)
        Yk = Xk @ Wk.T                                           # (N*Ho*Wo, O/g)
        y[:, k * og:(k + 1) * og] = Yk.reshape(n, ho, wo, og).transpose(0, 3, 1, 2)
    if b is not None:
        y += b.reshape(1, o, 1, 1)                               # (O,) broadcast over N, Ho, Wo
    return y


def conv2d_backward(dy, x, W, stride=1, padding=0, dilation=1, groups=1, need_dx=True, need_bias=True):
    """Gradients of :func:`conv2d_forward`: returns dx (N, C, H, W) or None
    (without need_dx), dW (O, C/g, KH, KW), db (O,) or None (without need_bias).

    dy: (N, O, Ho, Wo); x: (N, C, H, W); W: (O, C/g, KH, KW); the
    hyper-parameters as in the forward pass.  Per group k, with X_k, W_k and
    dY_k = dy[:, k*O/g:(k+1)*O/g] as the (N*Ho*Wo, O/g) matrix of the forward::

        db    = dy.sum(axis=(0, 2, 3))                 (O,)
        dW_k  = dY_k.T @ X_k                           (O/g, N*Ho*Wo) @ (N*Ho*Wo, C/g*KH*KW)
                                                       -> (O/g, C/g*KH*KW) -> (O/g, C/g, KH, KW)
        dX_k  = dY_k @ W_k                             (N*Ho*Wo, O/g) @ (O/g, C/g*KH*KW)
                                                       -> (N, Ho, Wo, C/g, KH, KW) = dcols
        dx    = col2im(dcols)                          (N, C, H, W)

    dW is the correlation of the input with the output gradient:
    dW[o, c, p, q] = sum_{n, i, j} dy[n, o, i, j] * xp[n, c, i*sh + p*dh, j*sw + q*dw].

    col2im is the adjoint of im2col.  im2col copied every input pixel into
    each window that covers it; so every input pixel receives the sum of the
    gradients of all the windows that saw it.  The sum is formed with KH*KW
    strided slice-adds: kernel tap (p, q) saw, across all output positions
    (i, j), the padded pixels (i*sh + p*dh, j*sw + q*dw), a strided slice of
    xp, so ``dxp[:, :, p*dh::sh, q*dw::sw] += dcols[..., p, q]`` (Ho x Wo
    entries per plane), and finally the padding is cropped away: gradients
    that fell on padded zeros belong to no input.

    The same dx, seen as a convolution: dx is the *full* convolution of dy,
    dilated by the stride (sh - 1 zeros between its rows, sw - 1 between its
    columns), with the kernel rotated by 180 degrees (W[o, c, KH-1-p, KW-1-q],
    input and output channels swapped), cropped by the padding:
    dx[n, c, h, w] = sum_{o, p, q, i, j : i*sh + p*dh = h + top, j*sw + q*dw = w + left}
    dy[n, o, i, j] * W[o, c, p, q].
    """
    geo = conv2d_geometry(x.shape, W.shape, stride, padding, dilation, groups, owner="conv2d_backward")
    n, c, h, w = x.shape
    o, cg, kh, kw = W.shape
    g, og, (ho, wo) = geo.groups, o // geo.groups, geo.out_size
    if dy.shape != (n, o, ho, wo):
        raise ValueError(f"conv2d_backward: dy has shape {dy.shape}, expected {(n, o, ho, wo)} "
                         f"(the shape of the forward output)")
    (top, bottom), (left, right) = geo.padding
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    cols = _im2col(x, (kh, kw), geo)                                     # (N, C, Ho, Wo, KH, KW), a view
    dW = np.empty(W.shape, dtype=np.result_type(dy, x))
    dxp = np.zeros((n, c, h + top + bottom, w + left + right), dtype=dW.dtype) if need_dx else None
    for k in range(g):
        dYk = dy[:, k * og:(k + 1) * og].transpose(0, 2, 3, 1).reshape(n * ho * wo, og)   # (N*Ho*Wo, O/g)
        Xk = _group_cols(cols, g, k)                                     # (N*Ho*Wo, C/g*KH*KW)
        dW[k * og:(k + 1) * og] = (dYk.T @ Xk).reshape(og, cg, kh, kw)   # (O/g, C/g*KH*KW)
        if need_dx:
            Wk = W[k * og:(k + 1) * og].reshape(og, -1)                  # (O/g, C/g*KH*KW)
            dcols = (dYk @ Wk).reshape(n, ho, wo, cg, kh, kw)            # (N, Ho, Wo, C/g, KH, KW)
            dcols = dcols.transpose(0, 3, 1, 2, 4, 5)                    # (N, C/g, Ho, Wo, KH, KW)
            block = dxp[:, k * cg:(k + 1) * cg]                          # (N, C/g, Hp, Wp), a view
            for p in range(kh):                                          # col2im: KH*KW slice-adds
                for q in range(kw):
                    block[:, :, p * dh:p * dh + sh * (ho - 1) + 1:sh,
                          q * dw:q * dw + sw * (wo - 1) + 1:sw] += dcols[..., p, q]
    db = dy.sum(axis=(0, 2, 3)) if need_bias else None                   # (O,)
    dx = None
    if need_dx:                                                          # crop the padding away
        dx = dxp[:, :, top:top + h, left:left + w].copy() if (top, bottom, left, right) != (0,) * 4 else dxp
    return dx, dW, db
