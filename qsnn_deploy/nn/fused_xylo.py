"""One Xylo layer (:class:`~qsnn_deploy.nn.xylo.QXylo`) over all T steps as a single autograd node: the
training fast path on the CPU, as :mod:`qsnn_deploy.nn.fused_cuba` is QSynaptic's.

The forward pass computes what T calls of ``QXylo.forward`` compute (module docstring of
:mod:`qsnn_deploy.nn.xylo`), in float64 on integer-valued numbers inside a Numba kernel per step (the
recurrent current ``z_{t-1}·Rᵀ`` is an exact float64 matrix product), so its spike counts and states are
identical: the synaptic terms are summed where no partial sum can leave int16 and folded one source at a
time, saturating, in Xylo's order elsewhere. No autograd graph is recorded. The backward pass runs the recurrence in reverse by hand with
the straight-through gradients of the step-by-step version (with ``m = clip(round(v/θ), 1, cap)`` and
``s = 1/(k·|v − m·θ|/unit + 1)²/unit`` the surrogate; ``p_s = 2**-dash_syn``, ``p_m = 2**-dash_mem``)::

    g_n   = dL/dn_t (from the next layer) + g_{j,t+1}·R                 the recurrent path
    g_vp  = g_v + g_n·s                      g_θ −= g_n·s·m + g_v·n_t   (v_t = vp − n_t·θ)
    g_u3  = g_vp·[v + dv not clipped]         → v_{t−1} and dv
    g_u2  = g_u3·[dv + b not clipped]         g_b += g_u2
    g_u1  = g_u2·[isyn − dec(v) not clipped]
    g_is  = g_isyn + g_u1                     g_pm −= g_u1·v_{t−1};   g_v ← g_u3 − g_u1·p_m
    g_a   = g_is·(1 − p_s)·[no add of the fold clipped]   g_ps −= g_is·a_t;   g_isyn ← g_a;   g_{j,t} = g_a
    g_R  += g_{j,t}ᵀ·z_{t−1}

Gradients reach J (hence the feed-forward weights, through torch), R, θ, the bias and 2**-dash.
"""
from __future__ import annotations

import numpy as np
import torch

from ..numba_support import HAVE_NUMBA, cached_kernel, numba

__all__ = ["HAVE_NUMBA", "xylo_sequence"]

_SMAX, _SMIN = 32767.0, -32768.0

if HAVE_NUMBA:
    @numba.njit(inline="always")
    def _sat16(x, flag, bit):
        """``x`` clipped to the int16 limits (as a float), and ``flag | bit`` when it was clipped."""
        if x > _SMAX:
            return _SMAX, flag | bit
        if x < _SMIN:
            return _SMIN, flag | bit
        return x, flag

    @numba.njit(inline="always")
    def _fold_saturating(a, counts, weights, flag):
        """Add ``counts[q]·weights[q]`` to ``a`` source by source (silent sources skipped), saturating at the
        int16 limits after each add, as Xylo does; ``flag | 1`` when any add clipped."""
        for q in range(counts.shape[0]):
            if counts[q] != 0.0:
                a, flag = _sat16(a + counts[q] * weights[q], flag, 1)
        return a, flag

    @cached_kernel(nogil=True)
    def _step_forward(isyn, v, j, jp, jn, x, w, zprev, r, has_rec, th, b, ps, pm, cap, a_out, vprev_out, vp_out,
                      n_out, flags_out):
        n_batch, n_ch = j.shape
        sat = 0
        folded = 0
        for n in range(n_batch):
            for c in range(n_ch):
                vprev = v[n, c]
                f = 0
                i0 = isyn[n, c]
                if i0 + jp[n, c] <= _SMAX and i0 + jn[n, c] >= _SMIN:
                    a = i0 + j[n, c]  # no partial sum can leave int16: the fold is the sum
                else:  # Xylo's order: the inputs, then the layer's own previous spikes, each add saturating
                    folded += 1
                    a, f = _fold_saturating(i0, x[n], w[c], 0)
                    if has_rec:
                        a, f = _fold_saturating(a, zprev[n], r[c], f)
                q = np.floor(a * ps[c])
                if q == 0.0:
                    q = 1.0 if a > 0 else (-1.0 if a < 0 else 0.0)
                i_new = a - q
                q = np.floor(vprev * pm[c])
                if q == 0.0:
                    q = 1.0 if vprev > 0 else (-1.0 if vprev < 0 else 0.0)
                if q == _SMIN:  # C's int16 negation of -32768 wraps (dash_mem = 0 only)
                    q = -q
                dv, f = _sat16(i_new - q, f, 2)
                dv, f = _sat16(dv + b[c], f, 4)
                vp, f = _sat16(vprev + dv, f, 8)
                t = th[c]
                cnt = 0.0
                if vp >= t:
                    cnt = np.floor(vp / t)
                    if cnt * t + t <= vp:
                        cnt += 1.0
                    elif cnt * t > vp:
                        cnt -= 1.0
                    if cnt > cap:
                        cnt = cap
                    if cnt < 0.0:
                        cnt = 0.0
                a_out[n, c] = a
                vprev_out[n, c] = vprev
                vp_out[n, c] = vp
                n_out[n, c] = cnt
                flags_out[n, c] = f
                isyn[n, c] = i_new
                v[n, c] = vp - cnt * t
                if f:
                    sat += 1
        return sat, folded

    @cached_kernel(nogil=True)
    def _step_backward(g_n, g_v, g_isyn, a_st, vprev_st, vp_st, n_st, flags, th, ps, pm, cap, slope, unit,
                       g_j, g_th, g_b, g_ps, g_pm):
        n_batch, n_ch = g_n.shape
        for n in range(n_batch):
            for c in range(n_ch):
                t = th[c]
                vp = vp_st[n, c]
                m = np.rint(vp / t)
                if m < 1.0:
                    m = 1.0
                elif m > cap:
                    m = cap
                x = slope * abs(vp - m * t) / unit + 1.0
                s = 1.0 / (x * x) / unit
                gn = g_n[n, c]
                gv = g_v[n, c]
                g_vp = gv + gn * s
                g_th[c] -= gn * s * m + gv * n_st[n, c]
                f = flags[n, c]
                g_u3 = 0.0 if (f & 8) else g_vp
                g_u2 = 0.0 if (f & 4) else g_u3
                g_b[c] += g_u2
                g_u1 = 0.0 if (f & 2) else g_u2
                g_is = g_isyn[n, c] + g_u1
                g_pm[c] -= g_u1 * vprev_st[n, c]
                g_v[n, c] = g_u3 - g_u1 * pm[c]
                g_ps[c] -= g_is * a_st[n, c]
                g_a = 0.0 if (f & 1) else g_is * (1.0 - ps[c])
                g_isyn[n, c] = g_a
                g_j[n, c] = g_a


