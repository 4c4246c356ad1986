"""Map a frozen net onto Loihi / Lava and check it against Loihi 2's limits (no Lava import).

Mapping (docs/integer-semantics.md §2, docs/lava.md), per LIF layer:

* the single-state integer LIF is Lava's CUBA neuron with the current fully decayed every step:
  ``iDecay = 4096`` (du = 4095, so u = a << 6), ``vDecay = dv = 4096 - d``;
* ``F = 6`` is Lava's fixed shift of the synaptic input and of the threshold: ``vThMant = θ >> 6``;
* a bias b is ``bias_mant << 6`` (netx fixes ``bias_exp = 6``);
* conv + sum-pool is one strided conv (:func:`~qsnn_deploy.intmath.fold_sum_pool`), since netx
  has no pooling layer;
* a recurrent dense layer is netx's ``dense_rec`` block (lava-dl 0.6.0 ``RecurrentDense``): the
  feed-forward and the recurrent weights side by side share ONE weight exponent, bit count and sign
  mode (netx optimizes them together, :mod:`.netx_weights`), and its recurrent ``Dense`` adds one
  step, the reference's ``R·z_{t-1}``.

A layer takes one of two routes:

* ``stock``: Lava's own ``LIF`` (``PyLifModelBitAcc``; ``LIFReset`` when streamed) computes exactly
  this layer: zero reset, one θ and one decay per layer, F = 6, B_v = 24, θ a multiple of 64 within
  17 mantissa bits, every per-channel bias b a multiple of 64 with ``bias_mant = b >> 6`` within
  Lava's signed 13 bits (netx fixes ``bias_exp = 6``), and |a| << 6 within the 24-bit current.
  A bias is exact only under the periodic reset the runner uses (``hdf5.Network(...,
  reset_interval=R, reset_offset=1)``): layer l sets u = v = 0 at the step its first input of the
  sample arrives, *before* that step's integration (``PyLifResetModelBitAcc.run_spk``), which wipes
  what the bias integrated during the pipeline warm-up. A plain netx load without
  ``reset_interval`` integrates the bias during the warm-up (the l + 1 steps before the first
  input reaches layer l) and is not exact; the ``.net`` file says so (``qsnn/run_note``).
* ``custom``: everything else the integer semantics allow (subtract reset, per-channel θ, b and d,
  any F and B_v) runs bit-exactly in Lava only with qsnn-deploy's ``QLIF`` ProcessModel
  (:mod:`qsnn_deploy.lava.models`): "not stock Loihi". ``--strict`` treats it as a miss.

Hardware limits (:class:`LoihiProfile`) come from Lava's bit-accurate models (the widths) and
Intel's Loihi 2 technology brief (neurons and synapses per chip); sources in docs/lava.md.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import intmath
from ..fit_check import Check
from ..frozen import FrozenNet, Layer
from ..statebound import StateBound, layer_state_bound, net_peak_currents, net_state_bounds
from .netx_weights import netx_dense_error
from .recipe_script import CUSTOM_PROCESSES

if TYPE_CHECKING:
    from ..report.metrics import Report

LAVA_SHIFT = 6  # act_shift = vth_shift = 6 in lava/proc/lif/models.py (AbstractPyLifModelFixed)
NETX_BIAS_EXP = 6  # netx hdf5.get_neuron_params: 'bias_exp': 6


@dataclass(frozen=True)
class LoihiProfile:
    """Limits of one Loihi 2 neuro-core / chip, and where each number comes from (docs/lava.md)."""

    weight_mantissa_bits: int = 8      # lava/proc/dense: num_weight_bits 8 (sign included for mixed sign)
    weight_exp_min: int = -8           # lava/proc/dense/process.py: weight_exp, signed 4 bits
    weight_exp_max: int = 7
    vth_mant_bits: int = 17            # PyLifModelBitAcc: vth unsigned 17 bits (0..131071)
    bias_mant_bits: int = 13           # AbstractPyLifModelFixed: bias_mant signed 13 bits
    bias_exp_max: int = 7              # bias_exp unsigned 3 bits
    decay_bits: int = 12               # du, dv unsigned 12 bits
    state_bits: int = 24               # u, v signed 24 bits
    graded_spike_bits: int = 24        # s_out precision 24 (graded input / output messages)
    neurons_per_core: int = 8192       # Loihi 2 brief: 1M neurons / 128 cores
    cores_per_chip: int = 128          # Loihi 2 brief
    synapses_per_chip: int = 120_000_000  # Loihi 2 brief: up to 120M synapses

    @property
    def synapses_per_core(self) -> int:
        """Synapses one core holds: ``synapses_per_chip // cores_per_chip`` (≈ 937k for Loihi 2)."""
        return self.synapses_per_chip // self.cores_per_chip


