"""NIR graphs written by other tools (snnTorch, Norse, Sinabs, Rockpool, or built with ``nir``) as frozen nets.

:func:`nir_graph_to_torch` rebuilds the float network of a foreign graph as a
:class:`~qsnn_deploy.nn.QSequential` of plain synapses and snnTorch neurons (``Leaky``, ``Synaptic``,
``RLeaky``, ``RSynaptic``: NIR's reset to ``v_reset = 0`` right after a spike), and
:func:`nir_graph_to_frozen` freezes it with :func:`qsnn_deploy.freeze` (float weights quantized to
``weight_bits``; integer-valued weights that fit are kept as they are). :func:`load_nir` reads a
``.nir`` file: ours exactly (:func:`qsnn_deploy.exporters.nir_export.read_nir`), any other graph
through :func:`nir_graph_to_frozen`. The mapping of every NIR node and the options each writer needs
are in ``docs/nir.md`` §5.

Per time step, with one Euler step of ``dt`` (``tau_rule="euler"``; ``"exp"``: β = exp(−dt/τ)):

* ``LIF``: ``v ← β·v + (1 − β)·v_leak + g·I``, β = 1 − dt/τ, g = r·dt/τ;
* ``CubaLIF``: ``I ← α·I + g_i·S``, ``v ← β·v + g_v·I`` (the new current), α = 1 − dt/τ_syn,
  g_i = w_in·dt/τ_syn (``cuba_input_gain="w_in"``: g_i = w_in, Norse's ``LIFCell``; ``"rockpool"``:
  g_i = w_in·α and g_v = 1, Rockpool's ``LIFTorch``, ``I ← α·(I + S)``), g_v = r·dt/τ_mem;
* spike ``v > v_threshold``, then ``v = 0``; gains are folded into the synapse, so the frozen integer
  net (:mod:`qsnn_deploy.neurons`) computes ``J << F`` on the synapse's integer grid.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import torch
import torch.nn as nn

from .. import intmath
from ..errors import CheckpointError, FrozenNetError, QSNNError, UnsupportedLayerError
from ..exporters.nir_export import (DT, RECURRENT_FORM, TAU_RULES, _chain, _node_name, frozen_from_nir_graph,
                                    is_qsnn_graph, read_graph, recurrent_parts)

if TYPE_CHECKING:
    import nir

    from ..frozen import FrozenNet
    from ..nn import QSequential

#: Relative distance from 1 within which a foreign neuron's input gain (``r·dt/τ``, ``w_in·dt/τ_syn``) is read as exactly 1.
GAIN_SNAP = 1e-9

SUPPORTED_NODES = ("Input, Output, Flatten (all per-sample dims), Conv2d (groups 1, dilation 1), Linear, Affine, "
                   "AvgPool2d / SumPool2d (kernel = stride, no padding; between a synapse and its LIF), "
                   "LIF (v_reset = 0; τ, r, v_leak, v_threshold uniform within each channel), "
                   "CubaLIF (v_reset = 0, v_leak = 0), a recurrent LIF/CubaLIF after a dense synapse as " + RECURRENT_FORM)


class NirConv2d(nn.Conv2d):
    """``nn.Conv2d`` imported from a NIR graph: float weights for the float model, and the integer
    weights :func:`freeze` should use (``qsnn_int_weight``)."""

    def qsnn_int_weight(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``(integer-valued weight tensor, per-channel scale, bit width)``: what :func:`freeze` uses."""
        return self._qsnn_int


