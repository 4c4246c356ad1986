"""Numba kernels for :mod:`qsnn_deploy.nn.fused_lif` on the CPU: the forward recurrence and its
hand-written backward pass, one sample at a time through all T steps (its C·S states stay in cache,
and each step reads and writes one contiguous ``[C, S]`` block), samples spread over the cores.

Arrays are laid out ``[T or 1, N, C, S]`` (S = pixels per channel, 1 for dense layers), float64
except the spikes (float32) and the stored states (float32 when B_v ≤ 25, else float64). The forward
pass does the very float64 operations of the step-by-step ``QLeaky.forward`` on integer-valued
numbers (IEEE arithmetic, no fastmath, ``rint`` = round half to even, ``trunc``; the one change,
``u·2**-F`` for ``u / 2**F``, is exact), so its spikes and states are identical to it. The backward
pass sums the same gradient terms in another order (per pixel over the steps, then over the plane)
and multiplies by ``1/sigma`` where the step-by-step graph divides: equal to rounding error. It
recomputes the integer current J only where a state sits at the limit ``±(2**(B_v-1) - 1)``, the one
place it needs it (to tell a state that landed on the limit, whose gradient passes, from one that
was clipped, whose gradient does not). The loops over a plane's pixels are branch-free, so they run
as SIMD instructions: ``bench/bench_train.py`` measures what this buys.
"""
from __future__ import annotations

import numpy as np

from ..numba_support import HAVE_NUMBA, leave_start_method_unset, numba

__all__ = ["HAVE_NUMBA", "forward", "backward"]

if HAVE_NUMBA:
    @numba.njit(inline="always")
    def _integer_current(row, direct, bb, sg, j):
        """j = round(I) (``direct``) or round((I - bias) / sigma), half to even, for one plane's pixels."""
        if direct:
            for s in range(j.shape[0]):
                j[s] = np.rint(row[s])
        else:
            for s in range(j.shape[0]):
                j[s] = np.rint((row[s] - bb) / sg)

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _forward(cur, static, direct, steps, scale, sig, bia, th, bv, dv, zero_reset, vmax, spikes, states, sat):
        # one sample at a time (samples spread over the cores): its C·S states stay in cache through all
        # T steps, and each step reads and writes one contiguous [C, S] block; the loops over a plane's
        # pixels are branch-free (selects), so they run as SIMD instructions
        n_batch, n_ch, n_pix = spikes.shape[1], spikes.shape[2], spikes.shape[3]
        inv_scale = 1.0 / scale  # scale = 2**F: u·2**-F is u / 2**F exactly
        for n in numba.prange(n_batch):
            count = 0
            v = np.zeros((n_ch, n_pix), dtype=np.float64)
            j = np.empty((n_ch, n_pix), dtype=np.float64)
            states[0, n] = 0.0
            for t in range(steps):
                if t == 0 or not static:
                    xr = cur[0 if static else t, n]
                    for c in range(n_ch):
                        _integer_current(xr[c], direct, bia[c], sig[c], j[c])
                for c in range(n_ch):
                    sg = sig[c]
                    tt = th[c]
                    b0 = bv[c]
                    dd = dv[c]
                    vc = v[c]
                    jc = j[c]
                    st = states[t + 1, n, c]
                    sp = spikes[t, n, c]
                    for s in range(n_pix):
                        x = vc[s]
                        r = 1.0 if x > tt else 0.0
                        if zero_reset:
                            x = np.trunc((1.0 - r) * x * dd / 4096.0) + jc[s] * scale + b0
                        else:
                            x = np.trunc(x * dd / 4096.0) + jc[s] * scale + b0 - r * tt
                        count += (x > vmax) + (x < -vmax)
                        x = vmax if x > vmax else x
                        x = -vmax if x < -vmax else x
                        vc[s] = x
                        st[s] = x
                        sp[s] = 1.0 if (x - tt) * sg * inv_scale > 0.0 else 0.0
            sat[n] = count

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _backward(cur, static, direct, steps, scale, sig, bia, th, bv, dv, zero_reset, vmax, slope, states, gspk,
                  gcur, gpar_nc):
        # one sample at a time, as the forward pass; per-pixel partial sums of the parameter gradients
        # (summed over each plane at the end), so the loops over the pixels carry no float reduction
        n_batch, n_ch, n_pix = gspk.shape[1], gspk.shape[2], gspk.shape[3]
        inv_scale = 1.0 / scale
        for n in numba.prange(n_batch):
            acc = np.zeros((n_ch, 5, n_pix), dtype=np.float64)  # sigma, bias, theta, b, d
            gv = np.zeros((n_ch, n_pix), dtype=np.float64)
            gj_static = np.zeros((n_ch, n_pix), dtype=np.float64)
            for t in range(steps - 1, -1, -1):
                xr = cur[0 if static else t, n]
                for c in range(n_ch):
                    sg = sig[c]
                    bb = bia[c]
                    tt = th[c]
                    b0 = bv[c]
                    dd = dv[c]
                    inv_sg = 1.0 / sg
                    a_sig = acc[c, 0]
                    a_bias = acc[c, 1]
                    a_th = acc[c, 2]
                    a_b = acc[c, 3]
                    a_d = acc[c, 4]
                    gvc = gv[c]
                    gjs = gj_static[c]
                    xc = xr[c]
                    st1 = states[t + 1, n, c]
                    st0 = states[t, n, c]
                    gs = gspk[t, n, c]
                    gc = gcur[0 if static else t, n, c]
                    for s in range(n_pix):
                        vt = np.float64(st1[s])
                        vp = np.float64(st0[s])
                        u = (vt - tt) * sg * inv_scale
                        w = slope * abs(u) + 1.0
                        gu = np.float64(gs[s]) / (w * w)
                        gvt = gvc[s] + gu * sg * inv_scale
                        a_sig[s] += gu * (vt - tt) * inv_scale
                        a_th[s] -= gu * sg * inv_scale
                        r = 1.0 if vp > tt else 0.0
                        kept = (1.0 - r) * vp if zero_reset else vp
                        gpre = gvt
                        if not abs(vt) < vmax:  # at the limit (or NaN): was v_t clipped? (rare: J only here)
                            jj = np.rint(xc[s]) if direct else np.rint((xc[s] - bb) / sg)
                            pre = np.trunc(kept * dd / 4096.0) + jj * scale + b0
                            if not zero_reset:
                                pre -= r * tt
                            gpre = gvt if abs(pre) <= vmax else 0.0
                        a_b[s] += gpre
                        a_d[s] += gpre * kept / 4096.0
                        if zero_reset:
                            gvc[s] = gpre * dd / 4096.0 * (1.0 - r)
                        else:
                            a_th[s] -= gpre * r
                            gvc[s] = gpre * dd / 4096.0
                        gj = gpre * scale
                        if static:
                            gjs[s] += gj
                        elif direct:
                            gc[s] = gj
                        else:
                            gi = gj * inv_sg
                            gc[s] = gi
                            a_bias[s] -= gi
                            a_sig[s] -= gi * (xc[s] - bb) * inv_sg
            for c in range(n_ch):
                if static:
                    sg = sig[c]
                    bb = bia[c]
                    gc = gcur[0, n, c]
                    xc = cur[0, n, c]
                    for s in range(n_pix):
                        if direct:
                            gc[s] = gj_static[c, s]
                        else:
                            gi = gj_static[c, s] / sg
                            gc[s] = gi
                            acc[c, 1, s] -= gi
                            acc[c, 0, s] -= gi * (xc[s] - bb) / sg
                for p in range(5):
                    gpar_nc[n, p, c] = acc[c, p].sum()
