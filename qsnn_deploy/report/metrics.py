"""Per-layer figures of a frozen network, as pure data (docs/design.md §5; docs/report.md).

Static figures come from the :class:`~qsnn_deploy.frozen.FrozenNet` alone: kind and shape,
fan-in and fan-out, parameters, weight memory at the deployed width and as Loihi 8-bit mantissas,
neuron-state and threshold/bias/decay memory, dense MACs, the worst-case synaptic current.
Activity figures need a simulation over data (:class:`ActivityAccumulator`, fed batch by batch
with :class:`~qsnn_deploy.simulators.SimResult` s): spikes per sample, firing rates, synaptic
operations, saturation events, membrane-state statistics, a raster of one sample, and an energy
estimate from per-operation energies (Loihi 1, 2018, by default, or the user's own; :mod:`.energy`).
:func:`compute_report` puts both together with an optional
:class:`~qsnn_deploy.verify.VerifyReport` into one :class:`Report`, which the renderers
(rich table, JSON, HTML) only read.

Conventions (units, bit widths, what a row counts) are defined in ``docs/report.md``. In short:
row ``l`` describes layer ``l``'s neurons and its *incoming* synapse. Its fan-in, weights, dense
MACs and synaptic operations (SOPs) belong to that synapse; SOPs of row ``l`` are the spikes of
layer ``l-1`` times their exact fan-out into layer ``l``. Its spikes, firing rate and fan-out
belong to its neurons (fan-out = synapses one neuron drives in layer ``l+1``). Conv layers are
counted in their deployed form: a conv followed by a sum pool is ONE pool-folded conv
(:func:`~qsnn_deploy.intmath.fold_sum_pool`), as the simulators run it and as Lava/netx needs it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .. import __version__, intmath
from ..frozen import FrozenNet, Layer
from ..registry import Registry
from .energy import LOIHI1_2018, LOIHI_2018, EnergyModel, as_energy_model

SCHEMA = "qsnn-report"
SCHEMA_VERSION = 4
#: Loihi stores one signed 8-bit weight mantissa per synapse (netx: per kernel entry).
LOIHI_WEIGHT_BITS = 8
#: Width of a stored decay (Loihi's 12-bit du/dv, holding 4096 - d); 13 when some d == 0.
DECAY_STORE_BITS = 12
#: Membrane-state histogram resolution: bins per factor of two in |v|.
HIST_BINS_PER_OCTAVE = 4


# ------------------------------------------------------------------------------ energy model
# EnergyModel, LOIHI_2018 (Loihi 1, 2018) and the user's own costs: .energy (re-exported here).


# ------------------------------------------------------------------------------ geometry
@dataclass
class SynapseGeometry:
    """The deployed connectivity of one layer's incoming synapse.

    ``fan_out`` holds, per input neuron (flattened in (C, H, W) order), the number of synapses
    it drives in this layer, counted exactly on the (pool-folded) conv geometry, borders and
    padding included.
    """

    fan_in: int                  # synapses per output neuron (nominal: the full folded kernel)
    synapses: int                # total connections (= sum of fan_out)
    fan_out: np.ndarray          # int64 [inputs]
    loihi_weight: np.ndarray     # the weight tensor as Loihi/netx stores it (pool-folded conv)
    kernel: tuple[int, int] | None
    stride: tuple[int, int] | None


def synapse_geometry(layer: Layer, in_shape: tuple[int, ...]) -> SynapseGeometry:
    """Exact connectivity of ``layer``'s synapse for a per-sample input of shape ``in_shape``."""
    if layer.synapse.kind == "dense":
        n_in = int(np.prod(in_shape))
        w = layer.synapse.weight.astype(np.int64)
        return SynapseGeometry(n_in, n_in * layer.out_channels, np.full(n_in, layer.out_channels, dtype=np.int64),
                               w, None, None)
    c_in, h, w_ = (int(s) for s in in_shape)
    weight, stride = layer.synapse.deployed()
    footprint = np.ones((1, 1) + layer.kernel, dtype=np.int64)
    if layer.synapse.pool is not None:
        footprint, _ = intmath.fold_sum_pool(footprint, tuple(layer.synapse.stride), layer.synapse.pool)
    fp = footprint[0, 0] != 0
    _, ho, wo = layer.output_shape(tuple(in_shape))
    (sh, sw), (ph, pw) = stride, layer.synapse.padding
    rows0, cols0 = np.arange(ho) * sh - ph, np.arange(wo) * sw - pw
    spatial = np.zeros((h, w_), dtype=np.int64)  # (output position, kernel tap) pairs reaching (i, j)
    for a, b in np.argwhere(fp):
        r, c = rows0 + a, cols0 + b
        r, c = r[(r >= 0) & (r < h)], c[(c >= 0) & (c < w_)]
        spatial[np.ix_(r, c)] += 1
    per_input = spatial * layer.out_channels
    fan_out = np.broadcast_to(per_input, (c_in, h, w_)).reshape(-1).copy()
    return SynapseGeometry(c_in * int(fp.sum()), int(fan_out.sum()), fan_out, weight,
                           (int(weight.shape[2]), int(weight.shape[3])), (int(stride[0]), int(stride[1])))


