"""One current-based LIF layer over all T steps as a single autograd node: the training fast path of
:class:`~qsnn_deploy.nn.QSynaptic` (kind ``"cuba"``), as :mod:`qsnn_deploy.nn.fused_lif` is QLeaky's.

The forward pass computes exactly what T calls of ``QSynaptic.forward`` compute — the same float64
operations on integer-valued tensors, so the same spikes and states, bit for bit::

    J_t  = round((I_t - bias) / sigma)                        exact integer current
    i_t  = clip(trunc(i_{t-1}·a / 4096) + J_t·2**F, ±(2**(B_i-1) - 1))
    r_t  = [v_{t-1} > theta]                                  (detached)
    v_t  = trunc(v_{t-1}·d / 4096) + i_t + b - r_t·theta                 reset "subtract"
    v_t  = trunc((1 - r_t)·v_{t-1}·d / 4096) + i_t + b                   reset "zero" (Loihi's order)
    v_t  = clip(v_t, ±(2**(B_v-1) - 1))
    z_t  = H(u_t),  u_t = (v_t - theta)·sigma / 2**F          fast-sigmoid surrogate, slope k
    i_{-1} = v_{-1} = 0

Every clip of ``i`` or ``v`` is one saturation event (``QSynaptic.saturation_events`` counts both).
No per-step autograd graph is recorded: the states ``i_t`` and ``v_t`` are kept (float32 where B_i and
B_v ≤ 25 hold them exactly, else float64) and the backward pass runs the recurrence in reverse by
hand, with the straight-through gradients of the step-by-step version (round and trunc pass the
gradient of their argument; a clip passes it where the value was not clipped; the reset indicator has
none) and the fast sigmoid ``dz/du = 1 / (k·|u| + 1)**2``. With ``g_v``/``g_i`` the gradients arriving
at ``v_t``/``i_t`` from step t+1::

    g_vt  = g_v + dz/du·sigma/2**F                      g_pv = g_vt·[|pre-clip v_t| ≤ v_max]
    g_it  = g_i + g_pv                                  g_pi = g_it·[|pre-clip i_t| ≤ i_max]
    to v_{t-1}: g_pv·d/4096 (·(1 - r_t) for "zero")    to i_{t-1}: g_pi·a/4096     to J_t: g_pi·2**F
    to b: g_pv   to d: g_pv·kept/4096   to a: g_pi·i_{t-1}/4096   to theta: -dz/du·sigma/2**F (- g_pv·r_t)

Gradients flow to the current ``I`` and to every per-channel parameter (``sigma``, ``bias``,
``theta``, ``b``, ``a``, ``d``), as in the unfused graph.

Units: ``I`` and ``bias`` in membrane units, ``sigma`` membrane units per current unit, ``theta``,
``b``, ``i`` and ``v`` in state units (2**-F current units), ``a`` and ``d`` the 12-bit decays (0..4096).
"""
from __future__ import annotations

import numpy as np
import torch

from .. import intmath
from . import fused_cuba_cpu
from .fused_lif import _as_ncs, _per_channel_sum, _view

__all__ = ["cuba_sequence", "USE_NUMBA"]

#: on the CPU, run the recurrence in the Numba kernels of :mod:`qsnn_deploy.nn.fused_cuba_cpu`
#: (False: the same recurrence as torch operations, as on CUDA)
USE_NUMBA = True

_N_TENSORS = 7  # current, sigma, bias, theta, b_int, a, d


def _state_dtype(state_bits: int, current_bits: int, numpy: bool):
    """float32 holds every integer of |x| ≤ 2**24 exactly: enough for B ≤ 25 (limit 2**24 - 1)."""
    small = max(state_bits, current_bits) <= 25
    if numpy:
        return np.float32 if small else np.float64
    return torch.float32 if small else torch.float64


