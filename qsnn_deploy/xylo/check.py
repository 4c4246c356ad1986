"""Map a frozen net onto Xylo's input → hidden (recurrent) → readout structure and check every limit (no rockpool import).

The mapping (docs/xylo.md):

* every layer is a dense synapse feeding ``"xylo"`` neurons; the LAST layer is the readout (``max_spikes``
  1, not recurrent), every earlier layer is a hidden layer (``max_spikes`` 31, optionally recurrent);
* the hidden layers are laid out as consecutive blocks of Xylo's hidden population, in order: layer 0
  at hidden neurons ``0..H_0-1``, layer 1 after it, ...; layer 0's feed-forward weights are
  ``weights_in``, every other hidden weight (each layer's own recurrent block, and layer ``l``'s
  feed-forward block from layer ``l-1``) sits in ``weights_rec``; the readout's weights are the rows of
  ``weights_out`` of the last hidden block;
* a hidden spike reaches the next layer one step later: hidden layer ``l`` runs ``l`` steps behind the
  reference (step ``t`` of the reference is Xylo's step ``t + l``), the readout ``L`` steps behind (``L``
  hidden layers); the input gets ``L`` zero steps appended;
* the weights in a FrozenNet are already shifted (J units); each of Xylo's three matrices (input,
  recurrent, readout) has ONE shift: the smallest ``s`` with every weight of the matrix in
  ``int8 << s``, exact (:func:`factor_shift`);
* Xylo steps every neuron from step 0, before the input reaches it: a layer ``l ≥ 1`` steps behind would
  integrate its bias (or, with θ = 0, fire at rest) during those ``l`` steps, which the reference (and the
  trained model) do not. Such layers must have bias 0 and θ ≥ 1 (then they stay exactly at rest); the
  first hidden layer (no latency) may have any bias;
* input counts must fit Xylo's clip (input ≤ 4 unsigned bits: 0..15), hidden spike caps must be 31 and
  the readout's 1, so the chip's clipping never changes a value the reference computes.

:func:`check_net` returns a :class:`XyloFit`: per layer what fits and what does not, each check naming the
field, its value and the limit (:mod:`.chips` says where each limit comes from).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..fit_check import Check
from ..frozen import FrozenNet, Layer
from ..intmath import DECAY_BITS, DECAY_ONE
from .chips import CHIPS, DEFAULT_VERSION, Chip, chip as chip_for

if TYPE_CHECKING:
    from ..report.metrics import Report


@dataclass
class XyloLayerFit:
    """The Xylo fit of one layer.

    Attributes:
        name: the frozen layer's name.
        route: ``"hidden"`` or ``"readout"``.
        neurons: neurons the layer takes on the chip.
        placement: where it goes: ``"hidden 0..255"`` or ``"readout 0..9"``.
        latency: steps this layer's spikes run behind the reference on Xylo.
        checks: every check with its value and limit.
    """

    name: str
    route: str
    neurons: int
    placement: str
    latency: int
    checks: list[Check] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        """Every blocking check of the layer holds."""
        return all(c.ok for c in self.checks if c.blocking)

    @property
    def cores(self) -> int:
        """The neurons the layer takes (``qsnn-export``'s capacity column)."""
        return self.neurons

    def detail(self) -> str:
        """One sentence: placement, latency, and each limit it misses (field, value, limit)."""
        misses = [f"{c.field} {c.value} (limit {c.limit}){': ' + c.why if c.why else ''}"
                  for c in self.checks if c.blocking and not c.ok]
        s = f"{self.placement}, {self.latency} step{'s' if self.latency != 1 else ''} behind"
        return s + ("; does not fit: " + "; ".join(misses) if misses else "")


@dataclass
class XyloFit:
    """The Xylo fit of a whole net for one chip version (:func:`check_net`)."""

    chip: Chip
    layers: list[XyloLayerFit]
    net_checks: list[Check]
    shifts: dict[str, int | None]
    #: Xylo's int16 saturation is part of the neuron kind, reproduced exactly by every backend that runs it
    saturation_exact: bool = True
    capacity_label: str = "neurons"

    @property
    def fits(self) -> bool:
        """Every layer and net-wide check holds: ``--strict`` exports."""
        return all(l.fits for l in self.layers) and all(c.ok for c in self.net_checks if c.blocking)

    @property
    def hidden(self) -> int:
        """Hidden neurons used (all hidden layers)."""
        return sum(l.neurons for l in self.layers if l.route == "hidden")

    @property
    def readouts(self) -> int:
        """Readout neurons used."""
        return sum(l.neurons for l in self.layers if l.route == "readout")

    def summary(self) -> str:
        """One line: chip, neurons used of the chip's, layers that do not fit."""
        c = self.chip
        s = f"{c.name} ({c.version}): {self.hidden} of {c.hidden} hidden, {self.readouts} of {c.readouts} readout neurons"
        bad = [l.name for l in self.layers if not l.fits] + [f"net ({ck.field})" for ck in self.net_checks if ck.blocking and not ck.ok]
        return s + (f"; does not fit: {', '.join(bad)}" if bad else "; fits")

    def verdict(self) -> str:
        """One sentence: fits, or each miss with its layer, field and limit."""
        if self.fits:
            return f"runs on {self.chip.name} ({self.chip.version}) exactly: " + self.summary().split(": ", 1)[1]
        misses = [f"{ck.field} {ck.value} (limit {ck.limit})" for ck in self.net_checks if ck.blocking and not ck.ok]
        misses += [f"layer {l.name!r}: {l.detail()}" for l in self.layers if not l.fits]
        return f"does not fit {self.chip.name} ({self.chip.version}): " + "; ".join(misses)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``qsnn-export --check-json``)."""
        return {"target": "xylo", "chip": asdict(self.chip), "fits": self.fits, "summary": self.summary(),
                "verdict": self.verdict(), "shifts": self.shifts, "net": [asdict(c) for c in self.net_checks],
                "layers": [{**asdict(l), "fits": l.fits, "detail": l.detail()} for l in self.layers]}


def factor_shift(mats: list[np.ndarray], max_shift: int, bits: int = 8) -> tuple[int | None, str]:
    """The one shift ``s`` of a Xylo matrix made of ``mats`` (J-unit weights): the smallest ``s`` with every
    ``w >> s`` within ``bits`` signed bits, provided every ``w`` is a multiple of ``2^s``; (None, why) when no
    ``s ≤ max_shift`` makes them exact int8 ``<< s``."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    vals = np.concatenate([np.asarray(m, dtype=np.int64).reshape(-1) for m in mats]) if mats else np.zeros(0, np.int64)
    if vals.size == 0 or not vals.any():
        return 0, ""
    s = 0
    while s <= max_shift and ((vals >> s).min() < lo or (vals >> s).max() > hi):
        s += 1
    if s > max_shift:
        return None, (f"|w| up to {int(np.abs(vals).max())} needs a shift over {max_shift} "
                      f"(int{bits} << {max_shift} reaches {hi << max_shift})")
    rem = vals & ((1 << s) - 1)
    if rem.any():
        bad = int(vals[rem != 0][0])
        return None, f"weight {bad} is not a multiple of 2^{s} (the shift its matrix's range needs: int{bits} << {s})"
    return s, ""