# ------------------------------------------------------------------------------ static figures
def _nbytes(count: int, bits: int) -> int:
    """Bytes of ``count`` values packed at ``bits`` each: ceil(count * bits / 8)."""
    return (int(count) * int(bits) + 7) // 8


def threshold_bits(threshold: np.ndarray) -> int:
    """Unsigned width of the largest θ (θ ≥ 0): bit_length(max θ), at least 1."""
    return max(1, int(np.max(threshold, initial=0)).bit_length())


def bias_bits(bias: np.ndarray) -> int:
    """Narrow-range signed width of the largest |b|; 0 when every bias is 0 (nothing stored)."""
    m = int(np.max(np.abs(bias.astype(np.int64)), initial=0))
    return 0 if m == 0 else intmath.bits_for_signed(m)


def decay_bits(decay: np.ndarray) -> int:
    """Stored as 4096 - d in Loihi's 12-bit field; 13 bits when some d == 0 (4096 - d = 4096)."""
    return DECAY_STORE_BITS + (1 if int(np.min(decay, initial=1)) == 0 else 0)


def layer_description(layer: Layer) -> str:
    """Short synapse description for tables, e.g. ``"conv 5×5 + sumpool 2×2"`` or ``"dense (flatten)"``."""
    if layer.synapse.kind == "dense":
        return "dense" + (" (flatten)" if layer.synapse.flatten_input else "")
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.synapse.stride, layer.synapse.padding
    s = f"conv {kh}×{kw}"
    if (sh, sw) != (1, 1):
        s += f" s{sh}" if sh == sw else f" s{sh}×{sw}"
    if (ph, pw) != (0, 0):
        s += f" p{ph}" if ph == pw else f" p{ph}×{pw}"
    if layer.synapse.pool is not None:
        s += f" + sumpool {layer.synapse.pool[0]}×{layer.synapse.pool[1]}"
    return s


@dataclass
class LayerStatic:
    """Figures of one layer that need no data (units in the field names; see docs/report.md)."""

    name: str
    synapse: str
    description: str
    weight_shape: list[int]
    input_shape: list[int]
    output_shape: list[int]
    fan_in: int
    fan_out_mean: float
    fan_out_max: int
    synapses: int
    weights: int
    neuron_params: int
    parameters: int
    weight_bits: int
    weight_bytes: int
    loihi_weight_shape: list[int]
    loihi_weights: int
    loihi_weight_bits: int
    loihi_weight_bytes: int
    loihi_weight_max_abs: int
    neurons: int
    state_bits: int
    state_bytes: int
    threshold_bits: int
    threshold_bytes: int
    bias_bits: int
    bias_bytes: int
    decay_bits: int
    decay_bytes: int
    neuron_param_bytes: int
    memory_bytes: int
    current_bound: int
    reset: str
    frac_bits: int
    threshold_min: int
    threshold_max: int


@dataclass
class InputStatic:
    """Figures of the network's input that need no data.

    Attributes:
        shape, bits, signed, scale: the integer input (:class:`~qsnn_deploy.frozen.InputSpec`).
        is_spikes: True when the input is 0/1 spikes (SOPs are then counted for the first synapse too).
        neurons: input values per sample (the product of ``shape``).
        fan_out_mean, fan_out_max: synapses one input value drives in the first layer (mean, max).
    """
    shape: list[int]
    bits: int
    signed: bool
    scale: float
    is_spikes: bool
    neurons: int
    fan_out_mean: float
    fan_out_max: int


def static_figures(net: FrozenNet) -> tuple[InputStatic, list[LayerStatic], list[SynapseGeometry]]:
    """Static figures of every layer, and the geometry of every layer's incoming synapse."""
    shapes = net.layer_shapes()
    geoms = [synapse_geometry(layer, (int(np.prod(i)),) if layer.synapse.flatten_input else i)
             for layer, (i, _) in zip(net.layers, shapes)]
    bounds = net.current_bounds()
    spec = net.input
    g0 = geoms[0].fan_out
    inp = InputStatic([int(s) for s in spec.shape], int(spec.bits), bool(spec.signed), float(spec.scale),
                      input_is_spikes(net), int(np.prod(spec.shape)), float(g0.mean()), int(g0.max(initial=0)))
    layers = []
    for k, (layer, (i, o), g) in enumerate(zip(net.layers, shapes, geoms)):
        fo = geoms[k + 1].fan_out if k + 1 < len(geoms) else np.zeros(int(np.prod(o)), dtype=np.int64)
        c_out = layer.out_channels
        neurons = int(np.prod(o))
        n_w = int(layer.synapse.weight.size)
        # kind "xylo" has two 4-bit dashes per neuron instead of a 12-bit decay
        db = decay_bits(layer.neuron.decay) if hasattr(layer.neuron, "decay") else 8
        tb, bb = threshold_bits(layer.neuron.threshold), bias_bits(layer.neuron.bias)
        w_bytes = _nbytes(n_w, layer.synapse.weight_bits)
        state_bytes = _nbytes(neurons, layer.neuron.state_bits)
        t_bytes, b_bytes, d_bytes = _nbytes(c_out, tb), _nbytes(c_out, bb), _nbytes(c_out, db)
        param_bytes = t_bytes + b_bytes + d_bytes
        layers.append(LayerStatic(
            name=layer.name, synapse=layer.synapse.kind, description=layer_description(layer),
            weight_shape=[int(s) for s in layer.synapse.weight.shape], input_shape=[int(s) for s in i],
            output_shape=[int(s) for s in o], fan_in=g.fan_in, fan_out_mean=float(fo.mean()) if fo.size else 0.0,
            fan_out_max=int(fo.max(initial=0)), synapses=g.synapses, weights=n_w, neuron_params=3 * c_out,
            parameters=n_w + 3 * c_out, weight_bits=int(layer.synapse.weight_bits), weight_bytes=w_bytes,
            loihi_weight_shape=[int(s) for s in g.loihi_weight.shape], loihi_weights=int(g.loihi_weight.size),
            loihi_weight_bits=LOIHI_WEIGHT_BITS, loihi_weight_bytes=_nbytes(g.loihi_weight.size, LOIHI_WEIGHT_BITS),
            loihi_weight_max_abs=int(np.abs(g.loihi_weight).max(initial=0)), neurons=neurons,
            state_bits=int(layer.neuron.state_bits), state_bytes=state_bytes, threshold_bits=tb, threshold_bytes=t_bytes,
            bias_bits=bb, bias_bytes=b_bytes, decay_bits=db, decay_bytes=d_bytes, neuron_param_bytes=param_bytes,
            memory_bytes=w_bytes + state_bytes + param_bytes, current_bound=int(bounds[k]), reset=layer.neuron.reset,
            frac_bits=int(layer.neuron.frac_bits), threshold_min=int(layer.neuron.threshold.min()),
            threshold_max=int(layer.neuron.threshold.max())))
    return inp, layers, geoms