class _XyloSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, jff, rec, th, b, ps, pm, cap: int, slope: float, unit: float, counter: list, x, w, x_cap: int):
        steps, n_batch, n_ch = jff.shape
        j_all = jff.detach().to(torch.float64).numpy()
        r = None if rec is None else np.ascontiguousarray(rec.detach().to(torch.float64).numpy())
        thn, bn, psn, pmn = (np.ascontiguousarray(t.detach().to(torch.float64).numpy()) for t in (th, b, ps, pm))
        isyn = np.zeros((n_batch, n_ch))
        v = np.zeros((n_batch, n_ch))
        a_st = np.empty((steps, n_batch, n_ch))
        vprev_st = np.empty((steps, n_batch, n_ch))
        vp_st = np.empty((steps, n_batch, n_ch))
        n_st = np.zeros((steps, n_batch, n_ch))
        flags = np.empty((steps, n_batch, n_ch), dtype=np.uint8)
        sat = 0
        ordered = 0
        # the synaptic terms' positive and negative parts summed apart (exact float64 products of integers)
        xn = np.minimum(x.detach().to(torch.float64).numpy(), float(x_cap)).reshape(steps, n_batch, -1)
        wn = np.ascontiguousarray(w.detach().to(torch.float64).numpy())
        jp_all = (xn.reshape(steps * n_batch, -1) @ np.maximum(wn, 0.0).T).reshape(steps, n_batch, n_ch)
        jn_all = (xn.reshape(steps * n_batch, -1) @ np.minimum(wn, 0.0).T).reshape(steps, n_batch, n_ch)
        rp = None if r is None else np.maximum(r, 0.0).T
        rn = None if r is None else np.minimum(r, 0.0).T
        no_rec = np.zeros((1, 1))
        zero = np.zeros((n_batch, n_ch))
        for t in range(steps):
            j, jp, jn = j_all[t], jp_all[t], jn_all[t]
            zprev = n_st[t - 1] if t else zero  # counts ≤ max_spikes ≤ 31: Xylo's clip never changes them
            if r is not None and t:
                j = j + zprev @ r.T  # exact: integers below 2**53
                jp = jp + zprev @ rp
                jn = jn + zprev @ rn
            s_t, f_t = _step_forward(isyn, v, np.ascontiguousarray(j), np.ascontiguousarray(jp), np.ascontiguousarray(jn),
                                     np.ascontiguousarray(xn[t]), wn, zprev, r if r is not None else no_rec, r is not None,
                                     thn, bn, psn, pmn, float(cap), a_st[t], vprev_st[t], vp_st[t], n_st[t], flags[t])
            sat += s_t
            ordered += f_t
        counter.append((sat, ordered))
        ctx.kernel_data = (a_st, vprev_st, vp_st, n_st, flags, r, thn, psn, pmn)
        ctx.cfg = (float(cap), float(slope), float(unit), rec is not None)
        ctx.dtypes = (jff.dtype, None if rec is None else rec.dtype, th.dtype, b.dtype, ps.dtype, pm.dtype)
        return torch.from_numpy(n_st.astype(np.float32))

    @staticmethod
    def backward(ctx, grad_n):
        a_st, vprev_st, vp_st, n_st, flags, r, thn, psn, pmn = ctx.kernel_data
        cap, slope, unit, has_rec = ctx.cfg
        steps, n_batch, n_ch = n_st.shape
        g_out = grad_n.detach().to(torch.float64).numpy()
        g_v = np.zeros((n_batch, n_ch))
        g_isyn = np.zeros((n_batch, n_ch))
        g_jff = np.zeros((steps, n_batch, n_ch))
        g_th, g_b, g_ps, g_pm = (np.zeros(n_ch) for _ in range(4))
        g_next = None
        for t in range(steps - 1, -1, -1):
            g_n = g_out[t] if g_next is None or r is None else g_out[t] + g_next @ r
            _step_backward(np.ascontiguousarray(g_n), g_v, g_isyn, a_st[t], vprev_st[t], vp_st[t], n_st[t], flags[t],
                           thn, psn, pmn, cap, slope, unit, g_jff[t], g_th, g_b, g_ps, g_pm)
            g_next = g_jff[t]
        g_r = None
        if has_rec and steps > 1:  # J_t gets z_{t-1}·Rᵀ for t ≥ 1
            g_r = g_jff[1:].reshape(-1, n_ch).T @ n_st[:-1].reshape(-1, n_ch)
        elif has_rec:
            g_r = np.zeros((n_ch, n_ch))
        ctx.kernel_data = None
        dt = ctx.dtypes
        need = ctx.needs_input_grad
        out = [torch.from_numpy(g_jff).to(dt[0]),
               None if g_r is None else torch.from_numpy(g_r).to(dt[1]),
               torch.from_numpy(g_th).to(dt[2]), torch.from_numpy(g_b).to(dt[3]),
               torch.from_numpy(g_ps).to(dt[4]), torch.from_numpy(g_pm).to(dt[5])]
        return tuple(o if need[k] else None for k, o in enumerate(out)) + (None,) * 7