def _range(a) -> str:
    a = np.asarray(a)
    if a.size == 0:
        return "-"
    return str(int(a.min())) if a.min() == a.max() else f"{int(a.min())}..{int(a.max())}"


def plan_layers(net: FrozenNet) -> tuple[list[Layer], Layer, list[int]]:
    """(hidden layers, readout layer, hidden block offsets) of the mapping (module docstring)."""
    hidden, readout = list(net.layers[:-1]), net.layers[-1]
    offsets, off = [], 0
    for layer, (_, out) in zip(hidden, net.layer_shapes()):
        offsets.append(off)
        off += int(np.prod(out))  # neurons (a conv layer, refused anyway, counts every output position)
    return hidden, readout, offsets


#: the 12-bit decays (kept fraction d/4096) of the form 1 − 2^−dash: Xylo's bit-shift leak, dash 0..12
SHIFT_DECAYS = {DECAY_ONE - (DECAY_ONE >> dash): dash for dash in range(DECAY_BITS + 1)}


def _decay_checks(layer: Layer) -> list[Check]:
    """For a LIF or CUBA layer: is each 12-bit decay (``d/4096``, the fraction kept per step) of the form
    ``1 − 2^−dash``, Xylo's only leak? Informative (the neuron kind refuses the layer anyway: Xylo also
    leaks at least one unit, saturates at int16 and fires while v ≥ θ), so the fit names every field that misses."""
    out = []
    for name in ("current_decay", "decay"):
        d = getattr(layer.neuron, name, None)
        if d is None:
            continue
        d = np.asarray(d)
        ok = bool(all(int(v) in SHIFT_DECAYS for v in np.unique(d)))
        out.append(Check(name, f"{_range(d)} / {DECAY_ONE}", f"1 − 2^−dash (dash 0..{DECAY_BITS}: {DECAY_ONE} − ({DECAY_ONE} >> dash))",
                         ok, "" if ok else f"{name} {_range(d)}/{DECAY_ONE} is not a bit-shift decay 1 − 2^−dash"))
    return out