def input_is_spikes(net: FrozenNet) -> bool:
    """True when the network's input values are spikes (1-bit unsigned); pixels are graded."""
    return net.input.bits == 1 and not net.input.signed


# ------------------------------------------------------------------------------ state histogram
def _fine_bins(state_bits: int, per_octave: int) -> int:
    return per_octave * (state_bits - 1)


def state_histogram_counts(v: np.ndarray, state_bits: int, per_octave: int = HIST_BINS_PER_OCTAVE) -> np.ndarray:
    """Fine counts of integer states ``v`` (accumulate these, then call :func:`state_histogram`):
    index k (= q·(B_v-1)) holds v = 0; k+1+m holds v > 0 with 2^(m/q) <= v < 2^((m+1)/q); k-1-m
    holds its mirror v < 0."""
    k = _fine_bins(state_bits, per_octave)
    v = np.asarray(v).reshape(-1)
    out = np.zeros(2 * k + 1, dtype=np.int64)
    zero = v == 0
    out[k] = int(np.count_nonzero(zero))
    nz = v[~zero]
    if nz.size:
        m = np.floor(per_octave * np.log2(np.abs(nz).astype(np.float64))).astype(np.int64)
        np.clip(m, 0, k - 1, out=m)
        idx = np.where(nz > 0, k + 1 + m, k - 1 - m)
        out += np.bincount(idx, minlength=2 * k + 1)
    return out


def state_histogram(fine: np.ndarray, state_bits: int, per_octave: int = HIST_BINS_PER_OCTAVE) -> tuple[list[int], list[int]]:
    """(edges, counts) with INTEGER edges over the whole signed state range: bin ``[a, b)`` holds
    the integers a .. b-1. Edges are ``-(vmax) .. -1, 0, 1, 2, 3, ..., 2^(B_v-1)``: about q bins per
    factor of two in |v| (fewer where a bin would hold no integer), one bin [0, 1) for v = 0,
    mirrored for negative states."""
    k = _fine_bins(state_bits, per_octave)
    e = np.ceil(2.0 ** (np.arange(k + 1) / per_octave)).astype(np.int64)  # v >= 2^(m/q) <=> v >= ceil(2^(m/q))
    e[-1] = 1 << (state_bits - 1)
    keep = e[1:] > e[:-1]                      # a bin with equal integer edges holds no integer: drop it
    fine = np.asarray(fine, dtype=np.int64)
    pos = fine[k + 1:][keep]
    neg = fine[:k][::-1][keep][::-1]
    ek = np.concatenate([e[:-1][keep], e[-1:]])
    edges = np.concatenate([-(ek[::-1] - 1), ek])
    counts = np.concatenate([neg, fine[k:k + 1], pos])
    return [int(x) for x in edges], [int(c) for c in counts]


# ------------------------------------------------------------------------------ activity
@dataclass
class LayerActivity:
    """Raw activity of one layer over the data (one entry per sample where it says so)."""

    spikes_per_sample: np.ndarray                # int64 [N]: spikes of this layer's neurons over T
    sops_per_sample: np.ndarray | None           # int64 [N]: SOPs in this layer's synapse (None: graded input)
    neuron_spikes: np.ndarray                    # int64 [neurons]: spikes per neuron, summed over samples
    saturation_events: int
    state_min: int | None = None
    state_max: int | None = None
    state_hist: np.ndarray | None = None         # fine counts (state_histogram_counts); see state_histogram
    raster: np.ndarray | None = None             # uint8 [T, neurons] of the raster sample