LOIHI2 = LoihiProfile()


@dataclass
class LayerFit:
    """The Loihi 2 fit of one layer.

    Attributes:
        name: the frozen layer's name.
        route: ``"stock"`` (Lava's own ``LIF``/``LIFReset`` computes it exactly) or ``"custom"``
            (needs qsnn-deploy's ``QLIF`` process).
        fits_hardware: every blocking hardware check holds (weight mantissa/exponent, widths, cores).
        stock_reasons: why the stock LIF cannot run it (empty for ``"stock"``).
        checks: every check with its value, limit and source.
        cores: Loihi 2 cores the layer needs (a capacity estimate, not a placement).
        mapping: the netx neuron/synapse fields the layer maps to (vThMant, vDecay, bias, weight exponent...).
    """
    name: str
    route: str                 # "stock" or "custom"
    fits_hardware: bool        # every blocking hardware check holds (weights, widths, cores)
    stock_reasons: list[str]   # why the stock LIF cannot run it (empty for "stock")
    checks: list[Check] = field(default_factory=list)
    cores: int = 1
    mapping: dict[str, Any] = field(default_factory=dict)
    kind: str = "lif"          # the neuron kind: which custom process the custom route needs

    @property
    def process(self) -> str:
        """The custom Lava process the layer needs off the stock route: ``QLIF`` (lif) or ``QCUBA`` (cuba)."""
        return CUSTOM_PROCESSES.get(self.kind, "QLIF")

    @property
    def fits(self) -> bool:
        """Runs on Loihi 2 with Lava's stock neuron, exactly."""
        return self.fits_hardware and self.route == "stock"

    def detail(self) -> str:
        """One sentence: cores needed, why it needs the custom QLIF model, and which limit it misses."""
        misses = [f"{c.field} {c.value} (limit {c.limit}){': ' + c.why if c.why else ''}"
                  for c in self.checks if c.blocking and not c.ok]
        parts = [f"{self.cores} core{'s' if self.cores != 1 else ''}"]
        if self.route == "custom":
            parts.append(f"needs the custom {self.process} model (not stock Loihi): " + "; ".join(self.stock_reasons))
        if misses:
            parts.append("does not fit: " + "; ".join(misses))
        notes = [f"{c.field}: {c.why}" for c in self.checks if not c.blocking and not c.ok]
        return ". ".join(parts + notes)


@dataclass
class NetFit:
    """The Loihi 2 fit of a whole frozen net (:func:`check_net`).

    ``fits``: every layer runs exactly on stock Loihi 2 (what ``qsnn-export --strict`` demands);
    ``fits_hardware``: every width and size limit holds (some layers may still need QLIF).
    """
    profile: LoihiProfile
    layers: list[LayerFit]
    input_checks: list[Check]

    @property
    def fits_hardware(self) -> bool:
        """Every layer and the input meet Loihi 2's blocking width and size limits."""
        return all(l.fits_hardware for l in self.layers) and all(c.ok for c in self.input_checks if c.blocking)

    @property
    def fits(self) -> bool:
        """Every layer runs exactly on stock Loihi 2 (what ``--strict`` demands)."""
        return self.fits_hardware and all(l.route == "stock" for l in self.layers)

    @property
    def cores(self) -> int:
        """Loihi 2 cores the whole net needs (sum over layers; a capacity estimate)."""
        return sum(l.cores for l in self.layers)

    def summary(self) -> str:
        """One line: cores used of the chip's, and the layers over the limits or needing QLIF."""
        custom = [l.name for l in self.layers if l.route == "custom"]
        bad = [l.name for l in self.layers if not l.fits_hardware]
        s = f"{self.cores} of {self.profile.cores_per_chip} cores"
        if bad:
            s += f"; over Loihi 2 limits: {', '.join(bad)}"
        if custom:
            s += f"; custom {_processes(self.layers)} model (not stock Loihi) for: {', '.join(custom)}"
        if not bad and not custom:
            s += "; every layer maps to Lava's stock LIF exactly"
        return s

    def verdict(self) -> str:
        """One sentence saying whether the net runs on stock Loihi 2 and, if not, what does not fit and why
        (the neuron model, a hardware limit, or both; capacity is stated separately)."""
        custom = [l for l in self.layers if l.route == "custom"]
        bad = [l for l in self.layers if not l.fits_hardware]
        capacity = f"capacity: {self.cores} of {self.profile.cores_per_chip} cores"
        if not custom and not bad:
            return f"runs on stock Loihi 2: every layer maps exactly to Lava's LIF ({capacity})"
        parts = []
        if custom:
            why = sorted({r.split(" (")[0] for l in custom for r in l.stock_reasons})
            parts.append(f"not stock Loihi 2 neurons: {', '.join(l.name for l in custom)} need qsnn-deploy's custom "
                         f"{_processes(custom)} model ({'; '.join(why)}); train with --profile loihi for a model that runs "
                         "on stock neurons")
        if bad:
            parts.append("over Loihi 2 limits: " + "; ".join(f"{l.name}: {l.detail()}" for l in bad))
        return ". ".join(parts) + f" ({capacity})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (``qsnn-export --check-json``): profile, verdicts, input and per-layer checks."""
        return {"profile": asdict(self.profile), "fits": self.fits, "fits_hardware": self.fits_hardware,
                "cores": self.cores, "summary": self.summary(), "verdict": self.verdict(),
                "input": [asdict(c) for c in self.input_checks],
                "layers": [{**asdict(l), "fits": l.fits, "process": l.process, "detail": l.detail()} for l in self.layers]}


