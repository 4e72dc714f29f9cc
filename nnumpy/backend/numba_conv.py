"""Numba kernels for 2-d convolution and max pooling (see numba_ops for the contract).

Work in progress: second version.
"""
from __future__ import annotations

import os
import threading

import numpy as np
from numba import njit, prange

from .numpy_ops import ACTIVATION_CODES

__all__ = ["conv2d_act_forward", "conv2d_act_backward", "max_pool2d_forward", "max_pool2d_backward",
           "conv2d_act_pool_forward", "conv2d_act_pool_backward", "warm_up"]

_IDENTITY, _RELU, _LEAKY, _SIGMOID, _TANH = (ACTIVATION_CODES[k] for k in
                                             ("identity", "relu", "leaky_relu", "sigmoid", "tanh"))

_PAR = os.environ.get("NNUMPY_CONV_PARALLEL", "1") == "1"

#: Samples per chunk of a batch reduction (dW, db in the direct kernels): fixed, so the
#: order of every sum is the same for any number of threads.
_CHUNK = 8
#: The direct (Numba loop) convolution is used when C/groups * KH * KW is at most this;
#: above it, im2col + one BLAS GEMM per group.  Measured, see the module docstring.
_DIRECT_MAX_CK = 32
#: Tests set this to "direct" or "gemm" to run one variant on every shape.
_FORCE = None


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
    """a[:n] = act(a[:n] + bo), as _bias_act (one array: an in-place loop vectorises,
    where two arguments that may overlap would make LLVM fall back to scalar code)."""
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


@njit(cache=True)
def _bias_act(src, dst, n, bo, code, slope):
    """dst[:n] = act(src[:n] + bo) (src may be dst); one loop per activation, so the
    piecewise-linear ones vectorise."""
    zero, one = dst.dtype.type(0), dst.dtype.type(1)
    if code == _RELU:
        for i in range(n):
            v = src[i] + bo
            dst[i] = zero if v <= zero else v
    elif code == _IDENTITY:
        for i in range(n):
            dst[i] = src[i] + bo
    elif code == _LEAKY:
        for i in range(n):
            v = src[i] + bo
            dst[i] = v if v > zero else v * slope
    else:
        for i in range(n):
            dst[i] = _act(src[i] + bo, code, slope, zero, one)


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


@njit(cache=True, parallel=_PAR)
def _max_pool_forward(x, y, idx, pp):
    N, C, H, W = x.shape
    for p in prange(N * C):
        n, c = p // C, p % C
        _pool_any(x[n, c].reshape(H * W), W, H, W, y[n, c], idx[n, c], pp)


@njit(cache=True, parallel=_PAR)
def _max_pool_backward(dy, idx, dx):
    """dx (N, C, H, W) = 0, then dx.flat[idx] += dy per plane (in output order)."""
    N, C, Ho, Wo = dy.shape
    HW = dx.shape[2] * dx.shape[3]
    zero = dx.dtype.type(0)
    for p in prange(N * C):
        n, c = p // C, p % C
        plane = dx[n, c].reshape(HW)
        _fill(plane, zero)
        d, i = dy[n, c].reshape(Ho * Wo), idx[n, c].reshape(Ho * Wo)
        for k in range(Ho * Wo):
            if 0 <= i[k] < HW:                  # a window of padding only names a position outside
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
def _conv_plane(acc0, acc1, two, xp, offs, w0, w1, P):
    """acc0 (and acc1 when ``two``) (P,) = sum over the taps t of w[t] * xp[offs[t] + p],
    in tap order."""
    zero = acc0.dtype.type(0)
    _fill(acc0, zero)                   # all of it: the tail past P is then harmless
    if two:
        _fill(acc1, zero)
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