@dataclass
class Activity:
    """Activity of a whole net over the data, as :class:`ActivityAccumulator` collects it.

    ``layers`` maps layer names to :class:`LayerActivity`; ``input_ops_per_sample`` (graded input only)
    counts nonzero input values × fan-out over T; ``raster_sample`` / ``raster_input`` the sample shown
    in the raster plot; ``predictions`` and ``labels`` per sample when known; ``source`` and ``backend``
    say what was simulated and by which backend.
    """
    n_samples: int
    num_steps: int
    layers: dict[str, LayerActivity]
    input_ops_per_sample: np.ndarray | None      # graded input: nonzero input values × fan-out, over T
    input_nonzero_per_sample: np.ndarray         # nonzero input values per sample, over T
    raster_sample: int
    raster_input: np.ndarray | None = None       # the raster sample's input ([*shape] or [T, *shape])
    predictions: np.ndarray | None = None
    labels: np.ndarray | None = None
    source: str = ""
    backend: str = ""
    #: per input position (flattened): nonzero input values (spike input: spike counts), summed over T and
    #: samples; with the first layer's nonzero fan-out it gives NeuroBench's effective operations of the input
    input_nonzero_per_position: np.ndarray | None = None


class ActivityAccumulator:
    """Collects activity figures batch by batch (memory stays bounded: states are histogrammed,
    not kept).

    Args:
        net: the frozen network the results come from.
        raster_sample: index (over all samples added) of the sample whose spike raster is kept.
    """

    def __init__(self, net: FrozenNet, raster_sample: int = 0, source: str = ""):
        self.net = net
        self.raster_sample = int(raster_sample)
        self.source = source
        _, self.static, self.geoms = static_figures(net)
        self.n = 0
        self.steps: int | None = None
        self.backend = ""
        names = [layer.name for layer in net.layers]
        self._spikes = {n: [] for n in names}
        self._sops: dict[str, list] = {n: [] for n in names}
        self._neuron = {n: np.zeros(s.neurons, dtype=np.int64) for n, s in zip(names, self.static)}
        self._sat = {n: 0 for n in names}
        self._vmin: dict[str, int | None] = {n: None for n in names}
        self._vmax: dict[str, int | None] = {n: None for n in names}
        self._hist: dict[str, np.ndarray | None] = {n: None for n in names}
        self._raster: dict[str, np.ndarray | None] = {n: None for n in names}
        self._raster_input = None
        self._input_ops: list[np.ndarray] = []
        self._input_nz: list[np.ndarray] = []
        self._input_pos: np.ndarray | None = None
        self._preds: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def add(self, x, result, labels=None) -> "ActivityAccumulator":
        """Add one batch: its integer input ``x`` ([B, *shape] static or [T, B, *shape]) and the
        :class:`~qsnn_deploy.simulators.SimResult` of running it (states optional)."""
        net = self.net
        names = [layer.name for layer in net.layers]
        first = result.spikes[names[0]]
        steps, b = int(first.shape[0]), int(first.shape[1])
        if self.steps is None:
            self.steps = steps
        elif self.steps != steps:
            raise ValueError(f"batches with different T: {self.steps} and {steps}")
        self.backend = result.backend or self.backend
        # ---- input: nonzero values (graded) or spikes, times their fan-out into layer 0
        x = np.asarray(x)
        shape = tuple(net.input.shape)
        static = x.ndim == len(shape) + 1
        if static:
            flat = x.reshape(b, -1).astype(np.int64)
            nz = (flat != 0).astype(np.int64)
            src = np.abs(flat) if input_is_spikes(net) else nz
            weighted_in = src @ self.geoms[0].fan_out * steps
            nz_count = nz.sum(axis=1) * steps
            pos = src.sum(axis=0) * steps
        else:
            flat = x.reshape(x.shape[0], b, -1).astype(np.int64)
            nz = (flat != 0).astype(np.int64)
            src = np.abs(flat) if input_is_spikes(net) else nz
            weighted_in = (src.sum(axis=0)) @ self.geoms[0].fan_out
            nz_count = nz.sum(axis=(0, 2))
            pos = src.sum(axis=(0, 1))
        self._input_nz.append(nz_count)
        self._input_pos = pos if self._input_pos is None else self._input_pos + pos
        if input_is_spikes(net):
            self._sops[names[0]].append(weighted_in)
        else:
            self._input_ops.append(weighted_in)
        k = self.raster_sample - self.n
        if 0 <= k < b:
            self._raster_input = x[k].copy() if static else x[:, k].copy()
        # ---- layers
        for li, (name, st) in enumerate(zip(names, self.static)):
            s = result.spikes[name]
            if s.shape[:2] != (steps, b):
                raise ValueError(f"layer {name!r}: spikes of shape {s.shape}, expected [T={steps}, B={b}, ...]")
            per_tn = s.reshape(steps, b, -1)
            counts = per_tn.sum(axis=0, dtype=np.int64)  # [B, neurons]
            self._spikes[name].append(counts.sum(axis=1))
            self._neuron[name] += counts.sum(axis=0)
            if li + 1 < len(names):
                self._sops[names[li + 1]].append(counts @ self.geoms[li + 1].fan_out)
            self._sat[name] += int(result.saturations.get(name, 0))
            if result.states is not None and name in result.states:
                v = result.states[name]
                lo, hi = int(v.min()), int(v.max())
                self._vmin[name] = lo if self._vmin[name] is None else min(lo, self._vmin[name])
                self._vmax[name] = hi if self._vmax[name] is None else max(hi, self._vmax[name])
                h = state_histogram_counts(v, st.state_bits)
                self._hist[name] = h if self._hist[name] is None else self._hist[name] + h
            if 0 <= k < b:
                self._raster[name] = per_tn[:, k].astype(np.uint8).copy()
        self._preds.append(result.predictions())
        if labels is not None:
            self._labels.append(np.asarray(labels).reshape(-1))
        self.n += b
        return self

    def finish(self) -> Activity:
        """The accumulated :class:`Activity` over every batch added (ValueError when none was)."""
        if not self.n:
            raise ValueError("no data was added")
        names = [layer.name for layer in self.net.layers]
        cat = lambda parts: np.concatenate(parts).astype(np.int64)  # noqa: E731
        layers = {}
        for name in names:
            layers[name] = LayerActivity(
                spikes_per_sample=cat(self._spikes[name]),
                sops_per_sample=cat(self._sops[name]) if self._sops[name] else None,
                neuron_spikes=self._neuron[name].copy(), saturation_events=self._sat[name],
                state_min=self._vmin[name], state_max=self._vmax[name], state_hist=self._hist[name],
                raster=self._raster[name])
        labels = cat(self._labels) if self._labels and sum(len(p) for p in self._labels) == self.n else None
        return Activity(self.n, int(self.steps), layers, cat(self._input_ops) if self._input_ops else None,
                        cat(self._input_nz), self.raster_sample, self._raster_input, cat(self._preds), labels,
                        self.source, self.backend, self._input_pos.astype(np.int64).copy())