def _processes(layers: list[LayerFit]) -> str:
    """``QLIF``, ``QCUBA`` or ``QLIF / QCUBA``: the custom processes the custom-route layers among ``layers`` need."""
    return " / ".join(sorted({l.process for l in layers if l.route == "custom"})) or "QLIF"


def deploy_weight(layer: Layer) -> np.ndarray:
    """The weights Lava runs: pool folded into the conv (netx has no pooling; :meth:`Synapse.deployed`)."""
    return layer.synapse.deployed()[0]


def deploy_stride_padding(layer: Layer) -> tuple[tuple[int, int], tuple[int, int]]:
    """(stride, padding) of the conv Lava runs (the folded one when the layer has a sum pool)."""
    return tuple(layer.synapse.deployed()[1]), tuple(layer.synapse.padding)


def netx_dense_weights(layer: Layer) -> np.ndarray:
    """The integer matrix netx encodes with one exponent for a dense layer: ``weight`` (C, fan-in), and for a
    recurrent layer ``np.hstack((weight, recurrent))`` (C, fan-in + C), as netx's ``dense_rec`` block does."""
    w = np.asarray(layer.synapse.weight, dtype=np.int64).reshape(layer.out_channels, -1)
    if layer.synapse.is_recurrent:
        w = np.hstack((w, np.asarray(layer.synapse.recurrent, dtype=np.int64)))
    return w


def recurrent_weight_error(layer: Layer, input_max: int = 1) -> str | None:
    """None when netx's ``dense_rec`` encoding of this recurrent layer's weights (feed-forward and recurrent
    together, one exponent), run by Lava's bit-accurate Dense, gives exactly ``W·x`` and ``R·z``; else the
    reason (:func:`~.netx_weights.netx_dense_error`)."""
    if not layer.synapse.is_recurrent:
        return None
    return netx_dense_error(netx_dense_weights(layer), input_max, "feed-forward and recurrent weights",
                            split=int(np.prod(layer.synapse.weight.shape[1:])))


def weight_mantissa(w: np.ndarray) -> tuple[int, int, bool]:
    """(mantissa bits incl. sign when mixed, exponent, mixed sign) of the exact m·2^e encoding."""
    w = np.asarray(w, dtype=np.int64)
    nz = w[w != 0]
    if nz.size == 0:
        return 1, 0, False
    exp = min(int((np.abs(nz) & -np.abs(nz)).min()).bit_length() - 1, 7)
    m = nz >> exp
    mixed = bool((nz < 0).any() and (nz > 0).any())
    mag = int(np.abs(m).max())
    bits = intmath.bits_for_signed(mag) if mixed else max(mag.bit_length(), 1)
    return bits, exp, mixed


def _uniform(a: np.ndarray) -> bool:
    a = np.asarray(a)
    return bool(a.size == 0 or np.all(a == a.reshape(-1)[0]))


