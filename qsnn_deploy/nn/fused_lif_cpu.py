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

from typing import TYPE_CHECKING

import numpy as np

from ..numba_support import HAVE_NUMBA, cached_kernel, leave_start_method_unset, numba

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["HAVE_NUMBA", "forward", "backward"]

if HAVE_NUMBA:
    # ---------------------------------------------- per-neuron pieces (inlined; fused_cuba_cpu uses them too)
    @numba.njit(inline="always")
    def _integer_current(row, direct, bb, sg, j):
        """j = round(I) (``direct``) or round((I - bias) / sigma), half to even, for one plane's pixels."""
        if direct:
            for s in range(j.shape[0]):
                j[s] = np.rint(row[s])
        else:
            for s in range(j.shape[0]):
                j[s] = np.rint((row[s] - bb) / sg)

    @numba.njit(inline="always")
    def _membrane(x, inp, tt, b0, dd, zero_reset):
        """v_t before its clip, from v_{t-1} = ``x`` and the input ``inp`` (J·2**F; CUBA: i_t)."""
        r = 1.0 if x > tt else 0.0
        if zero_reset:
            return np.trunc((1.0 - r) * x * dd / 4096.0) + inp + b0
        return np.trunc(x * dd / 4096.0) + inp + b0 - r * tt

    @numba.njit(inline="always")
    def _clip(x, lim):
        """(``x`` clipped to ±``lim``, 1 if it was clipped else 0), as selects (SIMD-friendly)."""
        over = (x > lim) + (x < -lim)
        x = lim if x > lim else x
        return (-lim if x < -lim else x), over

    @numba.njit(inline="always")
    def _spike(x, tt, sg, inv_scale):
        """z_t = [u_t > 0], u_t = (v_t - theta)·sigma·2**-F."""
        return 1.0 if (x - tt) * sg * inv_scale > 0.0 else 0.0

    @numba.njit(inline="always")
    def _through_spike(s, g_spike, vt, tt, sg, inv_scale, slope, gvc, a_sig, a_th):
        """Gradient reaching v_t: from step t+1 (``gvc[s]``) plus the spike's, through the fast sigmoid
        dz/du = 1 / (k·|u| + 1)**2; adds the spike's terms to sigma's and theta's partial sums."""
        u = (vt - tt) * sg * inv_scale
        w = slope * abs(u) + 1.0
        gu = g_spike / (w * w)
        a_sig[s] += gu * (vt - tt) * inv_scale
        a_th[s] -= gu * sg * inv_scale
        return gvc[s] + gu * sg * inv_scale

    @numba.njit(inline="always")
    def _into_membrane(s, gpre, vp, tt, dd, zero_reset, gvc, a_th, a_b, a_d):
        """Pass the gradient of the pre-clip v_t to v_{t-1} (into ``gvc[s]``), b, d and theta."""
        r = 1.0 if vp > tt else 0.0
        kept = (1.0 - r) * vp if zero_reset else vp
        a_b[s] += gpre
        a_d[s] += gpre * kept / 4096.0
        if zero_reset:
            gvc[s] = gpre * dd / 4096.0 * (1.0 - r)
        else:
            a_th[s] -= gpre * r
            gvc[s] = gpre * dd / 4096.0

    @numba.njit(inline="always")
    def _into_current(s, gj, x, static, direct, bb, inv_sg, gjs, gc, a_bias, a_sig):
        """Pass the gradient of J_t to the input current: summed over the steps (``static``, see
        :func:`_static_current_grads`), as is (``direct``) or through J = (I - bias)/sigma."""
        if static:
            gjs[s] += gj
        elif direct:
            gc[s] = gj
        else:
            gi = gj * inv_sg
            gc[s] = gi
            a_bias[s] -= gi
            a_sig[s] -= gi * (x - bb) * inv_sg

    @numba.njit(inline="always")
    def _static_current_grads(direct, bb, sg, xc, gjs, gc, a_bias, a_sig):
        """A static input's gradient, once its J gradients are summed over all T steps."""
        for s in range(gc.shape[0]):
            if direct:
                gc[s] = gjs[s]
            else:
                gi = gjs[s] / sg
                gc[s] = gi
                a_bias[s] -= gi
                a_sig[s] -= gi * (xc[s] - bb) / sg

    # ---------------------------------------------- the LIF kernels
    @cached_kernel(parallel=True, nogil=True)
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
                    sg, tt, b0, dd = sig[c], th[c], bv[c], dv[c]
                    vc, jc, st, sp = v[c], j[c], states[t + 1, n, c], spikes[t, n, c]
                    for s in range(n_pix):
                        x, over = _clip(_membrane(vc[s], jc[s] * scale, tt, b0, dd, zero_reset), vmax)
                        count += over
                        vc[s] = x
                        st[s] = x
                        sp[s] = _spike(x, tt, sg, inv_scale)
            sat[n] = count

    @cached_kernel(parallel=True, nogil=True)
    def _backward(cur, static, direct, steps, scale, sig, bia, th, bv, dv, zero_reset, vmax, slope, states, gspk,
                  gcur, gpar_nc):
        # one sample at a time, as the forward pass; per-pixel partial sums of the parameter gradients
        # (summed over each plane at the end), so the loops over the pixels carry no float reduction
        n_batch, n_ch, n_pix = gspk.shape[1], gspk.shape[2], gspk.shape[3]
        inv_scale = 1.0 / scale
        for n in numba.prange(n_batch):
            acc = np.zeros((n_ch, 5, n_pix), dtype=np.float64)  # sigma, bias, theta, b, d
            gv = np.zeros((n_ch, n_pix), dtype=np.float64)  # dL/dv_t arriving from step t+1
            gj_static = np.zeros((n_ch, n_pix), dtype=np.float64)
            for t in range(steps - 1, -1, -1):
                xr = cur[0 if static else t, n]
                for c in range(n_ch):
                    sg, bb, tt, b0, dd = sig[c], bia[c], th[c], bv[c], dv[c]
                    inv_sg = 1.0 / sg
                    a_sig, a_bias, a_th, a_b, a_d = acc[c, 0], acc[c, 1], acc[c, 2], acc[c, 3], acc[c, 4]
                    gvc, gjs, xc = gv[c], gj_static[c], xr[c]
                    st1, st0, gs = states[t + 1, n, c], states[t, n, c], gspk[t, n, c]
                    gc = gcur[0 if static else t, n, c]
                    for s in range(n_pix):
                        vt = np.float64(st1[s])
                        vp = np.float64(st0[s])
                        gpre = _through_spike(s, np.float64(gs[s]), vt, tt, sg, inv_scale, slope, gvc, a_sig, a_th)
                        if not abs(vt) < vmax:  # at the limit (or NaN): was v_t clipped? (J only here)
                            jj = np.rint(xc[s]) if direct else np.rint((xc[s] - bb) / sg)
                            gpre = gpre if abs(_membrane(vp, jj * scale, tt, b0, dd, zero_reset)) <= vmax else 0.0
                        _into_membrane(s, gpre, vp, tt, dd, zero_reset, gvc, a_th, a_b, a_d)
                        _into_current(s, gpre * scale, xc[s], static, direct, bb, inv_sg, gjs, gc, a_bias, a_sig)
            for c in range(n_ch):
                if static:
                    _static_current_grads(direct, bia[c], sig[c], cur[0, n, c], gj_static[c], gcur[0, n, c],
                                          acc[c, 1], acc[c, 0])
                for p in range(5):
                    gpar_nc[n, p, c] = acc[c, p].sum()
else:  # pragma: no cover - without Numba the torch-ops path runs
    _forward = _backward = _integer_current = None
    _membrane = _clip = _spike = _through_spike = _into_membrane = _into_current = _static_current_grads = None


def _threads() -> int:
    """As many Numba threads as torch uses (``torch.set_num_threads`` / OMP_NUM_THREADS govern both)."""
    import torch

    return max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))


def forward(cur: np.ndarray, static: bool, direct: bool, steps: int, scale: float, params: tuple, zero_reset: bool, vmax: float,
            state_dtype: npt.DTypeLike) -> tuple[np.ndarray, np.ndarray, int]:
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