def collect_activity(net: FrozenNet, x, labels=None, num_steps: int | None = None, backend: str = "numpy",
                     batch_size: int = 50, raster_sample: int = 0, source: str = "", record_states: bool = True,
                     progress: Callable[[int], None] | None = None, **backend_options) -> Activity:
    """Simulate ``x`` with ``backend`` in batches (states recorded) and accumulate the activity."""
    from ..simulators import create_backend, prepare_input

    arr, static, steps = prepare_input(net, x, num_steps)
    n = arr.shape[0] if static else arr.shape[1]
    if not 0 <= raster_sample < n:
        raise ValueError(f"raster sample {raster_sample} is outside the {n} samples")
    sim = create_backend(backend, net, **backend_options)
    acc = ActivityAccumulator(net, raster_sample, source)
    lab = None if labels is None else np.asarray(labels)
    for start in range(0, n, batch_size):
        xs = arr[start:start + batch_size] if static else arr[:, start:start + batch_size]
        res = sim.run(xs, steps, record_states=record_states)
        acc.add(xs, res, None if lab is None else lab[start:start + batch_size])
        if progress:
            progress(xs.shape[0] if static else xs.shape[1])
    return acc.finish()


def activity_from_result(net: FrozenNet, result, x, labels=None, raster_sample: int = 0, source: str = "") -> Activity:
    """The activity of one :class:`~qsnn_deploy.simulators.SimResult` (all samples at once)."""
    return ActivityAccumulator(net, raster_sample, source).add(x, result, labels).finish()


# ------------------------------------------------------------------------------ the report
@dataclass
class LayerActivitySummary:
    """Per-layer activity figures of a report (averages over the data's samples).

    Spikes per sample (mean, max), firing rate (spikes per neuron per step), synaptic operations per
    sample (SOPs: spikes × fan-out; None for graded input) and their ratio to dense MACs, saturation
    events, neurons that never spiked, the membrane state's range (state units) and the signed bits
    it used, and its histogram. Definitions and units: docs/report.md.
    """
    spikes_mean: float
    spikes_max: int
    firing_rate: float           # spikes per neuron per step
    sops_mean: float | None      # SOPs per sample in this layer's synapse (None: graded input)
    sops_max: int | None
    sop_per_mac: float | None    # sops_mean / dense_macs
    saturation_events: int
    silent_neurons: int          # neurons that never spiked over the data
    state_min: int | None
    state_max: int | None
    state_bits_used: int | None  # narrow-range signed width of max |v| seen
    state_histogram: dict[str, list] | None


@dataclass
class LayerReport:
    """One layer of a :class:`Report`: its static figures, dense MACs per sample (synapses × T), the
    activity summary (None without data), per-neuron rates and the raster sample's spikes (plots
    only), and the target fit of this layer (None without a target).
    """
    static: LayerStatic
    dense_macs: int              # per sample: synapses × T
    activity: LayerActivitySummary | None = None
    neuron_rates: np.ndarray | None = None   # spikes per neuron per step, per neuron (plots only)
    raster: np.ndarray | None = None         # uint8 [T, neurons] of the raster sample (plots only)
    fit: dict[str, Any] | None = None        # target fit of this layer (from a registered fit check)

    @property
    def name(self) -> str:
        """The layer's name."""
        return self.static.name


