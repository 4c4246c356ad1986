"""One LIF layer over all T steps as a single autograd node: the training fast path of
:class:`~qsnn_deploy.nn.QLeaky`.

The forward pass computes exactly what T calls of ``QLeaky.forward`` compute — the same float64
operations on integer-valued tensors, so the same spikes and states, bit for bit::

    J_t  = round((I_t - bias) / sigma)                       exact integer current
    r_t  = [v_{t-1} > theta]                                 (detached)
    v_t  = trunc(v_{t-1}·d / 4096) + J_t·2**F + b - r_t·theta          reset "subtract"
    v_t  = trunc((1 - r_t)·v_{t-1}·d / 4096) + J_t·2**F + b            reset "zero"
    v_t  = clip(v_t, ±(2**(B_v-1) - 1))
    z_t  = H(u_t),  u_t = (v_t - theta)·sigma / 2**F         fast-sigmoid surrogate, slope k

but records no per-step autograd graph: the states ``v_t`` are kept (float32 where B_v ≤ 25 holds
them exactly, else float64) and the backward pass runs the recurrence in reverse by hand, with the
straight-through gradients of the step-by-step version (round and trunc pass the gradient of their
argument; the clip passes it where the state was not clipped; the reset indicator has none) and the
fast sigmoid ``dz/du = 1 / (k·|u| + 1)**2``. Gradients flow to the current ``I`` and to every
per-channel parameter (``sigma``, ``bias``, ``theta``, ``b``, ``d``), as in the unfused graph.

Units: ``I`` and ``bias`` in membrane units, ``sigma`` membrane units per current unit, ``theta``,
``b`` and ``v`` in state units (2**-F current units), ``d`` the 12-bit decay (0..4096).
"""
from __future__ import annotations

import numpy as np
import torch

from .. import intmath
from . import fused_lif_cpu

__all__ = ["lif_sequence", "USE_NUMBA"]

#: on the CPU, run the recurrence in the Numba kernels of :mod:`qsnn_deploy.nn.fused_lif_cpu`
#: (False: the same recurrence as torch operations, as on CUDA)
USE_NUMBA = True


def _as_ncs(t: torch.Tensor, static: bool) -> np.ndarray:
    """A contiguous float64 [T or 1, N, C, S] array view of [N, C, ...] (static) or [T, N, C, ...]."""
    a = t.to(torch.float64).contiguous().numpy()
    if static:
        a = a[None]
    return a.reshape(a.shape[0], a.shape[1], a.shape[2], -1)


