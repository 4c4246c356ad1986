"""Numba kernels for :mod:`qsnn_deploy.nn.fused_cuba` on the CPU: the CUBA forward recurrence (current
``i`` and membrane ``v``) and its hand-written backward pass, one sample at a time through all T steps
(its states stay in cache, each step reads and writes contiguous ``[C, S]`` blocks), samples spread
over the cores, laid out and vectorised as :mod:`qsnn_deploy.nn.fused_lif_cpu`.

Arrays are laid out ``[T or 1, N, C, S]`` (S = pixels per channel, 1 for dense layers), float64
except the spikes (float32) and the stored states (float32 when both B_i and B_v are ≤ 25, so every
state is an integer below 2**24 that float32 holds exactly; else float64). The forward pass does the
very float64 operations of the step-by-step ``QSynaptic.forward`` on integer-valued numbers (IEEE
arithmetic, no fastmath, ``rint`` = round half to even, ``trunc``; ``u·2**-F`` for ``u / 2**F`` is
exact), so its spikes and states are identical to it. The backward pass sums the same gradient terms
in another order and multiplies by ``1/sigma`` where the graph divides (equal to rounding error); it
looks at the pre-clip ``v_t`` / ``i_t`` only where the state sits at its limit. See
:mod:`qsnn_deploy.nn.fused_cuba` for the equations.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..numba_support import HAVE_NUMBA, cached_kernel, leave_start_method_unset, numba
from .fused_lif_cpu import (_clip, _integer_current, _into_current, _into_membrane, _membrane, _spike,
                            _static_current_grads, _threads, _through_spike)

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["HAVE_NUMBA", "forward", "backward", "N_PARAMS"]

#: gradients returned per channel, in this order: sigma, bias, theta, b, a (current decay), d (membrane decay)
N_PARAMS = 6

if HAVE_NUMBA:
    @numba.njit(inline="always")
    def _current(y, inp, aa):
        """i_t before its clip, from i_{t-1} = ``y`` and J_t·2**F = ``inp``."""
        return np.trunc(y * aa / 4096.0) + inp

    @cached_kernel(parallel=True, nogil=True)
    def _forward(cur, static, direct, steps, scale, sig, bia, th, bv, av, dv, zero_reset, imax, vmax, spikes,
                 istates, vstates, sat):
        # one sample at a time (samples spread over the cores), as fused_lif_cpu._forward
        n_batch, n_ch, n_pix = spikes.shape[1], spikes.shape[2], spikes.shape[3]
        inv_scale = 1.0 / scale  # scale = 2**F: u·2**-F is u / 2**F exactly
        for n in numba.prange(n_batch):
            count = 0
            i = np.zeros((n_ch, n_pix), dtype=np.float64)
            v = np.zeros((n_ch, n_pix), dtype=np.float64)
            j = np.empty((n_ch, n_pix), dtype=np.float64)
            istates[0, n] = 0.0
            vstates[0, n] = 0.0
            for t in range(steps):
                if t == 0 or not static:
                    xr = cur[0 if static else t, n]
                    for c in range(n_ch):
                        _integer_current(xr[c], direct, bia[c], sig[c], j[c])
                for c in range(n_ch):
                    sg, tt, b0, aa, dd = sig[c], th[c], bv[c], av[c], dv[c]
                    ic, vc, jc = i[c], v[c], j[c]
                    ist, vst, sp = istates[t + 1, n, c], vstates[t + 1, n, c], spikes[t, n, c]
                    for s in range(n_pix):
                        y, over_i = _clip(_current(ic[s], jc[s] * scale, aa), imax)
                        x, over_v = _clip(_membrane(vc[s], y, tt, b0, dd, zero_reset), vmax)
                        count += over_i + over_v
                        ic[s] = y
                        ist[s] = y
                        vc[s] = x
                        vst[s] = x
                        sp[s] = _spike(x, tt, sg, inv_scale)
            sat[n] = count

    @cached_kernel(parallel=True, nogil=True)
    def _backward(cur, static, direct, steps, scale, sig, bia, th, bv, av, dv, zero_reset, imax, vmax, slope,
                  istates, vstates, gspk, gcur, gpar_nc):
        # one sample at a time; per-pixel partial sums of the parameter gradients (summed over each plane
        # at the end), as fused_lif_cpu._backward
        n_batch, n_ch, n_pix = gspk.shape[1], gspk.shape[2], gspk.shape[3]
        inv_scale = 1.0 / scale
        for n in numba.prange(n_batch):
            acc = np.zeros((n_ch, N_PARAMS, n_pix), dtype=np.float64)  # sigma, bias, theta, b, a, d
            gv = np.zeros((n_ch, n_pix), dtype=np.float64)  # dL/dv_t arriving from step t+1
            gi = np.zeros((n_ch, n_pix), dtype=np.float64)  # dL/di_t arriving from step t+1
            gj_static = np.zeros((n_ch, n_pix), dtype=np.float64)
            for t in range(steps - 1, -1, -1):
                xr = cur[0 if static else t, n]
                for c in range(n_ch):
                    sg, bb, tt, b0, aa, dd = sig[c], bia[c], th[c], bv[c], av[c], dv[c]
                    inv_sg = 1.0 / sg
                    a_sig, a_bias, a_th, a_b, a_a, a_d = (acc[c, 0], acc[c, 1], acc[c, 2], acc[c, 3], acc[c, 4],
                                                          acc[c, 5])
                    gvc, gic, gjs, xc = gv[c], gi[c], gj_static[c], xr[c]
                    v1, v0, i1, i0 = vstates[t + 1, n, c], vstates[t, n, c], istates[t + 1, n, c], istates[t, n, c]
                    gs = gspk[t, n, c]
                    gc = gcur[0 if static else t, n, c]
                    for s in range(n_pix):
                        vt = np.float64(v1[s])
                        vp = np.float64(v0[s])
                        it = np.float64(i1[s])
                        ip = np.float64(i0[s])
                        gpre = _through_spike(s, np.float64(gs[s]), vt, tt, sg, inv_scale, slope, gvc, a_sig, a_th)
                        if not abs(vt) < vmax:  # at the limit (or NaN): was v_t clipped?
                            gpre = gpre if abs(_membrane(vp, it, tt, b0, dd, zero_reset)) <= vmax else 0.0
                        _into_membrane(s, gpre, vp, tt, dd, zero_reset, gvc, a_th, a_b, a_d)
                        # i_t = clip(trunc(i_{t-1}·a/4096) + J_t·2**F): gradient from step t+1 and from v_t
                        gpi = gic[s] + gpre
                        if not abs(it) < imax:  # at the limit (or NaN): was i_t clipped? (J only here)
                            jj = np.rint(xc[s]) if direct else np.rint((xc[s] - bb) / sg)
                            gpi = gpi if abs(_current(ip, jj * scale, aa)) <= imax else 0.0
                        a_a[s] += gpi * ip / 4096.0
                        gic[s] = gpi * aa / 4096.0
                        _into_current(s, gpi * scale, xc[s], static, direct, bb, inv_sg, gjs, gc, a_bias, a_sig)
            for c in range(n_ch):
                if static:
                    _static_current_grads(direct, bia[c], sig[c], cur[0, n, c], gj_static[c], gcur[0, n, c],
                                          acc[c, 1], acc[c, 0])
                for p in range(N_PARAMS):
                    gpar_nc[n, p, c] = acc[c, p].sum()
else:  # pragma: no cover - without Numba the torch-ops path runs
    _forward = _backward = _current = None


def forward(cur: np.ndarray, static: bool, direct: bool, steps: int, scale: float, params: tuple, zero_reset: bool,
            imax: float, vmax: float, state_dtype: npt.DTypeLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``cur`` float64 [T or 1, N, C, S]: currents in membrane units, or (``direct``) the integer currents J
    themselves (rounded half to even); ``params`` = (sigma, bias, theta, b, a, d), float64 [C] each;
    ``imax``/``vmax`` the current and membrane limits (state units).
    Returns (spikes float32 [T, N, C, S], i states and v states [T+1, N, C, S], number of clipped values)."""
    _, n, c, s = cur.shape
    spikes = np.empty((steps, n, c, s), dtype=np.float32)
    istates = np.empty((steps + 1, n, c, s), dtype=state_dtype)
    vstates = np.empty((steps + 1, n, c, s), dtype=state_dtype)
    sat = np.zeros(n, dtype=np.int64)
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
