"""Kernels for 2-d convolution and max pooling on the numba backend.

Each public function has the signature and the meaning of its namesake in
:mod:`nnumpy.backend.numpy_ops` (the mathematics; shapes: x (N, C, H, W),
W (O, C/groups, KH, KW), y (N, O, Ho, Wo)); two more fuse a max-pool into the
convolution before it:

* ``conv2d_act_pool_forward(x, W, b, stride, padding, dilation, groups, act,
  slope, kernel_size, pool_stride, pool_padding, pool_dilation, ceil_mode)``
  -> (p, indices) = max_pool2d_forward(conv2d_act_forward(x, ...), ...), the
  activation's output never stored;
* ``conv2d_act_pool_backward(dp, indices, p, x, W, gW, gb, stride, padding,
  dilation, groups, act, slope, kernel_size, pool_stride, pool_padding,
  pool_dilation, ceil_mode, need_dx=True, acc_w=True, acc_b=True)`` -> dx:
  dz is built straight from the pooled gradient (dz[arg-max] += dp * f'(p):
  the activation's output at an arg-max is the pooled output), then as
  conv2d_act_backward.

Two algorithms, chosen per shape by measurement (below):

* direct loops, stride 1 (any padding, dilation, groups), for few input
  channels per output (C/groups * KH * KW <= 32 forward): each input plane is
  zero-padded to (Hp, Wp) and flattened; output (ho, wo) is computed at flat
  position ho * Wp + wo (the Wp - Wo positions past each row are computed and
  dropped), so every kernel tap is one contiguous multiply-add over the plane,
  and four taps for two output channels go in one pass;
* im2col + GEMM: cols (N, G, C/G*KH*KW, Ho*Wo) one sample at a time, then one
  batched np.matmul per call whose output has y's NCHW layout (no transpose
  pass); bias and activation (and the max-pool) in one pass over it.
  Backward: dz = dy * f'(y) and the bias gradient in one pass over dy,
  dW = sum_n dz[n] @ cols[n].T (per-sample GEMMs summed in order), dcols =
  W.T @ dz, col2im.  A caller can keep cols from the forward pass for the
  backward (``cols=``, see :func:`kept_cols_shape`; ``Sequential`` does);

and, after a max-pool, for a first layer (no dx) whose forward ran the direct
loops, dW from the arg-maxima alone (:func:`_pooled_dw`): a quarter of the
products of the GEMM for a 2x2 pool, and neither dz nor im2col is formed.

Numbers agree with the reference to rounding (the tests hold every element to
1e-12 / 1e-5 of the sum of its terms' magnitudes); maxima and arg-maxima are
exact, ties and NaN as PyTorch.  The direct backward reads products past each
row that are then dropped, so it runs only where x (and W, for dx) are finite;
other inputs take the GEMM path, whose inf/NaN behaviour is the reference's.

Threads: each call cuts its batch into fixed chunks of samples handed to
``numba.get_num_threads()`` threads (the caller and a small pool of Python
threads; every kernel releases the GIL, and so does NumPy's matmul).  A sum
over samples (dW, db) adds the chunks' parts in chunk order, so 1 and 2
threads give the same bits.  No fastmath; ``cache=True`` everywhere; the
kernels compile per dtype.

Measured on the 2-core test machine (busy: other jobs ran; ms per call, CPU
time of one thread unless noted, LeNet-5 shapes, batch 64, float32):

* conv1 (1 -> 6, 5x5, padding 2, 28x28) + ReLU + 2x2 pool, forward: first
  direct version (per-tap loops over output rows, bounds in the loops) 4.35;
  flat padded plane, one tap per pass 0.52 (the act + pool pass then took
  0.36 of it: one loop per activation and a compare-and-select 2x2 pool made
  it 0.12); four taps x two channels per pass 0.33, against im2col + GEMM
  0.54 (BLAS with M = 6, K = 25 is a poor fit).  Direct wins.
* conv1 backward (dW only): im2col + per-sample GEMMs 1.00; direct with dW
  summed in lanes 1.11-1.27, as a correlation 1.39-1.43.  (Dot products do
  not vectorise without fastmath: 2-4 G products/s, against 20-85 for the
  multiply-add passes, hence the two lane-shaped formulations.)  GEMM wins.
* conv2 (6 -> 16, 5x5, 14x14) + ReLU + pool, forward: GEMM 0.67, direct
  0.70-0.87; backward: GEMM 1.34-1.42, direct 2.9 (correlation) / 5.9
  (lanes).  GEMM wins.
* one GEMM over the whole batch (cols (G, CK, N*L)) against per-sample
  batched GEMMs: 0.32 / 0.34 forward, 0.37 / 0.39 dW, 0.30 / 0.33 dcols,
  single-threaded BLAS.  Per sample was kept: it writes NCHW directly and
  splits across threads.
* Fusing the pool (2 threads, OpenBLAS single-threaded, wall time per call):
  conv1 + ReLU + pool forward 0.22 against 0.18 + 0.12 unfused, backward
  0.57 against 0.52 + 0.10; conv2 forward 0.42 against 0.39 + 0.10, backward
  0.82 against 0.81 + 0.10: 0.29 ms of a 2.6 ms LeNet-5 step (a whole epoch
  of kernel calls: 2.45 s fused, 2.76 s unfused).
* Later (2026-11-30, quiet machine): keeping cols from forward to backward
  saved the backward's im2col (0.23 ms a call at conv2, one thread), and the
  arg-max dW took conv1's backward from 0.49 to 0.38 ms a call (2 threads);
  a LeNet-5 step went from 2.70 to about 2.25 ms (separate processes,
  alternating).  Tried and not kept: the arg-max dW at conv2 (16 x 6
  channels, 25 arg-maxima a plane: short passes, 1.44 ms against the GEMM's
  0.41, one thread); cols as (L, CK) rows for it (the row-wise im2col and
  the short multiply-adds took 1.4 and 1.3 ms); im2col + GEMM in groups of
  2-8 samples (no change); GEMMs inside Numba (np.dot reaches SciPy's
  OpenBLAS 0.3.30, 8.4 us a (16, 150) @ (150, 100) product against 5.9 us
  through NumPy's 0.3.31); a split of the batch that gives the calling
  thread more samples while the helper wakes up (no change beyond noise).
* Threads: Numba's own parallel loops (OpenMP) were tried first and dropped:
  next to OpenBLAS's threads (which spin after every GEMM) a LeNet-5 step took
  38-650 ms instead of 2.6-5; with this module's pool of Python threads, 2
  threads give 1.3-1.8x per call (OpenBLAS single-threaded); waiting for a
  hand-over first in a loop that yields the core (see _Worker) took the
  overhead of a call from ~40 to ~7 us and a LeNet-5 step from 2.12 to 2.01 ms
  (medians of alternating fresh processes, 2.06-2.16 against 1.98-2.03 in
  the last 7 pairs).  OpenBLAS's own
  threads still compete with these (and with any other threads) whenever a
  large GEMM elsewhere, such as a Linear layer's, wakes them.
"""
from __future__ import annotations

import math
import os
import threading

import numba
import numpy as np
from numba import njit

from .numpy_ops import ACTIVATION_CODES

__all__ = ["conv2d_act_forward", "conv2d_act_backward", "max_pool2d_forward", "max_pool2d_backward",
           "conv2d_act_pool_forward", "conv2d_act_pool_backward", "kept_cols_shape", "warm_up"]

_IDENTITY, _RELU, _LEAKY, _SIGMOID, _TANH = (ACTIVATION_CODES[k] for k in
                                             ("identity", "relu", "leaky_relu", "sigmoid", "tanh"))

#: Samples per chunk of a batch reduction (dW, db in the direct kernels): fixed, so the
#: order of every sum is the same for any number of threads.
_CHUNK = 8
#: The direct (Numba loop) forward is used when C/groups * KH * KW is at most this (and
#: the stride is 1); above it, im2col + BLAS GEMMs.  Measured, see the module docstring.
_DIRECT_MAX_CK = 32
#: The direct backward is used when (O/groups) * C/groups * KH * KW is at most this (the
#: per-sample GEMMs of the other way are then too small for BLAS to pay).
_DIRECT_MAX_OGCK_BACKWARD = 64
#: Tests set this to "direct" or "gemm" to run one variant on every shape, and
#: _FORCE_DW to "lanes" or "transposed" (the direct backward's two ways to dW), or to
#: "pooled" / "dense" (dW after a max-pool from the arg-maxima, see _pooled_dw, or by the GEMM).
_FORCE = None
_FORCE_DW = None


# ---------------------------------------------------------------------------
# Activations, element by element, in the arrays' dtype
# ---------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _act(v, code, slope, zero, one):
    """act(v) for the activation code; v, slope, zero, one in the same dtype."""
    if code == _RELU:
        return zero if v <= zero else v          # NaN stays NaN (PyTorch)
    if code == _LEAKY:
        return v if v > zero else v * slope
    if code == _SIGMOID:
        e = np.exp(-abs(v))
        return (one if v >= zero else e) / (one + e)
    if code == _TANH:
        return np.tanh(v)
    return v


