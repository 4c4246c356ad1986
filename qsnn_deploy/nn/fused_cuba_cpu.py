"""Numba kernels for :mod:`qsnn_deploy.nn.fused_cuba` on the CPU: the CUBA forward recurrence (current
``i`` and membrane ``v``) and its hand-written backward pass, one (sample, channel) plane at a time
through all T steps (its states stay in cache), planes spread over the cores.

Arrays are laid out ``[T or 1, N, C, S]`` (S = pixels per channel, 1 for dense layers), float64
except the spikes (float32) and the stored states (float32 when both B_i and B_v are ≤ 25, so every
state is an integer below 2**24 that float32 holds exactly; else float64). The forward pass does the
very float64 operations of the step-by-step ``QSynaptic.forward`` on integer-valued numbers (IEEE
arithmetic, no fastmath, ``rint`` = round half to even, ``trunc``), so its spikes and states are
identical to it; the backward pass sums the same gradient terms in another order (equal to rounding
error). See :mod:`qsnn_deploy.nn.fused_cuba` for the equations.
"""
from __future__ import annotations

import numpy as np

from ..numba_support import HAVE_NUMBA, leave_start_method_unset, numba

__all__ = ["HAVE_NUMBA", "forward", "backward", "N_PARAMS"]

#: gradients returned per channel, in this order: sigma, bias, theta, b, a (current decay), d (membrane decay)
N_PARAMS = 6

if HAVE_NUMBA:
    @numba.njit(parallel=True, cache=True, nogil=True)
    def _forward(cur, static, direct, steps, scale, sig, bia, th, bv, av, dv, zero_reset, imax, vmax, spikes,
                 istates, vstates, sat):
        n_batch, n_ch, n_pix = spikes.shape[1], spikes.shape[2], spikes.shape[3]
        for k in numba.prange(n_batch * n_ch):
            n = k // n_ch
            c = k % n_ch
            sg = sig[c]
            bb = bia[c]
            tt = th[c]
            b0 = bv[c]
            aa = av[c]
            dd = dv[c]
            count = 0
            i = np.zeros(n_pix, dtype=np.float64)
            v = np.zeros(n_pix, dtype=np.float64)
            j_static = np.empty(n_pix, dtype=np.float64)
            if static:
                for s in range(n_pix):
                    j_static[s] = np.rint(cur[0, n, c, s]) if direct else np.rint((cur[0, n, c, s] - bb) / sg)
            for s in range(n_pix):
                istates[0, n, c, s] = 0.0
                vstates[0, n, c, s] = 0.0
            for t in range(steps):
                for s in range(n_pix):
                    if static:
                        j = j_static[s]
                    elif direct:
                        j = np.rint(cur[t, n, c, s])
                    else:
                        j = np.rint((cur[t, n, c, s] - bb) / sg)
                    y = np.trunc(i[s] * aa / 4096.0) + j * scale
                    if y > imax:
                        y = imax
                        count += 1
                    elif y < -imax:
                        y = -imax
                        count += 1
                    i[s] = y
                    istates[t + 1, n, c, s] = y
                    x = v[s]
                    r = 1.0 if x > tt else 0.0
                    if zero_reset:
                        x = np.trunc((1.0 - r) * x * dd / 4096.0) + y + b0
                    else:
                        x = np.trunc(x * dd / 4096.0) + y + b0 - r * tt
                    if x > vmax:
                        x = vmax
                        count += 1
                    elif x < -vmax:
                        x = -vmax
                        count += 1
                    v[s] = x
                    vstates[t + 1, n, c, s] = x
                    spikes[t, n, c, s] = 1.0 if (x - tt) * sg / scale > 0.0 else 0.0
            sat[k] = count

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _backward(cur, static, direct, steps, scale, sig, bia, th, bv, av, dv, zero_reset, imax, vmax, slope,
                  istates, vstates, gspk, gcur, gpar_nc):
        n_batch, n_ch, n_pix = gspk.shape[1], gspk.shape[2], gspk.shape[3]
        for k in numba.prange(n_batch * n_ch):
            n = k // n_ch
            c = k % n_ch
            sg = sig[c]
            bb = bia[c]
            tt = th[c]
            b0 = bv[c]
            aa = av[c]
            dd = dv[c]
            g_sig = 0.0
            g_bias = 0.0
            g_th = 0.0
            g_b = 0.0
            g_a = 0.0
            g_d = 0.0
            gv = np.zeros(n_pix, dtype=np.float64)  # dL/dv_t arriving from step t+1
            gi = np.zeros(n_pix, dtype=np.float64)  # dL/di_t arriving from step t+1
            gj_static = np.zeros(n_pix, dtype=np.float64)
            for t in range(steps - 1, -1, -1):
                for s in range(n_pix):
                    vt = np.float64(vstates[t + 1, n, c, s])
                    vp = np.float64(vstates[t, n, c, s])
                    it = np.float64(istates[t + 1, n, c, s])
                    ip = np.float64(istates[t, n, c, s])
                    # z_t = H(u_t), u_t = (v_t - theta)·sigma/2**F: fast sigmoid
                    u = (vt - tt) * sg / scale
                    gu = np.float64(gspk[t, n, c, s]) / (slope * abs(u) + 1.0) ** 2
                    gvt = gv[s] + gu * sg / scale
                    g_sig += gu * (vt - tt) / scale
                    g_th -= gu * sg / scale
                    # v_t = clip(trunc(kept·d/4096) + i_t + b - r·theta)
                    r = 1.0 if vp > tt else 0.0
                    kept = (1.0 - r) * vp if zero_reset else vp
                    pre = np.trunc(kept * dd / 4096.0) + it + b0
                    if not zero_reset:
                        pre -= r * tt
                    gpre = gvt if abs(pre) <= vmax else 0.0
                    g_b += gpre
                    g_d += gpre * kept / 4096.0
                    if zero_reset:
                        gv[s] = gpre * dd / 4096.0 * (1.0 - r)
                    else:
                        g_th -= gpre * r
                        gv[s] = gpre * dd / 4096.0
                    # i_t = clip(trunc(i_{t-1}·a/4096) + J_t·2**F)
                    git = gi[s] + gpre
                    x = cur[0, n, c, s] if static else cur[t, n, c, s]
                    j = np.rint(x) if direct else np.rint((x - bb) / sg)
                    pre_i = np.trunc(ip * aa / 4096.0) + j * scale
                    gpi = git if abs(pre_i) <= imax else 0.0
                    g_a += gpi * ip / 4096.0
                    gi[s] = gpi * aa / 4096.0
                    gj = gpi * scale
                    if static:
                        gj_static[s] += gj
                    elif direct:
                        gcur[t, n, c, s] = gj
                    else:
                        g_in = gj / sg
                        gcur[t, n, c, s] = g_in
                        g_bias -= g_in
                        g_sig -= g_in * (x - bb) / sg
            if static:
                for s in range(n_pix):
                    if direct:
                        gcur[0, n, c, s] = gj_static[s]
                    else:
                        g_in = gj_static[s] / sg
                        gcur[0, n, c, s] = g_in
                        g_bias -= g_in
                        g_sig -= g_in * (cur[0, n, c, s] - bb) / sg
            gpar_nc[n, 0, c] = g_sig
            gpar_nc[n, 1, c] = g_bias
            gpar_nc[n, 2, c] = g_th
            gpar_nc[n, 3, c] = g_b
            gpar_nc[n, 4, c] = g_a
            gpar_nc[n, 5, c] = g_d


