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


def _check_arrays(owner, **arrays):
    for name, a in arrays.items():
        if a is not None and not (isinstance(a, np.ndarray) and a.dtype.kind == "f"):
            raise TypeError(f"{owner}: {name} must be a float NumPy array, got {describe(a)}")


# ---------------------------------------------------------------------------
# im2col, batch last
# ---------------------------------------------------------------------------
def _im2col(x, kernel_size, geo):
    """The im2col matrix of x: (C*KH*KW, Ho*Wo*N), with

        cols[(c, p, q), (i, j, n)] = xp[n, c, i*sh + p*dh, j*sw + q*dw]      (xp: x zero-padded)

    Row (c, p, q) is tap (p, q) of input channel c, in the order of a weight
    row W[o].ravel(); column (i, j, n) is output position (i, j) of sample n.

    Why the batch comes last: x is first copied to the layout (C, H, W, N)
    (small: one pass over the input), and the copy that builds cols then moves
    runs of Wo*N contiguous values (stride 1; N values for a strided
    convolution).  Built from NCHW, with the tap (p, q) last, every run would
    be KW values long; at LeNet-5's shapes that copy measured 4-9x slower.
    The output and its gradient then come out as (O, Ho, Wo, N) and take one
    transposing copy each.

    sliding_window_view gives every window of the dilated kernel's extent at
    stride 1; keeping every sh-th/sw-th window and every dh-th/dw-th element
    inside it gives the strided, dilated windows; the reshape is the copy.
    Always a new, writable array."""
    (top, bottom), (left, right) = geo.padding
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel_size, geo.stride, geo.dilation, geo.out_size
    n, c = x.shape[:2]
    xt = x.transpose(1, 2, 3, 0)                                       # (C, H, W, N), a view
    if top or bottom or left or right:
        xt = np.pad(xt, ((0, 0), (top, bottom), (left, right), (0, 0)))   # (C, Hp, Wp, N), C-ordered copy
    else:
        xt = np.ascontiguousarray(xt)
    win = sliding_window_view(xt, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(1, 2))
    win = win[:, ::sh, ::sw, :, ::dh, ::dw][:, :ho, :wo]               # (C, Ho, Wo, N, KH, KW), a view
    cols = win.transpose(0, 4, 5, 1, 2, 3).reshape(c * kh * kw, ho * wo * n)   # the copy: im2col
    # (a 1x1 kernel at stride 1 needs no copy: the reshape is then a read-only view of xt)
    return cols if cols.flags.writeable else cols.copy()


def conv2d_forward(x, W, b=None, stride=1, padding=0, dilation=1, groups=1):
    """``y = conv2d(x, W) + b``, as PyTorch's ``F.conv2d``.

    x: (N, C, H, W); W: (O, C/g, KH, KW), PyTorch's layout; b: (O,) or None.
    stride, dilation: int or (h, w); padding: int, (h, w), ((top, bottom),
    (left, right)), "same" or "valid"; groups g divides C and O.
    Returns y: (N, O, Ho, Wo).  Backward needs x (and W, which the layer owns).

    im2col turns the convolution into matrix products, one per group k::

        X     = im2col(x)                           (C*KH*KW, Ho*Wo*N)   (see _im2col)
        X_k   = rows k*C/g*KH*KW ... of X           (C/g*KH*KW, Ho*Wo*N)  group k's channels
        W_k   = W[k*O/g:(k+1)*O/g].reshape          (O/g, C/g*KH*KW)
        Z_k   = W_k @ X_k                           (O/g, Ho*Wo*N)
        Z     = [Z_0; Z_1; ...] + b[:, None]        (O, Ho*Wo*N)
        y     = Z.reshape(O, Ho, Wo, N).transpose   (N, O, Ho, Wo)

    Each row of W_k is one filter, each column of X_k one receptive field, so
    each entry of Z_k is one filter applied at one position of one sample.
    """
    _check_arrays("conv2d_forward", x=x, W=W, b=b)
    geo = conv2d_geometry(x.shape, W.shape, stride, padding, dilation, groups, owner="conv2d_forward")
    if b is not None and b.shape != (W.shape[0],):
        raise ValueError(f"conv2d_forward: the bias has shape {b.shape}, expected ({W.shape[0]},) "
                         f"(one per output channel)")
    n, g = x.shape[0], geo.groups
    o, cg, kh, kw = W.shape
    og, ck, (ho, wo) = o // g, cg * kh * kw, geo.out_size
    X = _im2col(x, (kh, kw), geo)                                # (C*KH*KW, Ho*Wo*N)
    Z = np.empty((o, ho * wo * n), dtype=np.result_type(x, W))
    for k in range(g):
        Wk = W[k * og:(k + 1) * og].reshape(og, ck)              # (O/g, C/g*KH*KW)
        np.matmul(Wk, X[k * ck:(k + 1) * ck], out=Z[k * og:(k + 1) * og])   # (O/g, Ho*Wo*N)
    if b is not None:
        Z += b[:, None]                                          # (O,) broadcast over the columns
    return np.ascontiguousarray(Z.reshape(o, ho, wo, n).transpose(3, 0, 1, 2))   # (N, O, Ho, Wo)