@njit(cache=True, inline="always")
def _dact(d, y, code, slope, zero, one):
    """d * f'(z), f' written through the output y = f(z) (as numpy_ops.activation_backward)."""
    if code == _RELU:
        return zero if y <= zero else d           # a NaN output passes d on
    if code == _LEAKY:
        return d if y > zero else d * slope
    if code == _SIGMOID:
        return d * y * (one - y)
    if code == _TANH:
        return d * ((one - y) * (one + y))
    return d


@njit(cache=True)
def _bias_act_inplace(a, n, bo, code, slope):
    """a[:n] = act(a[:n] + bo) in place, one loop per activation, so that the
    piecewise-linear ones vectorise.  (In place on purpose: with a separate source
    array that may overlap, LLVM kept the scalar loop; measured 10x slower.)"""
    zero, one = a.dtype.type(0), a.dtype.type(1)
    if code == _RELU:
        for i in range(n):
            v = a[i] + bo
            a[i] = zero if v <= zero else v
    elif code == _IDENTITY:
        for i in range(n):
            a[i] += bo
    elif code == _LEAKY:
        for i in range(n):
            v = a[i] + bo
            a[i] = v if v > zero else v * slope
    else:
        for i in range(n):
            a[i] = _act(a[i] + bo, code, slope, zero, one)


# ---------------------------------------------------------------------------
# Small building blocks on flat (1-d, contiguous) arrays: loops from 0 over
# slices, which LLVM vectorises
# ---------------------------------------------------------------------------
@njit(cache=True)
def _fill(a, v):
    for i in range(a.size):
        a[i] = v


@njit(cache=True)
def _axpy(y, a, w, n):
    """y[:n] += w * a[:n]."""
    for i in range(n):
        y[i] += w * a[i]


@njit(cache=True)
def _vfma(y, a, b, n):
    """y[:n] += a[:n] * b[:n]."""
    for i in range(n):
        y[i] += a[i] * b[i]


@njit(cache=True)
def _fold_sum(a, n):
    """Sum of a[:n], in a fixed tree order (a is overwritten): halves added
    element by element (vectorised) down to 8 elements, then in sequence."""
    while n > 8:
        h = n // 2
        m = n - h                   # a[:m] += a[m:n]  (m >= h)
        for i in range(h):
            a[i] += a[m + i]
        n = m
    s = a[0]
    for i in range(1, n):
        s += a[i]
    return s


@njit(cache=True)
def _pad_plane(src, dst, pt, pl, Wp):
    """dst (flat, Hp*Wp, zeros outside) <- src (H, W) placed at row pt, column pl."""
    H, W = src.shape
    zero = dst.dtype.type(0)
    _fill(dst, zero)
    for h in range(H):
        row = dst[(h + pt) * Wp + pl:]
        s = src[h]
        for w in range(W):
            row[w] = s[w]


# ---------------------------------------------------------------------------
# Max pooling of one plane (shared by max_pool2d and the fused conv + pool)
# ---------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _pool_plane(src, pitch, H, W, out, idx, kh, kw, sh, sw, ph, pw, dh, dw):
    """out, idx (Ho, Wo): max over each window of the plane src[h * pitch + w]
    (h < H, w < W; padding is -inf) and its flat index h * W + w.  First maximum
    wins; a NaN is taken and the last NaN kept (PyTorch's rule)."""
    Ho, Wo = out.shape
    ninf = src.dtype.type(-np.inf)
    for ho in range(Ho):
        h0 = ho * sh - ph
        hlo = h0
        while hlo < 0:
            hlo += dh
        hend = min(h0 + (kh - 1) * dh + 1, H)
        for wo in range(Wo):
            w0 = wo * sw - pw
            wlo = w0
            while wlo < 0:
                wlo += dw
            wend = min(w0 + (kw - 1) * dw + 1, W)
            best = ninf
            bi = hlo * W + wlo
            for h in range(hlo, hend, dh):
                for w in range(wlo, wend, dw):
                    v = src[h * pitch + w]
                    if v > best or v != v:
                        best = v
                        bi = h * W + w
            out[ho, wo] = best
            idx[ho, wo] = bi


@njit(cache=True)
def _count_nan(a, n):
    """How many of a[:n] are NaN (an integer sum: it vectorises)."""
    k = 0
    for i in range(n):
        k += a[i] != a[i]
    return k


@njit(cache=True)
def _pool2x2_plane(src, pitch, W, out, idx):
    """The common case kernel 2, stride 2, no padding, dilation 1, for a plane without
    NaN: a strict ``>`` is then the whole rule (first maximum wins), and the loop has
    three compare-and-selects per output instead of unpredictable branches."""
    Ho, Wo = out.shape
    for ho in range(Ho):
        r0 = src[2 * ho * pitch:]
        r1 = src[(2 * ho + 1) * pitch:]
        o = out[ho]
        ix = idx[ho]
        i0 = 2 * ho * W
        for wo in range(Wo):
            a, b, c, d = r0[2 * wo], r0[2 * wo + 1], r1[2 * wo], r1[2 * wo + 1]
            m = a
            k = 0
            if b > m:
                m = b
                k = 1
            if c > m:
                m = c
                k = W
            if d > m:
                m = d
                k = W + 1
            o[wo] = m
            ix[wo] = i0 + 2 * wo + k


@njit(cache=True, inline="always")
def _pool_any(src, pitch, H, W, out, idx, pp):
    """pp = (kh, kw, sh, sw, ph, pw, dh, dw)."""
    kh, kw, sh, sw, ph, pw, dh, dw = pp
    Ho, Wo = out.shape
    if (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0 and dh == 1 and dw == 1
            and 2 * Ho <= H and 2 * Wo <= W and _count_nan(src, (2 * Ho - 1) * pitch + W) == 0):
        _pool2x2_plane(src, pitch, W, out, idx)
    else:
        _pool_plane(src, pitch, H, W, out, idx, kh, kw, sh, sw, ph, pw, dh, dw)


@njit(cache=True, nogil=True)
def _max_pool_forward(x, y, idx, pp, n0, n1):
    """Samples n0 <= n < n1: y, idx (N, C, Ho, Wo) = each window's maximum and its flat index."""
    N, C, H, W = x.shape
    for n in range(n0, n1):
        for c in range(C):
            _pool_any(x[n, c].reshape(H * W), W, H, W, y[n, c], idx[n, c], pp)


@njit(cache=True, nogil=True)
def _max_pool_backward(dy, idx, dx, n0, n1):
    """Samples n0 <= n < n1: dx (N, C, H, W) = 0, then dx[n, c].flat[idx] += dy per plane, in
    output order (an index outside the plane, from a window of padding only, is skipped)."""
    N, C, Ho, Wo = dy.shape
    HW = dx.shape[2] * dx.shape[3]
    zero = dx.dtype.type(0)
    for n in range(n0, n1):
        for c in range(C):
            plane = dx[n, c].reshape(HW)
            _fill(plane, zero)
            d, i = dy[n, c].reshape(Ho * Wo), idx[n, c].reshape(Ho * Wo)
            for k in range(Ho * Wo):
                if 0 <= i[k] < HW:
                    plane[i[k]] += d[k]


# ---------------------------------------------------------------------------
# Direct convolution, stride 1 (any padding, dilation, groups): per sample and
# channel the input plane is zero-padded to (Hp, Wp) and flattened; output
# (ho, wo) is computed at flat position p = ho * Wp + wo for p < P =
# (Ho - 1) * Wp + Wo (the Wp - Wo columns past each row are computed and
# ignored), so every kernel tap (c, kh, kw) is one contiguous axpy
#     acc[p] += W[o, c, kh, kw] * xpad[c, kh*dh*Wp + kw*dw + p]     p < P
# ---------------------------------------------------------------------------
@njit(cache=True)
def _taps4x2(acc0, acc1, xp, offs, w0, w1, t, P):
    """Two output channels, four kernel taps in one pass (so each accumulator is loaded
    and stored once per four products, and each input element loaded once for both):
    acc_k[p] += w_k[t] xp[offs[t] + p] + ... + w_k[t+3] xp[offs[t+3] + p], k = 0, 1,
    added in tap order."""
    a0, a1, a2, a3 = xp[offs[t]:], xp[offs[t + 1]:], xp[offs[t + 2]:], xp[offs[t + 3]:]
    u0, u1, u2, u3 = w0[t], w0[t + 1], w0[t + 2], w0[t + 3]
    v0, v1, v2, v3 = w1[t], w1[t + 1], w1[t + 2], w1[t + 3]
    for p in range(P):
        x0, x1, x2, x3 = a0[p], a1[p], a2[p], a3[p]
        acc0[p] = acc0[p] + u0 * x0 + u1 * x1 + u2 * x2 + u3 * x3
        acc1[p] = acc1[p] + v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3