def _layer_checks(layer: Layer, chip: Chip, readout: bool, latency: int = 0) -> list[Check]:
    n, syn = layer.neuron, layer.synapse
    checks = [Check("synapse", syn.kind, "dense (Xylo has no convolution)", syn.kind == "dense")]
    if syn.kind == "dense" and syn.pool is not None:
        checks.append(Check("pool", syn.pool, "none", False))
    checks.append(Check("neuron kind", layer.kind, "xylo (train with --profile xylo)", layer.kind == "xylo",
                        "" if layer.kind == "xylo" else "only Xylo's own integer neuron runs on Xylo"))
    if layer.kind != "xylo":
        checks.extend(_decay_checks(layer))
        return checks
    cap = chip.readout_spikes if readout else chip.hidden_spikes
    checks.append(Check("max_spikes", int(n.max_spikes), f"= {cap} ({'readout' if readout else 'hidden'} neuron)",
                        int(n.max_spikes) == cap))
    checks.append(Check("dash_syn", _range(n.dash_syn), f"0..{chip.dash_max}", bool(np.all((n.dash_syn >= 0) & (n.dash_syn <= chip.dash_max)))))
    checks.append(Check("dash_mem", _range(n.dash_mem), f"0..{chip.dash_max}", bool(np.all((n.dash_mem >= 0) & (n.dash_mem <= chip.dash_max)))))
    checks.append(Check("threshold", _range(n.threshold), "0..32767 (int16)", bool(np.all((n.threshold >= 0) & (n.threshold <= 32767)))))
    checks.append(Check("bias", _range(n.bias), "-32768..32767 (int16)", bool(np.all((n.bias >= -32768) & (n.bias <= 32767)))))
    if latency:
        warm = (f"Xylo steps every neuron from step 0: this layer is {latency} step{'s' if latency > 1 else ''} behind, so "
                f"it would integrate its bias (or fire at rest with θ = 0) before its first input arrives, which the "
                f"reference does not")
        checks.append(Check("bias", _range(n.bias), f"0 (a layer {latency} step{'s' if latency > 1 else ''} behind the input)",
                            bool(np.all(n.bias == 0)), "" if np.all(n.bias == 0) else warm))
        checks.append(Check("threshold", _range(n.threshold), "≥ 1 (a layer behind the input must stay silent at rest)",
                            bool(np.all(n.threshold >= 1)), "" if np.all(n.threshold >= 1) else warm))
    if readout:
        checks.append(Check("recurrent", "yes" if syn.is_recurrent else "no", "no (readout neurons cannot be recurrent)",
                            not syn.is_recurrent))
    checks.append(Check("synapses per neuron", 1, f"≤ {chip.synapses}", 1 <= chip.synapses))
    return checks


def check_net(net: FrozenNet, version: str | None = None) -> XyloFit:
    """Per-layer Xylo fit of ``net`` on chip ``version`` (default: the net's ``metadata["xylo_version"]``, else
    syns63300). Validates the net first."""
    net.validate()
    version = version or net.metadata.get("xylo_version") or DEFAULT_VERSION
    chip = chip_for(version)
    hidden, readout, offsets = plan_layers(net)
    n_hidden = sum(int(np.prod(out)) for _, out in net.layer_shapes()[:-1])
    net_checks = [
        Check("layers", len(net.layers), "≥ 2 (one or more hidden layers, then the readout)", len(net.layers) >= 2),
        Check("input shape", "×".join(map(str, net.input.shape)), f"({chip.inputs},) or fewer channels",
              len(net.input.shape) == 1 and net.input.shape[0] <= chip.inputs),
        Check("input counts", f"{'signed ' if net.input.signed else ''}{net.input.bits} bits",
              f"unsigned ≤ 4 bits (Xylo clips input counts at {chip.input_spikes})",
              not net.input.signed and net.input.max_abs <= chip.input_spikes),
        Check("hidden neurons", n_hidden, f"≤ {chip.hidden}", n_hidden <= chip.hidden),
        Check("readout neurons", readout.out_channels, f"≤ {chip.readouts}", readout.out_channels <= chip.readouts),
    ]
    layers: list[XyloLayerFit] = []
    for i, (layer, off) in enumerate(zip(hidden, offsets)):
        checks = _layer_checks(layer, chip, readout=False, latency=i)
        if i == 0 and chip.input_expansion is not None and layer.synapse.kind == "dense":
            used = np.flatnonzero(np.any(layer.synapse.weight != 0, axis=1)) + off
            last = int(used.max()) if used.size else -1
            checks.append(Check("input expansion neurons", f"hidden neurons up to {last} take input",
                                f"the first {chip.input_expansion} hidden neurons only",
                                last < chip.input_expansion,
                                "" if last < chip.input_expansion else
                                f"rockpool's {chip.version} config keeps only the first {chip.input_expansion} hidden "
                                f"neurons' input weights"))
        size = int(np.prod(net.layer_shapes()[i][1]))
        layers.append(XyloLayerFit(layer.name, "hidden", size, f"hidden {off}..{off + size - 1}", i, checks))
    rchecks = _layer_checks(readout, chip, readout=True, latency=len(hidden))
    if chip.output_expansion is not None and readout.synapse.kind == "dense" and hidden:
        fed = np.flatnonzero(np.any(readout.synapse.weight != 0, axis=0)) + offsets[-1]
        first = int(fed.min()) if fed.size else n_hidden
        rchecks.append(Check("output expansion neurons", f"hidden neurons from {first} feed the readout",
                             f"the last {chip.output_expansion} hidden neurons only ({n_hidden - chip.output_expansion} on)",
                             first >= n_hidden - chip.output_expansion,
                             "" if first >= n_hidden - chip.output_expansion else
                             f"rockpool's {chip.version} config keeps only the last {chip.output_expansion} hidden "
                             f"neurons' readout weights"))
    layers.append(XyloLayerFit(readout.name, "readout", readout.out_channels, f"readout 0..{readout.out_channels - 1}",
                               len(hidden), rchecks))
    shifts = _shift_checks(net, chip, hidden, readout, layers)
    return XyloFit(chip, layers, net_checks, shifts)