class _CubaSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, sigma, bias, theta, b_int, a, d, frac_bits: int, state_bits: int, current_bits: int,
                zero_reset: bool, slope: float, static: bool, steps: int, counter: list, direct: bool):
        ctx.cfg = (frac_bits, state_bits, current_bits, zero_reset, slope, static, steps, direct)
        ctx.numba = current.device.type == "cpu" and fused_cuba_cpu.HAVE_NUMBA and USE_NUMBA
        if ctx.numba:
            return _CubaSequence._forward_numba(ctx, current, sigma, bias, theta, b_int, a, d, counter)
        nd = current.dim() if static else current.dim() - 1
        sig, bia, th, bv, av, dv = (_view(t.detach().to(torch.float64), nd) for t in (sigma, bias, theta, b_int, a, d))
        scale = float(1 << frac_bits)
        imax = float(intmath.state_limit(current_bits))
        vmax = float(intmath.state_limit(state_bits))
        store = _state_dtype(state_bits, current_bits, numpy=False)
        cur = current.detach().to(torch.float64)
        j_static = (torch.round(cur) if direct else torch.round((cur - bia) / sig)) if static else None
        shape = tuple(cur.shape if static else cur.shape[1:])
        i = torch.zeros(shape, dtype=torch.float64, device=cur.device)
        v = torch.zeros(shape, dtype=torch.float64, device=cur.device)
        istates = torch.empty((steps + 1,) + shape, dtype=store, device=cur.device)
        vstates = torch.empty((steps + 1,) + shape, dtype=store, device=cur.device)
        istates[0] = 0
        vstates[0] = 0
        spikes = torch.empty((steps,) + shape, dtype=torch.float32, device=cur.device)
        saturated = torch.zeros((), dtype=torch.int64, device=cur.device)  # one device sync, at the end
        for t in range(steps):
            j = j_static if static else (torch.round(cur[t]) if direct else torch.round((cur[t] - bia) / sig))
            i = torch.trunc(i * av / 4096.0) + j * scale
            saturated += (i.abs() > imax).sum()
            i = i.clamp(-imax, imax)  # the identity where nothing is over the limit
            reset = (v > th).to(torch.float64)
            if zero_reset:
                v = torch.trunc((1.0 - reset) * v * dv / 4096.0) + i + bv
            else:
                v = torch.trunc(v * dv / 4096.0) + i + bv - reset * th
            saturated += (v.abs() > vmax).sum()
            v = v.clamp(-vmax, vmax)
            istates[t + 1] = i
            vstates[t + 1] = v
            spikes[t] = ((v - th) * sig / scale > 0)
        counter.append(int(saturated))
        ctx.save_for_backward(current, sigma, bias, theta, b_int, a, d, istates, vstates)
        return spikes

    @staticmethod
    def _forward_numba(ctx, current, sigma, bias, theta, b_int, a, d, counter):
        frac_bits, state_bits, current_bits, zero_reset, slope, static, steps, direct = ctx.cfg
        cur = _as_ncs(current.detach(), static)
        params = tuple(np.ascontiguousarray(t.detach().to(torch.float64).numpy())
                       for t in (sigma, bias, theta, b_int, a, d))
        spikes, istates, vstates, saturated = fused_cuba_cpu.forward(
            cur, static, direct, steps, float(1 << frac_bits), params, bool(zero_reset),
            float(intmath.state_limit(current_bits)), float(intmath.state_limit(state_bits)),
            _state_dtype(state_bits, current_bits, numpy=True))
        counter.append(saturated)
        ctx.kernel_data = (cur, params, istates, vstates)
        ctx.save_for_backward(current, sigma, bias, theta, b_int, a, d)
        out_shape = (steps,) + (tuple(current.shape) if static else tuple(current.shape[1:]))
        return torch.from_numpy(spikes).reshape(out_shape)

    @staticmethod
    def _backward_numba(ctx, grad_spikes):
        inputs = ctx.saved_tensors
        frac_bits, state_bits, current_bits, zero_reset, slope, static, steps, direct = ctx.cfg
        cur, params, istates, vstates = ctx.kernel_data
        g = np.ascontiguousarray(grad_spikes.detach().to(torch.float32).numpy()).reshape((steps,) + cur.shape[1:])
        gcur, gpar = fused_cuba_cpu.backward(cur, static, direct, steps, float(1 << frac_bits), params,
                                             bool(zero_reset), float(intmath.state_limit(current_bits)),
                                             float(intmath.state_limit(state_bits)), float(slope), istates, vstates, g)
        ctx.kernel_data = None
        current = inputs[0]
        grads = (torch.from_numpy(gcur).reshape(current.shape).to(current.dtype),) + tuple(
            torch.from_numpy(gpar[k].copy()).to(t.dtype) for k, t in enumerate(inputs[1:]))
        need = ctx.needs_input_grad
        return tuple(gr if need[k] else None for k, gr in enumerate(grads)) + (None,) * 9

    @staticmethod
    def backward(ctx, grad_spikes):
        if ctx.numba:
            return _CubaSequence._backward_numba(ctx, grad_spikes)
        current, sigma, bias, theta, b_int, a, d, istates, vstates = ctx.saved_tensors
        frac_bits, state_bits, current_bits, zero_reset, slope, static, steps, direct = ctx.cfg
        f64 = torch.float64
        nd = current.dim() if static else current.dim() - 1
        sig, bia, th, bv, av, dv = (_view(t.detach().to(f64), nd) for t in (sigma, bias, theta, b_int, a, d))
        scale = float(1 << frac_bits)
        imax = float(intmath.state_limit(current_bits))
        vmax = float(intmath.state_limit(state_bits))
        cur = current.detach().to(f64)
        dev = cur.device
        c = sigma.shape[0]
        g_sig_u, g_th, g_b, g_a, g_d, g_bias_cur, g_sig_cur = (torch.zeros(c, dtype=f64, device=dev) for _ in range(7))
        shape = vstates.shape[1:]
        g_j_total = torch.zeros(shape, dtype=f64, device=dev) if static else None
        g_cur = None if static else torch.zeros_like(cur, dtype=f64)
        g_v = torch.zeros(shape, dtype=f64, device=dev)  # dL/dv_t from step t+1
        g_i = torch.zeros(shape, dtype=f64, device=dev)  # dL/di_t from step t+1
        j_static = (torch.round(cur) if direct else torch.round((cur - bia) / sig)) if static else None
        for t in range(steps - 1, -1, -1):
            v_t, v_prev = vstates[t + 1].to(f64), vstates[t].to(f64)
            i_t, i_prev = istates[t + 1].to(f64), istates[t].to(f64)
            u = (v_t - th) * sig / scale
            g_u = grad_spikes[t].to(f64) / (slope * u.abs() + 1.0) ** 2
            g_vt = g_v + g_u * sig / scale
            g_sig_u += _per_channel_sum(g_u * (v_t - th) / scale)
            g_th -= _per_channel_sum(g_u * sig / scale)
            reset = (v_prev > th).to(f64)
            kept = (1.0 - reset) * v_prev if zero_reset else v_prev
            pre_v = torch.trunc(kept * dv / 4096.0) + i_t + bv - (0.0 if zero_reset else reset * th)
            g_pv = g_vt * (pre_v.abs() <= vmax).to(f64)
            g_b += _per_channel_sum(g_pv)
            g_d += _per_channel_sum(g_pv * kept / 4096.0)
            if not zero_reset:
                g_th -= _per_channel_sum(g_pv * reset)
            g_v = g_pv * dv / 4096.0 * ((1.0 - reset) if zero_reset else 1.0)
            j = j_static if static else (torch.round(cur[t]) if direct else torch.round((cur[t] - bia) / sig))
            pre_i = torch.trunc(i_prev * av / 4096.0) + j * scale
            g_pi = (g_i + g_pv) * (pre_i.abs() <= imax).to(f64)
            g_a += _per_channel_sum(g_pi * i_prev / 4096.0)
            g_i = g_pi * av / 4096.0
            g_j = g_pi * scale
            if static:
                g_j_total += g_j
            elif direct:
                g_cur[t] = g_j
            else:
                g_in = g_j / sig
                g_cur[t] = g_in
                g_bias_cur -= _per_channel_sum(g_in)
                g_sig_cur -= _per_channel_sum(g_in * (cur[t] - bia) / sig)
        if static and direct:
            g_cur = g_j_total
        elif static:
            g_in = g_j_total / sig
            g_cur = g_in
            g_bias_cur -= _per_channel_sum(g_in)
            g_sig_cur -= _per_channel_sum(g_in * (cur - bia) / sig)
        grads = (g_cur.to(current.dtype), (g_sig_u + g_sig_cur).to(sigma.dtype), g_bias_cur.to(bias.dtype),
                 g_th.to(theta.dtype), g_b.to(b_int.dtype), g_a.to(a.dtype), g_d.to(d.dtype))
        need = ctx.needs_input_grad
        return tuple(g if need[k] else None for k, g in enumerate(grads)) + (None,) * 9