@njit(cache=True)
def _taps4(acc0, xp, offs, w0, t, P):
    """One output channel, four taps in one pass (see _taps4x2)."""
    a0, a1, a2, a3 = xp[offs[t]:], xp[offs[t + 1]:], xp[offs[t + 2]:], xp[offs[t + 3]:]
    u0, u1, u2, u3 = w0[t], w0[t + 1], w0[t + 2], w0[t + 3]
    for p in range(P):
        acc0[p] = acc0[p] + u0 * a0[p] + u1 * a1[p] + u2 * a2[p] + u3 * a3[p]


@njit(cache=True)
def _taps1x2(acc0, acc1, a, u, v, P):
    for p in range(P):
        x = a[p]
        acc0[p] += u * x
        acc1[p] += v * x


@njit(cache=True)
def _conv_accumulate(acc0, acc1, two, xp, offs, w0, w1, P):
    """acc0 (and acc1 when ``two``) [p] += sum over the taps t of w[t] * xp[offs[t] + p],
    p < P, in tap order (groups of four taps per pass)."""
    T = offs.size
    t = 0
    while t + 4 <= T:
        if two:
            _taps4x2(acc0, acc1, xp, offs, w0, w1, t, P)
        else:
            _taps4(acc0, xp, offs, w0, t, P)
        t += 4
    while t < T:
        if two:
            _taps1x2(acc0, acc1, xp[offs[t]:], w0[t], w1[t], P)
        else:
            _axpy(acc0, xp[offs[t]:], w0[t], P)
        t += 1


@njit(cache=True)
def _conv_plane(acc0, acc1, two, xp, offs, w0, w1, P):
    """As _conv_accumulate, into zeroed accumulators."""
    zero = acc0.dtype.type(0)
    _fill(acc0, zero)                   # all of it: the tail past P is then harmless
    if two:
        _fill(acc1, zero)
    _conv_accumulate(acc0, acc1, two, xp, offs, w0, w1, P)


@njit(cache=True)
def _tap_offsets(Cg, KH, KW, HWp, Wp, dh, dw):
    """Flat offset of every tap (c, kh, kw), in W[o].ravel() order."""
    offs = np.empty(Cg * KH * KW, np.int64)
    for c in range(Cg):
        for kh in range(KH):
            for kw in range(KW):
                offs[(c * KH + kh) * KW + kw] = c * HWp + kh * dh * Wp + kw * dw
    return offs


@njit(cache=True)
def _finish_plane(acc, Wp, Ho, Wo, bo, code, slope, pool, yo, pp, pyo, pio):
    """acc (Ho*Wp, pitch Wp) -> act(acc + b) into yo (Ho, Wo), or its max-pool into pyo, pio."""
    _bias_act_inplace(acc, Ho * Wp, bo, code, slope)
    if pool:
        _pool_any(acc, Wp, Ho, Wo, pyo, pio, pp)
    else:
        for ho in range(Ho):
            r = acc[ho * Wp:]
            for wo in range(Wo):
                yo[ho, wo] = r[wo]