@njit(cache=True, parallel=_PAR)
def _direct_forward(x, Wt, b, has_bias, G, pt, pl, dh, dw, Hp, Wp, Ho, Wo, code, slope,
                    pool, y, pp, py, pidx):
    """y (N, O, Ho, Wo) = act(conv + b); with ``pool``, instead py, pidx (N, O, Hq, Wq):
    the max-pool of that (pp = pool parameters)."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = Wt.shape
    Og = O // G
    P = (Ho - 1) * Wp + Wo
    HWp = Hp * Wp
    Wf = Wt.reshape(O, Cg * KH * KW)
    offs = _tap_offsets(Cg, KH, KW, HWp, Wp, dh, dw)
    zero = x.dtype.type(0)
    for n in prange(N):
        xp = np.empty(C * HWp, x.dtype)
        for c in range(C):
            _pad_plane(x[n, c], xp[c * HWp:(c + 1) * HWp], pt, pl, Wp)
        acc0 = np.empty(Ho * Wp, x.dtype)
        acc1 = np.empty(Ho * Wp, x.dtype)
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


@njit(cache=True, parallel=_PAR)
def _direct_backward(mode, dy, y, idx, code, slope, x, Wt, G, pt, pl, dh, dw, Hp, Wp, Ho, Wo,
                     need_dx, dx, pW, pb, chunk):
    """Per chunk k of samples: pW[k] (O, Cg, KH, KW) = its part of dW, pb[k] (O,) float64
    its part of db; dx (N, C, H, W) when need_dx.

        dz  = dy * f'(y) (or routed from the pooled gradient)   (Ho, Wp) per (n, o), flat
        dW[o, c, kh, kw] = sum_n sum_p dz[n, o, p] * xpad[n, c, off + p],  off = kh*dh*Wp + kw*dw
        dxpad[n, c, off + p] += W[o, c, kh, kw] * dz[n, o, p],  dx = its interior

    The sums over p run in lanes (a vector of P partial sums, accumulated over the
    chunk's samples, then folded in a fixed order), so they vectorise."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = Wt.shape
    Og = O // G
    P = (Ho - 1) * Wp + Wo
    HWp = Hp * Wp
    HoWp = Ho * Wp
    n_chunks = pW.shape[0]
    zero = x.dtype.type(0)
    for k in prange(n_chunks):
        n0 = k * chunk
        m = min(N, n0 + chunk) - n0
        xp = np.empty((m, C * HWp), x.dtype)
        dz = np.empty((m, O * HoWp), x.dtype)
        bl = np.zeros(HoWp)                                   # float64 lanes for db
        for j in range(m):
            for c in range(C):
                _pad_plane(x[n0 + j, c], xp[j, c * HWp:(c + 1) * HWp], pt, pl, Wp)
        for o in range(O):
            for j in range(m):
                dzp = dz[j, o * HoWp:(o + 1) * HoWp]
                _dz_plane(mode, n0 + j, o, dy, y, idx, dy.shape[3], code, slope, dzp, Wp, Ho, Wo)
            _fill(bl, 0.0)
            for j in range(m):
                dzp = dz[j, o * HoWp:]
                for i in range(P):
                    bl[i] += dzp[i]
            pb[k, o] = _fold_sum(bl, P)
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
        if need_dx:
            dxp = np.empty(C * HWp, x.dtype)
            for j in range(m):
                _fill(dxp, zero)
                for o in range(O):
                    g = o // Og
                    for c in range(Cg):
                        base = (g * Cg + c) * HWp
                        for kh in range(KH):
                            for kw in range(KW):
                                _axpy(dxp[base + kh * dh * Wp + kw * dw:], dz[j, o * HoWp:], Wt[o, c, kh, kw], P)
                for c in range(C):
                    d = dx[n0 + j, c]
                    for h in range(H):
                        r = dxp[c * HWp + (h + pt) * Wp + pl:]
                        for w in range(W):
                            d[h, w] = r[w]


# ---------------------------------------------------------------------------
# im2col / col2im in the GEMM's layout: cols (G, Cg*KH*KW, N*Ho*Wo), so that one
# GEMM per group, W_g (Og, CK) @ cols_g (CK, N*L), gives the whole batch.
# ---------------------------------------------------------------------------
@njit(cache=True, parallel=_PAR)
def _im2col(x, cols, G, KH, KW, sh, sw, pt, pl, dh, dw, Hp, Wp, Ho, Wo):
    N, C, H, W = x.shape
    Cg = C // G
    L = Ho * Wo
    HWp = Hp * Wp
    padded = pt > 0 or pl > 0 or Hp > H or Wp > W
    for n in prange(N):
        xp = np.empty(HWp, x.dtype)
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
                        dst = cols[g, (c * KH + kh) * KW + kw, n * L:]
                        for ho in range(Ho):
                            s = src[(ho * sh + kh * dh) * Wp + kw * dw:]
                            d = dst[ho * Wo:]
                            if sw == 1:
                                for wo in range(Wo):
                                    d[wo] = s[wo]
                            else:
                                for wo in range(Wo):
                                    d[wo] = s[wo * sw]


@njit(cache=True, parallel=_PAR)
def _col2im(dcols, dx, G, KH, KW, sh, sw, pt, pl, dh, dw, Hp, Wp, Ho, Wo):
    """dx (N, C, H, W) = sum of dcols (G, CK, N*L) over the taps that read each input."""
    N, C, H, W = dx.shape
    Cg = C // G
    L = Ho * Wo
    HWp = Hp * Wp
    zero = dx.dtype.type(0)
    for n in prange(N):
        xp = np.empty(HWp, dx.dtype)
        for g in range(G):
            for c in range(Cg):
                ci = g * Cg + c
                _fill(xp, zero)
                for kh in range(KH):
                    for kw in range(KW):
                        src = dcols[g, (c * KH + kh) * KW + kw, n * L:]
                        for ho in range(Ho):
                            d = xp[(ho * sh + kh * dh) * Wp + kw * dw:]
                            s = src[ho * Wo:]
                            if sw == 1:
                                for wo in range(Wo):
                                    d[wo] += s[wo]
                            else:
                                for wo in range(Wo):
                                    d[wo * sw] += s[wo]
                dd = dx[n, ci]
                for h in range(H):
                    r = xp[(h + pt) * Wp + pl:]
                    for w in range(W):
                        dd[h, w] = r[w]


@njit(cache=True, parallel=_PAR)
def _gemm_epilogue(z, b, has_bias, code, slope, pool, Ho, Wo, y, pp, py, pidx):
    """From the GEMM's z (O, N*L): y (N, O, Ho, Wo) = act(z + b), or with ``pool``
    py, pidx (N, O, Hq, Wq) = its max-pool (pp = pool parameters)."""
    N, O = pidx.shape[0], pidx.shape[1]
    L = Ho * Wo
    zero, one = z.dtype.type(0), z.dtype.type(1)
    for n in prange(N):
        buf = np.empty(L, z.dtype)
        for o in range(O):
            bo = b[o] if has_bias else zero
            src = z[o, n * L:]
            dst = buf if pool else y[n, o].reshape(L)
            _bias_act(src, dst, L, bo, code, slope)
            if pool:
                _pool_any(buf, Wo, Ho, Wo, py[n, o], pidx[n, o], pp)


@njit(cache=True, parallel=_PAR)
def _gemm_dz(mode, dy, y, idx, code, slope, dz, db):
    """dz (O, N, Ho, Wo) in the GEMM's layout (see _dz_plane for ``mode``) and db (O,)
    float64 (one thread per channel, samples in order: the same sums for any number
    of threads)."""
    O, N, Ho, Wo = dz.shape
    L = Ho * Wo
    Wq = dy.shape[3]
    for o in prange(O):
        bl = np.zeros(L)
        for n in range(N):
            dzp = dz[o, n].reshape(L)
            _dz_plane(mode, n, o, dy, y, idx, Wq, code, slope, dzp, Wo, Ho, Wo)
            for i in range(L):
                bl[i] += dzp[i]
        db[o] = _fold_sum(bl, L)


@njit(cache=True)
def _sum_chunks(parts, out, acc):
    """out (M,) (+)= sum over parts (K, M), parts added in order."""
    K, M = parts.shape
    for j in range(M):
        s = parts[0, j]
        for k in range(1, K):
            s += parts[k, j]
        out[j] = out[j] + s if acc else s


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
    """A work array reused between calls (one set per Python thread)."""
    store = getattr(_local, "store", None)
    if store is None:
        store = _local.store = {}
    key = (name, np.dtype(dtype))
    a = store.get(key)
    size = int(np.prod(shape))
    if a is None or a.size < size:
        a = store[key] = np.empty(size, dtype)
    return a[:size].reshape(shape)


class _Geo:
    """Shapes of one convolution."""

    def __init__(self, x, W, stride, padding, dilation, groups):
        if x.ndim != 4 or W.ndim != 4:
            raise ValueError(f"conv2d: x must be (N, C, H, W) and W (O, C/groups, KH, KW), got shapes "
                             f"{x.shape} and {W.shape}")
        self.N, self.C, self.H, self.W = x.shape
        self.O, self.Cg, self.KH, self.KW = W.shape
        self.G = G = int(groups)
        if G < 1 or self.O % G or self.Cg * G != self.C:
            raise ValueError(f"conv2d: x has {self.C} channels and W has shape {W.shape} with groups={groups}: "
                             f"need C = groups * W.shape[1] and O divisible by groups")
        (sh, sw), ((pt, pb), (pl, pr)), (dh, dw) = stride, padding, dilation
        self.sh, self.sw, self.pt, self.pl, self.dh, self.dw = (int(v) for v in (sh, sw, pt, pl, dh, dw))
        self.Ho = (self.H + pt + pb - dh * (self.KH - 1) - 1) // sh + 1
        self.Wo = (self.W + pl + pr - dw * (self.KW - 1) - 1) // sw + 1
        if self.Ho < 1 or self.Wo < 1:
            raise ValueError(f"conv2d: input {self.H}x{self.W} with padding {padding} is smaller than the "
                             f"(dilated) kernel")
        # padded plane: big enough for every read (the bottom/right padding, and the
        # flat kernels' reads up to (Ho - 1 + (KH - 1) dh) rows)
        self.Hp = max(self.H + pt + pb, (self.Ho - 1) * self.sh + (self.KH - 1) * self.dh + 1)
        self.Wp = max(self.W + pl + pr, (self.Wo - 1) * self.sw + (self.KW - 1) * self.dw + 1)
        self.Og, self.CK, self.L = self.O // G, self.Cg * self.KH * self.KW, self.Ho * self.Wo

    @property
    def direct(self):
        if self.sh != 1 or self.sw != 1:
            return False
        if _FORCE is not None:
            return _FORCE == "direct"
        return self.CK <= _DIRECT_MAX_CK


def _pool_params(kernel_size, stride, padding, dilation):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    return tuple(int(v) for v in (kh, kw, sh, sw, ph, pw, dh, dw))


def _pool_out(H, W, pp, ceil_mode):
    kh, kw, sh, sw, ph, pw, dh, dw = pp

    def out(size, k, s, p, d):
        span = size + 2 * p - d * (k - 1) - 1
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= size + p:
            o -= 1
        return o
    return out(H, kh, sh, ph, dh), out(W, kw, sw, pw, dw)


def _conv_forward(x, W, b, stride, padding, dilation, groups, act, slope, pool_args):
    _same_dtype(x, W, b)
    x, W = _c(x), _c(W)
    g = _Geo(x, W, stride, padding, dilation, groups)
    t = x.dtype.type
    code = ACTIVATION_CODES[act]
    has_bias = b is not None
    bias = _c(b) if has_bias else np.zeros(1, x.dtype)
    pool = pool_args is not None
    if pool:
        pp = _pool_params(*pool_args[:4])
        Hq, Wq = _pool_out(g.Ho, g.Wo, pp, pool_args[4])
        py = np.empty((g.N, g.O, Hq, Wq), x.dtype)
        pidx = np.empty((g.N, g.O, Hq, Wq), np.int64)
        y = np.empty((g.N, g.O, 1, 1), x.dtype)           # not written
    else:
        pp = (1, 1, 1, 1, 0, 0, 1, 1)
        y = np.empty((g.N, g.O, g.Ho, g.Wo), x.dtype)
        py, pidx = y, np.empty((g.N, g.O, 1, 1), np.int64)
    if g.direct:
        _direct_forward(x, W, bias, has_bias, g.G, g.pt, g.pl, g.dh, g.dw, g.Hp, g.Wp, g.Ho, g.Wo, code,
                        t(slope), pool, y, pp, py, pidx)
    else:
        cols = _scratch("cols", (g.G, g.CK, g.N * g.L), x.dtype)
        _im2col(x, cols, g.G, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, g.Hp, g.Wp, g.Ho, g.Wo)
        z = _scratch("z", (g.G, g.Og, g.N * g.L), x.dtype)
        np.matmul(W.reshape(g.G, g.Og, g.CK), cols, out=z)   # (G, Og, CK) @ (G, CK, N*L) -> (G, Og, N*L)
        _gemm_epilogue(z.reshape(g.O, g.N * g.L), bias, has_bias, code, t(slope), pool, g.Ho, g.Wo, y, pp, py,
                       pidx)
    return (py, pidx) if pool else y


def conv2d_act_forward(x, W, b, stride, padding, dilation, groups, act="identity", slope=0.0):
    """y (N, O, Ho, Wo) = act(conv(x, W) + b); see numpy_ops.conv2d_act_forward."""
    return _conv_forward(x, W, b, stride, padding, dilation, groups, act, slope, None)


def conv2d_act_pool_forward(x, W, b, stride, padding, dilation, groups, act, slope, kernel_size, pool_stride,
                            pool_padding, pool_dilation, ceil_mode):
    """(p, indices) = max_pool2d_forward(conv2d_act_forward(x, ...), kernel_size, ...), without
    keeping the convolution's output: p, indices (N, O, Hq, Wq), indices into the (Ho, Wo) plane."""
    return _conv_forward(x, W, b, stride, padding, dilation, groups, act, slope,
                         (kernel_size, pool_stride, pool_padding, pool_dilation, ceil_mode))


def _conv_backward(mode, dy, y, idx, x, W, gW, gb, stride, padding, dilation, groups, act, slope, need_dx,
                   acc_w, acc_b):
    _same_dtype(dy, x, W, y, gW, gb)
    dy, x, W = _c(dy), _c(x), _c(W)
    g = _Geo(x, W, stride, padding, dilation, groups)
    code = ACTIVATION_CODES[act]
    t = x.dtype.type
    if mode == 0 and dy.shape != (g.N, g.O, g.Ho, g.Wo):
        raise ValueError(f"conv2d backward: dy has shape {dy.shape}, expected {(g.N, g.O, g.Ho, g.Wo)}")
    yy = _c(y) if (y is not None and (code != _IDENTITY or mode == 1)) else dy
    if not gW.flags.c_contiguous:
        raise ValueError("conv2d backward: gW must be C-contiguous (it is updated in place)")
    dx = np.empty_like(x) if need_dx else None
    direct = g.direct and np.isfinite(x).all() and (not need_dx or np.isfinite(W).all())
    if direct:
        n_chunks = -(-g.N // _CHUNK)
        pW = np.empty((n_chunks, g.O, g.Cg, g.KH, g.KW), x.dtype)
        pb = np.empty((n_chunks, g.O))
        _direct_backward(mode, dy, yy, idx, code, t(slope), x, W, g.G, g.pt, g.pl, g.dh, g.dw, g.Hp, g.Wp,
                         g.Ho, g.Wo, bool(need_dx), dx if need_dx else x, pW, pb, _CHUNK)
        _sum_chunks(pW.reshape(n_chunks, -1), gW.reshape(-1), bool(acc_w))
        db = pb.sum(axis=0) if n_chunks > 1 else pb[0]
    else:
        dz = _scratch("dz", (g.O, g.N, g.Ho, g.Wo), x.dtype)
        db = np.empty(g.O)
        _gemm_dz(mode, dy, yy, idx, code, t(slope), dz, db)
        cols = _scratch("cols", (g.G, g.CK, g.N * g.L), x.dtype)
        _im2col(x, cols, g.G, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, g.Hp, g.Wp, g.Ho, g.Wo)
        dzg = dz.reshape(g.G, g.Og, g.N * g.L)
        colsT = cols.transpose(0, 2, 1)                          # (G, N*L, CK)
        if acc_w:
            gW += np.matmul(dzg, colsT).reshape(gW.shape)
        else:
            np.matmul(dzg, colsT, out=gW.reshape(g.G, g.Og, g.CK))   # (G, Og, NL) @ (G, NL, CK)
        if need_dx:
            np.matmul(W.reshape(g.G, g.Og, g.CK).transpose(0, 2, 1), dzg, out=cols)   # (G, CK, Og) @ (G, Og, NL)
            _col2im(cols, dx, g.G, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, g.Hp, g.Wp, g.Ho, g.Wo)
    if gb is not None:
        if acc_b:
            gb += db.astype(x.dtype)
        else:
            gb[...] = db
    return dx


def conv2d_act_backward(dy, x, W, y, gW, gb, stride, padding, dilation, groups, act="identity", slope=0.0,
                        need_dx=True, acc_w=True, acc_b=True):
    """Backward of conv2d_act_forward; see numpy_ops.conv2d_act_backward."""
    return _conv_backward(0, dy, y, _I64, x, W, gW, gb, stride, padding, dilation, groups, act, slope, need_dx,
                          acc_w, acc_b)


def conv2d_act_pool_backward(dp, indices, p, x, W, gW, gb, stride, padding, dilation, groups, act, slope,
                             kernel_size, pool_stride, pool_padding, pool_dilation, ceil_mode, need_dx=True,
                             acc_w=True, acc_b=True):
    """Backward of conv2d_act_pool_forward: dp, indices, p (N, O, Hq, Wq) (p: the pooled output)."""
    _same_dtype(dp, p)
    idx = indices if indices.dtype == np.int64 and indices.flags.c_contiguous else np.ascontiguousarray(
        indices, np.int64)
    return _conv_backward(1, _c(dp), _c(p), idx, x, W, gW, gb, stride, padding, dilation, groups, act, slope,
                          need_dx, acc_w, acc_b)


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    """(y, indices) (N, C, Ho, Wo); see numpy_ops.max_pool2d_forward."""
    _same_dtype(x)
    x = _c(x)
    pp = _pool_params(kernel_size, stride, padding, dilation)
    Ho, Wo = _pool_out(x.shape[2], x.shape[3], pp, ceil_mode)
    N, C = x.shape[:2]
    y = np.empty((N, C, Ho, Wo), x.dtype)
    idx = np.empty((N, C, Ho, Wo), np.int64)
    _max_pool_forward(x, y, idx, pp)
    return y, idx


def max_pool2d_backward(dy, indices, in_shape):
    """dx (in_shape): dy routed to the arg-max of each window."""
    _same_dtype(dy)
    dy = _c(dy)
    idx = indices if indices.dtype == np.int64 and indices.flags.c_contiguous else np.ascontiguousarray(
        indices, np.int64)
    dx = np.empty(tuple(in_shape), dy.dtype)
    _max_pool_backward(dy, idx, dx)
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
