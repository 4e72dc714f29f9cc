"""The Numba convolution and max-pooling kernels against their NumPy references.

Every kernel of nnumpy.backend.numba_conv is held to nnumpy.backend.numpy_ops element by
element: 1e-12 (float64) and 1e-5 (float32) relative to each element, where an element
that is a sum (a convolution output, a weight/bias/input gradient) is measured relative to
the sum of its terms' magnitudes (see tests/test_backend.py).  Both algorithms of the
convolution (direct loops and im2col + GEMM) run on every shape.
"""
import os

import numpy as np
import pytest

from nnumpy.backend import numpy_ops as ref

numba = pytest.importorskip("numba", reason="Numba is not installed")
from nnumpy.backend import numba_conv as conv  # noqa: E402  (with Numba installed, must import)
from nnumpy.backend import numba_ops  # noqa: E402

from test_backend import assert_close  # noqa: E402

ACTS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh"]
TOL = {np.float64: 1e-12, np.float32: 1e-5}
SLOPE = 0.1

#: (name, x shape (N, C, H, W), O, (KH, KW), stride, padding ((top, bottom), (left, right)), dilation, groups)
SHAPES = [
    ("lenet1", (3, 1, 28, 28), 6, (5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1),
    ("lenet2", (2, 6, 14, 14), 16, (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ("odd", (3, 4, 9, 11), 6, (3, 2), (2, 1), ((1, 0), (2, 1)), (1, 2), 2),
    ("strided", (2, 3, 10, 9), 4, (3, 3), (2, 3), ((1, 1), (1, 1)), (1, 1), 1),
    ("padded", (2, 2, 5, 7), 3, (3, 3), (1, 1), ((3, 1), (0, 4)), (1, 1), 1),
    ("dilated", (2, 2, 12, 10), 3, (3, 3), (1, 1), ((2, 2), (2, 2)), (2, 3), 1),
    ("grouped", (2, 6, 7, 8), 9, (3, 3), (1, 1), ((1, 1), (0, 0)), (1, 1), 3),
    ("depthwise", (2, 4, 8, 8), 8, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 4),
    ("pointwise", (2, 8, 5, 6), 4, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ("wide", (2, 9, 6, 5), 5, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ("out1x1", (1, 3, 5, 5), 2, (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ("pixel", (1, 1, 1, 1), 1, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ("batch9", (9, 2, 4, 3), 3, (2, 2), (1, 1), ((1, 0), (0, 1)), (1, 1), 1),
]
#: The convolution's algorithms: direct loops (forward; backward with dW in lanes or
#: as a correlation), im2col + GEMM, and im2col + GEMM with dW after a max-pool taken
#: from the arg-maxima alone where no dx is asked for ("pooled", see numba_conv._pooled_dw).
VARIANTS = [("direct", "lanes"), ("direct", "transposed"), ("gemm", None), ("gemm", "pooled")]


@pytest.fixture(params=VARIANTS, ids=lambda v: "-".join(filter(None, v)))
def variant(request, monkeypatch):
    """Run the convolution kernels with one algorithm on every shape (the direct one
    applies to stride 1 only; strided shapes then run the GEMM)."""
    monkeypatch.setattr(conv, "_FORCE", request.param[0])
    monkeypatch.setattr(conv, "_FORCE_DW", request.param[1])
    return request.param


def conv_args(case):
    _, _, _, _, stride, padding, dilation, groups = case
    return stride, padding, dilation, groups


def make(case, dtype, seed=0):
    """x, W (scaled so that pre-activations are of order 1) and b for a case, drawn in
    float64 then cast, and the generator for what follows."""
    _, xs, o, (kh, kw), *_rest = case
    groups = case[-1]
    rng = np.random.default_rng(seed)
    fan_in = xs[1] // groups * kh * kw
    x = rng.standard_normal(xs)
    W = rng.standard_normal((o, xs[1] // groups, kh, kw)) / np.sqrt(fan_in)
    b = rng.standard_normal(o)
    return x.astype(dtype), W.astype(dtype), b.astype(dtype), rng


def f_prime(y, act):
    """|f'| written through the output y."""
    return np.abs(ref.activation_backward(np.ones_like(y), y, act, SLOPE))


def forward_scale(x, W, b, y_ref, y, act, args):
    """Each output's rounding scale: |y| plus |f'| times the sum of the terms' magnitudes
    of z = conv(x, W) + b (conv(|x|, |W|) + |b|)."""
    terms = ref.conv2d_act_forward(np.abs(x), np.abs(W), None if b is None else np.abs(b), *args)
    return np.abs(y_ref) + np.maximum(f_prime(y_ref, act), f_prime(y, act)) * terms


def backward_scales(dz_abs, x, W, args, need_dx=True):
    """Scales of dx and dW: the same sums with every term's magnitude."""
    gws = np.zeros(W.shape, np.float64)
    dxs = ref.conv2d_act_backward(dz_abs.astype(np.float64), np.abs(x).astype(np.float64),
                                  np.abs(W).astype(np.float64), None, gws, None, *args, need_dx=need_dx)
    return dxs, gws


# ---------------------------------------------------------------------------
# Convolution + activation
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("case", SHAPES, ids=lambda c: c[0])
def test_conv2d_act_matches_reference(case, act, dtype, variant):
    args = conv_args(case)
    x, W, b, rng = make(case, dtype)
    tol = TOL[dtype]
    y_ref = ref.conv2d_act_forward(x, W, b, *args, act=act, slope=SLOPE)
    saved = [a.copy() for a in (x, W, b)]
    y = numba_ops.conv2d_act_forward(x, W, b, *args, act=act, slope=SLOPE)
    assert y.dtype == dtype and y.shape == y_ref.shape
    assert np.isfinite(y).all()
    assert_close(y, y_ref, tol, forward_scale(x, W, b, y_ref, y, act, args))

    dy = rng.standard_normal(y.shape).astype(dtype)
    dz_abs = np.abs(ref.activation_backward(dy, y_ref, act, SLOPE))
    dxs, gws = backward_scales(dz_abs, x, W, args)
    gw0, gb0 = rng.standard_normal(W.shape).astype(dtype), rng.standard_normal(b.shape).astype(dtype)
    for acc in (True, False):
        gw_r, gb_r, gw_n, gb_n = gw0.copy(), gb0.copy(), gw0.copy(), gb0.copy()
        dx_r = ref.conv2d_act_backward(dy, x, W, y_ref, gw_r, gb_r, *args, act=act, slope=SLOPE,
                                       acc_w=acc, acc_b=acc)
        ins = [dy, y_ref, x, W]
        before = [a.copy() for a in ins]
        dx_n = numba_ops.conv2d_act_backward(dy, x, W, y_ref, gw_n, gb_n, *args, act=act, slope=SLOPE,
                                             acc_w=acc, acc_b=acc)
        for a, a0 in zip(ins, before):
            assert np.array_equal(a, a0)                       # dy and the inputs are never written
        assert dx_n.dtype == gw_n.dtype == gb_n.dtype == dtype
        assert np.isfinite(dx_n).all() and np.isfinite(gw_n).all() and np.isfinite(gb_n).all()
        old_w, old_b = (np.abs(gw0), np.abs(gb0)) if acc else (0, 0)
        assert_close(dx_n, dx_r, tol, dxs)
        assert_close(gw_n, gw_r, tol, old_w + gws)
        assert_close(gb_n, gb_r, tol, old_b + dz_abs.sum(axis=(0, 2, 3)))
    for a, a0 in zip((x, W, b), saved):
        assert np.array_equal(a, a0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", SHAPES, ids=lambda c: c[0])
def test_conv2d_without_bias_or_dx(case, dtype, variant):
    """b = None (gb None) and need_dx=False: the weight gradient alone, as the reference."""
    args = conv_args(case)
    x, W, _, rng = make(case, dtype, seed=1)
    tol = TOL[dtype]
    y_ref = ref.conv2d_act_forward(x, W, None, *args, act="relu")
    y = numba_ops.conv2d_act_forward(x, W, None, *args, act="relu")
    assert_close(y, y_ref, tol, forward_scale(x, W, None, y_ref, y, "relu", args))
    dy = rng.standard_normal(y.shape).astype(dtype)
    gw_r, gw_n = np.zeros_like(W), np.full_like(W, np.nan)          # overwritten, NaN never read
    ref.conv2d_act_backward(dy, x, W, y_ref, gw_r, None, *args, act="relu", need_dx=False, acc_w=False)
    out = numba_ops.conv2d_act_backward(dy, x, W, y_ref, gw_n, None, *args, act="relu", need_dx=False,
                                        acc_w=False)
    assert out is None
    dz_abs = np.abs(ref.activation_backward(dy, y_ref, "relu"))
    _, gws = backward_scales(dz_abs, x, W, args, need_dx=False)
    assert np.isfinite(gw_n).all()
    assert_close(gw_n, gw_r, tol, gws)
    # identity: y may be None
    gw_i = np.zeros_like(W)
    ref.conv2d_act_backward(dy, x, W, None, gw_r, None, *args, need_dx=False, acc_w=False)
    numba_ops.conv2d_act_backward(dy, x, W, None, gw_i, None, *args, need_dx=False, acc_w=False)
    _, gws = backward_scales(np.abs(dy), x, W, args, need_dx=False)
    assert_close(gw_i, gw_r, tol, gws)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_conv2d_noncontiguous_inputs(dtype, variant):
    case = SHAPES[2]
    args = conv_args(case)
    x, W, b, rng = make(case, dtype)
    y_ref = ref.conv2d_act_forward(x, W, b, *args, act="tanh")
    xt = np.asfortranarray(x)
    y = numba_ops.conv2d_act_forward(xt, W[..., ::-1][..., ::-1], b, *args, act="tanh")
    assert_close(y, y_ref, TOL[dtype], forward_scale(x, W, b, y_ref, y, "tanh", args))
    dy = np.asfortranarray(rng.standard_normal(y.shape).astype(dtype))
    gw_r, gb_r, gw_n, gb_n = (np.zeros_like(a) for a in (W, b, W, b))
    dx_r = ref.conv2d_act_backward(dy, x, W, y_ref, gw_r, gb_r, *args, act="tanh")
    dx_n = numba_ops.conv2d_act_backward(dy, xt, W, np.asfortranarray(y_ref), gw_n, gb_n, *args, act="tanh")
    dz_abs = np.abs(ref.activation_backward(dy, y_ref, "tanh"))
    dxs, gws = backward_scales(dz_abs, x, W, args)
    assert_close(dx_n, dx_r, TOL[dtype], dxs)
    assert_close(gw_n, gw_r, TOL[dtype], gws)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", [SHAPES[0], SHAPES[2], SHAPES[5], SHAPES[7]], ids=lambda c: c[0])
def test_conv2d_nan_and_inf_as_reference(case, dtype, variant):
    """NaN and inf in x go where the reference sends them: the same elements of y, dx,
    dW and db are NaN/inf (and the finite ones agree)."""
    args = conv_args(case)
    x, W, b, rng = make(case, dtype, seed=2)
    x[0, 0, 0, 0] = np.nan
    x[-1, -1, -1, 0] = np.inf                 # a border column: read by few taps
    x[-1, 0, x.shape[2] // 2, -1] = -np.inf
    for act in ("relu", "identity", "tanh"):
        y_ref = ref.conv2d_act_forward(x, W, b, *args, act=act, slope=SLOPE)
        y = numba_ops.conv2d_act_forward(x, W, b, *args, act=act, slope=SLOPE)
        assert np.array_equal(np.isnan(y), np.isnan(y_ref))
        assert np.array_equal(np.isposinf(y), np.isposinf(y_ref))
        assert np.array_equal(np.isneginf(y), np.isneginf(y_ref))
        dy = rng.standard_normal(y.shape).astype(dtype)
        outs = []
        for ops in (ref, numba_ops):
            gw, gb = np.zeros_like(W), np.zeros_like(b)
            dx = ops.conv2d_act_backward(dy, x, W, y_ref, gw, gb, *args, act=act, slope=SLOPE)
            outs.append((dx, gw, gb))
        for r, n in zip(*outs):
            assert np.array_equal(np.isnan(n), np.isnan(r))
            assert np.array_equal(np.isinf(n), np.isinf(r))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_an_empty_batch(dtype, variant):
    """N = 0: empty outputs, zero gradients (added to, or written into, gW and gb)."""
    for case in (SHAPES[0], SHAPES[1], SHAPES[2]):
        args = conv_args(case)
        x, W, b, _ = make(case, dtype)
        x = x[:0]
        y = numba_ops.conv2d_act_forward(x, W, b, *args, act="relu")
        assert y.shape[0] == 0 and y.shape[1:] == ref.conv2d_act_forward(x, W, b, *args).shape[1:]
        for acc in (True, False):
            gw, gb = np.ones_like(W), np.ones_like(b)
            dx = numba_ops.conv2d_act_backward(y, x, W, y, gw, gb, *args, act="relu", acc_w=acc, acc_b=acc)
            assert dx.shape == x.shape
            assert np.array_equal(gw, np.full_like(W, 1.0 if acc else 0.0))
            assert np.array_equal(gb, np.full_like(b, 1.0 if acc else 0.0))
        p, i = numba_ops.conv2d_act_pool_forward(x, W, b, *args, "relu", 0.0, *POOLS[0][1:])
        assert p.shape[0] == 0 and i.shape[0] == 0
    p, i = numba_ops.max_pool2d_forward(np.ones((0, 2, 4, 4), dtype), *POOLS[0][1:])
    assert p.shape == (0, 2, 2, 2)
    assert numba_ops.max_pool2d_backward(p, i, (0, 2, 4, 4)).shape == (0, 2, 4, 4)


def test_conv2d_rejects_bad_arguments():
    x, W = np.ones((1, 4, 5, 5), np.float32), np.ones((2, 2, 3, 3), np.float32)
    with pytest.raises(TypeError, match="one dtype"):
        numba_ops.conv2d_act_forward(x, W.astype(np.float64), None, (1, 1), ((0, 0), (0, 0)), (1, 1), 2)
    with pytest.raises(ValueError, match="groups"):
        numba_ops.conv2d_act_forward(x, W, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    with pytest.raises(ValueError, match="smaller than"):
        numba_ops.conv2d_act_forward(x, np.ones((2, 2, 7, 7), np.float32), None, (1, 1), ((0, 0), (0, 0)),
                                     (1, 1), 2)
    y = numba_ops.conv2d_act_forward(x, W, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 2)
    with pytest.raises(ValueError, match="dy has shape"):
        numba_ops.conv2d_act_backward(y[:, :1], x, W, y, np.zeros_like(W), None, (1, 1), ((0, 0), (0, 0)),
                                      (1, 1), 2)


# ---------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------
#: (x shape, kernel, stride, padding, dilation, ceil_mode)
POOLS = [
    ((3, 6, 28, 28), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((2, 3, 9, 10), (3, 2), (2, 1), (1, 1), (1, 2), True),
    ((2, 2, 7, 7), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((1, 2, 8, 9), (3, 3), (1, 1), (1, 0), (1, 1), False),            # overlapping windows
    ((2, 1, 11, 6), (2, 3), (3, 2), (0, 1), (2, 1), False),
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1), False),
    ((1, 2, 5, 5), (5, 5), (1, 1), (2, 2), (1, 1), True),
    ((1, 1, 4, 4), (2, 2), (3, 3), (1, 1), (2, 2), True),             # a window of padding only
    ((2, 3, 7, 9), (2, 2), (2, 2), (0, 0), (1, 1), True),             # 2x2 over odd sizes
    ((2, 3, 7, 9), (2, 2), (2, 2), (0, 0), (1, 1), False),
]


def pool_input(shape, dtype, rng, special=True):
    x = rng.standard_normal(shape)
    if special:
        x = np.round(x, 1)                             # ties
        flat = x.reshape(-1)
        k = flat.size
        flat[rng.integers(0, k, max(1, k // 50))] = np.nan
        flat[rng.integers(0, k, max(1, k // 50))] = -np.inf
        flat[rng.integers(0, k, max(1, k // 50))] = np.inf
        if shape[2] >= 4 and shape[3] >= 4:
            x[0, 0, :4, :4] = -np.inf                  # a window of -inf only
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("special", [False, True], ids=["plain", "nan-inf-ties"])
@pytest.mark.parametrize("pool", POOLS, ids=lambda p: "x".join(map(str, p[0])) + f"-k{p[1][0]}{p[1][1]}")
def test_max_pool2d_matches_reference(pool, special, dtype):
    shape, *params = pool
    rng = np.random.default_rng(3)
    x = pool_input(shape, dtype, rng, special)
    x0 = x.copy()
    y_r, i_r = ref.max_pool2d_forward(x, *params)
    y, i = numba_ops.max_pool2d_forward(x, *params)
    assert np.array_equal(x, x0, equal_nan=True)
    assert y.dtype == dtype and i.dtype == np.int64
    assert np.array_equal(y, y_r, equal_nan=True)          # a maximum is exact
    assert np.array_equal(i, i_r)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dy0, i0 = dy.copy(), i.copy()
    dx_r = ref.max_pool2d_backward(dy, i_r, x.shape)
    dx = numba_ops.max_pool2d_backward(dy, i, x.shape)
    assert np.array_equal(dy, dy0) and np.array_equal(i, i0)
    assert dx.dtype == dtype and np.isfinite(dx).all()
    assert_close(dx, dx_r, TOL[dtype], ref.max_pool2d_backward(np.abs(dy), i_r, x.shape))


# ---------------------------------------------------------------------------
# Fused convolution + activation + max pooling
# ---------------------------------------------------------------------------
FUSED = [(SHAPES[0], POOLS[0][1:]), (SHAPES[1], POOLS[0][1:]), (SHAPES[2], POOLS[1][1:]),
         (SHAPES[6], POOLS[3][1:]), (SHAPES[4], POOLS[7][1:]), (SHAPES[10], POOLS[5][1:])]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("case,pool", FUSED, ids=lambda c: c[0] if isinstance(c[0], str) else "")
def test_conv2d_act_pool_matches_reference(case, pool, act, dtype, variant):
    """conv2d_act_pool_forward/backward = max_pool2d(conv2d_act(...)) and its backward."""
    args = conv_args(case)
    x, W, b, rng = make(case, dtype, seed=4)
    tol = TOL[dtype]
    y_ref = ref.conv2d_act_forward(x, W, b, *args, act=act, slope=SLOPE)
    p_ref, i_ref = ref.max_pool2d_forward(y_ref, *pool)
    p, i = numba_ops.conv2d_act_pool_forward(x, W, b, *args, act, SLOPE, *pool)
    assert np.array_equal(i, i_ref)
    inf = np.isinf(p_ref)                              # a pooling window of padding only: -inf
    assert np.array_equal(p[inf], p_ref[inf])
    p, p_ref = np.where(inf, 0, p), np.where(inf, 0, p_ref)
    y_scale = forward_scale(x, W, b, y_ref, y_ref, act, args)
    p_scale = np.take_along_axis(y_scale.reshape(y_scale.shape[:2] + (-1,)),
                                 i_ref.reshape(i_ref.shape[:2] + (-1,)).clip(0, y_scale[0, 0].size - 1),
                                 axis=-1).reshape(p.shape)
    assert_close(p, p_ref, tol, p_scale)
    p, _ = numba_ops.conv2d_act_pool_forward(x, W, b, *args, act, SLOPE, *pool)
    # and bit for bit what the unfused kernels give
    y = numba_ops.conv2d_act_forward(x, W, b, *args, act=act, slope=SLOPE)
    p2, i2 = numba_ops.max_pool2d_forward(y, *pool)
    assert np.array_equal(p, p2) and np.array_equal(i, i2)

    # backward: the reference is given this y (as in test_conv2d_act_matches_reference, both
    # sides see one y: f'(y) near saturation would otherwise magnify y's last-bit rounding)
    dp = rng.standard_normal(p.shape).astype(dtype)
    y_ref = y
    dy_ref = ref.max_pool2d_backward(dp, i_ref, y_ref.shape)
    dz_abs = np.abs(ref.activation_backward(dy_ref, y_ref, act, SLOPE))
    dxs, gws = backward_scales(dz_abs, x, W, args)
    for acc in (True, False):
        gw0, gb0 = rng.standard_normal(W.shape).astype(dtype), rng.standard_normal(b.shape).astype(dtype)
        gw_r, gb_r, gw_n, gb_n = gw0.copy(), gb0.copy(), gw0.copy(), gb0.copy()
        dx_r = ref.conv2d_act_backward(dy_ref, x, W, y_ref, gw_r, gb_r, *args, act=act, slope=SLOPE,
                                       acc_w=acc, acc_b=acc)
        ins = [dp, i, p, x, W]
        before = [a.copy() for a in ins]
        dx_n = numba_ops.conv2d_act_pool_backward(dp, i, p, x, W, gw_n, gb_n, *args, act, SLOPE, *pool,
                                                  acc_w=acc, acc_b=acc)
        for a, a0 in zip(ins, before):
            assert np.array_equal(a, a0)
        old_w, old_b = (np.abs(gw0), np.abs(gb0)) if acc else (0, 0)
        assert_close(dx_n, dx_r, tol, dxs)
        assert_close(gw_n, gw_r, tol, old_w + gws)
        assert_close(gb_n, gb_r, tol, old_b + dz_abs.sum(axis=(0, 2, 3)))
    gw_n = np.zeros_like(W)                             # the last round overwrote: gw_r is dW
    assert numba_ops.conv2d_act_pool_backward(dp, i, p, x, W, gw_n, None, *args, act, SLOPE, *pool,
                                              need_dx=False) is None
    assert_close(gw_n, gw_r, tol, gws)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case,pool", FUSED, ids=lambda c: c[0] if isinstance(c[0], str) else "")
def test_cols_kept_from_forward_give_the_same_bits(case, pool, dtype, monkeypatch):
    """A forward pass that fills a kept im2col buffer, and a backward pass that uses it
    instead of its own im2col, give bit for bit what the calls without it give; the buffer
    is checked, and refused where the direct loops run."""
    monkeypatch.setattr(conv, "_FORCE", "gemm")
    args = conv_args(case)
    x, W, b, rng = make(case, dtype, seed=6)
    shape = numba_ops.kept_cols_shape(x.shape, W.shape, *args)
    y_ref = ref.conv2d_act_forward(x, W, b, *args)
    assert shape == (x.shape[0], args[-1], W[0].size, y_ref.shape[2] * y_ref.shape[3])   # (N, G, C/G*KH*KW, L)
    for pooled in (False, True):
        cols = np.full(shape, np.nan, dtype)           # NaN: any entry the forward does not write shows
        if pooled:
            y, i = numba_ops.conv2d_act_pool_forward(x, W, b, *args, "relu", 0.0, *pool)
            y2, i2 = numba_ops.conv2d_act_pool_forward(x, W, b, *args, "relu", 0.0, *pool, cols=cols)
            assert np.array_equal(i, i2)
        else:
            y = numba_ops.conv2d_act_forward(x, W, b, *args, act="relu")
            y2 = numba_ops.conv2d_act_forward(x, W, b, *args, act="relu", cols=cols)
        assert np.array_equal(y, y2) and np.isfinite(cols).all()
        dy = rng.standard_normal(y.shape).astype(dtype)
        for need_dx in (True, False):
            out = []
            for kept in (None, cols.copy()):
                gw, gb = np.zeros_like(W), np.zeros_like(b)
                if pooled:
                    dx = numba_ops.conv2d_act_pool_backward(dy, i, y, x, W, gw, gb, *args, "relu", 0.0, *pool,
                                                            need_dx=need_dx, cols=kept)
                else:
                    dx = numba_ops.conv2d_act_backward(dy, x, W, y, gw, gb, *args, act="relu", need_dx=need_dx,
                                                       cols=kept)
                out.append((dx, gw, gb))
            (dx0, gw0, gb0), (dx1, gw1, gb1) = out
            assert np.array_equal(gw0, gw1) and np.array_equal(gb0, gb1)
            assert (dx0 is None and dx1 is None) if not need_dx else np.array_equal(dx0, dx1)
    with pytest.raises(ValueError, match="cols must be"):
        numba_ops.conv2d_act_forward(x, W, b, *args, act="relu", cols=np.empty(shape[:3] + (shape[3] + 1,), dtype))
    monkeypatch.setattr(conv, "_FORCE", "direct")
    if args[0] == (1, 1):                              # the direct loops run: nothing to keep
        assert numba_ops.kept_cols_shape(x.shape, W.shape, *args) is None
        y = numba_ops.conv2d_act_forward(x, W, b, *args, act="relu")
        with pytest.raises(ValueError, match="does not keep them"):
            numba_ops.conv2d_act_backward(y, x, W, y, np.zeros_like(W), None, *args, act="relu",
                                          cols=np.empty(shape, dtype))


# ---------------------------------------------------------------------------
# The same numbers for any number of threads
# ---------------------------------------------------------------------------
def run_all(dtype, variants=VARIANTS):
    """Every kernel on a few shapes (each algorithm of ``variants``; (None, None): the
    one the kernels choose): the list of every output array."""
    outs = []
    rng = np.random.default_rng(5)
    for case in (SHAPES[0], SHAPES[1], SHAPES[2], SHAPES[7]):
        args = conv_args(case)
        xs = (17,) + case[1][1:]                       # a batch that is no multiple of the chunk
        x = rng.standard_normal(xs).astype(dtype)
        W = rng.standard_normal((case[2], xs[1] // case[-1]) + case[3]).astype(dtype)
        b = rng.standard_normal(case[2]).astype(dtype)
        for force, dw in variants:
            conv._FORCE, conv._FORCE_DW = force, dw
            try:
                y = numba_ops.conv2d_act_forward(x, W, b, *args, act="relu")
                dy = rng.standard_normal(y.shape).astype(dtype)
                gw, gb = np.zeros_like(W), np.zeros_like(b)
                dx = numba_ops.conv2d_act_backward(dy, x, W, y, gw, gb, *args, act="relu")
                outs += [y, dx, gw, gb]
                p, i = numba_ops.conv2d_act_pool_forward(x, W, b, *args, "relu", 0.0, *POOLS[3][1:])
                gw, gb = np.zeros_like(W), np.zeros_like(b)
                dx = numba_ops.conv2d_act_pool_backward(p, i, p, x, W, gw, gb, *args, "relu", 0.0, *POOLS[3][1:])
                outs += [p, i, dx, gw, gb]
            finally:
                conv._FORCE = conv._FORCE_DW = None
    x = pool_input((17, 3, 9, 10), dtype, rng)
    y, i = numba_ops.max_pool2d_forward(x, *POOLS[3][1:])
    outs += [y, i, numba_ops.max_pool2d_backward(x[:, :, :y.shape[2], :y.shape[3]].copy(), i, x.shape)]
    return outs


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_kernels_give_the_same_numbers_for_any_thread_count(dtype):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba runs with one thread here (NUMBA_NUM_THREADS=1)")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run_all(dtype)
        numba.set_num_threads(2)
        two = run_all(dtype)
    finally:
        numba.set_num_threads(before)
    assert len(one) == len(two)
    for a, b in zip(one, two):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def test_calls_from_several_python_threads_agree():
    """Ops called at once from several Python threads (they then share, or wait for, the
    helper threads) give the numbers of a call made alone."""
    import threading
    chosen = [(None, None)]                    # (no switching of algorithms while threads run)
    alone = run_all(np.float32, chosen)
    results, errors = [None] * 3, []

    def work(k):
        try:
            results[k] = run_all(np.float32, chosen)
        except BaseException as e:             # reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for res in results:
        assert len(res) == len(alone)
        for a, b in zip(res, alone):
            assert np.array_equal(a, b, equal_nan=True)


def assert_each_item_runs_once(n):
    hits = np.zeros(n, np.int64)

    def mark(i0, i1):
        hits[i0:i1] += 1
    conv._parallel(mark, n)
    assert (hits == 1).all(), (n, hits)


@pytest.mark.parametrize("spins", [0, 2000], ids=["blocking-only", "spin-first"])
def test_helper_threads_run_every_item_once_and_pass_errors_on(spins, monkeypatch):
    """The hand-over to the helper threads (a wait on a shared job number without the
    GIL, then on a condition variable; or the condition variable alone): over many calls of every size, each item runs exactly
    once, and an exception raised in a helper's range reaches the caller, after which
    the helpers still work."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba runs with one thread here (NUMBA_NUM_THREADS=1)")
    monkeypatch.setattr(conv, "_SPINS", spins)
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        for n in list(range(1, 9)) + [64] * 200:
            assert_each_item_runs_once(n)

        def fail_late(i0, i1):
            if i0 > 0:                        # the helper's range, not the caller's
                raise ValueError(f"items {i0}-{i1}")
        with pytest.raises(ValueError, match="items 32-64"):
            conv._parallel(fail_late, 64)
        assert_each_item_runs_once(64)
    finally:
        numba.set_num_threads(before)


def test_an_interrupted_wait_for_a_helper_keeps_the_threads_in_step(monkeypatch):
    """Ctrl-C while the caller waits for a helper (simulated: the wait raises
    KeyboardInterrupt once): the caller still waits for the helper's range to be done,
    the KeyboardInterrupt goes on, and the next calls work and run every item once."""
    import time
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba runs with one thread here (NUMBA_NUM_THREADS=1)")
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        conv._parallel(lambda i0, i1: None, 2)                 # the helper exists
        worker = conv._workers["list"][0]
        real_wait = type(worker)._wait
        calls = {"n": 0}

        def wait_once_interrupted(self, flag, value):
            calls["n"] += 1
            if calls["n"] == 1 and flag is self._done_seq:
                raise KeyboardInterrupt
            return real_wait(self, flag, value)
        monkeypatch.setattr(type(worker), "_wait", wait_once_interrupted)
        done = np.zeros(64)

        def slow_helper(i0, i1):
            if i0 > 0:
                time.sleep(0.05)                # the helper is still busy when the caller is interrupted
            done[i0:i1] = 1
        with pytest.raises(KeyboardInterrupt):
            conv._parallel(slow_helper, 64)
        assert (done == 1).all()                # the helper's range finished before the interrupt went on
        monkeypatch.setattr(type(worker), "_wait", real_wait)
        for _ in range(20):
            assert_each_item_runs_once(64)
    finally:
        numba.set_num_threads(before)


def test_an_error_in_one_of_several_helpers_waits_for_all(tmp_path):
    """With 3 threads (a subprocess with NUMBA_NUM_THREADS=3), an exception in the first
    helper's range reaches the caller only after the second helper has finished, and the
    next call runs every item."""
    import subprocess
    import sys
    code = (
        "import time, numpy as np\n"
        "from nnumpy.backend import numba_conv as NC\n"
        "done = np.zeros(3)\n"
        "def bad(i0, i1):\n"
        "    if i0 == 1: raise ValueError('helper 0 fails')\n"
        "    if i0 == 2: time.sleep(0.2)\n"
        "    done[i0:i1] = 1\n"
        "try:\n"
        "    NC._parallel(bad, 3)\n"
        "except ValueError as e:\n"
        "    print('raised', e, done.tolist())\n"
        "items = np.zeros(3)\n"
        "def good(i0, i1):\n"
        "    time.sleep(0.1 if i0 == 2 else 0); items[i0:i1] += 1\n"
        "for _ in range(3):\n"
        "    NC._parallel(good, 3)\n"
        "print('items', items.tolist())\n")
    env = dict(os.environ, NUMBA_NUM_THREADS="3")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "raised helper 0 fails [1.0, 0.0, 1.0]" in r.stdout, r.stdout
    assert "items [3.0, 3.0, 3.0]" in r.stdout, r.stdout


def test_kernels_refuse_arguments_that_disagree_before_indexing_with_them():
    """The numba wrappers check every shape and hyper-parameter they index with (a wrong
    one used to read or write past an array: garbage, or a corrupted heap), with a
    ValueError that names it."""
    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((3, 6, 8, 8)), rng.standard_normal((4, 6, 3, 3)), rng.standard_normal(4)
    S, P, D = (1, 1), ((1, 1), (1, 1)), (1, 1)
    pool = ((2, 2), (2, 2), (0, 0), (1, 1), False)
    y = numba_ops.conv2d_act_forward(x, W, b, S, P, D, 1, act="relu")
    p, i = numba_ops.conv2d_act_pool_forward(x, W, b, S, P, D, 1, "relu", 0.0, *pool)
    yp, ip = numba_ops.max_pool2d_forward(x, *pool)
    gW, gb = np.zeros_like(W), np.zeros_like(b)
    bad = {
        "the bias has shape": lambda: numba_ops.conv2d_act_forward(x, W, b[:2], S, P, D, 1),
        "stride must be at least 1": lambda: numba_ops.conv2d_act_forward(x, W, b, (0, 1), P, D, 1),
        "dilation must be at least 1": lambda: numba_ops.conv2d_act_forward(x, W, b, S, P, (0, 1), 1),
        "padding must be": lambda: numba_ops.conv2d_act_forward(x, W, b, S, ((-1, 0), (0, 0)), D, 1),
        "stride must be an integer or 2 integers": lambda: numba_ops.conv2d_act_forward(x, W, b, "2", P, D, 1),
        "gW has shape": lambda: numba_ops.conv2d_act_backward(y, x, W, y, np.zeros(10), gb, S, P, D, 1, "relu"),
        "gb has shape": lambda: numba_ops.conv2d_act_backward(y, x, W, y, gW, np.zeros(3), S, P, D, 1, "relu"),
        "y has shape": lambda: numba_ops.conv2d_act_backward(y, x, W, y[:, :, :4], gW, gb, S, P, D, 1, "relu"),
        "output y is needed": lambda: numba_ops.conv2d_act_backward(y, x, W, None, gW, gb, S, P, D, 1, "relu"),
        "dp has shape": lambda: numba_ops.conv2d_act_pool_backward(p[:, :, :3], i, p, x, W, gW, gb, S, P, D, 1,
                                                                   "relu", 0.0, *pool),
        "indices has shape": lambda: numba_ops.conv2d_act_pool_backward(p, i[:2], p, x, W, gW, gb, S, P, D, 1,
                                                                         "relu", 0.0, *pool),
        "kernel_size must be at least 1": lambda: numba_ops.max_pool2d_forward(x, (0, 0), (2, 2), (0, 0), (1, 1),
                                                                               False),
        "at most half of the kernel": lambda: numba_ops.max_pool2d_forward(x, (2, 2), (2, 2), (2, 2), (1, 1),
                                                                           False),
        "too small": lambda: numba_ops.max_pool2d_forward(x, (9, 9), (1, 1), (0, 0), (1, 1), False),
        "matching the input": lambda: numba_ops.max_pool2d_backward(yp, ip, (2, 6, 8, 8)),
        "must have one shape": lambda: numba_ops.max_pool2d_backward(yp, ip[:, :3], (3, 6, 8, 8)),
        "writable": lambda: numba_ops.conv2d_act_forward(
            x, W, b, S, P, D, 1, cols=np.broadcast_to(np.zeros(1), (3, 1, 54, 64))),
    }
    for message, call in bad.items():
        with pytest.raises(ValueError, match=message):
            call()