@njit(cache=True, nogil=True)
def _direct_forward(x, Wt, b, has_bias, G, pt, pl, dh, dw, Hp, Wp, Ho, Wo, code, slope,
                    pool, y, pp, py, pidx, n0, n1):
    """Samples n0 <= n < n1, stride 1, g = o // (O/G):

        y[n, o, ho, wo] = act(b[o] + sum_(c, kh, kw) W[o, c, kh, kw] xpad[n, g*Cg + c, ho + kh*dh, wo + kw*dw])

    x (N, C, H, W), W (O, Cg, KH, KW), b (O,) (unused without has_bias) -> y (N, O, Ho, Wo);
    with ``pool``, instead py, pidx (N, O, Hq, Wq): the max-pool of y (pp = its parameters),
    y itself never stored.  Per sample: the padded planes xp (C, Hp*Wp) and two accumulator
    planes (Ho*Wp), two output channels at a time."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = Wt.shape
    Og = O // G
    P = (Ho - 1) * Wp + Wo
    HWp = Hp * Wp
    Wf = Wt.reshape(O, Cg * KH * KW)
    offs = _tap_offsets(Cg, KH, KW, HWp, Wp, dh, dw)
    zero = x.dtype.type(0)
    xp = np.empty(C * HWp, x.dtype)
    acc0 = np.empty(Ho * Wp, x.dtype)
    acc1 = np.empty(Ho * Wp, x.dtype)
    for n in range(n0, n1):
        for c in range(C):
            _pad_plane(x[n, c], xp[c * HWp:(c + 1) * HWp], pt, pl, Wp)
        for g in range(G):
            xg = xp[g * Cg * HWp:]
            for oo in range(0, Og, 2):
                o = g * Og + oo
                two = oo + 1 < Og
                _conv_plane(acc0, acc1, two, xg, offs, Wf[o], Wf[o + 1] if two else Wf[o], P)
                _finish_plane(acc0, Wp, Ho, Wo, b[o] if has_bias else zero, code, slope, pool, y[n, o], pp,
                              py[n, o], pidx[n, o])
                if two:
                    _finish_plane(acc1, Wp, Ho, Wo, b[o + 1] if has_bias else zero, code, slope, pool,
                                  y[n, o + 1], pp, py[n, o + 1], pidx[n, o + 1])


@njit(cache=True)
def _dz_plane(mode, n, o, dy, y, idx, Wq, code, slope, dzp, Wp, Ho, Wo):
    """dzp (flat, Ho*Wp; zeros past each row) <- dz of sample n, channel o:
    mode 0: dy * f'(y) with dy, y (N, O, Ho, Wo);
    mode 1: from the pooled gradient dy (N, O, Hq, Wq), arg-max idx and pooled
    output y: dz[idx] += dy * f'(y) (the conv output at the arg-max is the pooled one)."""
    zero, one = dzp.dtype.type(0), dzp.dtype.type(1)
    if mode == 0:
        d, yy = dy[n, o], y[n, o]
        for ho in range(Ho):
            r = dzp[ho * Wp:]
            for wo in range(Wo):
                r[wo] = _dact(d[ho, wo], yy[ho, wo], code, slope, zero, one)
            for wo in range(Wo, Wp):
                r[wo] = zero
    else:
        _fill(dzp, zero)
        d, yy, ii = dy[n, o], y[n, o], idx[n, o]
        Hq = d.shape[0]
        for q in range(Hq):
            for r in range(Wq):
                k = ii[q, r]
                if 0 <= k < Ho * Wo:            # (a pooling window of padding only points outside)
                    dzp[(k // Wo) * Wp + k % Wo] += _dact(d[q, r], yy[q, r], code, slope, zero, one)


@njit(cache=True, nogil=True)
def _direct_backward(mode, dy, y, idx, code, slope, x, Wt, G, pt, pl, dh, dw, Hp, Wp, Ho, Wo,
                     need_dx, dx, pW, pb, chunk, lanes, k0, k1):
    """Per chunk k0 <= k < k1 of ``chunk`` samples: pW[k] (O, Cg, KH, KW) = its part of dW,
    pb[k] (O,) float64 its part of db; dx (N, C, H, W) for its samples when need_dx.  Stride 1.

        dz = dy * f'(y) (or routed from the pooled gradient)        (O, Ho, Wo) per sample
        dW[o, c, kh, kw] = sum_n sum_(ho, wo) dz[n, o, ho, wo] * xpad[n, c, ho + kh*dh, wo + kw*dw]
        dx[n, c, h, w]   = sum_(o, kh, kw) W[o, c, kh, kw] * dz[n, o, h + pt - kh*dh, w + pl - kw*dw]

    dW, two ways (``lanes`` chooses; both vectorise):
    * lanes: per tap, a vector of partial sums over the flat positions p (dz laid out with
      the padded pitch Wp, zeros past each row), accumulated over the chunk's samples
      and folded in a fixed order: O*Cg*KH*KW*Ho*Wp products per sample, one store each;
    * transposed: dW[o, c] is itself a correlation, of xpad[c] with dz[o] as the kernel:
      acc[q] += dz[o, ho, wo] * xpad[c, ho*Wp + wo + q] over the taps (ho, wo), read at
      q = kh*dh*Wp + kw*dw: O*Cg*Ho*Wo*Q products (Q = (KH-1)*dh*Wp + (KW-1)*dw + 1),
      four taps and two channels o per pass (one store per four products).
    dx: the correlation of dz, zero-padded by the dilated kernel's extent (plane E of
    pitch We), with W's taps in reverse, computed as the forward pass computes y."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = Wt.shape
    Og = O // G
    L = Ho * Wo
    P = (Ho - 1) * Wp + Wo
    HWp = Hp * Wp
    HoWp = Ho * Wp
    Q = (KH - 1) * dh * Wp + (KW - 1) * dw + 1
    Ep, Eq = (KH - 1) * dh, (KW - 1) * dw
    He, We = Ho + 2 * Ep, Wo + 2 * Eq
    HWe = He * We
    Pdx = (H - 1) * We + W
    zero = x.dtype.type(0)
    wq = dy.shape[3]
    # taps of the transposed dW (output positions) and of dx (reversed kernel, over Og channels)
    offT = np.empty(L, np.int64)
    for ho in range(Ho):
        for wo in range(Wo):
            offT[ho * Wo + wo] = ho * Wp + wo
    offE = np.empty(Og * KH * KW, np.int64)
    Wd = np.empty((C, Og * KH * KW), x.dtype)                  # Wd[c, (oo, kh, kw)] = W[o, c - g*Cg, kh, kw]
    for oo in range(Og):
        for kh in range(KH):
            for kw in range(KW):
                t = (oo * KH + kh) * KW + kw
                offE[t] = oo * HWe + (pt + (KH - 1 - kh) * dh) * We + pl + (KW - 1 - kw) * dw
                for g in range(G):
                    for c in range(Cg):
                        Wd[g * Cg + c, t] = Wt[g * Og + oo, c, kh, kw]
    for k in range(k0, k1):
        n0 = k * chunk
        m = min(N, n0 + chunk) - n0
        xp = np.empty((m, C * HWp), x.dtype)
        pitch = Wp if lanes else Wo
        dz = np.empty((m, O * Ho * pitch), x.dtype)
        bl = np.zeros(Ho * pitch)                             # float64 lanes for db
        for j in range(m):
            for c in range(C):
                _pad_plane(x[n0 + j, c], xp[j, c * HWp:(c + 1) * HWp], pt, pl, Wp)
        for o in range(O):
            for j in range(m):
                dzp = dz[j, o * Ho * pitch:(o + 1) * Ho * pitch]
                _dz_plane(mode, n0 + j, o, dy, y, idx, wq, code, slope, dzp, pitch, Ho, Wo)
            _fill(bl, 0.0)
            for j in range(m):
                dzp = dz[j, o * Ho * pitch:]
                for i in range(Ho * pitch):
                    bl[i] += dzp[i]
            pb[k, o] = _fold_sum(bl, Ho * pitch)
        if lanes:
            acc = np.empty(P, x.dtype)
            for o in range(O):
                g = o // Og
                for c in range(Cg):
                    base = (g * Cg + c) * HWp
                    for kh in range(KH):
                        for kw in range(KW):
                            off = base + kh * dh * Wp + kw * dw
                            _fill(acc, zero)
                            for j in range(m):
                                _vfma(acc, dz[j, o * HoWp:], xp[j, off:], P)
                            pW[k, o, c, kh, kw] = _fold_sum(acc, P)
        else:
            accW = np.zeros((O, Cg, Q), x.dtype)
            for j in range(m):
                for g in range(G):
                    for oo in range(0, Og, 2):
                        o = g * Og + oo
                        two = oo + 1 < Og
                        o1 = o + 1 if two else o
                        for c in range(Cg):
                            _conv_accumulate(accW[o, c], accW[o1, c], two, xp[j, (g * Cg + c) * HWp:], offT,
                                             dz[j, o * L:], dz[j, o1 * L:], Q)
            for o in range(O):
                for c in range(Cg):
                    for kh in range(KH):
                        for kw in range(KW):
                            pW[k, o, c, kh, kw] = accW[o, c, kh * dh * Wp + kw * dw]
        if need_dx:
            E = np.zeros(O * HWe, x.dtype)
            acc0 = np.empty(H * We, x.dtype)
            acc1 = np.empty(H * We, x.dtype)
            for j in range(m):
                for o in range(O):                            # E[o] = dz[o] placed at (Ep, Eq)
                    for ho in range(Ho):
                        src = dz[j, (o * Ho + ho) * pitch:]
                        dst = E[o * HWe + (ho + Ep) * We + Eq:]
                        for wo in range(Wo):
                            dst[wo] = src[wo]
                for g in range(G):
                    Eg = E[g * Og * HWe:]
                    for cc in range(0, Cg, 2):
                        c = g * Cg + cc
                        two = cc + 1 < Cg
                        c1 = c + 1 if two else c
                        _conv_plane(acc0, acc1, two, Eg, offE, Wd[c], Wd[c1], Pdx)
                        for h in range(H):
                            r0 = acc0[h * We:]
                            d0 = dx[n0 + j, c, h]
                            for w in range(W):
                                d0[w] = r0[w]
                        if two:
                            for h in range(H):
                                r1 = acc1[h * We:]
                                d1 = dx[n0 + j, c1, h]
                                for w in range(W):
                                    d1[w] = r1[w]


# ---------------------------------------------------------------------------
# im2col / col2im, one sample at a time: cols (N, G, Cg*KH*KW, Ho*Wo), so that a
# batched GEMM, W_g (Og, CK) @ cols[n, g] (CK, L), writes y (N, O, Ho, Wo) directly.
# ---------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _im2col(x, cols, G, KH, KW, sh, sw, pt, pl, dh, dw, Hp, Wp, Ho, Wo, n0, n1):
    """cols[n, g, (c, kh, kw), ho*Wo + wo] = xpad[n, g*Cg + c, ho*sh + kh*dh, wo*sw + kw*dw]."""
    N, C, H, W = x.shape
    Cg = C // G
    HWp = Hp * Wp
    padded = pt > 0 or pl > 0 or Hp > H or Wp > W
    xp = np.empty(HWp, x.dtype)
    for n in range(n0, n1):
        for g in range(G):
            for c in range(Cg):
                ci = g * Cg + c
                if padded:
                    _pad_plane(x[n, ci], xp, pt, pl, Wp)
                    src = xp
                else:
                    src = x[n, ci].reshape(HWp)
                for kh in range(KH):
                    for kw in range(KW):
                        dst = cols[n, g, (c * KH + kh) * KW + kw]
                        for ho in range(Ho):
                            a = src[(ho * sh + kh * dh) * Wp + kw * dw:]
                            d = dst[ho * Wo:]
                            if sw == 1:
                                for wo in range(Wo):
                                    d[wo] = a[wo]
                            else:
                                for wo in range(Wo):
                                    d[wo] = a[wo * sw]


@njit(cache=True, nogil=True)
def _col2im(dcols, dx, G, KH, KW, sh, sw, pt, pl, dh, dw, Hp, Wp, Ho, Wo, n0, n1):
    """dx[n] (C, H, W) = the sum of dcols[n] (G, CK, L) over the taps that read each input
    (accumulated in a padded plane, whose interior is then copied out)."""
    N, C, H, W = dx.shape
    Cg = C // G
    HWp = Hp * Wp
    zero = dx.dtype.type(0)
    xp = np.empty(HWp, dx.dtype)
    for n in range(n0, n1):
        for g in range(G):
            for c in range(Cg):
                ci = g * Cg + c
                _fill(xp, zero)
                for kh in range(KH):
                    for kw in range(KW):
                        src = dcols[n, g, (c * KH + kh) * KW + kw]
                        for ho in range(Ho):
                            d = xp[(ho * sh + kh * dh) * Wp + kw * dw:]
                            a = src[ho * Wo:]
                            if sw == 1:
                                for wo in range(Wo):
                                    d[wo] += a[wo]
                            else:
                                for wo in range(Wo):
                                    d[wo * sw] += a[wo]
                dd = dx[n, ci]
                for h in range(H):
                    r = xp[(h + pt) * Wp + pl:]
                    for w in range(W):
                        dd[h, w] = r[w]


@njit(cache=True, nogil=True)
def _gemm_epilogue(z, b, has_bias, code, slope, pool, Ho, Wo, pp, py, pidx, n0, n1):
    """z (N, O, Ho*Wo), the GEMM's output: z = act(z + b) in place, and with ``pool``
    py, pidx (N, O, Hq, Wq) = its max-pool (pp = pool parameters)."""
    O = z.shape[1]
    L = Ho * Wo
    zero = z.dtype.type(0)
    for n in range(n0, n1):
        for o in range(O):
            plane = z[n, o]
            _bias_act_inplace(plane, L, b[o] if has_bias else zero, code, slope)
            if pool:
                _pool_any(plane, Wo, Ho, Wo, py[n, o], pidx[n, o], pp)


@njit(cache=True, nogil=True)
def _gemm_dz(mode, dy, y, idx, code, slope, dz, pb, n0, n1):
    """dz (N, O, Ho, Wo) (see _dz_plane for ``mode``) and pb (N, O) float64: each
    sample's part of db.  After a max-pool (mode 1) dz is zero but at the arg-maxima, so
    db is summed over the pooled values routed there (Hq*Wq terms, not Ho*Wo) and dz is
    written at the flat index itself (dz's pitch is Wo: no division)."""
    N, O, Ho, Wo = dz.shape
    L = Ho * Wo
    Lq = dy.shape[2] * dy.shape[3]
    zero, one = dz.dtype.type(0), dz.dtype.type(1)
    bl = np.empty(max(L, Lq))                            # float64 terms, folded in a fixed order
    for n in range(n0, n1):
        for o in range(O):
            dzp = dz[n, o].reshape(L)
            if mode == 0:
                _dz_plane(mode, n, o, dy, y, idx, dy.shape[3], code, slope, dzp, Wo, Ho, Wo)
                for i in range(L):
                    bl[i] = dzp[i]
                pb[n, o] = _fold_sum(bl, L)
            else:
                _fill(dzp, zero)
                d, yy, ii = dy[n, o].reshape(Lq), y[n, o].reshape(Lq), idx[n, o].reshape(Lq)
                for k in range(Lq):
                    i = ii[k]
                    if 0 <= i < L:              # (a pooling window of padding only points outside)
                        v = _dact(d[k], yy[k], code, slope, zero, one)
                        dzp[i] += v
                        bl[k] = v
                    else:
                        bl[k] = 0.0
                pb[n, o] = _fold_sum(bl, Lq)


@njit(cache=True)
def _taps_accumulate(acc, xp, offs, w, T, P):
    """acc[p] += sum_(t < T) w[t] * xp[offs[t] + p], p < P, taps in order, eight taps a pass
    (so acc is loaded and stored once per eight products), then one at a time."""
    t = 0
    while t + 8 <= T:
        a0, a1, a2, a3 = xp[offs[t]:], xp[offs[t + 1]:], xp[offs[t + 2]:], xp[offs[t + 3]:]
        a4, a5, a6, a7 = xp[offs[t + 4]:], xp[offs[t + 5]:], xp[offs[t + 6]:], xp[offs[t + 7]:]
        u0, u1, u2, u3, u4, u5, u6, u7 = w[t], w[t + 1], w[t + 2], w[t + 3], w[t + 4], w[t + 5], w[t + 6], w[t + 7]
        for p in range(P):
            acc[p] = (acc[p] + u0 * a0[p] + u1 * a1[p] + u2 * a2[p] + u3 * a3[p]
                      + u4 * a4[p] + u5 * a5[p] + u6 * a6[p] + u7 * a7[p])
        t += 8
    while t < T:
        _axpy(acc, xp[offs[t]:], w[t], P)
        t += 1


@njit(cache=True, nogil=True)
def _pooled_dw(dy, y, idx, code, slope, x, KH, KW, sh, sw, pt, pl, dh, dw, Hp, Wp, Ho, Wo, pW, pb, n0, n1):
    """dW and db after a max-pool, from the arg-maxima alone.  Samples n0 <= n < n1:
    pW[n] (O, Cg, KH, KW) its part of dW, pb[n] (O,) float64 its part of db.

    dz is zero except at the arg-max of each pooling window, where it is v = dp * f'(p)
    (p the pooled output), so with xpad (the padded input plane, flat, pitch Wp):

        dW[o, c, kh, kw] = sum_(arg-maxima (ho, wo) of o) v * xpad[c, (ho*sh + kh*dh)*Wp + wo*sw + kw*dw]

    i.e. acc[q] += v * xpad[c, off + q] with off = ho*sh*Wp + wo*sw, over the arg-maxima
    (the "taps"), read at q = kh*dh*Wp + kw*dw: a correlation of the input with the sparse
    dz, computed as the direct forward pass computes its output (contiguous multiply-adds
    over q, eight taps a pass).  Hq*Wq taps per channel instead of the Ho*Wo columns of
    the dense GEMM (a quarter, for a 2x2 pool), and neither dz nor im2col is formed.  The
    other q (past each row) are computed and not read.  Used where x is finite (with inf
    or NaN the reference's dense product, 0 * inf, decides)."""
    N, C, H, W = x.shape
    O, Cg = pW.shape[1], pW.shape[2]
    G = C // Cg
    Og = O // G
    L = Ho * Wo
    Lq = dy.shape[2] * dy.shape[3]
    HWp = Hp * Wp
    Q = (KH - 1) * dh * Wp + (KW - 1) * dw + 1
    zero, one = x.dtype.type(0), x.dtype.type(1)
    pos = np.empty(L, np.int64)                              # flat (ho, wo) -> its window's offset in xpad
    for ho in range(Ho):
        for wo in range(Wo):
            pos[ho * Wo + wo] = ho * sh * Wp + wo * sw
    xp = np.empty(C * HWp, x.dtype)
    acc = np.empty(Q, x.dtype)
    offs = np.empty(Lq, np.int64)
    vals = np.empty(Lq, x.dtype)
    bl = np.empty(Lq)
    for n in range(n0, n1):
        for c in range(C):
            _pad_plane(x[n, c], xp[c * HWp:(c + 1) * HWp], pt, pl, Wp)
        for o in range(O):
            g = o // Og
            d, yy, ii = dy[n, o].reshape(Lq), y[n, o].reshape(Lq), idx[n, o].reshape(Lq)
            T = 0
            for k in range(Lq):
                i = ii[k]
                bl[k] = 0.0
                if 0 <= i < L:              # (a pooling window of padding only points outside)
                    v = _dact(d[k], yy[k], code, slope, zero, one)
                    bl[k] = v
                    offs[T] = pos[i]
                    vals[T] = v
                    T += 1
            pb[n, o] = _fold_sum(bl, Lq)
            for c in range(Cg):
                _fill(acc, zero)
                _taps_accumulate(acc, xp[(g * Cg + c) * HWp:], offs, vals, T, Q)
                for kh in range(KH):
                    for kw in range(KW):
                        pW[n, o, c, kh, kw] = acc[kh * dh * Wp + kw * dw]


@njit(cache=True)
def _sum_parts(parts, out, acc):
    """out (M,) (+)= the sum over parts (K, M), the parts added in order (row 0 first)."""
    K, M = parts.shape
    tmp = np.zeros(M, parts.dtype)                       # (no parts, an empty batch: 0)
    for k in range(K):
        r = parts[k]
        for j in range(M):
            tmp[j] += r[j]
    for j in range(M):
        out[j] = out[j] + tmp[j] if acc else tmp[j]


# ---------------------------------------------------------------------------
# Threads: the batch is cut into chunks of samples, handed to numba.get_num_threads()
# threads (the caller and a small pool of Python threads; every kernel releases the
# GIL, and so do NumPy's GEMMs).  The chunks are fixed, and every sum over samples adds
# the chunks' parts in chunk order, so any number of threads gives the same numbers.
# (Numba's own parallel loops were measured and not used: their OpenMP threads spin
# after each loop and fight OpenBLAS's threads for the cores, see the module docstring.)
# ---------------------------------------------------------------------------
def _find_sched_yield():
    """libc's sched_yield as a ctypes function Numba can call, or None (no such libc)."""
    try:
        import ctypes
        fn = ctypes.CDLL(None).sched_yield
    except (OSError, AttributeError, TypeError):        # e.g. Windows: no sched_yield
        return None
    fn.restype, fn.argtypes = ctypes.c_int, []
    return fn


_sched_yield = _find_sched_yield()
#: How many times a waiting thread yields its core before it blocks (about 0.3-1 ms).
_SPINS = 2000


if _sched_yield is not None:
    @njit(nogil=True)            # (not cached: Numba caches no function that calls through a ctypes pointer)
    def _spin_until(flag, value, spins):
        """Wait, without the GIL, until flag[0] == value or ``spins`` yields have passed;
        whether it was seen.  Each pass reads flag[0] anew (the call to sched_yield
        between reads keeps the compiler from hoisting the load) and gives the core to
        any other thread that wants it."""
        for _ in range(spins):
            if flag[0] == value:
                return True
            _sched_yield()
        return flag[0] == value
else:
    def _spin_until(flag, value, spins):
        return False


class _Worker:
    """One helper thread: ``start(fn, i0, i1)`` hands it fn(i0, i1); ``join()`` waits for
    it and re-raises its exception.

    The hand-over is two job numbers in shared arrays: ``go`` (the last job handed
    over) and ``done`` (the last job finished).  Each side waits for the number it
    needs first in a Numba loop that holds no GIL and yields its core between reads
    (``_spin_until``, up to _SPINS yields, under a millisecond), then, if it is still
    waiting, on a condition variable (it blocks: an idle helper takes no core).
    Measured on the 2-core test machine: a call whose work takes 31 us on one thread
    took 57 us on two when both sides slept on locks (the helper started ~30 us late,
    waking and then waiting for the GIL; the caller resumed ~23 us after it ended)
    and 18 us with the wait first.  Waiting on the numbers, never on tokens, keeps
    the two sides in step whatever interrupts a wait (Ctrl-C in join: the caller
    still waits for the helper, which is writing into the caller's arrays, before
    the KeyboardInterrupt goes on)."""

    def __init__(self):
        self._cv = threading.Condition(threading.Lock())
        self._go_seq = np.zeros(1, np.int64)         # the job number the caller has handed over
        self._done_seq = np.zeros(1, np.int64)       # the job number the helper has finished
        self._seq = 0
        self._sleepers = 0                           # threads blocked in _wait
        self._job, self._error = None, None
        threading.Thread(target=self._loop, name="nnumpy-conv", daemon=True).start()

    def _wait(self, flag, value):
        """Until flag[0] == value: first without the GIL, yielding the core, then blocked.
        (What the other side wrote before the number, the job or its results, is
        ordered before what this side reads next by the GIL, which both sides take
        in between.)"""
        if _spin_until(flag, value, _SPINS):
            return
        with self._cv:
            self._sleepers += 1
            try:
                while flag[0] != value:
                    self._cv.wait()
            finally:
                self._sleepers -= 1

    def _post(self, flag, value):
        """flag[0] = value, and wake a side blocked in _wait.  The number is written
        before the lock is taken, so a side that is spinning goes on at once instead
        of queueing for the lock; one blocked in wait() cannot miss it (it checked
        the number under the lock, and the notify comes under the lock after the
        write)."""
        flag[0] = value
        if self._sleepers:                   # (read under the GIL, as the waiter wrote it)
            with self._cv:
                self._cv.notify_all()

    def _loop(self):
        seq = 0
        while True:
            seq += 1
            self._wait(self._go_seq, seq)
            fn, i0, i1 = self._job
            try:
                fn(i0, i1)
            except BaseException as e:          # handed to the caller by join()
                self._error = e
            self._post(self._done_seq, seq)

    def start(self, fn, i0, i1):
        self._job, self._error = (fn, i0, i1), None
        self._seq += 1
        self._post(self._go_seq, self._seq)

    def join(self):
        try:
            self._wait(self._done_seq, self._seq)
        except BaseException:
            # The wait itself raises nothing: only a signal handler can (KeyboardInterrupt, or
            # whatever a user's handler raises), so every exception here is an interruption.
            # The helper is still computing into arrays the caller owns; wait for it (a few
            # milliseconds at most), then re-raise this first interruption unchanged.  Further
            # interruptions during that wait are dropped: the first one already goes on.
            while self._done_seq[0] != self._seq:
                try:
                    self._wait(self._done_seq, self._seq)
                except BaseException:       # a second Ctrl-C: keep waiting (see above)
                    continue
            raise
        finally:
            self._job = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _reset_after_fork():
    """In a forked child: no helper threads exist (they were not copied), and the lock
    may have been copied held by a thread of the parent that is not here."""
    global _workers_lock
    _workers_lock = threading.Lock()
    _workers["pid"], _workers["list"] = None, []


_workers = {"pid": None, "list": []}
_workers_lock = threading.Lock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _parallel(fn, n_items):
    """fn(i0, i1) over [0, n_items), cut into one contiguous range per thread (the caller
    runs the first range itself).  Exceptions propagate (the caller's own first, else
    the first helper's), after every helper has finished.  While another Python thread
    is using the helper threads, this call runs in the caller alone."""
    threads = min(numba.get_num_threads(), n_items)
    lock = _workers_lock
    if threads <= 1 or not lock.acquire(blocking=False):
        fn(0, n_items)
        return
    try:
        if _workers["pid"] != os.getpid():                  # none yet, or we are a forked child
            _workers["pid"], _workers["list"] = os.getpid(), []
        workers = _workers["list"]
        while len(workers) < threads - 1:
            workers.append(_Worker())
        bounds = [n_items * t // threads for t in range(threads + 1)]
        for t in range(1, threads):
            workers[t - 1].start(fn, bounds[t], bounds[t + 1])
        error = None
        try:
            fn(bounds[0], bounds[1])
        except BaseException as e:
            error = e
        for t in range(1, threads):                         # every helper, even after an error
            try:
                workers[t - 1].join()
            except BaseException as e:
                error = error if error is not None else e
        if error is not None:
            raise error
    finally:
        lock.release()


# ---------------------------------------------------------------------------
# Python wrappers
# ---------------------------------------------------------------------------
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_local = threading.local()
_I64 = np.zeros((1, 1, 1, 1), np.int64)


def _c(a):
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _same_dtype(*arrays):
    dt = arrays[0].dtype
    if dt not in _DTYPES or any(a is not None and a.dtype != dt for a in arrays):
        raise TypeError("numba kernels need float32 or float64 arrays of one dtype, got "
                        + ", ".join(str(a.dtype) for a in arrays if a is not None))


def _scratch(name, shape, dtype):
    """A work array reused between calls (one set per calling Python thread)."""
    store = getattr(_local, "store", None)
    if store is None:
        store = _local.store = {}
    key = (name, np.dtype(dtype))
    a = store.get(key)
    size = math.prod(shape)
    if a is None or a.size < size:
        a = store[key] = np.empty(size, dtype)
    return a[:size].reshape(shape)


def _ints(name, value, n, low):
    """``value`` as a tuple of n Python ints, each >= low (an int means n copies); a clear
    ValueError otherwise.  These kernels index with the numbers they are given, so they
    are checked here, at the boundary, not trusted."""
    try:
        vals = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
        ok = len(vals) == n and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                    for v in vals)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} must be an integer or {n} integers, got {value!r}")
    vals = tuple(int(v) for v in vals)
    if min(vals) < low:
        raise ValueError(f"{name} must be at least {low}, got {value!r}")
    return vals


def _check_shape(name, a, shape):
    if a is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(a.shape)}, expected {tuple(shape)}")


class _Geo:
    """Shapes of one convolution, and which algorithm runs it."""

    def __init__(self, x_shape, w_shape, stride, padding, dilation, groups):
        if len(x_shape) != 4 or len(w_shape) != 4:
            raise ValueError(f"conv2d: x must be (N, C, H, W) and W (O, C/groups, KH, KW), got shapes "
                             f"{x_shape} and {w_shape}")
        self.N, self.C, self.H, self.W = x_shape
        self.O, self.Cg, self.KH, self.KW = w_shape
        self.G = G = int(groups)
        if G < 1 or self.O % G or self.Cg * G != self.C:
            raise ValueError(f"conv2d: x has {self.C} channels and W has shape {w_shape} with groups={groups}: "
                             f"need C = groups * W.shape[1] and O divisible by groups")
        sh, sw = _ints("conv2d: stride", stride, 2, 1)
        dh, dw = _ints("conv2d: dilation", dilation, 2, 1)
        try:
            (pt, pb), (pl, pr) = (_ints("conv2d: padding", p, 2, 0) for p in padding)
        except (TypeError, ValueError):
            raise ValueError(f"conv2d: padding must be ((top, bottom), (left, right)) of integers >= 0, "
                             f"got {padding!r}") from None
        self.sh, self.sw, self.pt, self.pl, self.dh, self.dw = sh, sw, pt, pl, dh, dw
        self.Ho = (self.H + pt + pb - dh * (self.KH - 1) - 1) // sh + 1
        self.Wo = (self.W + pl + pr - dw * (self.KW - 1) - 1) // sw + 1
        if self.Ho < 1 or self.Wo < 1:
            raise ValueError(f"conv2d: input {self.H}x{self.W} with padding {padding} is smaller than the "
                             f"(dilated) kernel")
        # the padded plane: every read of the kernels lies inside it
        self.Hp = max(self.H + pt + pb, (self.Ho - 1) * self.sh + (self.KH - 1) * self.dh + 1)
        self.Wp = max(self.W + pl + pr, (self.Wo - 1) * self.sw + (self.KW - 1) * self.dw + 1)
        self.Og, self.CK, self.L = self.O // G, self.Cg * self.KH * self.KW, self.Ho * self.Wo

    @property
    def lanes(self):
        """Which dW formulation of the direct backward is cheaper (see _direct_backward):
        lanes costs about three times as much per product (a store each)."""
        if _FORCE_DW is not None:
            return _FORCE_DW == "lanes"
        q = (self.KH - 1) * self.dh * self.Wp + (self.KW - 1) * self.dw + 1
        p = (self.Ho - 1) * self.Wp + self.Wo
        return 3 * self.KH * self.KW * p < self.L * q

    def direct(self, backward):
        """Direct loops (stride 1 only) or im2col + GEMM; measured, see the module docstring."""
        if self.sh != 1 or self.sw != 1:
            return False
        if _FORCE is not None:
            return _FORCE == "direct"
        if backward:
            return self.Og * self.CK <= _DIRECT_MAX_OGCK_BACKWARD
        return self.CK <= _DIRECT_MAX_CK


_CHECKED = {}


def _cached(make, *key):
    """make(*key), remembered for hashable keys: a training loop passes the same shapes
    and hyper-parameters every step, and checking them is a few microseconds a call in
    Python.  (A key that cannot be hashed, such as a list, is checked every time.)"""
    try:
        value = _CHECKED.get((make, key))
    except TypeError:
        return make(*key)
    if value is None:
        value = make(*key)
        if len(_CHECKED) > 512:
            _CHECKED.clear()
        _CHECKED[(make, key)] = value
    return value


def _pool_geometry(kernel_size, stride, padding, dilation, ceil_mode, H, W):
    """(pp, Ho, Wo) of a max-pool of an (H, W) plane, checked."""
    pp = _pool_params(kernel_size, stride, padding, dilation)
    return (pp,) + _pool_out(H, W, pp, ceil_mode)


def _pool_params(kernel_size, stride, padding, dilation):
    kh, kw = _ints("max_pool2d: kernel_size", kernel_size, 2, 1)
    sh, sw = _ints("max_pool2d: stride", stride, 2, 1)
    ph, pw = _ints("max_pool2d: padding", padding, 2, 0)
    dh, dw = _ints("max_pool2d: dilation", dilation, 2, 1)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"max_pool2d: padding must be at most half of the kernel size, got padding={padding!r} "
                         f"and kernel_size={kernel_size!r}")
    return kh, kw, sh, sw, ph, pw, dh, dw