def _fmt(a: np.ndarray) -> str:
    a = np.asarray(a)
    if _uniform(a):
        return str(int(a.reshape(-1)[0]))
    return f"{int(a.min())}..{int(a.max())}"


NETX_RESET_OFFSET = 1  # hdf5.Network(..., reset_offset=1): netx adds the layer index + 1, so layer l resets at τ = l + 2


def stock_pad(routes: list[str]) -> int:
    """Extra zero steps per streamed period: the longest run of stock layers right after a custom layer
    (they need that many steps to drain once the custom layers are held silent). 0 in single-route nets."""
    pad = run = 0
    seen_custom = False
    for route in routes:
        if route == "custom":
            seen_custom, run = True, 0
        elif seen_custom:
            run += 1
            pad = max(pad, run)
    return pad


def period_steps(num_steps: int, routes: list[str]) -> int:
    """R, the steps one streamed sample takes: T + L (+ the mixed-net pad :func:`stock_pad`)."""
    return int(num_steps) + len(routes) + stock_pad(routes)


def biased_stock_layers(net: FrozenNet, routes: list[str]) -> list[str]:
    """Names of the stock-route layers with a nonzero bias: exact only under the periodic reset."""
    return [l.name for l, r in zip(net.layers, routes) if r == "stock" and np.any(np.asarray(l.neuron.bias) != 0)]


def stock_reasons(layer: Layer, current_bound: int) -> list[str]:
    """Why Lava's stock LIF would not compute this layer exactly (empty: it would)."""
    r = []
    if layer.neuron.reset != "zero":
        r.append("subtract reset (stock LIF resets to 0)")
    if not _uniform(layer.neuron.threshold):
        r.append(f"per-channel threshold {_fmt(layer.neuron.threshold)} (stock vth is one value per layer)")
    if not _uniform(layer.neuron.decay):
        r.append("per-channel decay (stock dv is one value per layer)")
    if layer.neuron.frac_bits != LAVA_SHIFT:
        r.append(f"F = {layer.neuron.frac_bits} (stock input/threshold shift is {LAVA_SHIFT})")
    if layer.neuron.state_bits != 24:
        r.append(f"B_v = {layer.neuron.state_bits} (stock state is 24 bits)")
    if np.any(layer.neuron.threshold % (1 << LAVA_SHIFT)):
        r.append(f"threshold not a multiple of 2^{LAVA_SHIFT}")
    elif np.any((layer.neuron.threshold >> LAVA_SHIFT) >= (1 << LOIHI2.vth_mant_bits)):
        r.append(f"vThMant over {LOIHI2.vth_mant_bits} bits")
    bias = np.asarray(layer.neuron.bias, dtype=np.int64)
    mant_lo, mant_hi = -(1 << (LOIHI2.bias_mant_bits - 1)), (1 << (LOIHI2.bias_mant_bits - 1)) - 1
    if np.any(bias % (1 << NETX_BIAS_EXP)):
        bad = bias[bias % (1 << NETX_BIAS_EXP) != 0]
        r.append(f"bias not a multiple of {1 << NETX_BIAS_EXP} (layer {layer.name}, field bias: {_fmt(bad)} state "
                 f"units; stock bias = bias_mant << {NETX_BIAS_EXP}, netx's bias_exp is {NETX_BIAS_EXP})")
    elif np.any((bias >> NETX_BIAS_EXP) < mant_lo) or np.any((bias >> NETX_BIAS_EXP) > mant_hi):
        mant = bias >> NETX_BIAS_EXP
        r.append(f"bias mantissa over {LOIHI2.bias_mant_bits} signed bits (layer {layer.name}, field bias: "
                 f"bias_mant = b >> {NETX_BIAS_EXP} = {int(mant.min())}..{int(mant.max())}, limit "
                 f"{mant_lo}..{mant_hi}, i.e. {mant_lo << NETX_BIAS_EXP} ≤ b ≤ {mant_hi << NETX_BIAS_EXP})")
    if np.any(layer.neuron.decay < 1):
        r.append("decay 0 needs dv = 4096 (over 12 bits)")
    if layer.kind == "cuba":
        r.extend(_stock_current_reasons(layer, current_bound))
    elif (current_bound << LAVA_SHIFT) >= (1 << 23):
        r.append(f"|a| << 6 may reach {current_bound << LAVA_SHIFT} ≥ 2^23 (stock current u wraps)")
    return r


