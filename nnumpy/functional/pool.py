"""2-d pooling, NCHW: max, average and adaptive average, as PyTorch.

Shapes: ``N`` batch, ``C`` channels, ``H, W`` input height and width,
``KH, KW`` window, ``Ho, Wo`` output height and width.  Hyper-parameters
once normalised (pairs (h, w) of ints): kernel_size ``(KH, KW)``, stride
``(sh, sw)`` (PyTorch's default: the kernel size), padding ``(ph, pw)`` on
both sides of each axis (at most half the window), dilation ``(dh, dw)``.

Output size per axis (PyTorch's rule)::

    Ho = (H + 2 ph - dh (KH - 1) - 1 + (sh - 1 if ceil_mode else 0)) // sh + 1

and with ceil_mode the last window is dropped if it would start beyond the
input and its left padding, i.e. if (Ho - 1) sh >= H + ph.  Pooling acts on
every (n, c) plane separately; the channels never mix.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._checks import integer
from .conv import pair

__all__ = [
    "pool2d_params", "pool2d_output_size", "adaptive_output_size",
    "max_pool2d_forward", "max_pool2d_backward",
    "avg_pool2d_forward", "avg_pool2d_backward",
    "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward",
]


def pool2d_params(kernel_size, stride=None, padding=0, dilation=1, owner="pool2d"):
    """Normalise and check pooling hyper-parameters as PyTorch does:
    ``(kernel_size, stride, padding, dilation)`` as (h, w) pairs of ints.
    stride None (or an empty tuple) means the kernel size; padding must be at
    most half the kernel size (floor(KH/2), floor(KW/2)), so that every window
    holds at least one input element."""
    kernel_size = pair("kernel_size", kernel_size, owner=owner)
    no_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)   # torch's "default"
    stride = kernel_size if no_stride else pair("stride", stride, owner=owner)
    padding = pair("padding", padding, low=0, owner=owner)
    dilation = pair("dilation", dilation, owner=owner)
    if padding[0] > kernel_size[0] // 2 or padding[1] > kernel_size[1] // 2:
        raise ValueError(f"{owner}: padding must be at most half of the kernel size, got padding={padding} "
                         f"and kernel_size={kernel_size}")
    return kernel_size, stride, padding, dilation


def pool2d_output_size(in_size, kernel_size, stride, padding, dilation=(1, 1), ceil_mode=False, owner="pool2d"):
    """(Ho, Wo) by PyTorch's rule (see the module docstring); all arguments
    normalised pairs.  Raises ValueError naming the sizes when the output
    would be empty."""
    out = []
    for n, k, s, p, d in zip(in_size, kernel_size, stride, padding, dilation):
        o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (o - 1) * s >= n + p:       # the last window would start in the right padding
            o -= 1
        out.append(o)
    if min(out) < 1:
        raise ValueError(f"{owner}: the input is too small: input size {tuple(in_size)}, kernel_size "
                         f"{tuple(kernel_size)}, stride {tuple(stride)}, padding {tuple(padding)}, dilation "
                         f"{tuple(dilation)} give an output size of {tuple(out)}")
    return tuple(out)


def _check_4d(x, owner):
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(f"{owner}: the input must be an array of shape (N, C, H, W), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    if x.dtype.kind != "f":
        raise TypeError(f"{owner}: the input must be a float array (padding is -inf or 0, averages are "
                        f"fractions), got {x.dtype}")


def _windows(x, kernel_size, stride, padding, dilation, out_size, fill):
    """The pooling windows of x padded with ``fill``: a strided view
    (N, C, Ho, Wo, KH, KW) with win[n, c, i, j, p, q] = xp[n, c, i*sh + p*dh, j*sw + q*dw].
    Beyond the padding, the last window of ceil_mode may hang over the
    bottom/right edge: xp is padded far enough there (with ``fill`` too)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (ho, wo) = kernel_size, stride, padding, dilation, out_size
    h, w = x.shape[2:]
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    extra_h = max(0, (ho - 1) * sh + span_h - (h + 2 * ph))          # rows needed past the padding
    extra_w = max(0, (wo - 1) * sw + span_w - (w + 2 * pw))
    if ph or pw or extra_h or extra_w:
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + extra_h), (pw, pw + extra_w)), constant_values=fill)
    else:
        xp = x                                                        # nothing to pad: no copy
    win = sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
    return win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :ho, :wo]