def _pool_out(H, W, pp, ceil_mode):
    kh, kw, sh, sw, ph, pw, dh, dw = pp

    def out(size, k, s, p, d):
        span = size + 2 * p - d * (k - 1) - 1
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= size + p:
            o -= 1
        return o
    Ho, Wo = out(H, kh, sh, ph, dh), out(W, kw, sw, pw, dw)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"max_pool2d: the input ({H} x {W}) is too small for kernel ({kh}, {kw}), stride "
                         f"({sh}, {sw}), padding ({ph}, {pw}), dilation ({dh}, {dw}): output {Ho} x {Wo}")
    return Ho, Wo


def _check_cols(cols, g, dtype):
    shape = (g.N, g.G, g.CK, g.L)
    if (not isinstance(cols, np.ndarray) or cols.shape != shape or cols.dtype != dtype
            or not cols.flags.c_contiguous or not cols.flags.writeable):
        raise ValueError(f"conv2d: cols must be a writable, C-contiguous {np.dtype(dtype)} array of shape "
                         f"{shape} (see kept_cols_shape), got {type(cols).__name__} "
                         f"{getattr(cols, 'dtype', '')} {getattr(cols, 'shape', '')}")


def _conv_forward(x, W, b, stride, padding, dilation, groups, act, slope, pool_args, cols_out=None):
    _same_dtype(x, W, b)
    x, W = _c(x), _c(W)
    g = _cached(_Geo, x.shape, W.shape, stride, padding, dilation, groups)
    _check_shape("conv2d: the bias", b, (g.O,))
    if cols_out is not None:
        _check_cols(cols_out, g, x.dtype)
    t = x.dtype.type
    code = ACTIVATION_CODES[act]
    has_bias = b is not None
    bias = _c(b) if has_bias else np.zeros(1, x.dtype)
    pool = pool_args is not None
    if pool:
        pp, Hq, Wq = _cached(_pool_geometry, *pool_args, g.Ho, g.Wo)
        py = np.empty((g.N, g.O, Hq, Wq), x.dtype)
        pidx = np.empty((g.N, g.O, Hq, Wq), np.int64)
    else:
        pp = (1, 1, 1, 1, 0, 0, 1, 1)
        py, pidx = np.empty((g.N, g.O, 1, 1), x.dtype), np.empty((g.N, g.O, 1, 1), np.int64)
    if g.direct(False):
        y = np.empty((g.N, g.O, g.Ho, g.Wo) if not pool else (g.N, g.O, 1, 1), x.dtype)

        def run(n0, n1):
            _direct_forward(x, W, bias, has_bias, g.G, g.pt, g.pl, g.dh, g.dw, g.Hp, g.Wp, g.Ho, g.Wo, code,
                            t(slope), pool, y, pp, py, pidx, n0, n1)
    else:
        cols = cols_out if cols_out is not None else _scratch("cols", (g.N, g.G, g.CK, g.L), x.dtype)
        y = _scratch("z", (g.N, g.O, g.Ho, g.Wo), x.dtype) if pool else np.empty((g.N, g.O, g.Ho, g.Wo), x.dtype)
        Wg = W.reshape(g.G, g.Og, g.CK)

        def run(n0, n1):
            _im2col(x, cols, g.G, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, g.Hp, g.Wp, g.Ho, g.Wo, n0, n1)
            # (G, Og, CK) @ (n, G, CK, L) -> (n, G, Og, L): y's own layout
            np.matmul(Wg, cols[n0:n1], out=y[n0:n1].reshape(n1 - n0, g.G, g.Og, g.L))
            _gemm_epilogue(y.reshape(g.N, g.O, g.L), bias, has_bias, code, t(slope), pool, g.Ho, g.Wo, pp, py,
                           pidx, n0, n1)
    _parallel(run, g.N)
    return (py, pidx) if pool else y


