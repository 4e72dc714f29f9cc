"""Convolution and pooling: the functional pairs against naive loops, finite differences on every
module and clear errors (PyTorch parity: test_conv_torch.py).  Every test runs on both backends
(the autouse fixture below)."""
import math
from fractions import Fraction

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import backend
from nnumpy import functional as F
from nnumpy.report import tensor_errors

BACKENDS = [b for b in ("numpy", "numba") if b in backend.available_backends()]
TOL = {np.float64: 1e-12, np.float32: 1e-5}


@pytest.fixture(params=BACKENDS, autouse=True)
def on_backend(request):
    with backend.use(request.param):
        yield request.param


def rel_err(a, b):
    """The project's measure (nnumpy.report.tensor_errors): max |a - b| / max(|a|, |b|), inf if non-finite."""
    return tensor_errors(a, b)["rel_err"]


# ---------------------------------------------------------------------------
# Naive loops: the definitions, written independently of nnumpy.functional
# ---------------------------------------------------------------------------
def naive_conv2d(x, W, b, stride, padding, dilation, groups):
    """y[n, o, i, j] = b[o] + sum W[o] * (the window of xp at (i, j) in o's group); and its adjoint."""
    (sh, sw), ((pt, pb), (pl, pr)), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n_, _, hp, wp = xp.shape
    o_, cg, kh, kw = W.shape
    ho, wo = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n_, o_, ho, wo))
    for n, o, i, j in np.ndindex(n_, o_, ho, wo):
        c0 = (o // (o_ // groups)) * cg
        win = xp[n, c0:c0 + cg, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
        y[n, o, i, j] = np.sum(W[o] * win) + (0.0 if b is None else b[o])
    return y


def naive_conv2d_backward(dy, x, W, stride, padding, dilation, groups):
    """Each output (n, o, i, j) scatters dy * window into dW[o] and dy * W[o] into its window of dxp."""
    (sh, sw), ((pt, pb), (pl, pr)), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    o_, cg, kh, kw = W.shape
    for n, o, i, j in np.ndindex(*dy.shape):
        c0 = (o // (o_ // groups)) * cg
        at = (n, slice(c0, c0 + cg), slice(i * sh, i * sh + dh * (kh - 1) + 1, dh),
              slice(j * sw, j * sw + dw * (kw - 1) + 1, dw))
        dW[o] += dy[n, o, i, j] * xp[at]
        dxp[at] += dy[n, o, i, j] * W[o]
    return dxp[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]], dW, dy.sum(axis=(0, 2, 3))


def naive_pool_count(n, k, s, p, d, ceil_mode):
    """Windows inside the padded input; with ceil_mode one partial window more when the padded
    input reaches past the last full one and that window starts inside the input or left padding."""
    span, length = d * (k - 1) + 1, n + 2 * p
    full = len([i for i in range(length) if i * s + span <= length])
    return full + int(ceil_mode and (length - span) % s != 0 and full * s < n + p)


def naive_max_pool2d(x, k, s, p, d, ceil_mode):
    """Scan each window's taps row by row, skipping padding: a larger value or a NaN takes over
    (so the first maximum and the last NaN win); the index starts at the first tap inside the input."""
    n_, c_, h, w = x.shape
    ho = naive_pool_count(h, k[0], s[0], p[0], d[0], ceil_mode)
    wo = naive_pool_count(w, k[1], s[1], p[1], d[1], ceil_mode)
    y, idx = np.zeros((n_, c_, ho, wo)), np.zeros((n_, c_, ho, wo), np.int64)
    for n, c, i, j in np.ndindex(n_, c_, ho, wo):
        h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
        fh, fw = h0, w0
        while fh < 0:
            fh += d[0]
        while fw < 0:
            fw += d[1]
        best, where = -np.inf, fh * w + fw
        for a, bb in np.ndindex(*k):
            hh, ww = h0 + a * d[0], w0 + bb * d[1]
            if 0 <= hh < h and 0 <= ww < w and (x[n, c, hh, ww] > best or np.isnan(x[n, c, hh, ww])):
                best, where = x[n, c, hh, ww], hh * w + ww
        y[n, c, i, j], idx[n, c, i, j] = best, where
    return y, idx


def naive_avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override):
    """Sum of the window's taps inside the input / (taps inside the padded input, or inside the
    input, or divisor_override); returns y and the divisors (for the backward)."""
    n_, c_, h, w = x.shape
    ho = naive_pool_count(h, k[0], s[0], p[0], 1, ceil_mode)
    wo = naive_pool_count(w, k[1], s[1], p[1], 1, ceil_mode)
    y, div = np.zeros((n_, c_, ho, wo)), np.zeros((ho, wo))
    for i, j in np.ndindex(ho, wo):
        taps = [(i * s[0] - p[0] + a, j * s[1] - p[1] + bb) for a, bb in np.ndindex(*k)]
        inside = [(hh, ww) for hh, ww in taps if 0 <= hh < h and 0 <= ww < w]
        padded = [(hh, ww) for hh, ww in taps if -p[0] <= hh < h + p[0] and -p[1] <= ww < w + p[1]]
        div[i, j] = divisor_override or (len(padded) if count_include_pad else len(inside))
        for hh, ww in inside:
            y[:, :, i, j] += x[:, :, hh, ww]
        y[:, :, i, j] /= div[i, j]
    return y, div


def naive_adaptive_bins(n, o):
    return [(math.floor(Fraction(i * n, o)), math.ceil(Fraction((i + 1) * n, o))) for i in range(o)]


# ---------------------------------------------------------------------------
# Functional pairs against the naive loops (float64)
# ---------------------------------------------------------------------------
def random_conv_case(seed):
    """A random convolution covering, as the seed runs, every padding kind (int, pair, asymmetric,
    'same' with even/odd kernels, 'valid'), strides and dilations 1-3, groups 1, 2 and depthwise."""
    rng = np.random.default_rng(seed)
    groups = (1, 2, 3)[seed % 3]
    c, o = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kh, kw = (int(v) for v in rng.integers(1, 5, 2))
    stride, dilation = tuple(int(v) for v in rng.integers(1, 4, 2)), tuple(int(v) for v in rng.integers(1, 4, 2))
    padding = [int(rng.integers(0, 3)), tuple(int(v) for v in rng.integers(0, 3, 2)),
               ((int(rng.integers(0, 3)), int(rng.integers(0, 3))), (int(rng.integers(0, 3)), 1)),
               "same", "valid"][seed % 5]
    if padding == "same":
        stride = (1, 1)
    h = int(rng.integers(dilation[0] * (kh - 1) + 1, 12))
    w = int(rng.integers(dilation[1] * (kw - 1) + 1, 12))
    x = rng.standard_normal((1 + seed % 3, c, h, w))
    W = rng.standard_normal((o, c // groups, kh, kw))
    b = rng.standard_normal(o) if seed % 4 else None
    return x, W, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups), rng


@pytest.mark.parametrize("seed", range(30))
def test_conv2d_functional_matches_loops(seed):
    x, W, b, kw, rng = random_conv_case(seed)
    y = F.conv2d_forward(x, W, b, **kw)
    geo = F.conv2d_geometry(x.shape, W.shape, **kw)
    args = (geo.stride, geo.padding, geo.dilation, geo.groups)
    assert np.isfinite(y).all()
    assert rel_err(y, naive_conv2d(x, W, b, *args)) < 1e-13
    dy = rng.standard_normal(y.shape)
    dx, dW, db = F.conv2d_backward(dy, x, W, **kw)
    for got, want in zip((dx, dW, db), naive_conv2d_backward(dy, x, W, *args)):
        assert got.shape == want.shape and rel_err(got, want) < 1e-13
    assert F.conv2d_backward(dy, x, W, **kw, need_dx=False, need_bias=False)[::2] == (None, None)


@pytest.mark.parametrize("kernel,dilation,pads", [(3, 1, ((1, 1), (1, 1))), (4, 1, ((1, 2), (1, 2))),
                                                  (2, 3, ((1, 2), (1, 2))), ((1, 4), (2, 1), ((0, 0), (1, 2)))])
def test_same_padding_puts_the_extra_pixel_bottom_right(kernel, dilation, pads):
    k, d = F.pair("k", kernel), F.pair("d", dilation)
    assert F.conv2d_padding("same", k, (1, 1), d) == pads
    x = np.random.default_rng(0).standard_normal((1, 1, 7, 6))
    assert F.conv2d_forward(x, np.ones((1, 1) + k), padding="same", dilation=d).shape == x.shape


#: The pools networks use, on odd sizes (every 4th case): (kernel, stride, padding, ceil_mode, input shape)
TYPICAL_POOLS = [((2, 2), (2, 2), (0, 0), False, (2, 3, 9, 7)), ((2, 2), (2, 2), (0, 0), True, (2, 3, 9, 7)),
                 ((3, 3), (2, 2), (1, 1), False, (1, 2, 11, 8)), ((3, 3), (2, 2), (1, 1), True, (2, 2, 10, 7)),
                 ((3, 3), (2, 2), (0, 0), True, (1, 3, 8, 9))]


def pool_case(seed):
    """(rng, kernel, stride, padding, dilation, ceil_mode, input shape) for a pooling test."""
    rng = np.random.default_rng(100 + seed)
    if seed % 4 == 2:
        k, s, p, ceil, shape = TYPICAL_POOLS[seed // 4 % len(TYPICAL_POOLS)]
        return rng, k, s, p, (1, 1), ceil, shape
    k = tuple(int(v) for v in rng.integers(1, 5, 2))
    s = tuple(int(v) for v in rng.integers(1, 4, 2))
    d = tuple(int(v) for v in rng.integers(1, 3, 2))
    p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
    h, w = (int(rng.integers(d[i] * (k[i] - 1) + 1, 11)) for i in (0, 1))
    return rng, k, s, p, d, bool(seed % 2), (1 + seed % 2, 2, h, w)


def spaced(shape, rng, step=0.05):
    """Distinct values at least ``step`` apart, in random order: no ties within eps of each other."""
    return ((rng.permutation(math.prod(shape)) - math.prod(shape) / 2) * step).reshape(shape)


@pytest.mark.parametrize("seed", range(30))
def test_max_pool_functional_matches_loops(seed):
    rng, k, s, p, d, ceil, shape = pool_case(seed)
    x = rng.standard_normal(shape)
    x[0, 0, rng.integers(0, shape[2], 2), rng.integers(0, shape[3], 2)] = np.nan   # two NaNs, one plane
    x[-1, -1] = -np.inf                                                           # a plane of -inf only
    x[0, 1, 0, :2] = x[0, 1, 1, 0] = 7.0                                          # ties
    y, idx = F.max_pool2d_forward(x, k, s, p, d, ceil)
    y_ref, idx_ref = naive_max_pool2d(x, k, s, p, d, ceil)
    assert np.array_equal(y, y_ref, equal_nan=True) and np.array_equal(idx, idx_ref) and idx.dtype == np.int64
    dy = rng.standard_normal(y.shape)
    dx_ref = np.zeros(shape)
    for n, c, i, j in np.ndindex(*y.shape):
        if 0 <= idx_ref[n, c, i, j] < shape[2] * shape[3]:                       # a window that saw an input
            dx_ref[n, c].flat[idx_ref[n, c, i, j]] += dy[n, c, i, j]
    assert rel_err(F.max_pool2d_backward(dy, idx, shape), dx_ref) < 1e-15


@pytest.mark.parametrize("seed", range(30))
def test_avg_pool_functional_matches_loops(seed):
    rng, k, s, p, _, ceil, shape = pool_case(seed)
    x = rng.standard_normal(shape)
    for count_include_pad, divisor in ((True, None), (False, None), (True, 5)):
        y = F.avg_pool2d_forward(x, k, s, p, ceil, count_include_pad, divisor)
        y_ref, div = naive_avg_pool2d(x, k, s, p, ceil, count_include_pad, divisor)
        assert np.isfinite(y).all() and rel_err(y, y_ref) < 1e-14
        dy = rng.standard_normal(y.shape)
        dx_ref = np.zeros(shape)
        for i, j in np.ndindex(*div.shape):
            for a, bb in np.ndindex(*k):
                hh, ww = i * s[0] - p[0] + a, j * s[1] - p[1] + bb
                if 0 <= hh < shape[2] and 0 <= ww < shape[3]:
                    dx_ref[:, :, hh, ww] += dy[:, :, i, j] / div[i, j]
        assert rel_err(F.avg_pool2d_backward(dy, shape, k, s, p, ceil, count_include_pad, divisor), dx_ref) < 1e-14


@pytest.mark.parametrize("h,w,out", [(7, 6, (3, 4)), (5, 5, 5), (4, 9, (7, 2)), (1, 3, (2, None)), (9, 8, 1)])
def test_adaptive_avg_pool_functional_matches_loops(h, w, out):
    rng = np.random.default_rng(h * 10 + w)
    x = rng.standard_normal((2, 3, h, w))
    y = F.adaptive_avg_pool2d_forward(x, out)
    ho, wo = F.adaptive_output_size(out, (h, w))
    rows, cols = naive_adaptive_bins(h, ho), naive_adaptive_bins(w, wo)
    y_ref, dy = np.zeros((2, 3, ho, wo)), rng.standard_normal((2, 3, ho, wo))
    dx_ref = np.zeros_like(x)
    for i, j in np.ndindex(ho, wo):
        (r0, r1), (c0, c1) = rows[i], cols[j]
        y_ref[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
        dx_ref[:, :, r0:r1, c0:c1] += dy[:, :, i, j, None, None] / ((r1 - r0) * (c1 - c0))
    assert rel_err(y, y_ref) < 1e-14
    assert rel_err(F.adaptive_avg_pool2d_backward(dy, x.shape), dx_ref) < 1e-14


# ---------------------------------------------------------------------------
# Finite differences on every module (float64)
# ---------------------------------------------------------------------------
GRADCHECK = {
    "conv2d": (lambda: nnp.nn.Conv2d(3, 4, 3, padding=1, rng=0), (2, 3, 5, 6)),
    "conv2d-strided-dilated-nobias": (lambda: nnp.nn.Conv2d(2, 3, (2, 3), stride=(2, 1), dilation=(1, 2),
                                                            bias=False, rng=1), (2, 2, 7, 8)),
    "conv2d-groups-same": (lambda: nnp.nn.Conv2d(4, 6, 4, padding="same", groups=2, rng=2), (1, 4, 5, 5)),
    "conv2d-depthwise-unbatched": (lambda: nnp.nn.Conv2d(3, 3, 3, stride=2, padding=1, groups=3, rng=3), (3, 6, 7)),
    "maxpool2d-overlapping": (lambda: nnp.nn.MaxPool2d(3, stride=1, padding=1), (2, 2, 5, 6)),
    "maxpool2d-dilated-ceil": (lambda: nnp.nn.MaxPool2d(2, stride=2, padding=1, dilation=2, ceil_mode=True),
                               (2, 2, 7, 6)),
    "avgpool2d": (lambda: nnp.nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 2, 6, 7)),
    "avgpool2d-nocount-divisor": (lambda: nnp.nn.AvgPool2d((2, 3), 1, (1, 1), count_include_pad=False), (2, 2, 4, 5)),
    "avgpool2d-divisor": (lambda: nnp.nn.AvgPool2d(2, divisor_override=3), (3, 5, 4)),
    "adaptiveavgpool2d": (lambda: nnp.nn.AdaptiveAvgPool2d((3, 4)), (2, 2, 7, 5)),
    "adaptiveavgpool2d-larger": (lambda: nnp.nn.AdaptiveAvgPool2d((None, 7)), (2, 2, 3, 5)),
}


@pytest.mark.parametrize("name", list(GRADCHECK))
def test_module_gradients(name):
    make, shape = GRADCHECK[name]
    module = make()
    x = spaced(shape, np.random.default_rng(7))                    # max-pool: ties far beyond eps apart
    report = nnp.gradcheck(module, x, tolerance=1e-7, seed=1)
    assert report, "\n" + str(report)
    assert [r["name"] for r in report.rows] == ["input"] + [n for n, _ in module.named_parameters()]


def test_conv_input_grad_false_skips_dx_and_keeps_the_parameter_gradients():
    rng = np.random.default_rng(0)
    m = nnp.nn.Conv2d(2, 3, 3, stride=2, dtype=np.float64, rng=0)
    x = rng.standard_normal((2, 2, 7, 7))
    dy = rng.standard_normal(m(x).shape)
    dx = m.backward(dy)
    grads = [p.grad.copy() for p in m.parameters()]
    m.zero_grad()
    m(x)
    assert m.backward(dy, input_grad=False) is None and dx.shape == x.shape
    for g, p in zip(grads, m.parameters()):
        np.testing.assert_array_equal(p.grad, g)


# ---------------------------------------------------------------------------
# Clear errors
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,error,match", [
    (dict(kernel_size=0), ValueError, "kernel_size must be a positive integer, got 0"),
    (dict(kernel_size=(3, 3, 3)), TypeError, r"kernel_size must be an integer or a pair \(h, w\)"),
    (dict(stride=(1, 0)), ValueError, r"stride\[1\] must be a positive integer, got 0"),
    (dict(padding=-1), ValueError, "padding must be an integer >= 0, got -1"),
    (dict(padding="full"), ValueError, "padding must be an integer, a pair .h, w., 'same' or 'valid', got 'full'"),
    (dict(padding="same", stride=2), ValueError, r"padding='same' needs stride 1.*got stride=\(2, 2\)"),
    (dict(padding=((1, 1), (0, 0))), TypeError, r"padding\[0\] must be an integer >= 0, got \(1, 1\)"),
    (dict(groups=4), ValueError, "in_channels must be divisible by groups, got in_channels=6 and groups=4"),
    (dict(groups=3, out_channels=4), ValueError, "out_channels must be divisible by groups, got out_channels=4"),
    (dict(padding_mode="reflect"), ValueError, "only padding_mode='zeros' is supported, got 'reflect'"),
    (dict(bias="yes"), TypeError, "bias must be True or False"),
    (dict(dilation=1.5), TypeError, "dilation must be a positive integer, got 1.5"),
    (dict(dtype=np.int32), TypeError, "float32 or float64"),
])
def test_conv_refuses_bad_arguments(kwargs, error, match):
    args = dict(in_channels=6, out_channels=6, kernel_size=3)
    with pytest.raises(error, match=match):
        nnp.nn.Conv2d(**{**args, **kwargs})


@pytest.mark.parametrize("x,error,match", [
    (np.zeros((2, 3, 8), np.float32), ValueError, r"Conv2d\(4, 2, kernel_size=\(3, 3\)\) expects input of shape "
                                                  r"\(N, 4, H, W\) or \(4, H, W\), got \(2, 3, 8\)"),
    (np.zeros((8, 8), np.float32), ValueError, r"expects input of shape .* got \(8, 8\)"),
    (np.zeros((1, 1, 4, 8, 8), np.float32), ValueError, r"got \(1, 1, 4, 8, 8\)"),
    (np.zeros((2, 3, 8, 8), np.float32), ValueError, r"\(N, 4, H, W\) .* got \(2, 3, 8, 8\)"),
    (np.zeros((2, 4, 8, 8)), TypeError, "holds float32 weights but got float64 input"),
    (np.zeros((2, 4, 8, 8), np.uint8), TypeError, "uint8"),
    ([[[[0.0]]]], TypeError, "NumPy array"),
    (np.zeros((2, 4, 1, 8), np.float32), ValueError, r"too small: padded input size \(3 x 10\), kernel size "
                                                     r"\(3, 3\) with dilation \(2, 2\) spans \(5 x 5\)"),
    (np.zeros((2, 4, 0, 8), np.float32), ValueError, r"shape \(2, 4, 0, 8\) with an empty channel, height or width"),
])
def test_conv_refuses_bad_input(x, error, match):
    m = nnp.nn.Conv2d(4, 2, 3, padding=1, dilation=2, rng=0)
    with pytest.raises(error, match=match):
        m(x)


@pytest.mark.parametrize("make,error,match", [
    (lambda: nnp.nn.MaxPool2d(3, padding=2), ValueError, r"padding must be at most half of the kernel size, got "
                                                         r"padding=\(2, 2\) and kernel_size=\(3, 3\)"),
    (lambda: nnp.nn.MaxPool2d(0), ValueError, "kernel_size must be a positive integer, got 0"),
    (lambda: nnp.nn.MaxPool2d(2, ceil_mode=1), TypeError, "ceil_mode must be True or False"),
    (lambda: nnp.nn.AvgPool2d((2, 4), padding=(0, 3)), ValueError, "at most half of the kernel size"),
    (lambda: nnp.nn.AvgPool2d(2, divisor_override=0), ValueError, "divisor_override must not be 0"),
    (lambda: nnp.nn.AdaptiveAvgPool2d(0), ValueError, "output_size must be a positive integer, got 0"),
    (lambda: nnp.nn.AdaptiveAvgPool2d((2, 3, 4)), TypeError, "output_size must be an integer or a pair"),
    (lambda: nnp.nn.AdaptiveAvgPool2d(None), TypeError, "output_size must be an integer or a pair"),
])
def test_pools_refuse_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("make", [lambda: nnp.nn.MaxPool2d(3), lambda: nnp.nn.AvgPool2d(3),
                                  lambda: nnp.nn.AdaptiveAvgPool2d(2)])
def test_pools_refuse_bad_input(make):
    m = make()
    with pytest.raises(ValueError, match=r"expects input of shape \(N, C, H, W\) or \(C, H, W\), got \(4, 5\)"):
        m(np.zeros((4, 5), np.float32))
    with pytest.raises(TypeError, match="int64"):
        m(np.zeros((1, 1, 4, 5), np.int64))
    if not isinstance(m, nnp.nn.AdaptiveAvgPool2d):
        with pytest.raises(ValueError, match=r"input is too small: input size \(2, 5\).*output size of \(0, 1\)"):
            m(np.zeros((1, 1, 2, 5), np.float32))


def test_functional_refuses_mismatched_shapes():
    x, W = np.zeros((1, 4, 5, 5)), np.zeros((6, 2, 3, 3))
    with pytest.raises(ValueError, match=r"the input has 4 channels .* weight \(6, 2, 3, 3\) with groups=1 expects 2"):
        F.conv2d_forward(x, W)
    with pytest.raises(ValueError, match=r"dy has shape \(1, 6, 2, 2\), expected \(1, 6, 3, 3\)"):
        F.conv2d_backward(np.zeros((1, 6, 2, 2)), x, W, groups=2)
    with pytest.raises(ValueError, match=r"must be an array of shape \(N, C, H, W\), got \(5, 5\)"):
        F.max_pool2d_forward(np.zeros((5, 5)), 2)


@pytest.mark.parametrize("name", list(GRADCHECK))
def test_an_empty_batch_passes_through(name):
    make, shape = GRADCHECK[name]
    m = make()
    x = np.zeros((0,) + shape[-3:], np.float32)
    y = m(x)
    assert y.shape[0] == 0 and y.ndim == 4
    assert m.backward(y).shape == x.shape and all(not p.grad.any() for p in m.parameters())