@dataclass
class EnergyEstimate:
    """The energy estimate per inference: the costs used (and where each comes from), the counts they
    price, and the energies in nJ (``total_low_nj`` uses the low neuron-update figure)."""

    model: str
    chip: str                    # the chip and its generation the costs describe
    citation: str
    note: str
    user_costs: bool             # True when any per-op cost was given by the user
    per_op_pj: dict[str, float]
    per_op_source: dict[str, str]  # per cost: where its figure comes from
    counts: dict[str, float]     # per inference: sops, neuron_updates, spikes
    synaptic_nj: float
    input_nj: float              # the graded input's operations (e.g. 8-bit pixels) priced as synaptic ops
    neuron_nj: float
    neuron_low_nj: float
    spike_nj: float
    total_nj: float              # dynamic energy: synaptic + input + neuron + spike
    total_low_nj: float
    unpriced: list[str]
    static_nj: float | None = None   # static / leakage energy per inference: None where the source gives none


@dataclass
class Report:
    """A whole report, as pure data: what :func:`compute_report` returns and every renderer reads.

    ``input`` and ``layers`` hold the per-layer figures, ``totals`` the sums over layers, ``data`` what
    the activity was measured on (None for a static report), ``energy`` the energy estimate, ``verify``
    the agreement check's summary, ``target`` the deployment target's fit, ``neurobench`` NeuroBench's
    metrics next to ours (:func:`qsnn_deploy.report.neurobench.compare_with_neurobench`'s dict, set by
    ``qsnn-report --neurobench``), ``generator`` the producing version. JSON schema ``qsnn-report``:
    docs/report.md.
    """
    model: str
    num_steps: int
    input: InputStatic
    layers: list[LayerReport]
    totals: dict[str, Any]
    data: dict[str, Any] | None = None
    input_activity: dict[str, Any] | None = None
    energy: EnergyEstimate | None = None
    verify: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    neurobench: dict[str, Any] | None = None
    #: the first screen: bit-exact, fits the target, latency, accuracy (:func:`~qsnn_deploy.report.verdicts.verdicts`)
    verdicts: dict[str, Any] | None = None
    #: the target chip's resources per layer and the headroom of every fitted field
    #: (:func:`~qsnn_deploy.report.resources.chip_resources`; None without a target that has them)
    resources: dict[str, Any] | None = None
    #: NeuroBench-named workload figures computed by our code (:func:`~qsnn_deploy.report.workload.workload`)
    workload: dict[str, Any] | None = None
    generator: str = field(default_factory=lambda: f"qsnn-deploy {__version__}")
    raster_sample: int | None = None
    raster_input: np.ndarray | None = None

    @property
    def has_activity(self) -> bool:
        """True when the report was computed with data (activity figures present)."""
        return self.data is not None


# Fit checks per deployment target: ``check(net, report) -> {"fits": bool, "summary": str,
# "layers": {layer name: {"fits": bool, "detail": str}}}``, registered by the target's exporter;
# the report then adds its columns. No fit figures are made up here.
FIT_CHECKS = Registry("fit check", {"lava": "qsnn_deploy.lava.check:fit_check_for_report",
                                    "xylo": "qsnn_deploy.xylo.check:fit_check_for_report"})


def register_fit_check(target: str, check: Callable[[FrozenNet, Report], dict[str, Any]]) -> None:
    """Make ``qsnn-report --target TARGET`` show ``check``'s per-layer fit (see :data:`FIT_CHECKS`)."""
    FIT_CHECKS.register(target, check)


def verify_summary(vr) -> dict[str, Any]:
    """The parts of a :class:`~qsnn_deploy.verify.VerifyReport` the report shows."""
    return {
        "reference": vr.reference, "n_samples": int(vr.n_samples), "num_steps": int(vr.num_steps),
        "reference_accuracy": vr.reference_accuracy, "all_exact": bool(vr.all_exact),
        "backends": [{
            "name": b.name, "exact_required": bool(b.exact_required), "bit_exact": bool(b.bit_exact),
            "prediction_agreement": float(b.prediction_agreement), "accuracy": b.accuracy, "note": b.note,
            "layers": [{"name": layer.name, "bit_exact": bool(layer.bit_exact),
                        "spike_count_agreement": float(layer.spike_count_agreement),
                        "mismatched_values": int(layer.mismatched_values),
                        "first_mismatch": _mismatch(getattr(layer, "first_mismatch", None))} for layer in b.layers],
        } for b in vr.backends],
    }


def _mismatch(mm) -> dict[str, Any] | None:
    """The earliest differing spike of a layer (layer, sample, step, neuron index, both spikes), or None."""
    if mm is None:
        return None
    return {"layer": str(mm.layer), "sample": int(mm.sample), "step": int(mm.step),
            "neuron": [int(i) for i in mm.neuron], "reference_spike": int(mm.reference_spike),
            "other_spike": int(mm.other_spike)}