def kept_cols_shape(x_shape, w_shape, stride, padding, dilation, groups):
    """The shape (N, G, C/G*KH*KW, Ho*Wo) of the im2col matrix that the forward pass of this
    convolution can keep for its backward pass (both run im2col + GEMM), else None (the
    direct loops run one of them, and there is nothing to keep).  A caller that passes a
    buffer of this shape as ``cols=`` to the forward pass and the same buffer to the
    backward pass saves the backward's im2col (measured 0.23 ms a call, one thread, at
    LeNet-5's second convolution)."""
    g = _cached(_Geo, tuple(x_shape), tuple(w_shape), stride, padding, dilation, groups)
    if g.direct(False) or g.direct(True):
        return None
    return (g.N, g.G, g.CK, g.L)


def conv2d_act_forward(x, W, b, stride, padding, dilation, groups, act="identity", slope=0.0, cols=None):
    """y (N, O, Ho, Wo) = act(conv(x, W) + b); see numpy_ops.conv2d_act_forward.  ``cols``: a
    buffer of shape :func:`kept_cols_shape` that the im2col + GEMM path fills with im2col(x)
    for the backward pass (unused by the direct loops)."""
    return _conv_forward(x, W, b, stride, padding, dilation, groups, act, slope, None, cols)


def conv2d_act_pool_forward(x, W, b, stride, padding, dilation, groups, act, slope, kernel_size, pool_stride,
                            pool_padding, pool_dilation, ceil_mode, cols=None):
    """(p, indices) = max_pool2d_forward(conv2d_act_forward(x, ...), kernel_size, ...), without
    keeping the convolution's output: p, indices (N, O, Hq, Wq), indices into the (Ho, Wo) plane.
    ``cols``: as for conv2d_act_forward."""
    return _conv_forward(x, W, b, stride, padding, dilation, groups, act, slope,
                         (kernel_size, pool_stride, pool_padding, pool_dilation, ceil_mode), cols)