def _threads() -> int:
    """As many Numba threads as torch uses (``torch.set_num_threads`` / OMP_NUM_THREADS govern both)."""
    import torch

    return max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))


def forward(cur: np.ndarray, static: bool, direct: bool, steps: int, scale: float, params: tuple, zero_reset: bool,
            imax: float, vmax: float, state_dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``cur`` float64 [T or 1, N, C, S]: currents in membrane units, or (``direct``) the integer currents J
    themselves (rounded half to even); ``params`` = (sigma, bias, theta, b, a, d), float64 [C] each;
    ``imax``/``vmax`` the current and membrane limits (state units).
    Returns (spikes float32 [T, N, C, S], i states and v states [T+1, N, C, S], number of clipped values)."""
    _, n, c, s = cur.shape
    spikes = np.empty((steps, n, c, s), dtype=np.float32)
    istates = np.empty((steps + 1, n, c, s), dtype=state_dtype)
    vstates = np.empty((steps + 1, n, c, s), dtype=state_dtype)
    sat = np.zeros(n * c, dtype=np.int64)
    with leave_start_method_unset():
        numba.set_num_threads(_threads())
        _forward(cur, static, direct, steps, scale, *params, zero_reset, imax, vmax, spikes, istates, vstates, sat)
    return spikes, istates, vstates, int(sat.sum())


def backward(cur: np.ndarray, static: bool, direct: bool, steps: int, scale: float, params: tuple, zero_reset: bool,
             imax: float, vmax: float, slope: float, istates: np.ndarray, vstates: np.ndarray,
             grad_spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients: (d/d cur, same shape as ``cur``; [6, C] for sigma, bias, theta, b, a, d)."""
    gcur = np.zeros(cur.shape, dtype=np.float64)
    gpar_nc = np.zeros((cur.shape[1], N_PARAMS, cur.shape[2]), dtype=np.float64)  # per sample: no race
    with leave_start_method_unset():
        numba.set_num_threads(_threads())
        _backward(cur, static, direct, steps, scale, *params, zero_reset, imax, vmax, slope, istates, vstates,
                  grad_spikes, gcur, gpar_nc)
    return gcur, gpar_nc.sum(axis=0)
