"""Static per-layer figures of a frozen network (docs/report.md): what the
:class:`~qsnn_deploy.frozen.FrozenNet` alone fixes, before any data is run.

Per layer: the deployed synapse's geometry (fan-in, fan-out, a conv counted as ONE pool-folded conv,
:func:`~qsnn_deploy.intmath.fold_sum_pool`), kind and shape, parameters, weight memory at the deployed
width [bits] and as Loihi 8-bit mantissas, neuron-state and threshold / bias / decay memory [bytes],
dense MACs per step and the worst-case synaptic current. Row ``l`` describes layer ``l``'s neurons and
its *incoming* synapse (see :mod:`.metrics`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import intmath
from ..frozen import FrozenNet, Layer

#: Loihi stores one signed 8-bit weight mantissa per synapse (netx: per kernel entry).
LOIHI_WEIGHT_BITS = 8
#: Width of a stored decay (Loihi's 12-bit du/dv, holding 4096 - d); 13 when some d == 0.
DECAY_STORE_BITS = 12


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