# ---------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------
def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """``y[n, c, i, j] = max_{p, q} xp[n, c, i*sh + p*dh, j*sw + q*dw]``, xp: x padded with -inf.

    x: (N, C, H, W).  Returns y (N, C, Ho, Wo) and indices (N, C, Ho, Wo)
    int64: the flat position ``h * W + w`` of each maximum in its input plane
    (PyTorch's ``return_indices``), all that backward needs.

    Ties go to the first maximum in the window (row by row); a NaN in a window
    makes the output NaN and its index that of the window's last NaN, and a
    window holding only -inf (or only padding) points at its first tap inside
    the input, all as PyTorch.

    Computed as a running maximum over the KH*KW taps, each tap a strided
    slice of x holding that tap of every window: y = max(y, v), and the tap
    number moves to t where v is strictly greater (so the first of equal
    maxima stays) or NaN (so the last NaN wins).  The tap is moved with a
    multiply, ``tap += later * (t - tap)``: np.where branches on every element
    and measured ~10x slower here.  (An argmax over a (N, C, Ho, Wo, KH*KW)
    copy of the windows states the same thing, and took 4-6x as long.)
    """
    _check_4d(x, "max_pool2d_forward")
    kernel_size, stride, padding, dilation = pool2d_params(kernel_size, stride, padding, dilation,
                                                           owner="max_pool2d_forward")
    h, w = x.shape[2:]
    ho, wo = pool2d_output_size((h, w), kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d_forward")
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    win = _windows(x, kernel_size, stride, padding, dilation, (ho, wo), -np.inf)   # (N, C, Ho, Wo, KH, KW) view
    y = win[..., 0, 0].copy()                                        # (N, C, Ho, Wo): the running maximum
    tap = np.zeros(y.shape, np.int64)                                # (N, C, Ho, Wo): its tap p*KW + q
    for t in range(1, kh * kw):
        v = win[..., t // kw, t % kw]                                # tap t of every window
        later = v > y                                                # strictly greater: ties keep the first
        later |= np.isnan(v)                                         # a NaN replaces anything: the last one wins
        np.maximum(y, v, out=y)                                      # (a NaN stays NaN)
        tap += later * (t - tap)                                     # tap = t where later
    taps = np.arange(kh * kw)
    row = (np.arange(ho) * sh - ph)[:, None] + ((taps // kw) * dh)[tap]   # (N, C, Ho, Wo) input row
    col = (np.arange(wo) * sw - pw)[None, :] + ((taps % kw) * dw)[tap]    # (N, C, Ho, Wo) input column
    if ph or pw:
        # a window of -inf only: its first tap may be padding; PyTorch names the first tap inside the
        # input instead (advanced by whole dilation steps: row % dh for a negative row)
        row = np.where(row < 0, row % dh, row)
        col = np.where(col < 0, col % dw, col)
    return y, row * w + col


def max_pool2d_backward(dy, indices, in_shape):
    """The gradient of max pooling goes to the arg-max: for every output
    (n, c, i, j), ``dx[n, c].flat[indices[n, c, i, j]] += dy[n, c, i, j]``,
    summed where overlapping windows share a maximum; every other input gets 0.

    dy, indices: (N, C, Ho, Wo); in_shape: (N, C, H, W).  Returns dx
    (in_shape, dy's dtype).  Implemented as one np.bincount over the
    flattened planes (plane (n, c) owns positions (n*C + c)*H*W + [0, H*W)).
    An index outside its plane (a window that saw nothing but padding, which
    PyTorch still numbers) receives nothing: no input moved that output.
    """
    n, c, h, w = in_shape
    if dy.shape != indices.shape or dy.shape[:2] != (n, c):
        raise ValueError(f"max_pool2d_backward: dy {dy.shape} and indices {indices.shape} must have one "
                         f"shape (N, C, Ho, Wo) matching the input {tuple(in_shape)}")
    flat = np.arange(n * c).reshape(n, c, 1, 1) * (h * w) + indices  # (N, C, Ho, Wo) positions in dx.ravel()
    weights = dy
    if indices.size and (indices.min() < 0 or indices.max() >= h * w):
        inside = (indices >= 0) & (indices < h * w)                  # (N, C, Ho, Wo)
        flat, weights = flat[inside], dy[inside]                     # (K,)
    dx = np.bincount(flat.ravel(), weights=weights.ravel(), minlength=n * c * h * w)   # sums in float64
    return dx.astype(dy.dtype, copy=False).reshape(in_shape)


# ---------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------
def _avg_divisor(in_size, kernel_size, stride, padding, out_size, count_include_pad, divisor_override, dtype):
    """What each window's sum is divided by: (Ho, Wo).  PyTorch counts, per
    axis, the window's taps inside the input and its padding
    (``count_include_pad``; a ceil_mode window hanging past the padding is
    clipped to it) or only those inside the input; the count of a window is
    the product of its two axes' counts.  ``divisor_override`` replaces it."""
    if divisor_override is not None:
        return np.full(out_size, divisor_override, dtype=dtype)
    counts = []
    for n, k, s, p, o in zip(in_size, kernel_size, stride, padding, out_size):
        start = np.arange(o) * s - p                                  # first tap, input coordinates
        if count_include_pad:
            counts.append(np.minimum(start + k, n + p) - start)
        else:
            counts.append(np.minimum(start + k, n) - np.maximum(start, 0))
    return np.outer(counts[0], counts[1]).astype(dtype)              # (Ho, Wo)


def _avg_setup(x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, owner):
    kernel_size, stride, padding, _ = pool2d_params(kernel_size, stride, padding, 1, owner=owner)
    if divisor_override is not None and integer("divisor_override", divisor_override, owner=owner) == 0:
        raise ValueError(f"{owner}: divisor_override must not be 0")
    out_size = pool2d_output_size(x_shape[2:], kernel_size, stride, padding, (1, 1), ceil_mode, owner)
    return kernel_size, stride, padding, out_size


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                       divisor_override=None):
    """``y[n, c, i, j] = sum_{p, q} xp[n, c, i*sh + p, j*sw + q] / d[i, j]``, xp: x padded with zeros.

    x: (N, C, H, W) -> y (N, C, Ho, Wo).  d (Ho, Wo): the window's size
    counting the padding (``count_include_pad``), or only its taps inside the
    input, or ``divisor_override`` (see :func:`_avg_divisor`).  Backward needs
    only x's shape and the hyper-parameters.  The sum is KH*KW strided slices
    of xp added up (no window copy).
    """
    _check_4d(x, "avg_pool2d_forward")
    (kh, kw), (sh, sw), (ph, pw), (ho, wo) = _avg_setup(
        x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, "avg_pool2d_forward")
    win = _windows(x, (kh, kw), (sh, sw), (ph, pw), (1, 1), (ho, wo), 0)   # (N, C, Ho, Wo, KH, KW) view
    y = np.zeros(x.shape[:2] + (ho, wo), dtype=x.dtype)
    for p in range(kh):
        for q in range(kw):
            y += win[..., p, q]
    y /= _avg_divisor(x.shape[2:], (kh, kw), (sh, sw), (ph, pw), (ho, wo), count_include_pad,
                      divisor_override, x.dtype)
    return y


def avg_pool2d_backward(dy, in_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Each input in window (i, j) contributed x / d[i, j] to y[i, j], so it
    receives ``dy[i, j] / d[i, j]`` from every window that holds it::

        g = dy / d                                        (N, C, Ho, Wo)
        dxp[:, :, p::sh, q::sw] += g   for every tap (p, q)   (Ho x Wo entries each)
        dx = dxp cropped to the input                     (N, C, H, W)

    (the col2im of :func:`~nnumpy.functional.conv2d_backward` with a kernel of
    ones).  dy: (N, C, Ho, Wo); in_shape: (N, C, H, W).  Returns dx (in_shape).
    """
    (kh, kw), (sh, sw), (ph, pw), (ho, wo) = _avg_setup(
        in_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, "avg_pool2d_backward")
    n, c, h, w = in_shape
    if dy.shape != (n, c, ho, wo):
        raise ValueError(f"avg_pool2d_backward: dy has shape {dy.shape}, expected {(n, c, ho, wo)}")
    g = dy / _avg_divisor((h, w), (kh, kw), (sh, sw), (ph, pw), (ho, wo), count_include_pad,
                          divisor_override, dy.dtype)
    hp, wp = max(h + 2 * ph, (ho - 1) * sh + kh), max(w + 2 * pw, (wo - 1) * sw + kw)   # ceil_mode overhang
    dxp = np.zeros((n, c, hp, wp), dtype=dy.dtype)
    for p in range(kh):
        for q in range(kw):
            dxp[:, :, p:p + sh * (ho - 1) + 1:sh, q:q + sw * (wo - 1) + 1:sw] += g
    return dxp[:, :, ph:ph + h, pw:pw + w].copy()


# ---------------------------------------------------------------------------
# Adaptive average pooling
# ---------------------------------------------------------------------------
def adaptive_output_size(output_size, in_size, owner="adaptive_avg_pool2d"):
    """PyTorch's ``output_size``: an int, or a pair whose entries are ints or
    None (None keeps that axis's input size) -> (Ho, Wo)."""
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        return tuple(in_size[i] if v is None else integer(f"output_size[{i}]", v, low=1, owner=owner)
                     for i, v in enumerate(output_size))
    return pair("output_size", output_size, owner=owner)


def _bins(n, o):
    """PyTorch's adaptive bins along an axis of n inputs and o outputs:
    bin i covers [floor(i n / o), ceil((i + 1) n / o)).  Bins may overlap
    (o does not divide n) and cover every input (o <= n or not)."""
    i = np.arange(o)
    return (i * n) // o, -((-(i + 1) * n) // o)


def adaptive_avg_pool2d_forward(x, output_size):
    """``y[n, c, i, j] = mean of x[n, c, rows of bin i, columns of bin j]`` (see :func:`_bins`).

    x: (N, C, H, W) -> y (N, C, Ho, Wo), output_size as PyTorch's (int or
    pair, None keeping the input's size).  A rectangle's mean is the mean
    over its rows of the means over its columns, so the sums go one axis at
    a time: t (N, C, Ho, W), then y (N, C, Ho, Wo).  Backward needs x's shape.
    """
    _check_4d(x, "adaptive_avg_pool2d_forward")
    h, w = x.shape[2:]
    ho, wo = adaptive_output_size(output_size, (h, w), "adaptive_avg_pool2d_forward")
    (r0, r1), (c0, c1) = _bins(h, ho), _bins(w, wo)
    t = np.empty(x.shape[:2] + (ho, w), dtype=x.dtype)              # (N, C, Ho, W): sums over bin rows
    for i in range(ho):
        t[:, :, i] = x[:, :, r0[i]:r1[i]].sum(axis=2)
    y = np.empty(x.shape[:2] + (ho, wo), dtype=x.dtype)             # (N, C, Ho, Wo): and over bin columns
    for j in range(wo):
        y[..., j] = t[..., c0[j]:c1[j]].sum(axis=3)
    y /= np.outer(r1 - r0, c1 - c0).astype(x.dtype)                 # (Ho, Wo): each bin's size
    return y


def adaptive_avg_pool2d_backward(dy, in_shape, output_size=None):
    """Every input of bin (i, j) receives ``dy[i, j] / |bin (i, j)|``, summed
    over the bins that hold it (they overlap when the sizes do not divide)::

        g = dy / (rows_i * cols_j)                                 (N, C, Ho, Wo)
        t[..., i, c0_j:c1_j] += g[..., i, j, None]                  (N, C, Ho, W)
        dx[..., r0_i:r1_i, :] += t[..., i, None, :]                 (N, C, H, W)

    dy: (N, C, Ho, Wo); in_shape: (N, C, H, W); output_size defaults to dy's.
    """
    n, c, h, w = in_shape
    ho, wo = adaptive_output_size(dy.shape[2:] if output_size is None else output_size, (h, w),
                                  "adaptive_avg_pool2d_backward")
    if dy.shape != (n, c, ho, wo):
        raise ValueError(f"adaptive_avg_pool2d_backward: dy has shape {dy.shape}, expected {(n, c, ho, wo)}")
    (r0, r1), (c0, c1) = _bins(h, ho), _bins(w, wo)
    g = dy / np.outer(r1 - r0, c1 - c0).astype(dy.dtype)           # (N, C, Ho, Wo)
    t = np.zeros((n, c, ho, w), dtype=dy.dtype)                     # (N, C, Ho, W)
    for j in range(wo):
        t[..., c0[j]:c1[j]] += g[..., j:j + 1]
    dx = np.zeros(in_shape, dtype=dy.dtype)                         # (N, C, H, W)
    for i in range(ho):
        dx[:, :, r0[i]:r1[i]] += t[:, :, i:i + 1]
    return dx