def _summary(st: LayerStatic, act: LayerActivity, n: int, steps: int, dense_macs: int) -> LayerActivitySummary:
    spk = act.spikes_per_sample
    sops = act.sops_per_sample
    sops_mean = float(sops.mean()) if sops is not None else None
    used = None
    if act.state_min is not None:
        used = intmath.bits_for_signed(max(abs(act.state_min), abs(act.state_max)))
    hist = None
    if act.state_hist is not None:
        edges, counts = state_histogram(act.state_hist, st.state_bits)
        hist = {"edges": edges, "counts": counts}
    return LayerActivitySummary(
        spikes_mean=float(spk.mean()), spikes_max=int(spk.max()),
        firing_rate=float(spk.mean()) / (st.neurons * steps),
        sops_mean=sops_mean, sops_max=int(sops.max()) if sops is not None else None,
        sop_per_mac=(sops_mean / dense_macs) if (sops_mean is not None and dense_macs) else None,
        saturation_events=int(act.saturation_events), silent_neurons=int(np.count_nonzero(act.neuron_spikes == 0)),
        state_min=act.state_min, state_max=act.state_max, state_bits_used=used, state_histogram=hist)


def energy_estimate(n_neurons: int, steps: int, sops_mean: float, spikes_mean: float, graded_input: bool,
                    model: EnergyModel | Mapping[str, Any] | None = LOIHI_2018,
                    input_ops_mean: float | None = None) -> EnergyEstimate:
    """Dynamic energy per inference (nJ) = (SOPs + input ops) × E_sop + neuron updates (neurons × T) × E_neuron
    + spikes × E_spike.

    ``input_ops_mean``: the graded input's operations per sample (nonzero input values × fan-out; e.g. 8-bit
    pixels sent as graded spikes on Loihi 2), priced at E_sop — a lower bound, as a graded operation
    multiplies where a binary one only adds. Static (leakage) energy is not in the per-op tables: ``static_nj``
    is None and the estimate says so. ``model``: an :class:`EnergyModel`, or a mapping of the user's own
    per-op costs (pJ; see :func:`~qsnn_deploy.report.energy.energy_model_from_costs`); default Loihi 1 (2018)."""
    model = as_energy_model(model)
    updates = n_neurons * steps
    in_ops = float(input_ops_mean or 0.0)
    syn = sops_mean * model.sop_pj / 1000.0
    inp = in_ops * model.sop_pj / 1000.0
    neu = updates * model.neuron_update_pj / 1000.0
    neu_low = updates * model.neuron_update_low_pj / 1000.0
    spk = spikes_mean * model.spike_pj / 1000.0
    unpriced = ["spike routing between tiles (hops depend on the placement)",
                "static and leakage power (the per-op source gives none)", "host I/O and readout"]
    if graded_input and input_ops_mean is None:
        unpriced.insert(0, "the first layer's input: integer pixels are not spikes (its ops are reported, not priced)")
    return EnergyEstimate(model.name, model.chip or model.name, model.citation, model.note, model.user_costs,
                          model.per_op_pj, model.per_op_source,
                          {"sops": float(sops_mean), "input_ops": in_ops, "neuron_updates": float(updates),
                           "spikes": float(spikes_mean)},
                          syn, inp, neu, neu_low, spk, syn + inp + neu + spk, syn + inp + neu_low + spk, unpriced)