def xylo_sequence(jff: torch.Tensor, rec: torch.Tensor | None, params: dict[str, torch.Tensor], cap: int,
                  slope: float, unit: float, x: torch.Tensor | None = None, w: torch.Tensor | None = None,
                  x_cap: int = 31) -> tuple[torch.Tensor, int, int]:
    """T steps of one Xylo layer (CPU, Numba) as one autograd node.

    Args:
        jff: the feed-forward integer currents ``(W << s)·x_t`` [T, N, C] (integer-valued, with their gradient).
        rec: the shifted recurrent weights ``R << s_rec`` [C, C] (integer-valued), or None.
        params: :meth:`QXylo.integer_params` (``threshold``, ``bias``, ``pow_syn``, ``pow_mem``: [C]).
        cap, slope, unit: the layer's spike cap, surrogate slope and state units per model unit.
        x, w: the input counts [T, N, in] and the shifted integer weights [C, in] behind ``jff`` (clipped to
            ``x_cap`` as Xylo clips them), for the ordered fold of the synaptic terms where a partial sum could leave
            int16 (:mod:`qsnn_deploy.nn.xylo`). Without them ``jff`` is taken as one term per step (a [T, N, C]
            identity input).

    Returns:
        (spike counts float32 [T, N, C], neuron-steps with a value clipped to int16, neuron-steps folded in order).
    """
    counter: list = []
    if x is None or w is None:  # one term per neuron, J itself: counts |J| on weight ±1 (one of the two is 0)
        n_ch = jff.shape[-1]
        jd = jff.detach().to(torch.float64)
        x = torch.cat([jd.clamp(min=0), (-jd).clamp(min=0)], dim=-1)
        eye = torch.eye(n_ch, dtype=torch.float64)
        w = torch.cat([eye, -eye], dim=1)
        x_cap = 1 << 40
    n = _XyloSequence.apply(jff, rec, params["threshold"], params["bias"], params["pow_syn"], params["pow_mem"],
                            int(cap), float(slope), float(unit), counter, x, w, int(x_cap))
    sat, ordered = counter[0] if counter else (0, 0)
    return n, int(sat), int(ordered)