def _stock_current_reasons(layer: Layer, current_bound: int) -> list[str]:
    """Why Lava's stock LIF current ``u`` (du one value per layer, no bias, 24 bits, wrapping) would not be this
    CUBA layer's current exactly: ``u = tz(u·(4096 - (du + 1))) + (a << 6)``, so a = 4095 - du."""
    n, r = layer.neuron, []
    a = np.asarray(n.current_decay, dtype=np.int64)
    if not _uniform(a):
        r.append("per-channel current decay (stock du is one value per layer)")
    elif int(a.reshape(-1)[0]) > 4095:
        r.append("current decay 4096 (no leak) needs du = -1 (outside the 12-bit du)")
    if n.current_bias is not None and np.any(np.asarray(n.current_bias) != 0):
        r.append("a bias on the current (stock LIF adds its bias to v only)")
    if n.current_bits != 24:
        r.append(f"B_i = {n.current_bits} (stock current u is 24 bits)")
    if n.reset == "zero_delayed":
        r.append("reset zero_delayed (stock LIF zeroes v after the spike, keeping the next input)")
    jp = np.full(np.shape(a), float(current_bound))
    peak = float(np.max(np.maximum(*map(np.abs, n.current_range(jp, jp))), initial=0.0))
    if peak >= (1 << 23):
        r.append(f"|u| may reach {peak:.4g} ≥ 2^23 (stock current u wraps; our current saturates)")
    return r


def layer_fit(layer: Layer, in_shape: tuple[int, ...], current_bound: int,
              profile: LoihiProfile = LOIHI2, state: StateBound | None = None, in_max: int = 1) -> LayerFit:
    """Mapping and every constraint for one layer (see the module docstring); ``in_max`` the largest input
    value the layer's synapse takes (255 for 8-bit pixels, 1 for spikes)."""
    w = deploy_weight(layer)
    bits, exp, mixed = weight_mantissa(w)
    out_shape = layer.output_shape(in_shape)
    neurons = int(np.prod(out_shape))
    fan_in = int(np.prod(w.shape[1:]))
    checks = [
        Check("weight mantissa", f"{bits} bits ({'mixed sign' if mixed else 'one sign'}, |w| ≤ {int(np.abs(w).max())})",
              f"{profile.weight_mantissa_bits} bits", bits <= profile.weight_mantissa_bits,
              "" if bits <= profile.weight_mantissa_bits else "a weight needs more mantissa bits than a Loihi synapse holds"),
        Check("weight exponent", exp, f"{profile.weight_exp_min}..{profile.weight_exp_max}",
              profile.weight_exp_min <= exp <= profile.weight_exp_max),
        Check("threshold", _fmt(layer.neuron.threshold), f"vThMant < 2^{profile.vth_mant_bits} (θ < 2^{profile.vth_mant_bits + LAVA_SHIFT})",
              bool(np.all(layer.neuron.threshold < (1 << (profile.vth_mant_bits + LAVA_SHIFT))))),
        Check("bias", _fmt(layer.neuron.bias), f"|b| < 2^{profile.bias_mant_bits - 1 + profile.bias_exp_max} (13-bit mantissa, exponent ≤ 7)",
              bool(np.all(np.abs(layer.neuron.bias) < (1 << (profile.bias_mant_bits - 1 + profile.bias_exp_max))))),
        Check("decay", _fmt(layer.neuron.decay), f"dv = 4096 - d in 0..{(1 << profile.decay_bits) - 1}",
              bool(np.all((layer.neuron.decay >= 1) & (layer.neuron.decay <= 4096)))),
        Check("state width", f"{layer.neuron.state_bits} bits", f"≤ {profile.state_bits} bits", layer.neuron.state_bits <= profile.state_bits),
        Check("fan-in", fan_in, f"≤ {profile.synapses_per_core} synapses per core", fan_in <= profile.synapses_per_core),
    ]
    if layer.synapse.is_recurrent:  # netx's dense_rec: W and R under one exponent (netx_dense_weights)
        joint = netx_dense_weights(layer)
        rbits, rexp, rmixed = weight_mantissa(joint)
        r_max = int(np.abs(np.asarray(layer.synapse.recurrent, dtype=np.int64)).max(initial=0))
        ok = rbits <= profile.weight_mantissa_bits and profile.weight_exp_min <= rexp <= profile.weight_exp_max
        checks.append(Check("recurrent weight mantissa", f"{rbits} bits, exponent {rexp} with the feed-forward weights "
                            f"({'mixed sign' if rmixed else 'one sign'}, |r| ≤ {r_max})",
                            f"{profile.weight_mantissa_bits} bits under one exponent (netx dense_rec)", ok,
                            "" if ok else "the recurrent and feed-forward weights together need more mantissa bits than "
                            "a Loihi synapse holds under netx's one exponent"))
        netx_err = recurrent_weight_error(layer, in_max)
        checks.append(Check("netx dense_rec encoding", "exact" if netx_err is None else "not exact",
                            "W·x and R·z exactly in Lava's Dense", netx_err is None, netx_err or ""))
    if state is None:
        state = layer_state_bound(layer, 0, 1)  # callers without a bound: 0/1 spike input
    lim = layer.state_limit
    checks.append(Check("worst-case |v|", f"{state.peak:.4g}" if math.isfinite(state.peak) else "unbounded (no leak)",
                        f"2^{layer.neuron.state_bits - 1} - 1 = {lim}", state.saturation_free,
                        "" if state.saturation_free else f"no proof that the {layer.neuron.state_bits}-bit state cannot clip at "
                        f"F = {layer.neuron.frac_bits} (qsnn-verify measures clips; re-fit F or train with --profile loihi)",
                        blocking=False))
    synapses = int(w.size) if layer.synapse.kind == "conv" else neurons * fan_in  # conv: one shared kernel per core
    cores = max(1, math.ceil(neurons / profile.neurons_per_core), math.ceil(synapses / profile.synapses_per_core))
    reasons = stock_reasons(layer, current_bound)
    hw_ok = all(c.ok for c in checks if c.blocking)
    i_decay = 4096 - int(layer.neuron.current_decay[0]) if layer.kind == "cuba" else 4096
    mapping = {"iDecay": i_decay, "vDecay": _fmt(4096 - layer.neuron.decay), "vThMant": _fmt(layer.neuron.threshold >> LAVA_SHIFT),
               "bias_mant": _fmt(layer.neuron.bias >> NETX_BIAS_EXP), "weight_exp": exp, "kernel": list(w.shape[2:]),
               "stride": list(deploy_stride_padding(layer)[0])}
    if layer.synapse.is_recurrent:
        mapping["block"] = "dense_rec"
    return LayerFit(layer.name, "stock" if not reasons else "custom", hw_ok, reasons, checks, cores, mapping, layer.kind)