def conv2d_backward(dy, x, W, stride=1, padding=0, dilation=1, groups=1, need_dx=True, need_bias=True,
                    need_weight=True):
    """Gradients of :func:`conv2d_forward`: returns dx (N, C, H, W) or None
    (without need_dx), dW (O, C/g, KH, KW) or None (without need_weight: a
    frozen weight), db (O,) or None (without need_bias).

    dy: (N, O, Ho, Wo); x: (N, C, H, W); W: (O, C/g, KH, KW); the
    hyper-parameters as in the forward pass.  With X_k, W_k of the forward and
    dZ, dy in Z's layout::

        dZ    = dy.transpose(1, 2, 3, 0).reshape       (O, Ho*Wo*N)
        db    = dZ.sum(axis=1)                         (O,)
        dW_k  = dZ_k @ X_k.T                           (O/g, Ho*Wo*N) @ (Ho*Wo*N, C/g*KH*KW)
                                                       -> (O/g, C/g*KH*KW) -> (O/g, C/g, KH, KW)
        dX_k  = W_k.T @ dZ_k                           (C/g*KH*KW, O/g) @ (O/g, Ho*Wo*N)
                                                       -> (C/g*KH*KW, Ho*Wo*N) = dcols
        dx    = col2im(dcols)                          (N, C, H, W)

    dW is the correlation of the input with the output gradient (c0 the
    first input channel of o's group, as in the module docstring):
    dW[o, c, p, q] = sum_{n, i, j} dy[n, o, i, j] * xp[n, c0 + c, i*sh + p*dh, j*sw + q*dw].

    col2im is the adjoint of im2col.  im2col copied every input pixel into
    each window that covers it; so every input pixel receives the sum of the
    gradients of all the windows that saw it.  The sum is formed with KH*KW
    strided slice-adds: kernel tap (p, q) saw, across all output positions
    (i, j), the padded pixels (i*sh + p*dh, j*sw + q*dw), a strided slice of
    xp, so ``dxp[c, p*dh : p*dh + sh*(Ho-1) + 1 : sh, q*dw : q*dw + sw*(Wo-1) + 1
    : sw, :] += dcols[c, p, q]`` (Ho x Wo x N entries per channel, in the
    batch-last layout of im2col), and finally the
    padding is cropped away: gradients that fell on padded zeros belong to no
    input.

    The same dx, seen as a convolution: dx is the *full* convolution of dy,
    dilated by the stride (sh - 1 zeros between its rows, sw - 1 between its
    columns), with the kernel rotated by 180 degrees (W[o, c, KH-1-p, KW-1-q],
    input and output channels swapped), cropped by the padding; for input
    channel c (k = c // (C/g) its group, c - k*C/g its index in the group):
    dx[n, c, h, w] = sum_{o of group k, p, q, i, j : i*sh + p*dh = h + top, j*sw + q*dw = w + left}
    dy[n, o, i, j] * W[o, c - k*C/g, p, q].
    """
    _check_arrays("conv2d_backward", dy=dy, x=x, W=W)
    geo = conv2d_geometry(x.shape, W.shape, stride, padding, dilation, groups, owner="conv2d_backward")
    n, c, h, w = x.shape
    o, cg, kh, kw = W.shape
    g, og, ck, (ho, wo) = geo.groups, o // geo.groups, cg * kh * kw, geo.out_size
    if dy.shape != (n, o, ho, wo):
        raise ValueError(f"conv2d_backward: dy has shape {dy.shape}, expected {(n, o, ho, wo)} "
                         f"(the shape of the forward output)")
    (top, bottom), (left, right) = geo.padding
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    dtype = np.result_type(dy, x)
    dZ = np.ascontiguousarray(dy.transpose(1, 2, 3, 0)).reshape(o, ho * wo * n)   # (O, Ho*Wo*N)
    X = _im2col(x, (kh, kw), geo)                                        # (C*KH*KW, Ho*Wo*N)
    dW = np.empty(W.shape, dtype=dtype) if need_weight else None
    for k in range(g):
        dZk, rows = dZ[k * og:(k + 1) * og], slice(k * ck, (k + 1) * ck)  # (O/g, Ho*Wo*N); group k's taps
        if need_weight:
            dW[k * og:(k + 1) * og] = (dZk @ X[rows].T).reshape(og, cg, kh, kw)   # (O/g, C/g*KH*KW)
        if need_dx:                          # dcols_k into X's own rows (X_k is no longer needed)
            Wk = W[k * og:(k + 1) * og].reshape(og, ck)                  # (O/g, C/g*KH*KW)
            np.matmul(Wk.T, dZk, out=X[rows])                            # (C/g*KH*KW, Ho*Wo*N)
    db = dZ.sum(axis=1) if need_bias else None                           # (O,)
    if not need_dx:
        return None, dW, db
    dcols = X.reshape(c, kh, kw, ho, wo, n)                              # (C, KH, KW, Ho, Wo, N)
    dxp = np.zeros((c, h + top + bottom, w + left + right, n), dtype=dtype)   # (C, Hp, Wp, N)
    for p in range(kh):                                                  # col2im: KH*KW slice-adds
        for q in range(kw):
            dxp[:, p * dh:p * dh + sh * (ho - 1) + 1:sh, q * dw:q * dw + sw * (wo - 1) + 1:sw] += dcols[:, p, q]
    dx = dxp[:, top:top + h, left:left + w].transpose(3, 0, 1, 2)        # crop the padding: (N, C, H, W)
    return np.ascontiguousarray(dx), dW, db
