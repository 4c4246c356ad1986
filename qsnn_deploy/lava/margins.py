"""How close each field of each layer comes to its Loihi 2 / Lava limit (``qsnn-export --target lava
--check``; ``--strict --margin-bits N`` refuses a margin under N bits). No Lava import.

Margin of a magnitude field, in bits: ``floor(log2(limit / value))``, how many times the value could
double and still fit (0: it fits, but not at twice its size; ∞: the value is 0). Fields, per layer:

* ``weight mantissa`` [bits]: the exact m·2^e encoding of the weights Lava runs (pools folded), sign
  included for mixed signs, against a Loihi 2 synapse's 8 bits; margin = 8 - bits used.
* ``threshold mantissa``: stock ``vThMant = θ >> 6`` against 2^17 - 1 (17 bits unsigned); custom
  (QLIF) θ against the B_v-bit state, 2^(B_v-1) - 1 [state units].
* ``bias mantissa``: stock ``bias_mant = b >> 6`` against the signed 13 bits (4095 above zero, 4096
  below); custom |b| against the B_v-bit state [state units].
* ``state |v|``: the proven worst-case |v| (:mod:`qsnn_deploy.statebound`) against 2^(B_v-1) - 1;
  "unbounded" (a layer without leak) has no margin.
* ``current |a| << 6`` (stock only): the largest synaptic current, as Lava's 24-bit current u holds
  it (u wraps), against 2^23 - 1.
* ``weight exponent`` and ``bias exponent``: shown with their ranges (−8..7; 0..7, netx fixes 6),
  margin = steps to the nearer end; not magnitudes, so ``--margin-bits`` does not count them.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..frozen import FrozenNet
from ..statebound import net_peak_currents, net_state_bounds
from .check import (LAVA_SHIFT, LOIHI2, NETX_BIAS_EXP, LoihiProfile, NetFit, check_net, deploy_weight, netx_dense_weights,
                    weight_mantissa)

if TYPE_CHECKING:
    from rich.table import Table


@dataclass
class Margin:
    """One field of one layer: its value, its limit and the margin between them.

    Attributes:
        layer: layer name.
        field: e.g. ``"bias mantissa"``.
        value: the largest magnitude the field takes (its unit in ``unit``).
        limit: the largest magnitude the field may take.
        margin_bits: ``floor(log2(limit / value))`` for magnitudes (``inf`` when value is 0, negative
            when over the limit, None when unbounded); for exponents the steps to the nearer end.
        counted: whether ``--margin-bits`` applies to it (magnitudes yes, exponents no).
        unit: what value and limit count (``"bits"``, ``"mantissa"``, ``"state units"``, ``"exponent"``).
    """
    layer: str
    field: str
    value: float
    limit: float
    margin_bits: float | None
    counted: bool = True
    unit: str = ""

    def text(self) -> str:
        """``value of limit (unit): N bits to spare``, for tables and error lines."""
        m = self.margin_bits
        spare = ("unbounded" if m is None else "∞" if m == math.inf else f"{int(m)}")
        what = "steps to the range's end" if self.unit == "exponent" else "bits to spare"
        return f"{_num(self.value)} of {_num(self.limit)} ({self.unit}): {spare} {what}"


def _num(x: float) -> str:
    return "unbounded" if x is None or (isinstance(x, float) and math.isinf(x)) else f"{int(x):,}"


def margin_bits(value: float, limit: float) -> float | None:
    """``floor(log2(limit / value))`` [bits]; ``inf`` for a zero value, None for an unbounded one."""
    if value is None or math.isinf(value) or math.isnan(value):
        return None
    if value <= 0:
        return math.inf
    return float(math.floor(math.log2(limit / value)))


def net_margins(net: FrozenNet, fit: NetFit | None = None, profile: LoihiProfile = LOIHI2) -> list[Margin]:
    """Every layer's margins (module docstring), stock fields for ``stock`` layers and the QLIF state
    width for ``custom`` ones."""
    fit = fit or check_net(net, profile)
    states = net_state_bounds(net)
    currents = net_peak_currents(net)
    out: list[Margin] = []
    for layer, lf, state, current in zip(net.layers, fit.layers, states, currents):
        name = layer.name
        bits, exp, _ = weight_mantissa(deploy_weight(layer))
        out.append(Margin(name, "weight mantissa", bits, profile.weight_mantissa_bits,
                          float(profile.weight_mantissa_bits - bits), unit="bits"))
        out.append(Margin(name, f"weight exponent (range {profile.weight_exp_min}..{profile.weight_exp_max})", exp,
                          profile.weight_exp_max,
                          float(min(exp - profile.weight_exp_min, profile.weight_exp_max - exp)), False, "exponent"))
        if layer.synapse.is_recurrent:  # netx's dense_rec: W and R under one exponent
            rbits, _, _ = weight_mantissa(netx_dense_weights(layer))
            out.append(Margin(name, "recurrent weight mantissa (with W, one exponent)", rbits, profile.weight_mantissa_bits,
                              float(profile.weight_mantissa_bits - rbits), unit="bits"))
        theta = int(np.max(layer.neuron.threshold))
        bias = np.asarray(layer.neuron.bias, dtype=np.int64)
        limit_v = (1 << (layer.neuron.state_bits - 1)) - 1
        if lf.route == "stock":
            vth = theta >> LAVA_SHIFT
            vth_lim = (1 << profile.vth_mant_bits) - 1
            out.append(Margin(name, "threshold mantissa (vThMant)", vth, vth_lim, margin_bits(vth, vth_lim), unit="mantissa"))
            mant = bias >> NETX_BIAS_EXP
            hi, lo = (1 << (profile.bias_mant_bits - 1)) - 1, 1 << (profile.bias_mant_bits - 1)
            # the side closer to its limit: 4095 above zero, 4096 below
            pos, neg = int(mant.max(initial=0)), int(-mant.min(initial=0))
            value, limit = (pos, hi) if pos * lo >= neg * hi else (neg, lo)
            out.append(Margin(name, "bias mantissa (bias_mant)", max(value, 0), limit, margin_bits(max(value, 0), limit),
                              unit="mantissa"))
            out.append(Margin(name, f"bias exponent (range 0..{profile.bias_exp_max}; netx fixes it)", NETX_BIAS_EXP,
                              profile.bias_exp_max,
                              float(min(NETX_BIAS_EXP, profile.bias_exp_max - NETX_BIAS_EXP)), False, "exponent"))
            a = int(current) << LAVA_SHIFT
            out.append(Margin(name, "current |a| << 6 (u, wraps)", a, (1 << (profile.state_bits - 1)) - 1,
                              margin_bits(a, (1 << (profile.state_bits - 1)) - 1), unit="state units"))
        else:
            out.append(Margin(name, f"threshold ({lf.process})", theta, limit_v, margin_bits(theta, limit_v), unit="state units"))
            b = int(np.abs(bias).max(initial=0))
            out.append(Margin(name, f"bias ({lf.process})", b, limit_v, margin_bits(b, limit_v), unit="state units"))
        peak = state.peak
        out.append(Margin(name, f"state |v| ({layer.neuron.state_bits}-bit)", peak, limit_v,
                          margin_bits(peak, limit_v) if math.isfinite(peak) else None, unit="state units"))
    return out


def short_margins(margins: list[Margin], need_bits: int) -> list[Margin]:
    """The counted margins under ``need_bits`` (an unbounded state counts as short)."""
    return [m for m in margins if m.counted and (m.margin_bits is None or m.margin_bits < need_bits)]


def margin_line(m: Margin, need_bits: int) -> str:
    """One line for a refusal: layer, field, value, limit, margin and what was asked."""
    return f"layer {m.layer}, field {m.field}: {m.text()}; --margin-bits {need_bits} asks for {need_bits}"


def margins_table(margins: list[Margin]) -> Table:
    """A rich table: one row per layer and field."""
    from rich.table import Table

    t = Table(title="lava: margins to the limits (bits to spare = floor(log2(limit / value)))")
    for col in ("layer", "field", "value", "limit", "margin"):
        t.add_column(col)
    for m in margins:
        spare = m.margin_bits
        txt = "unbounded" if spare is None else "∞" if spare == math.inf else f"{int(spare)}"
        style = "" if not m.counted else "[red]" if spare is None or spare < 1 else "[yellow]" if spare < 2 else ""
        unit = " steps" if m.unit == "exponent" else " bits"
        t.add_row(m.layer, m.field, _num(m.value), _num(m.limit),
                  f"{style}{txt}{unit}{'[/]' if style else ''}" if m.counted else f"{txt}{unit} (range)")
    return t


def margins_json(margins: list[Margin]) -> list[dict]:
    """JSON-able margins (``--check-json``'s ``margins``); ``inf`` and None become strings."""
    rows = []
    for m in margins:
        d = asdict(m)
        for k in ("value", "margin_bits"):
            if d[k] is None or (isinstance(d[k], float) and math.isinf(d[k])):
                d[k] = "unbounded" if d[k] is None or k == "value" else "inf"
        rows.append(d)
    return rows