def _conv_backward(mode, dy, y, idx, x, W, gW, gb, stride, padding, dilation, groups, act, slope, need_dx,
                   acc_w, acc_b, cols_in=None):
    _same_dtype(dy, x, W, y, gW, gb)
    dy, x, W = _c(dy), _c(x), _c(W)
    g = _cached(_Geo, x.shape, W.shape, stride, padding, dilation, groups)
    code = ACTIVATION_CODES[act]
    t = x.dtype.type
    if mode == 0 and dy.shape != (g.N, g.O, g.Ho, g.Wo):
        raise ValueError(f"conv2d backward: dy has shape {dy.shape}, expected {(g.N, g.O, g.Ho, g.Wo)}")
    _check_shape("conv2d backward: gW", gW, W.shape)
    want_w = gW is not None            # None: a frozen weight (the direct loops still form dW, into scratch)
    if not want_w:
        gW = _scratch("frozen_gW", W.shape, x.dtype)
    _check_shape("conv2d backward: gb", gb, (g.O,))
    if y is None and (code != _IDENTITY or mode == 1):
        raise ValueError(f"conv2d backward: the forward output y is needed for the {act!r} activation")
    _check_shape("conv2d backward: y", y if mode == 0 and code != _IDENTITY else None, dy.shape)
    yy = _c(y) if (y is not None and (code != _IDENTITY or mode == 1)) else dy
    if not gW.flags.c_contiguous:
        raise ValueError("conv2d backward: gW must be C-contiguous (it is updated in place)")
    dx = np.empty_like(x) if need_dx else None
    # the direct loops compute a few products past each row (read, then ignored): with
    # inf/NaN in x or W those could differ from the reference, which then decides
    direct = g.direct(True) and np.isfinite(x).all() and (not need_dx or np.isfinite(W).all())
    if cols_in is not None:
        _check_cols(cols_in, g, x.dtype)
        if direct or g.direct(False):
            raise ValueError("conv2d backward: cols were given, but this convolution does not keep them "
                             "(kept_cols_shape is None)")
    if direct:
        n_chunks = -(-g.N // _CHUNK)
        pW = np.empty((n_chunks, g.O * g.CK), x.dtype)
        pb = np.empty((n_chunks, g.O))
        lanes = g.lanes

        def run(k0, k1):
            _direct_backward(mode, dy, yy, idx, code, t(slope), x, W, g.G, g.pt, g.pl, g.dh, g.dw, g.Hp, g.Wp,
                             g.Ho, g.Wo, bool(need_dx), dx if need_dx else x, pW.reshape(n_chunks, g.O, g.Cg, g.KH,
                                                                                         g.KW),
                             pb, _CHUNK, lanes, k0, k1)
        _parallel(run, n_chunks)
    else:
        dz = _scratch("dz", (g.N, g.O, g.Ho, g.Wo), x.dtype)
        have_cols = cols_in is not None          # im2col(x), kept by the forward pass
        cols = cols_in if have_cols else _scratch("cols", (g.N, g.G, g.CK, g.L), x.dtype)
        pW = _scratch("pW", (g.N, g.O * g.CK), x.dtype)
        pb = np.empty((g.N, g.O))
        Wg = W.reshape(g.G, g.Og, g.CK)

        # after a max-pool, dW (and db) from the arg-maxima alone (see _pooled_dw), where x is finite,
        # for a first layer (no dx: dz and im2col would serve dW alone) with few input channels (its
        # forward ran the direct loops).  Measured (LeNet-5, 2 threads, ms a call): conv1 backward 0.38
        # against 0.49 for dz + im2col + GEMM; conv2's (16 x 6 channels, 25 arg-maxima a plane) took
        # 1.44 against a GEMM of 0.41 (one thread): short passes, so not there.
        sparse = (mode == 1 and not need_dx and _FORCE_DW != "dense" and (_FORCE_DW == "pooled" or g.direct(False))
                  and np.isfinite(x).all())

        def run(n0, n1):
            n = n1 - n0
            if sparse:
                _pooled_dw(dy, yy, idx, code, t(slope), x, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, g.Hp,
                           g.Wp, g.Ho, g.Wo, pW.reshape(g.N, g.O, g.Cg, g.KH, g.KW), pb, n0, n1)
            if not sparse or need_dx:
                _gemm_dz(mode, dy, yy, idx, code, t(slope), dz, pb, n0, n1)
            dzg = dz[n0:n1].reshape(n, g.G, g.Og, g.L)
            if not have_cols and (not sparse or need_dx):
                _im2col(x, cols, g.G, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, g.Hp, g.Wp, g.Ho, g.Wo, n0,
                        n1)
            if not sparse and want_w:
                # per sample: (n, G, Og, L) @ (n, G, L, CK) -> (n, G, Og, CK), summed over samples below
                np.matmul(dzg, cols[n0:n1].transpose(0, 1, 3, 2), out=pW[n0:n1].reshape(n, g.G, g.Og, g.CK))
            if need_dx:
                # (G, CK, Og) @ (n, G, Og, L) -> (n, G, CK, L), into cols (no longer needed: a kept
                # cols buffer is used up)
                np.matmul(Wg.transpose(0, 2, 1), dzg, out=cols[n0:n1])
                _col2im(cols, dx, g.G, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, g.Hp, g.Wp, g.Ho, g.Wo,
                        n0, n1)
        _parallel(run, g.N)
    if want_w:
        _sum_parts(pW, gW.reshape(-1), bool(acc_w))
    if gb is not None:
        db = np.zeros(g.O)
        _sum_parts(pb, db, False)
        if acc_b:
            gb += db.astype(x.dtype)
        else:
            gb[...] = db
    return dx


def conv2d_act_backward(dy, x, W, y, gW, gb, stride, padding, dilation, groups, act="identity", slope=0.0,
                        need_dx=True, acc_w=True, acc_b=True, cols=None):
    """Backward of conv2d_act_forward; see numpy_ops.conv2d_act_backward.  ``cols``: the buffer
    the forward pass filled (see kept_cols_shape), which saves the im2col; it is overwritten
    (used up) when dx is computed."""
    return _conv_backward(0, dy, y, _I64, x, W, gW, gb, stride, padding, dilation, groups, act, slope, need_dx,
                          acc_w, acc_b, cols)


def conv2d_act_pool_backward(dp, indices, p, x, W, gW, gb, stride, padding, dilation, groups, act, slope,
                             kernel_size, pool_stride, pool_padding, pool_dilation, ceil_mode, need_dx=True,
                             acc_w=True, acc_b=True, cols=None):
    """Backward of conv2d_act_pool_forward: dp, indices, p (N, O, Hq, Wq) (p: the pooled output);
    ``cols`` as for conv2d_act_backward.  dz is formed at the arg-maxima only (elsewhere it
    is dy * f'(y) with dy = 0): exact for ReLU, LeakyReLU and the identity; for the sigmoid
    and tanh it misses the NaN of 0 * f'(NaN) where a NaN convolution output is no arg-max
    (Sequential fuses the pool only after the first three)."""
    _same_dtype(dp, p)
    g = _cached(_Geo, x.shape, W.shape, stride, padding, dilation, groups)
    _, Hq, Wq = _cached(_pool_geometry, kernel_size, pool_stride, pool_padding, pool_dilation, ceil_mode, g.Ho,
                        g.Wo)
    for name, a in (("dp", dp), ("indices", indices), ("p", p)):
        _check_shape(f"conv2d + max_pool2d backward: {name}", a, (g.N, g.O, Hq, Wq))
    idx = indices if indices.dtype == np.int64 and indices.flags.c_contiguous else np.ascontiguousarray(
        indices, np.int64)
    return _conv_backward(1, _c(dp), _c(p), idx, x, W, gW, gb, stride, padding, dilation, groups, act, slope,
                          need_dx, acc_w, acc_b, cols)


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    """(y, indices) (N, C, Ho, Wo); see numpy_ops.max_pool2d_forward."""
    _same_dtype(x)
    if x.ndim != 4:
        raise ValueError(f"max_pool2d: x must be (N, C, H, W), got shape {x.shape}")
    x = _c(x)
    pp, Ho, Wo = _cached(_pool_geometry, kernel_size, stride, padding, dilation, ceil_mode, x.shape[2], x.shape[3])
    N, C = x.shape[:2]
    y = np.empty((N, C, Ho, Wo), x.dtype)
    idx = np.empty((N, C, Ho, Wo), np.int64)
    _parallel(lambda n0, n1: _max_pool_forward(x, y, idx, pp, n0, n1), N)
    return y, idx


def max_pool2d_backward(dy, indices, in_shape):
    """dx (in_shape): dy routed to the arg-max of each window."""
    _same_dtype(dy)
    in_shape = _ints("max_pool2d backward: in_shape", in_shape, 4, 0)
    if dy.ndim != 4 or tuple(indices.shape) != dy.shape or dy.shape[:2] != in_shape[:2]:
        raise ValueError(f"max_pool2d backward: dy {dy.shape} and indices {tuple(indices.shape)} must have one "
                         f"shape (N, C, Ho, Wo) matching the input {in_shape}")
    dy = _c(dy)
    idx = indices if indices.dtype == np.int64 and indices.flags.c_contiguous else np.ascontiguousarray(
        indices, np.int64)
    dx = np.empty(in_shape, dy.dtype)
    _parallel(lambda n0, n1: _max_pool_backward(dy, idx, dx, n0, n1), dy.shape[0])
    return dx


def warm_up(dtypes=(np.float32, np.float64)):
    global _FORCE
    saved = _FORCE
    pool = ((2, 2), (2, 2), (0, 0), (1, 1), False)
    try:
        for dt in dtypes:
            x = np.ones((2, 2, 6, 6), dt)
            W = np.ones((2, 2, 3, 3), dt)
            b = np.ones(2, dt)
            args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1, "relu", 0.1)
            for force in ("direct", "gemm"):
                _FORCE = force
                y = conv2d_act_forward(x, W, b, *args)
                conv2d_act_backward(np.ones_like(y), x, W, y, np.zeros_like(W), np.zeros_like(b), *args)
                p, i = conv2d_act_pool_forward(x, W, b, *args, *pool)
                conv2d_act_pool_backward(p, i, p, x, W, np.zeros_like(W), np.zeros_like(b), *args, *pool)
            y, i = max_pool2d_forward(x, *pool)
            max_pool2d_backward(y, i, x.shape)
    finally:
        _FORCE = saved