else:  # pragma: no cover - without Numba the torch-ops path runs
    _forward = _backward = _integer_current = None


def _threads() -> int:
    """As many Numba threads as torch uses (``torch.set_num_threads`` / OMP_NUM_THREADS govern both)."""
    import torch

    return max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))


def forward(cur: np.ndarray, static: bool, direct: bool, steps: int, scale: float, params: tuple, zero_reset: bool, vmax: float,
            state_dtype) -> tuple[np.ndarray, np.ndarray, int]:
    """``cur`` float64 [T or 1, N, C, S]: currents in membrane units, or (``direct``) the integer
    currents J themselves (rounded half to even, as J = round(I) with I the dropout-scaled integer current); ``params`` = (sigma, bias, theta, b, d), float64 [C] each.
    Returns (spikes float32 [T, N, C, S], states [T+1, N, C, S], number of clipped states)."""
    _, n, c, s = cur.shape
    spikes = np.empty((steps, n, c, s), dtype=np.float32)
    states = np.empty((steps + 1, n, c, s), dtype=state_dtype)
    sat = np.zeros(n, dtype=np.int64)
    with leave_start_method_unset():
        numba.set_num_threads(_threads())
        _forward(cur, static, direct, steps, scale, *params, zero_reset, vmax, spikes, states, sat)
    return spikes, states, int(sat.sum())


def backward(cur: np.ndarray, static: bool, direct: bool, steps: int, scale: float, params: tuple, zero_reset: bool, vmax: float,
             slope: float, states: np.ndarray, grad_spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients: (d/d cur, same shape as ``cur``; [5, C] for sigma, bias, theta, b, d)."""
    gcur = np.zeros(cur.shape, dtype=np.float64)
    gpar_nc = np.zeros((cur.shape[1], 5, cur.shape[2]), dtype=np.float64)  # per sample: no race between threads
    with leave_start_method_unset():
        numba.set_num_threads(_threads())
        _backward(cur, static, direct, steps, scale, *params, zero_reset, vmax, slope, states, grad_spikes, gcur,
                  gpar_nc)
    return gcur, gpar_nc.sum(axis=0)