def _view(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """[C] -> [C, 1, 1] for [N, C, H, W] tensors; unchanged for [N, C]."""
    return t.view((-1,) + (1,) * max(ndim - 2, 0))


def _per_channel_sum(g: torch.Tensor) -> torch.Tensor:
    """Sum of an [N, C, ...] gradient over everything but the channel dim: [C]."""
    return g.sum(dim=[0] + list(range(2, g.dim())))


class _LIFSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, sigma, bias, theta, b_int, d, frac_bits: int, state_bits: int, zero_reset: bool,
                slope: float, static: bool, steps: int, counter: list, direct: bool):
        ctx.cfg = (frac_bits, state_bits, zero_reset, slope, static, steps)
        ctx.direct = direct
        ctx.numba = current.device.type == "cpu" and fused_lif_cpu.HAVE_NUMBA and USE_NUMBA
        if ctx.numba:
            return _LIFSequence._forward_numba(ctx, current, sigma, bias, theta, b_int, d, counter)
        nd = current.dim() if static else current.dim() - 1
        sig, bia, th, bv, dv = (_view(t.detach(), nd) for t in (sigma, bias, theta, b_int, d))
        scale = float(1 << frac_bits)
        vmax = float(intmath.state_limit(state_bits))
        store = torch.float32 if state_bits <= 25 else torch.float64
        cur = current.detach().to(torch.float64)
        j_static = (torch.round(cur) if direct else torch.round((cur - bia) / sig)) if static else None
        shape = cur.shape if static else cur.shape[1:]
        v = torch.zeros(shape, dtype=torch.float64, device=cur.device)
        states = torch.empty((steps + 1,) + tuple(shape), dtype=store, device=cur.device)
        states[0] = 0
        spikes = torch.empty((steps,) + tuple(shape), dtype=torch.float32, device=cur.device)
        saturated = 0
        for t in range(steps):
            j = j_static if static else (torch.round(cur[t]) if direct else torch.round((cur[t] - bia) / sig))
            reset = (v > th).to(torch.float64)
            if zero_reset:
                v = torch.trunc((1.0 - reset) * v * dv / 4096.0) + j * scale + bv
            else:
                v = torch.trunc(v * dv / 4096.0) + j * scale + bv - reset * th
            over = v.abs() > vmax
            if bool(over.any()):
                saturated += int(over.sum())
                v = v.clamp(-vmax, vmax)
            states[t + 1] = v
            spikes[t] = ((v - th) * sig / scale > 0)
        counter.append(saturated)
        ctx.save_for_backward(current, sigma, bias, theta, b_int, d, states)
        return spikes

    @staticmethod
    def _forward_numba(ctx, current, sigma, bias, theta, b_int, d, counter):
        frac_bits, state_bits, zero_reset, slope, static, steps = ctx.cfg
        cur = _as_ncs(current.detach(), static)
        params = tuple(np.ascontiguousarray(t.detach().to(torch.float64).numpy()) for t in (sigma, bias, theta, b_int, d))
        store = np.float32 if state_bits <= 25 else np.float64
        spikes, states, saturated = fused_lif_cpu.forward(cur, static, ctx.direct, steps, float(1 << frac_bits), params,
                                                          bool(zero_reset), float(intmath.state_limit(state_bits)), store)
        counter.append(saturated)
        ctx.kernel_data = (cur, params, states)
        ctx.save_for_backward(current, sigma, bias, theta, b_int, d)
        out_shape = (steps,) + (tuple(current.shape) if static else tuple(current.shape[1:]))
        return torch.from_numpy(spikes).reshape(out_shape)

    @staticmethod
    def _backward_numba(ctx, grad_spikes):
        current, sigma, bias, theta, b_int, d = ctx.saved_tensors
        frac_bits, state_bits, zero_reset, slope, static, steps = ctx.cfg
        cur, params, states = ctx.kernel_data
        g = np.ascontiguousarray(grad_spikes.detach().to(torch.float32).numpy()).reshape((steps,) + cur.shape[1:])
        gcur, gpar = fused_lif_cpu.backward(cur, static, ctx.direct, steps, float(1 << frac_bits), params, bool(zero_reset),
                                            float(intmath.state_limit(state_bits)), float(slope), states, g)
        ctx.kernel_data = None
        g_current = torch.from_numpy(gcur).reshape(current.shape).to(current.dtype)
        grads = (g_current,) + tuple(torch.from_numpy(gpar[i].copy()).to(t.dtype)
                                     for i, t in enumerate((sigma, bias, theta, b_int, d)))
        need = ctx.needs_input_grad
        return tuple(gr if need[i] else None for i, gr in enumerate(grads)) + (None,) * 8

    @staticmethod
    def backward(ctx, grad_spikes):
        if ctx.numba:
            return _LIFSequence._backward_numba(ctx, grad_spikes)
        current, sigma, bias, theta, b_int, d, states = ctx.saved_tensors
        frac_bits, state_bits, zero_reset, slope, static, steps = ctx.cfg
        f64 = torch.float64
        nd = current.dim() if static else current.dim() - 1
        sig, bia, th, bv, dv = (_view(t.detach().to(f64), nd) for t in (sigma, bias, theta, b_int, d))
        scale = float(1 << frac_bits)
        vmax = float(intmath.state_limit(state_bits))
        cur = current.detach().to(f64)
        g_sig_u = torch.zeros_like(sigma, dtype=f64)
        g_th = torch.zeros_like(theta, dtype=f64)
        g_b = torch.zeros_like(b_int, dtype=f64)
        g_d = torch.zeros_like(d, dtype=f64)
        g_j_total = torch.zeros(cur.shape if static else cur.shape[1:], dtype=f64, device=cur.device) if static else None
        g_cur = None if static else torch.zeros_like(cur, dtype=f64)
        g_v = torch.zeros(states.shape[1:], dtype=f64, device=cur.device)  # dL/dv_t from step t+1
        g_bias_cur = torch.zeros_like(bias, dtype=f64)
        g_sig_cur = torch.zeros_like(sigma, dtype=f64)
        direct = ctx.direct
        j_static = (torch.round(cur) if direct else torch.round((cur - bia) / sig)) if static else None
        for t in range(steps - 1, -1, -1):
            v_t = states[t + 1].to(f64)
            v_prev = states[t].to(f64)
            u = (v_t - th) * sig / scale
            g_u = grad_spikes[t].to(f64) / (slope * u.abs() + 1.0) ** 2
            g_vt = g_v + g_u * sig / scale
            g_sig_u += _per_channel_sum((g_u * (v_t - th) / scale))
            g_th -= _per_channel_sum((g_u * sig / scale))
            reset = (v_prev > th).to(f64)
            j = j_static if static else (torch.round(cur[t]) if direct else torch.round((cur[t] - bia) / sig))
            kept = (1.0 - reset) * v_prev if zero_reset else v_prev
            pre = torch.trunc(kept * dv / 4096.0) + j * scale + bv - (0.0 if zero_reset else reset * th)
            g_pre = g_vt * (pre.abs() <= vmax).to(f64)
            g_b += _per_channel_sum(g_pre)
            g_d += _per_channel_sum((g_pre * kept / 4096.0))
            if not zero_reset:
                g_th -= _per_channel_sum((g_pre * reset))
            g_v = g_pre * dv / 4096.0 * ((1.0 - reset) if zero_reset else 1.0)
            g_j = g_pre * scale
            if static:
                g_j_total += g_j
            elif direct:
                g_cur[t] = g_j
            else:
                g_i = g_j / sig
                g_cur[t] = g_i
                g_bias_cur -= _per_channel_sum(g_i)
                g_sig_cur -= _per_channel_sum((g_i * (cur[t] - bia) / sig))
        if static and direct:
            g_cur = g_j_total
        elif static:
            g_i = g_j_total / sig
            g_cur = g_i
            g_bias_cur -= _per_channel_sum(g_i)
            g_sig_cur -= _per_channel_sum((g_i * (cur - bia) / sig))
        grads = (g_cur.to(current.dtype), (g_sig_u + g_sig_cur).to(sigma.dtype), g_bias_cur.to(bias.dtype),
                 g_th.to(theta.dtype), g_b.to(b_int.dtype), g_d.to(d.dtype))
        need = ctx.needs_input_grad
        return tuple(g if need[i] else None for i, g in enumerate(grads)) + (None,) * 8