def compute_report(net: FrozenNet, activity: Activity | None = None, verify_report=None, model_name: str = "",
                   target: str | None = None, energy_model: EnergyModel | Mapping[str, Any] | None = LOIHI_2018,
                   skipped_backends: list[dict[str, str]] | None = None) -> Report:
    """Put the static figures, the activity (optional) and the verify results (optional) together.

    ``energy_model`` prices the energy estimate: an :class:`EnergyModel` or a mapping of your own
    per-operation costs in pJ (``{"synaptic_op": ..., "neuron_update": ..., "neuron_update_low": ...,
    "spike": ..., "chip": ..., "citation": ...}``, any subset; validated, the rest stays Loihi 1's);
    default :data:`LOIHI_2018` (Loihi 1, Davies et al. 2018, Table 2). ``skipped_backends``: backends
    the agreement check meant to run but could not (``{"name", "reason"}``, from
    :func:`~qsnn_deploy.report.agreement.resolve_backends`), shown beside those that ran.
    """
    energy_model = as_energy_model(energy_model)  # refuse bad costs before any work
    inp, statics, _ = static_figures(net)
    steps = int(activity.num_steps) if activity is not None else int(net.num_steps)
    layers = [LayerReport(st, st.synapses * steps) for st in statics]
    totals: dict[str, Any] = {
        "weights": sum(s.weights for s in statics), "parameters": sum(s.parameters for s in statics),
        "synapses": sum(s.synapses for s in statics), "weight_bytes": sum(s.weight_bytes for s in statics),
        "loihi_weight_bytes": sum(s.loihi_weight_bytes for s in statics),
        "neurons": sum(s.neurons for s in statics), "state_bytes": sum(s.state_bytes for s in statics),
        "neuron_param_bytes": sum(s.neuron_param_bytes for s in statics),
        "memory_bytes": sum(s.memory_bytes for s in statics),
        "dense_macs": sum(lr.dense_macs for lr in layers),
    }
    rep = Report(model_name or str(net.metadata.get("checkpoint", "")) or "model", steps, inp, layers, totals)
    if activity is not None:
        n = activity.n_samples
        graded = not input_is_spikes(net)
        spikes_tot = np.zeros(n, dtype=np.int64)
        sops_tot = np.zeros(n, dtype=np.int64)
        for lr in layers:
            act = activity.layers[lr.name]
            lr.activity = _summary(lr.static, act, n, steps, lr.dense_macs)
            lr.neuron_rates = act.neuron_spikes / float(n * steps)
            lr.raster = act.raster
            spikes_tot += act.spikes_per_sample
            if act.sops_per_sample is not None:
                sops_tot += act.sops_per_sample
        sats = sum(lr.activity.saturation_events for lr in layers)
        totals.update({
            "spikes_mean": float(spikes_tot.mean()), "spikes_max": int(spikes_tot.max()),
            "firing_rate": float(spikes_tot.mean()) / (totals["neurons"] * steps),
            "sops_mean": float(sops_tot.mean()), "sops_max": int(sops_tot.max()), "saturation_events": int(sats),
        })
        acc = None
        if activity.labels is not None and activity.predictions is not None:
            acc = float(np.mean(activity.predictions == activity.labels))
        rep.data = {"source": activity.source, "n_samples": n, "num_steps": steps, "backend": activity.backend,
                    "accuracy": acc}
        ia: dict[str, Any] = {"nonzero_mean": float(activity.input_nonzero_per_sample.mean())}
        if activity.input_ops_per_sample is not None:
            ops = activity.input_ops_per_sample
            ia.update(ops_mean=float(ops.mean()), ops_max=int(ops.max()))
            totals["input_ops_mean"] = float(ops.mean())
        else:
            ia.update(ops_mean=None, ops_max=None)
            totals["input_ops_mean"] = None
        rep.input_activity = ia
        rep.energy = energy_estimate(totals["neurons"], steps, totals["sops_mean"], totals["spikes_mean"], graded,
                                     energy_model, input_ops_mean=totals["input_ops_mean"] if graded else None)
        rep.raster_sample = activity.raster_sample
        rep.raster_input = activity.raster_input
    if verify_report is not None:
        rep.verify = verify_summary(verify_report)
        rep.verify["skipped"] = [{"name": str(b["name"]), "reason": str(b["reason"])} for b in skipped_backends or ()]
    if target:
        rep.target = target_fit(net, rep, target)
    from .resources import chip_resources
    from .verdicts import verdicts
    from .workload import workload

    if activity is not None:
        rep.workload = workload(net, rep, activity)
    rep.resources = chip_resources(net, rep, target)
    rep.verdicts = verdicts(net, rep)
    return rep


def target_fit(net: FrozenNet, report: Report, target: str) -> dict[str, Any]:
    """Run the fit check registered for ``target``; say so plainly when there is none."""
    if target not in FIT_CHECKS.names():
        return {"name": target, "available": False, "fits": None, "summary": "",
                "note": f"no fit check is registered for target {target!r} yet: per-layer fit (cores, "
                        "synapse and neuron limits) comes with that target's exporter "
                        "(qsnn_deploy.report.register_fit_check)"}
    res = FIT_CHECKS.get(target)(net, report)
    for lr in report.layers:
        lr.fit = (res.get("layers") or {}).get(lr.name)
    return {"name": target, "available": True, "fits": res.get("fits"), "summary": str(res.get("summary", "")),
            "note": str(res.get("note", ""))}


def human_bytes(n: int | float) -> str:
    """A byte count in B / KiB / MiB / GiB (binary units, one decimal)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def human_energy(nj: float) -> str:
    """An energy given in nanojoules, in pJ / nJ / µJ / mJ with 3 significant digits."""
    for div, unit in ((1e6, "mJ"), (1e3, "µJ"), (1.0, "nJ")):
        if abs(nj) >= div:
            return f"{nj / div:.3g} {unit}"
    return f"{nj * 1e3:.3g} pJ"


def span(lo: float, hi: float, fmt: Callable[[float], str]) -> str:
    """``fmt(lo)–fmt(hi)``, or ``fmt(hi)`` alone when both ends read the same."""
    a, b = fmt(lo), fmt(hi)
    return b if a == b else f"{a}–{b}"


def fmt_num(x: float | int | None) -> str:
    """Exact-looking number for HTML tables: 1,234,567 (integers, large means) or 12.34."""
    if x is None:
        return "-"
    if isinstance(x, (int, np.integer)) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def human_count(x: float | int | None) -> str:
    """A count with k / M / G / T suffixes and 3 significant digits (``-`` for None or NaN)."""
    if x is None:
        return "-"
    x = float(x)
    if x != x:  # NaN
        return "-"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.4g}" if not float(x).is_integer() else f"{int(x)}"


__all__ = ["SCHEMA", "SCHEMA_VERSION", "EnergyModel", "LOIHI_2018", "LOIHI1_2018", "SynapseGeometry", "synapse_geometry",
           "LayerStatic", "InputStatic", "static_figures", "LayerActivity", "Activity", "ActivityAccumulator",
           "collect_activity", "activity_from_result", "LayerActivitySummary", "LayerReport", "EnergyEstimate",
           "Report", "compute_report", "FIT_CHECKS", "register_fit_check", "verify_summary", "energy_estimate",
           "state_histogram", "state_histogram_counts", "human_bytes", "human_count", "human_energy", "fmt_num", "span"]