def cuba_sequence(current: torch.Tensor, sigma: torch.Tensor, bias: torch.Tensor, theta: torch.Tensor,
                  b_int: torch.Tensor, a: torch.Tensor, d: torch.Tensor, *, frac_bits: int, state_bits: int,
                  current_bits: int, zero_reset: bool, slope: float, static: bool, steps: int,
                  direct: bool = False) -> tuple[torch.Tensor, int]:
    """T steps of one QSynaptic layer as one autograd node (module docstring).

    Args:
        current: float64 synaptic input in membrane units, [N, C, ...] (``static``: the same every
            step) or [T, N, C, ...].
        sigma, bias: float64 [C], the synapse's per-channel scale (|sigma|) and bias (membrane units).
        theta, b_int, a, d: float64 [C], the integer threshold and membrane bias (state units) and the
            12-bit current and membrane decays, as :meth:`QSynaptic.integer_params` returns them (with
            their gradients).
        frac_bits, state_bits, current_bits: F, B_v and B_i [bits].
        zero_reset: reset the membrane to zero before the decay (Loihi's order), else subtract θ.
        slope: the fast-sigmoid surrogate's slope k.
        static, steps: whether ``current`` repeats every step; T.
        direct: ``current`` holds the integer currents J themselves (J = round(current)), as in
            :func:`~qsnn_deploy.nn.fused_lif.lif_sequence`: the same spikes, the gradient of J passes to
            ``current`` unscaled, none to sigma and bias through J.

    Returns:
        (spikes float32 [T, N, C, ...], number of current and membrane values clipped to B_i and B_v bits).
    """
    counter: list = []
    spikes = _CubaSequence.apply(current, sigma, bias, theta, b_int, a, d, int(frac_bits), int(state_bits),
                                 int(current_bits), bool(zero_reset), float(slope), bool(static), int(steps), counter,
                                 bool(direct))
    return spikes, int(counter[0]) if counter else 0