def check_net(net: FrozenNet, profile: LoihiProfile = LOIHI2) -> NetFit:
    """Per-layer Loihi 2 fit of ``net`` (validated first; a neuron kind Lava does not run, e.g. ``xylo``, is
    refused by name with :class:`~qsnn_deploy.errors.UnsupportedNeuronError`)."""
    from .export import LAVA_KERNELS  # export imports this module

    net.validate()
    LAVA_KERNELS.check(net)
    bounds = net_peak_currents(net)  # |a| Lava's current u must hold (J⁺ and J⁻ of the input range)
    states = net_state_bounds(net)
    in_maxes = [int(net.input.max_abs)] + [1] * (len(net.layers) - 1)
    layers = [layer_fit(layer, in_shape, bound, profile, state, in_max)
              for layer, (in_shape, _), bound, state, in_max in zip(net.layers, net.layer_shapes(), bounds, states, in_maxes)]
    in_bits = max(int(net.input.max_abs).bit_length(), 1) + (1 if net.input.signed else 0)
    inputs = [Check("input message", f"{in_bits} bits", f"≤ {profile.graded_spike_bits} bits (graded spikes)",
                    in_bits <= profile.graded_spike_bits)]
    return NetFit(profile, layers, inputs)


def fit_check_for_report(net: FrozenNet, report: Report) -> dict[str, Any]:
    """The ``qsnn-report --target lava`` hook (:func:`qsnn_deploy.report.register_fit_check`)."""
    fit = check_net(net)
    return {"fits": fit.fits, "summary": fit.verdict(),
            "layers": {l.name: {"fits": l.fits, "detail": l.detail()} for l in fit.layers},
            "note": "fits = runs exactly on stock Loihi 2 (Lava's LIF); layers marked custom run bit-exactly "
                    "in Lava with qsnn-deploy's QLIF ProcessModel"}