def lif_sequence(current: torch.Tensor, sigma: torch.Tensor, bias: torch.Tensor, theta: torch.Tensor,
                 b_int: torch.Tensor, d: torch.Tensor, *, frac_bits: int, state_bits: int, zero_reset: bool,
                 slope: float, static: bool, steps: int, direct: bool = False) -> tuple[torch.Tensor, int]:
    """T steps of one QLeaky layer as one autograd node (module docstring).

    Args:
        current: float64 synaptic input in membrane units, [N, C, ...] (``static``: the same every
            step) or [T, N, C, ...].
        sigma, bias: float64 [C], the synapse's per-channel scale and bias (membrane units).
        theta, b_int, d: float64 [C], the integer threshold and bias (state units) and the 12-bit
            decay, as :meth:`QLeaky.integer_params` returns them (with their gradients).
        frac_bits, state_bits: F and B_v.
        zero_reset: reset to zero (else subtract θ).
        slope: the fast-sigmoid surrogate's slope k.
        static, steps: whether ``current`` repeats every step; T.
        direct: ``current`` holds the integer currents J themselves (J = round(current); with
            dropout in training the scaled current is not an integer, exactly as (I - bias)/sigma):
            the same spikes, and the gradient of J passes to ``current`` unscaled, none to sigma and
            bias through J (the total derivative of round((J·sigma + bias - bias)/sigma) under the
            straight-through rule is dJ: the sigma and bias terms cancel).

    Returns:
        (spikes float32 [T, N, C, ...], number of state values clipped to B_v bits).
    """
    counter: list = []
    spikes = _LIFSequence.apply(current, sigma, bias, theta, b_int, d, int(frac_bits), int(state_bits),
                                bool(zero_reset), float(slope), bool(static), int(steps), counter, bool(direct))
    return spikes, int(counter[0]) if counter else 0
