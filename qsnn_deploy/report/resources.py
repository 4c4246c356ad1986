"""Chip resources of the target, per layer and per core, and the headroom of every fitted field.

For ``--target lava`` (Intel Loihi 2): the fit check (:func:`qsnn_deploy.lava.check.check_net`)
derives each layer's cores as ``max(⌈neurons / 8,192⌉, ⌈synapses / 937,500⌉, 1)`` (a conv's
synapses counted as its shared kernel, a dense layer's as every connection); this module shows
what one core then holds — neurons, synapse memory (Loihi 8-bit weight mantissas: a conv's whole
kernel in every core, a dense layer's share), neuron state memory (stock LIF: the 24-bit current
u and voltage v per neuron; the custom QLIF route also a 24-bit threshold per neuron) — against
the core's limits, and the headroom of every field the fit check computes (weight mantissa and
exponent, threshold and bias mantissas, decay, state width, worst-case and measured |v|, the
synaptic current, fan-in, the input message). A value at ≥ 90 % of its limit is ``"near"``, over
it ``"over"``.

Core limits: 8,192 neurons, 120 M synapses / 128 cores (Intel Labs, "Taking Neuromorphic
Computing to the Next Level with Loihi 2", technology brief, 2021: 1 M neurons, 120 M synapses,
128 cores per chip) and 192 KiB of memory per core, flexibly allocated between synapses and
neuron states (the same brief's comparison table; quoted from it, not re-read here). These are
capacity estimates, not a placement by Lava's compiler.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..frozen import FrozenNet

if TYPE_CHECKING:
    from .metrics import Report

#: Loihi 2 memory per neuro-core (bytes): 192 KB, shared by synapses and neuron states.
CORE_MEMORY_BYTES = 192 * 1024
#: Bits of one Loihi 2 LIF state variable (u, v; and the per-neuron vth of the custom route).
STATE_VAR_BITS = 24
#: Fraction of a limit from which a value is shown as near it.
NEAR = 0.9


def _status(value: float, limit: float) -> str:
    if value > limit:
        return "over"
    return "near" if limit > 0 and value >= NEAR * limit else "ok"


def _row(layer: str, field: str, value: float, limit: float, shown: str, limit_shown: str, blocking: bool = True,
         note: str = "", unit: str = "", full_ok: bool = False, fraction: bool = True) -> dict[str, Any]:
    """One headroom row; ``full_ok``: reaching the limit exactly is the normal setting (e.g. a 24-bit state on a
    24-bit chip), not a warning."""
    frac = (value / limit) if limit else 0.0
    status = _status(value, limit)
    if not fraction:
        frac = None
    if full_ok and status == "near":
        status = "ok"
    return {"layer": layer, "field": field, "value": float(value), "limit": float(limit), "unit": unit,
            "shown": shown, "limit_shown": limit_shown, "used_fraction": None if frac is None else float(frac),
            "status": status, "blocking": blocking, "note": note}


def _bits_row(layer: str, field: str, bits: int, limit_bits: int, shown: str, note: str = "",
              full_ok: bool = False) -> dict[str, Any]:
    return _row(layer, field, bits, limit_bits, shown, f"{limit_bits} bits", note=note, unit="bits", full_ok=full_ok)


def lava_resources(net: FrozenNet, report: Report) -> dict[str, Any]:
    """Loihi 2 resources of ``net`` (per layer, per core) and the headroom rows (see the module docstring)."""
    from ..lava import check as lc
    from ..statebound import net_peak_currents, net_state_bounds

    fit = lc.check_net(net)
    prof = fit.profile
    syn_core = prof.synapses_per_core
    bounds = net_state_bounds(net)
    currents = net_peak_currents(net)
    layers, rows = [], []
    for layer, lf, st, lr, bound, cur in zip(net.layers, fit.layers, net.layer_shapes(), report.layers, bounds, currents):
        s = lr.static
        neurons = s.neurons
        synapses = s.loihi_weights if layer.synapse.kind == "conv" else s.synapses
        by_neurons, by_synapses = math.ceil(neurons / prof.neurons_per_core), math.ceil(synapses / syn_core)
        cores = lf.cores
        basis = ("neurons" if by_neurons >= by_synapses and by_neurons > 1 else
                 "synapses" if by_synapses > 1 else "minimum (one core)")
        per_core_neurons = math.ceil(neurons / cores)
        syn_bytes = s.loihi_weight_bytes if layer.synapse.kind == "conv" else math.ceil(s.loihi_weight_bytes / cores)
        state_vars = 2 if lf.route == "stock" else 3
        state_bytes = per_core_neurons * state_vars * STATE_VAR_BITS // 8
        mem = syn_bytes + state_bytes
        layers.append({
            "name": s.name, "route": lf.route, "process": "LIF" if lf.route == "stock" else lf.process,
            "cores": cores, "cores_by": basis,
            "cores_rule": (f"max(⌈{neurons:,} neurons / {prof.neurons_per_core:,}⌉ = {by_neurons}, "
                           f"⌈{synapses:,} synapses / {syn_core:,}⌉ = {by_synapses}, 1) = {cores}"),
            "neurons_per_core": per_core_neurons, "neurons_limit": prof.neurons_per_core,
            "synapse_bytes_per_core": int(syn_bytes), "state_bytes_per_core": int(state_bytes),
            "state_vars": ["u", "v"] + (["vth"] if state_vars == 3 else []),
            "memory_bytes_per_core": int(mem), "memory_limit_bytes": CORE_MEMORY_BYTES,
            "status": _status(max(per_core_neurons / prof.neurons_per_core, mem / CORE_MEMORY_BYTES), 1.0)})
        # ---- headroom of every field the fit check computes
        w = lc.deploy_weight(layer)
        bits, exp, mixed = lc.weight_mantissa(w)
        rows.append(_bits_row(s.name, "weight mantissa", bits, prof.weight_mantissa_bits,
                              f"{bits} bits ({'mixed sign' if mixed else 'one sign'}, |w| ≤ {int(np.abs(w).max(initial=0))})"))
        rows.append(_row(s.name, "weight exponent", exp - prof.weight_exp_min, prof.weight_exp_max - prof.weight_exp_min,
                         str(exp).replace("-", "−"), f"{prof.weight_exp_min} … {prof.weight_exp_max}".replace("-", "−"),
                         fraction=False))
        vth = int(np.max(layer.neuron.threshold)) >> lc.LAVA_SHIFT
        vlim = (1 << prof.vth_mant_bits) - 1
        rows.append(_row(s.name, "threshold mantissa (vThMant = θ >> 6)", vth, vlim, f"{vth:,} ({max(vth, 1).bit_length()} bit{'s' if vth > 1 else ''})",
                         f"{vlim:,} ({prof.vth_mant_bits} bits)"))
        bm = int(np.max(np.abs(np.asarray(layer.neuron.bias, dtype=np.int64) >> lc.NETX_BIAS_EXP), initial=0))
        blim = (1 << (prof.bias_mant_bits - 1)) - 1
        rows.append(_row(s.name, "bias mantissa (b >> 6)", bm, blim, f"|{bm:,}|", f"|{blim:,}| ({prof.bias_mant_bits} bits signed)"))
        dv = int(np.max(4096 - np.asarray(layer.neuron.decay, dtype=np.int64)))
        dlim = (1 << prof.decay_bits) - 1
        rows.append(_row(s.name, "decay dv = 4096 − d", dv, dlim, f"{dv:,}", f"0 … {dlim:,} ({prof.decay_bits} bits)",
                         fraction=False))
        rows.append(_bits_row(s.name, "state width B_v", layer.neuron.state_bits, prof.state_bits, f"{layer.neuron.state_bits} bits",
                              full_ok=True))
        peak, lim = bound.peak, layer.state_limit
        rows.append(_row(s.name, "worst-case |v| (any input in range)", peak if math.isfinite(peak) else float(lim) * 2,
                         lim, f"{peak:,.0f}" if math.isfinite(peak) else "unbounded (no leak)", f"{lim:,} (2^{layer.neuron.state_bits - 1} − 1)",
                         blocking=False, note="a bound, not a measurement: over it means clipping is possible, not seen"))
        a = lr.activity
        if a is not None and a.state_min is not None:
            seen = max(abs(a.state_min), abs(a.state_max))
            rows.append(_row(s.name, "measured |v| (these samples)", seen, lim,
                             f"{seen:,} ({a.state_bits_used} of {layer.neuron.state_bits} bits)", f"{lim:,}", blocking=False,
                             note=(f"{a.saturation_events:,} (neuron, step) clips" if a.saturation_events else "")))
        alim = 1 << 23
        rows.append(_row(s.name, "synaptic current |a| << 6 (stock u)", cur << lc.LAVA_SHIFT, alim - 1,
                         f"{cur << lc.LAVA_SHIFT:,}", f"{alim - 1:,} (24-bit u wraps)",
                         blocking=lf.route == "stock", note="" if lf.route == "stock" else "custom route: not used"))
        rows.append(_row(s.name, "fan-in", s.fan_in, syn_core, f"{s.fan_in:,} synapses", f"{syn_core:,} per core"))
        rows.append(_row(s.name, "neurons per core", per_core_neurons, prof.neurons_per_core, f"{per_core_neurons:,}",
                         f"{prof.neurons_per_core:,}"))
        rows.append(_row(s.name, "memory per core (synapses + states)", mem, CORE_MEMORY_BYTES, f"{mem:,} B",
                         f"{CORE_MEMORY_BYTES:,} B (192 KiB)", unit="B"))
    in_bits = max(int(net.input.max_abs).bit_length(), 1) + (1 if net.input.signed else 0)
    rows.append(_bits_row("input", "input message (graded spike)", in_bits, prof.graded_spike_bits, f"{in_bits} bits"))
    return {
        "target": "lava", "chip": "Intel Loihi 2", "cores": int(fit.cores), "cores_per_chip": int(prof.cores_per_chip),
        "core_limits": {"neurons": int(prof.neurons_per_core), "synapses": int(syn_core),
                        "memory_bytes": CORE_MEMORY_BYTES, "state_var_bits": STATE_VAR_BITS},
        "source": ("Intel Labs, 'Taking Neuromorphic Computing to the Next Level with Loihi 2', technology brief "
                   "(2021): 1 M neurons, 120 M synapses, 128 cores per chip, 192 KB memory per core; widths from "
                   "Lava's bit-accurate LIF and Dense models"),
        "rule": ("cores of a layer = max(⌈neurons / 8,192⌉, ⌈synapses / 937,500⌉, 1), a conv's synapses counted as "
                 "its shared kernel; a capacity estimate, not Lava's placement"),
        "layers": layers, "headroom": rows,
    }


#: Per target: the function giving its resources.
RESOURCES = {"lava": lava_resources}


def chip_resources(net: FrozenNet, report: Report, target: str | None) -> dict[str, Any] | None:
    """Resources of ``target`` for ``net`` (None when no target is given or none is known for it)."""
    fn = RESOURCES.get(target or "")
    return None if fn is None else fn(net, report)


__all__ = ["chip_resources", "lava_resources", "CORE_MEMORY_BYTES", "NEAR"]