def matrix_groups(hidden: list[Layer], readout: Layer) -> dict[str, list[tuple[Layer, str]]]:
    """Xylo's three matrices and the (layer, field) weights each holds (module docstring)."""
    rec = [(layer, "weight") for layer in hidden[1:]] + [(layer, "recurrent") for layer in hidden if layer.synapse.is_recurrent]
    return {"in": [(hidden[0], "weight")] if hidden else [], "rec": rec, "out": [(readout, "weight")]}


def _shift_checks(net: FrozenNet, chip: Chip, hidden: list[Layer], readout: Layer, layers: list[XyloLayerFit]) -> dict[str, int | None]:
    """One shift per matrix; a miss is reported on the first layer of the matrix whose weights break it."""
    fits = {l.name: l for l in layers}
    shifts: dict[str, int | None] = {}
    for key, members in matrix_groups(hidden, readout).items():
        dense = [(layer, f) for layer, f in members if layer.synapse.kind == "dense"]
        s, why = factor_shift([getattr(layer.synapse, f) for layer, f in dense], chip.max_weight_shift, chip.weight_bits)
        shifts[key] = s
        for layer, f in dense:
            own, own_why = factor_shift([getattr(layer.synapse, f)], chip.max_weight_shift, chip.weight_bits)
            label = f"{f} (Xylo weights_{key}, shift {'shared' if len(dense) > 1 else 'own'})"
            if own is None:
                fits[layer.name].checks.append(Check(label, _range(getattr(layer.synapse, f)), f"int{chip.weight_bits} << shift ≤ {chip.max_weight_shift}", False, own_why))
            elif s is None:
                fits[layer.name].checks.append(Check(label, f"int8 << {own} on its own", "one shift for the whole matrix",
                                                     False, f"weights_{key}: {why}"))
            else:
                fits[layer.name].checks.append(Check(label, f"int8 << {s}", f"int{chip.weight_bits} << 0..{chip.max_weight_shift}", True))
    return shifts


def versions_that_fit(net: FrozenNet) -> list[str]:
    """The chip versions (of :data:`~.chips.CHIPS`) the net fits, in table order."""
    return [v for v in CHIPS if check_net(net, v).fits]


def fit_check_for_report(net: FrozenNet, report: Report) -> dict[str, Any]:
    """The ``qsnn-report --target xylo`` hook: the fit on the net's chip version (neurons, synapses, weight memory)."""
    fit = check_net(net)
    weights = sum(int(np.count_nonzero(getattr(l.synapse, f))) for l in net.layers for f in ("weight", "recurrent")
                  if getattr(l.synapse, f) is not None)
    n_in, h, o = int(np.prod(net.input.shape)), fit.hidden, fit.readouts
    dense = n_in * h + h * h + h * o
    return {"fits": fit.fits, "summary": fit.verdict(),
            "layers": {l.name: {"fits": l.fits, "detail": l.detail()} for l in fit.layers},
            "note": f"{fit.hidden} hidden + {fit.readouts} readout neurons; {weights} non-zero synapses, "
                    f"{weights} bytes of weight memory at 8 bits; the spec's dense matrices (weights_in "
                    f"{n_in}×{h}, weights_rec {h}×{h}, weights_out {h}×{o}) hold {dense} int8 entries = {dense} bytes"}