class NirLinear(nn.Linear):
    """``nn.Linear`` imported from a NIR graph (see :class:`NirConv2d`)."""

    def qsnn_int_weight(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``(integer-valued weight tensor, per-channel scale, bit width)``: what :func:`freeze` uses."""
        return self._qsnn_int


def _synapse_module(kind: str, weight: np.ndarray, bias: np.ndarray, scale_c: np.ndarray, weight_bits: int,
                    stride=(1, 1), padding=(0, 0)) -> nn.Module:
    """A conv/linear module holding the float weight ``scale_c · W`` (the NIR float semantics),
    which tells :func:`freeze` its integer weights: ``W`` itself when integer-valued and within
    ``weight_bits``, else ``W`` quantized per tensor to ``weight_bits`` (symmetric, narrow range,
    the rule freeze applies to plain float layers)."""
    w = np.asarray(weight, dtype=np.float64)
    scale_c = np.asarray(scale_c, dtype=np.float64)
    top = (1 << (weight_bits - 1)) - 1
    max_abs = float(np.abs(w).max(initial=0.0))
    if np.array_equal(w, np.round(w)) and max_abs <= top:
        w_int, s_w = np.round(w), 1.0
    else:
        s_w = max_abs / top if max_abs > 0 else 1.0
        w_int = np.round(w / s_w)
    if kind == "conv":
        mod = NirConv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=stride, padding=padding, bias=True)
    else:
        mod = NirLinear(w.shape[1], w.shape[0], bias=True)
    with torch.no_grad():
        mod.weight.copy_(torch.as_tensor(w * scale_c.reshape((-1,) + (1,) * (w.ndim - 1)), dtype=torch.float32))
        mod.bias.copy_(torch.as_tensor(np.asarray(bias, dtype=np.float64), dtype=torch.float32))
    mod._qsnn_int = (torch.as_tensor(w_int, dtype=torch.float32), torch.as_tensor(scale_c * s_w), int(weight_bits))
    return mod


def _channelwise(node_name: str, field: str, values, out_shape: tuple[int, ...]) -> np.ndarray:
    """One value per output channel from a per-neuron NIR array; refuse values differing within a channel."""
    a = np.asarray(values, dtype=np.float64)
    try:
        full = np.broadcast_to(a, out_shape) if a.size != 1 else np.full(out_shape, float(a.reshape(())))
    except ValueError as exc:
        raise UnsupportedLayerError(f"NIR node {node_name!r}: field {field!r} of shape {a.shape} does not match the layer "
                                    f"output {out_shape}") from exc
    flat = full.reshape(out_shape[0], -1)
    same = np.all((flat == flat[:, :1]) | (np.isnan(flat) & np.isnan(flat[:, :1])), axis=1)
    if not np.all(same):
        raise UnsupportedLayerError(f"NIR node {node_name!r}: field {field!r} differs between neurons of one channel; the "
                                    "frozen format holds one value per output channel")
    return flat[:, 0].copy()


#: How a foreign CubaLIF's current takes its input S: ``"nir"`` (NIR's equation, one Euler step of
#: ``τ_syn dI/dt = −I + w_in·S``: gain ``w_in·dt/τ_syn``; snnTorch's export writes ``w_in = τ_syn/dt``, gain 1),
#: ``"w_in"`` (gain ``w_in``: Norse 1.1's ``LIFCell`` adds its input to the current with gain 1 and
#: ``to_nir`` writes ``w_in = 1``) or ``"rockpool"`` (Rockpool 3.1's ``LIFTorch``: the input joins the current
#: before it decays and the membrane takes the current with gain 1, ``I ← α·(I + w_in·S)``, ``v ← β·v + I``:
#: gains ``g_i = w_in·α``, ``g_v = 1``; ``r`` must be what Rockpool writes, ``τ_mem·exp(−dt/τ_mem)/dt``, which
#: checks ``dt``; needs ``tau_rule="exp"``).
CUBA_INPUT_GAINS = ("nir", "w_in", "rockpool")

#: Relative tolerance of the check that a CubaLIF read with ``cuba_input_gain="rockpool"`` has Rockpool's ``r``
#: (Rockpool writes float32).
ROCKPOOL_R_RTOL = 1e-5


def _rockpool_dt(tau: float, r: float) -> float:
    """The dt for which Rockpool's ``r = τ·exp(−dt/τ)/dt`` holds (x = dt/τ solves x·eˣ = 1/r; Newton steps)."""
    x = min(1.0 / r, 1.0)
    for _ in range(60):
        x -= (x * np.exp(x) - 1.0 / r) / (np.exp(x) * (1.0 + x))
    return float(x * tau)


def _rockpool_gains(name: str, f: dict[str, np.ndarray], alpha: np.ndarray, dt: float, tau_rule: str):
    """(g_i, g_v) of a CubaLIF written by Rockpool 3.1's ``to_nir`` (``LIFTorch``: ``I ← α·(I + w_in·S)``,
    ``v ← β·v + I``): ``g_i = w_in·α``, ``g_v = 1``. Refuses, naming the node and field, a graph whose ``r`` is
    not Rockpool's ``τ_mem·exp(−dt/τ_mem)/dt`` for this ``dt`` (a wrong ``dt``, or not Rockpool's convention)."""
    if tau_rule != "exp":
        raise UnsupportedLayerError(f"NIR node {name!r} (CubaLIF): cuba_input_gain 'rockpool' reads Rockpool's LIFTorch, "
                                    "which decays by exp(−dt/τ): pass tau_rule 'exp' (--tau-rule exp)")
    tau, r = f["tau_mem"], f["r"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        want = np.where(np.isinf(tau), np.inf, tau * np.exp(-dt / tau) / dt)
    ok = np.isclose(r, want, rtol=ROCKPOOL_R_RTOL, atol=0.0) | (np.isinf(r) & np.isinf(want))
    if not np.all(ok):
        c = int(np.flatnonzero(~ok)[0])
        hint = ""
        if np.isfinite(tau[c]) and np.isfinite(r[c]) and r[c] > 0:
            hint = f"; this r is Rockpool's for dt = {_rockpool_dt(float(tau[c]), float(r[c])):.6g}"
        raise UnsupportedLayerError(f"NIR node {name!r} (CubaLIF): field 'r' = {r[c]:.7g} (channel {c}) is not Rockpool's "
                                    f"τ_mem·exp(−dt/τ_mem)/dt = {want[c]:.7g} for dt = {dt:g} (cuba_input_gain 'rockpool')"
                                    f"{hint}")
    if np.any(~np.isfinite(f["w_in"])) or np.any(f["w_in"] <= 0):
        raise UnsupportedLayerError(f"NIR node {name!r}: w_in must be finite and > 0")
    return f["w_in"] * alpha, np.ones_like(alpha)


def _decay_gain(name: str, field: str, tau: np.ndarray, r: np.ndarray, dt: float, tau_rule: str,
                r_field: str = "r") -> tuple[np.ndarray, np.ndarray]:
    """(decay β, input gain) per channel of one NIR state ``τ dx/dt = −x + r·input`` for one step ``dt``:
    ``euler`` β = 1 − dt/τ, gain r·dt/τ; ``exp`` (exact for an input held over the step) β = exp(−dt/τ),
    gain r·(1 − β); τ = r = ∞ reads as β = 1, gain 1 (snnTorch's β = 1 export); a gain within
    :data:`GAIN_SNAP` of 1 is read as 1; β < 0 (τ < dt) is refused naming the node and field."""
    if tau_rule not in TAU_RULES:
        raise ValueError(f"tau_rule must be one of {TAU_RULES}, got {tau_rule!r}")
    if np.any(tau <= 0):
        raise UnsupportedLayerError(f"NIR node {name!r}: {field} must be > 0")
    with np.errstate(divide="ignore", invalid="ignore"):
        if tau_rule == "exp":
            beta = np.where(np.isinf(tau), 1.0, np.exp(-dt / tau))
            gain = np.where(np.isinf(tau) & np.isinf(r), 1.0, r * -np.expm1(-dt / tau))
        else:
            beta = np.where(np.isinf(tau), 1.0, 1.0 - dt / tau)
            gain = np.where(np.isinf(tau) & np.isinf(r), 1.0, r * dt / tau)  # r = τ/dt, both ∞: snnTorch's β = 1
    if np.any(~np.isfinite(gain)) or np.any(gain <= 0):
        raise UnsupportedLayerError(f"NIR node {name!r}: input gain {r_field}·dt/{field} = "
                                    f"{gain[~np.isfinite(gain) | (gain <= 0)][:4]} is not a finite positive number")
    gain = np.where(np.abs(gain - 1.0) <= GAIN_SNAP, 1.0, gain)
    if np.any(beta < -1e-9):
        raise UnsupportedLayerError(f"NIR node {name!r}: {field} < dt ({tau.min():.3g} < {dt:.3g}) gives β < 0 at this dt; "
                                    "pass the dt the graph was made for")
    return np.clip(beta, 0.0, 1.0), gain


def _check_reset_threshold(name: str, node, fields: dict[str, np.ndarray]) -> None:
    v_reset = np.asarray(node.v_reset if node.v_reset is not None else 0.0, dtype=np.float64)
    if np.any(v_reset != 0):
        raise UnsupportedLayerError(f"NIR node {name!r}: v_reset ≠ 0 is not supported (the integer neuron resets to 0, "
                                    "or subtracts θ when the file says so)")
    for fname, arr in fields.items():
        if np.any(np.isnan(arr)):
            raise UnsupportedLayerError(f"NIR node {name!r}: field {fname!r} is NaN")
    theta = fields["v_threshold"]
    if not np.all(np.isfinite(theta)) or np.any(theta < 0):
        raise UnsupportedLayerError(f"NIR node {name!r}: v_threshold must be finite and ≥ 0")


def _lif_params(name: str, node, out_shape: tuple[int, ...], dt: float, tau_rule: str = "euler"):
    """(β, gain, v_leak, θ) per channel from a NIR LIF, one step of τ dv/dt = (v_leak − v) + R·I:
    ``euler`` β = 1 − dt/τ, gain r·dt/τ; ``exp`` (exact for an input held over the step) β = exp(−dt/τ),
    gain r·(1 − β). Both: v ← β·v + (1 − β)·v_leak + gain·I."""
    if tau_rule not in TAU_RULES:
        raise ValueError(f"tau_rule must be one of {TAU_RULES}, got {tau_rule!r}")
    f = {k: _channelwise(name, k, getattr(node, k), out_shape) for k in ("tau", "r", "v_leak", "v_threshold")}
    _check_reset_threshold(name, node, f)
    beta, gain = _decay_gain(name, "tau", f["tau"], f["r"], dt, tau_rule)
    return beta, gain, f["v_leak"], f["v_threshold"]


def _cuba_params(name: str, node, out_shape: tuple[int, ...], dt: float, tau_rule: str = "euler",
                 input_gain: str = "nir"):
    """(α, β, gain, θ) per channel from a NIR CubaLIF (``τ_syn dI/dt = −I + w_in·S``,
    ``τ_mem dv/dt = (v_leak − v) + R·I``), one step: ``I ← α·I + g_i·S``, ``v ← β·v + g_v·I`` (current
    first, the membrane takes the new current: snnTorch's ``Synaptic`` and Norse's ``LIFCell`` order).
    α, g_i from τ_syn and w_in, β, g_v from τ_mem and r (:func:`_decay_gain`; ``input_gain="w_in"``:
    g_i = w_in, Norse's; ``"rockpool"``: g_i = w_in·α, g_v = 1, Rockpool's ``LIFTorch``, whose input joins the
    current before the decay: :data:`CUBA_INPUT_GAINS`). Scaling the current by g_v gives
    ``I' ← α·I' + g_i·g_v·S``, ``v ← β·v + I'``: ``gain = g_i·g_v`` goes into the synapse. ``v_leak ≠ 0``
    is refused (snnTorch's ``Synaptic``, the float model rebuilt here, has no membrane bias)."""
    if input_gain not in CUBA_INPUT_GAINS:
        raise ValueError(f"cuba_input_gain must be one of {CUBA_INPUT_GAINS}, got {input_gain!r}")
    f = {k: _channelwise(name, k, getattr(node, k), out_shape)
         for k in ("tau_syn", "tau_mem", "r", "w_in", "v_leak", "v_threshold")}
    _check_reset_threshold(name, node, f)
    if np.any(f["v_leak"] != 0):
        raise UnsupportedLayerError(f"NIR node {name!r} (CubaLIF): v_leak ≠ 0 is not supported (a constant drive on the "
                                    "membrane; snnTorch's Synaptic has none)")
    if input_gain == "rockpool":  # tau_rule and r first: a wrong dt is named before the decays are read with it
        _rockpool_gains(name, f, np.ones_like(f["tau_mem"]), dt, tau_rule)
    alpha, g_i = _decay_gain(name, "tau_syn", f["tau_syn"], f["w_in"], dt, tau_rule, r_field="w_in")
    if input_gain == "w_in":
        if np.any(~np.isfinite(f["w_in"])) or np.any(f["w_in"] <= 0):
            raise UnsupportedLayerError(f"NIR node {name!r}: w_in must be finite and > 0")
        g_i = f["w_in"]
    beta, g_v = _decay_gain(name, "tau_mem", f["tau_mem"], f["r"], dt, tau_rule)
    if input_gain == "rockpool":
        g_i, g_v = _rockpool_gains(name, f, alpha, dt, tau_rule)
    gain = g_i * g_v
    gain = np.where(np.abs(gain - 1.0) <= GAIN_SNAP, 1.0, gain)
    return alpha, beta, gain, f["v_threshold"]


def _squeeze_batch(shape: tuple[int, ...], first) -> tuple[int, ...]:
    """Drop a leading batch dim of 1 that some exporters leave in the Input type."""
    import nir

    if isinstance(first, nir.Conv2d) and len(shape) == 4 and shape[0] == 1:
        return shape[1:]
    if isinstance(first, (nir.Linear, nir.Affine)) and len(shape) == 2 and shape[0] == 1:
        return shape[1:]
    return shape


def nir_graph_to_torch(graph: nir.NIRGraph, *, weight_bits: int = 8, input_scale: float | None = None,
                       input_bits: int = 8, input_signed: bool = False, num_steps: int = 100, dt: float = DT,
                       tau_rule: str = "euler", cuba_input_gain: str = "nir") -> QSequential:
    """The float network of a (foreign) NIR graph as a :class:`~qsnn_deploy.nn.QSequential`.

    Each LIF block ``[Flatten] Conv2d|Linear|Affine [AvgPool2d|SumPool2d] LIF`` becomes plain torch
    layers and a ``snntorch.Leaky(reset_mechanism="zero")`` running NIR's Euler-discretised
    semantics: ``v ← β·v + (1 − β)·v_leak + g·I`` with ``β = 1 − dt/τ`` and gain ``g = r·dt/τ``
    (folded into the synapse; ``(1 − β)·v_leak`` becomes bias), spike ``v > v_threshold``, reset to
    0. The synapse modules also carry their integer weights for :func:`freeze`. ``tau_rule="exp"``
    reads τ as Sinabs and Rockpool do: ``β = exp(−dt/τ)``, gain ``r·(1 − β)``.

    A ``CubaLIF`` becomes ``snntorch.Synaptic(reset_mechanism="zero", reset_delay=False)`` (kind ``"cuba"``,
    reset ``"zero"``: NIR's reset right after the spike), :func:`_cuba_params`; ``cuba_input_gain`` says how
    its current takes its input (:data:`CUBA_INPUT_GAINS`). A recurrent neuron (:data:`RECURRENT_FORM`, as
    snnTorch writes ``RLeaky``/``RSynaptic``) becomes ``RLeaky``/``RSynaptic`` (``all_to_all``, the same
    reset) whose ``Linear`` holds ``w_rec`` times the neuron's input gain.
    """
    import nir
    import snntorch as snn

    from ..nn import QSequential

    if not 2 <= weight_bits <= 16:
        raise FrozenNetError("input", "weight_bits", f"must be in 2..16, got {weight_bits}")
    chain = _chain(graph)
    body = [(n, node) for n, node in chain if not isinstance(node, (nir.Input, nir.Output))]
    if not body:
        raise UnsupportedLayerError("the NIR graph has no layers between its Input and Output")
    raw_shape = tuple(int(s) for s in np.asarray(chain[0][1].input_type["input"]).reshape(-1))
    shape = _squeeze_batch(raw_shape, body[0][1])
    if input_scale is None:
        input_scale = 1.0 / 255.0 if input_bits == 8 else 1.0
    mods: "OrderedDict[str, nn.Module]" = OrderedDict()
    cur = shape
    pending: dict[str, Any] = {}
    used_names: set[str] = set()

    def modname(n: str) -> str:
        base = _node_name(n) or "node"
        k, i = base, 1
        while k in used_names:
            k, i = f"{base}_{i}", i + 1
        used_names.add(k)
        return k

    for name, node in body:
        if isinstance(node, nir.Flatten):
            if pending:
                raise UnsupportedLayerError(f"NIR node {name!r} (Flatten) sits between a synapse and its LIF")
            pending["flatten"] = name
            cur = (int(np.prod(cur)),)
            continue
        if isinstance(node, nir.Conv2d):
            if "synapse" in pending:
                raise UnsupportedLayerError(f"NIR node {name!r} (Conv2d) follows synapse {pending['synapse'][0]!r} with no LIF in between")
            if len(cur) != 3:
                raise UnsupportedLayerError(f"NIR node {name!r} (Conv2d) needs a (C, H, W) input, gets {cur}")
            if int(node.groups) != 1 or tuple(int(d) for d in np.broadcast_to(np.asarray(node.dilation), (2,))) != (1, 1):
                raise UnsupportedLayerError(f"NIR node {name!r} (Conv2d): only groups=1, dilation=1 are supported")
            w = np.asarray(node.weight, dtype=np.float64)
            if w.ndim != 4 or w.shape[1] != cur[0]:
                raise UnsupportedLayerError(f"NIR node {name!r} (Conv2d): weight {w.shape} does not take {cur[0]} input channels")
            stride = tuple(int(s) for s in np.broadcast_to(np.asarray(node.stride), (2,)))
            pad = node.padding
            if isinstance(pad, str):
                if pad == "valid":
                    pad = (0, 0)
                elif pad == "same" and stride == (1, 1) and w.shape[2] % 2 and w.shape[3] % 2:
                    pad = ((w.shape[2] - 1) // 2, (w.shape[3] - 1) // 2)
                else:
                    raise UnsupportedLayerError(f"NIR node {name!r} (Conv2d): padding {pad!r} needs stride 1 and an odd kernel")
            pad = tuple(int(p) for p in np.broadcast_to(np.asarray(pad), (2,)))
            bias = np.zeros(w.shape[0]) if node.bias is None else np.broadcast_to(np.asarray(node.bias, dtype=np.float64), (w.shape[0],))
            ho = (cur[1] + 2 * pad[0] - w.shape[2]) // stride[0] + 1
            wo = (cur[2] + 2 * pad[1] - w.shape[3]) // stride[1] + 1
            pending["synapse"] = (name, "conv", w, np.array(bias), stride, pad)
            cur = (w.shape[0], ho, wo)
            continue
        if isinstance(node, (nir.Linear, nir.Affine)):
            if "synapse" in pending:
                raise UnsupportedLayerError(f"NIR node {name!r} ({type(node).__name__}) follows synapse {pending['synapse'][0]!r} with no LIF in between")
            w = np.asarray(node.weight, dtype=np.float64)
            if w.ndim != 2:
                raise UnsupportedLayerError(f"NIR node {name!r}: weight must be 2-D, got {w.shape}")
            if len(cur) != 1:
                raise UnsupportedLayerError(f"NIR node {name!r} ({type(node).__name__}) needs a flat input, gets {cur}; add a Flatten")
            if w.shape[1] != cur[0]:
                raise UnsupportedLayerError(f"NIR node {name!r}: weight {w.shape} does not take {cur[0]} inputs")
            bias = np.asarray(node.bias, dtype=np.float64) if isinstance(node, nir.Affine) else np.zeros(w.shape[0])
            pending["synapse"] = (name, "dense", w, np.broadcast_to(bias, (w.shape[0],)).copy(), (1, 1), (0, 0))
            cur = (w.shape[0],)
            continue
        if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            kind = type(node).__name__
            if "synapse" not in pending or pending["synapse"][1] != "conv" or "pool" in pending:
                raise UnsupportedLayerError(f"NIR node {name!r} ({kind}): pooling is supported only between a Conv2d and its LIF "
                                            "(pooling spikes would make them non-binary)")
            k = tuple(int(v) for v in np.broadcast_to(np.asarray(node.kernel_size), (2,)))
            s = tuple(int(v) for v in np.broadcast_to(np.asarray(node.stride if node.stride is not None else k), (2,)))
            p = tuple(int(v) for v in np.broadcast_to(np.asarray(node.padding if node.padding is not None else 0), (2,)))
            if k != s or p != (0, 0):
                raise UnsupportedLayerError(f"NIR node {name!r} ({kind}): only kernel = stride and no padding are supported "
                                            f"(got kernel {k}, stride {s}, padding {p})")
            pending["pool"] = (name, kind, k)
            cur = (cur[0], cur[1] // k[0], cur[2] // k[1])
            continue
        if isinstance(node, (nir.LIF, nir.CubaLIF, nir.NIRGraph)):
            neuron_name, neuron, w_rec = name, node, None
            if isinstance(node, nir.NIRGraph):  # a recurrent neuron (recurrent_parts checked its form in _chain)
                nk, neuron, wk, w_node = recurrent_parts(name, node)
                neuron_name = nk if nk == name else f"{name}.{nk}"
                if pending.get("synapse", (None, None))[1] != "dense" or len(cur) != 1:
                    raise UnsupportedLayerError(f"NIR node {name!r} (recurrent {type(neuron).__name__}): a recurrent layer "
                                                "needs a dense synapse (Linear/Affine) in front of it")
                w_rec = np.asarray(w_node.weight, dtype=np.float64)
                b_rec = (np.broadcast_to(np.asarray(w_node.bias, dtype=np.float64), (w_rec.shape[0],))
                         if isinstance(w_node, nir.Affine) else np.zeros(w_rec.shape[0]))
            kind_name = type(neuron).__name__
            if "synapse" not in pending:
                raise UnsupportedLayerError(f"NIR node {name!r} ({kind_name}) has no Conv2d/Linear/Affine in front of it")
            sname, kind, w, bias, stride, pad = pending["synapse"]
            if isinstance(neuron, nir.CubaLIF):
                alpha, beta, gain, theta = _cuba_params(neuron_name, neuron, cur, dt, tau_rule, cuba_input_gain)
                v_leak = np.zeros_like(beta)
            else:
                beta, gain, v_leak, theta = _lif_params(neuron_name, neuron, cur, dt, tau_rule)
            area = 1
            if "pool" in pending:
                _, pkind, k = pending["pool"]
                area = k[0] * k[1]
                if pkind == "SumPool2d":
                    # sumpool(conv(W,x) + b) = avgpool(conv(area·W, x)) + area·b
                    bias = bias * area
            scale_c = gain * (area if ("pool" in pending and pending["pool"][1] == "SumPool2d") else 1)
            eff_bias = gain * bias + (1.0 - beta) * v_leak
            if pending.get("flatten"):
                mods[modname(pending["flatten"])] = nn.Flatten()
            syn = _synapse_module(kind, w, eff_bias, scale_c, weight_bits, stride, pad)
            mods[modname(sname)] = syn
            if "pool" in pending:
                mods[modname(pending["pool"][0])] = nn.AvgPool2d(pending["pool"][2])
            view = (-1, 1, 1) if kind == "conv" else (-1,)

            def param(a):
                return torch.as_tensor(a, dtype=torch.float64).view(view)

            # NIR resets to v_reset right after a spike: snnTorch's reset_delay=False (Leaky's delayed zero reset
            # is the same; Synaptic's and RLeaky's would lose the step's input, docs/design.md §7)
            common = dict(threshold=param(theta), reset_mechanism="zero", init_hidden=False)
            if w_rec is not None:
                rec = dict(all_to_all=True, linear_features=int(cur[0]), reset_delay=False)
                mod = (snn.RSynaptic(alpha=param(alpha), beta=param(beta), **rec, **common) if isinstance(neuron, nir.CubaLIF)
                       else snn.RLeaky(beta=param(beta), **rec, **common))
                with torch.no_grad():  # V(z) joins the neuron's input S: the same gain as the synapse
                    mod.recurrent.weight.copy_(torch.as_tensor(w_rec * gain[:, None], dtype=torch.float32))
                    mod.recurrent.bias.copy_(torch.as_tensor(b_rec * gain, dtype=torch.float32))
            elif isinstance(neuron, nir.CubaLIF):
                mod = snn.Synaptic(alpha=param(alpha), beta=param(beta), reset_delay=False, **common)
            else:
                mod = snn.Leaky(beta=param(beta), **common)
            mods[modname(name)] = mod
            pending = {}
            continue
        raise UnsupportedLayerError(f"NIR node {name!r} of type {type(node).__name__} is not supported. Supported: {SUPPORTED_NODES}")
    if pending:
        left = [v[0] if isinstance(v, tuple) else v for v in pending.values()]
        raise UnsupportedLayerError(f"NIR nodes {left} after the last LIF: the graph must end with a LIF node")
    return QSequential(mods, input_shape=shape, input_scale=float(input_scale), input_bits=int(input_bits),
                       input_signed=bool(input_signed), num_steps=int(num_steps))


@overload
def nir_graph_to_frozen(graph: nir.NIRGraph, *, weight_bits: int = ..., frac_bits: int = ..., state_bits: int = ...,
                        input_scale: float | None = ..., input_bits: int = ..., input_signed: bool = ...,
                        num_steps: int = ..., dt: float = ..., return_model: Literal[False] = ...,
                        metadata: dict | None = ..., tau_rule: str = ..., cuba_input_gain: str = ...) -> FrozenNet: ...


@overload
def nir_graph_to_frozen(graph: nir.NIRGraph, *, weight_bits: int = ..., frac_bits: int = ..., state_bits: int = ...,
                        input_scale: float | None = ..., input_bits: int = ..., input_signed: bool = ...,
                        num_steps: int = ..., dt: float = ..., return_model: Literal[True],
                        metadata: dict | None = ..., tau_rule: str = ...,
                        cuba_input_gain: str = ...) -> tuple[FrozenNet, QSequential]: ...


def nir_graph_to_frozen(graph: nir.NIRGraph, *, weight_bits: int = 8, frac_bits: int = intmath.DEFAULT_FRAC_BITS,
                        state_bits: int = intmath.DEFAULT_STATE_BITS, input_scale: float | None = None,
                        input_bits: int = 8, input_signed: bool = False, num_steps: int = 100, dt: float = DT,
                        return_model: bool = False, metadata: dict | None = None, tau_rule: str = "euler",
                        cuba_input_gain: str = "nir") -> FrozenNet | tuple[FrozenNet, QSequential]:
    """Freeze a NIR graph from another tool (see :func:`nir_graph_to_torch` for the mapping).

    Args:
        weight_bits: width of the integer weights (float weights are quantized per tensor,
            symmetric, narrow range; integer-valued weights within this width are kept exactly).
        frac_bits, state_bits: F and B_v of every layer.
        input_scale, input_bits, input_signed: the integer input the graph's float input is made
            of (default: 8-bit pixels, scale 1/255; 1-bit spikes: scale 1).
        num_steps: default T of the frozen net.
        dt: time step the graph's τ are read with (default 1e-4, snnTorch's). Sinabs writes τ in
            time steps (dt = 1); Norse 1.1's ``to_nir`` writes τ = dt_norse/``tau_mem_inv``, i.e. τ·dt_norse,
            so its graphs read right with dt = dt_norse² (1e-6 for its default 1e-3).
        tau_rule: ``"euler"`` (β = 1 − dt/τ: snnTorch, Norse) or ``"exp"`` (β = exp(−dt/τ): Sinabs, Rockpool).
        cuba_input_gain: ``"nir"`` (a CubaLIF's current gain w_in·dt/τ_syn: snnTorch), ``"w_in"`` (Norse's
            ``LIFCell``) or ``"rockpool"`` (Rockpool's ``LIFTorch``, with ``tau_rule="exp"`` and Rockpool's dt),
            :data:`CUBA_INPUT_GAINS`.
        return_model: also return the float QSequential (for a measured float-vs-integer check).
    """
    from ..freeze import freeze

    model = nir_graph_to_torch(graph, weight_bits=weight_bits, input_scale=input_scale, input_bits=input_bits,
                               input_signed=input_signed, num_steps=num_steps, dt=dt, tau_rule=tau_rule,
                               cuba_input_gain=cuba_input_gain)
    meta = {"source": "nir", "nir_dt": dt, "nir_tau_rule": tau_rule, "nir_weight_bits": weight_bits,
            "nir_cuba_input_gain": cuba_input_gain}
    meta.update(metadata or {})
    net = freeze(model, frac_bits=frac_bits, state_bits=state_bits, metadata=meta)
    return (net, model) if return_model else net


def load_nir(path: str | Path, **options: Any) -> tuple[FrozenNet, QSequential | None]:
    """(frozen net, float torch model or None) from a ``.nir`` file: a qsnn-written file is read
    exactly (:func:`read_nir`); any other graph is imported with :func:`nir_graph_to_frozen`."""
    graph = read_graph(path)
    try:
        if is_qsnn_graph(graph):
            return frozen_from_nir_graph(graph), None
        return nir_graph_to_frozen(graph, return_model=True, metadata={"nir_file": Path(path).name}, **options)
    except (KeyError, ValueError, TypeError, AttributeError, IndexError, RuntimeError) as exc:
        if isinstance(exc, QSNNError):  # already a clear error
            raise
        raise CheckpointError(f"{path}: malformed NIR graph ({type(exc).__name__}: {exc})") from None
