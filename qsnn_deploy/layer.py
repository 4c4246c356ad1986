"""A frozen layer: a :class:`Synapse` (the weights) plus a neuron of one kind (:mod:`qsnn_deploy.neurons`).

Per time step ``t`` (integers; J in "J units": one unit of input times one unit of weight)::

    J_t = sumpool_P( W ⊛ x_t ) + R · z_{t-1}           conv or dense, optional sum pool, optional recurrent R
    state_t, z_t = neuron.step(state_{t-1}, J_t)        the kind's equation (its module's docstring)

Both dataclasses write and read their ``.qsnn`` manifest entries from their fields
(:mod:`qsnn_deploy.frozen` holds the network and the file format).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from . import intmath
from .errors import FrozenNetError
from .neurons import LIF, NeuronParams

SYNAPSES = ("conv", "dense")
#: Recurrent weights share the feed-forward current's grid (J units); fed 0/1 spikes where the layer's input
#: is, e.g., 8-bit pixels, they can be up to ~2^8 times larger than the feed-forward weights: 24 bits allowed.
MAX_RECURRENT_BITS = 24


def _pair(value, name: str, layer: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        a, b = value
        return int(a), int(b)
    except Exception as exc:  # noqa: BLE001 - reported with context
        raise FrozenNetError(layer, name, f"expected an int or a pair of ints, got {value!r}") from exc


def _hw(pair) -> str:
    a, b = (int(v) for v in pair)
    return f"{a}" if a == b else f"{a}×{b}"


@dataclass
class Synapse:
    """The weights feeding one layer: conv or dense, an optional sum pool, optional recurrent weights.

    Per time step (all integers, J in "J units": one unit of input times one unit of weight)::

        J_t = sumpool_P( W ⊛ x_t ) + R · z_{t-1}          z_{-1} = 0: a recurrent spike arrives one step later

    Attributes (bit widths in brackets):
        kind: ``"conv"`` or ``"dense"``.
        weight: integer weights, torch layout: (C_out, C_in, kH, kW) or (C_out, C_in)
            [``weight_bits``, signed].
        weight_bits: declared weight width; every weight lies in ±(2**(bits-1)-1) (1: {-1, 0, 1}).
        stride, padding: conv only, (H, W) order.
        pool: sum-pool kernel (H, W) applied to the conv output, or None. Stride = kernel.
        flatten_input: dense only: the input is flattened in (C, H, W) order first.
        recurrent: dense only: (C_out, C_out) integer weights R from the layer's own spikes of the
            previous step [``recurrent_bits`` ≤ 24, signed, J units]; None for a feed-forward layer.
            snnTorch's one-to-one ``V`` is the diagonal case.
        recurrent_bits: declared width of ``recurrent``.
    """

    kind: str
    weight: np.ndarray
    weight_bits: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    pool: tuple[int, int] | None = None
    flatten_input: bool = False
    recurrent: np.ndarray | None = None
    recurrent_bits: int | None = None

    #: fields stored as arrays in a ``.qsnn`` file (the rest are JSON scalars)
    ARRAYS: ClassVar[tuple[str, ...]] = ("weight", "recurrent")

    @property
    def out_channels(self) -> int:
        """Output channels (conv) or output neurons (dense): ``weight.shape[0]``."""
        return int(self.weight.shape[0])

    @property
    def in_channels(self) -> int:
        """Input channels (conv) or fan-in (dense): ``weight.shape[1]``."""
        return int(self.weight.shape[1])

    @property
    def kernel(self) -> tuple[int, int]:
        """Conv kernel (kH, kW) before pooling; (1, 1) for a dense layer."""
        return (int(self.weight.shape[2]), int(self.weight.shape[3])) if self.kind == "conv" else (1, 1)

    @property
    def pool_area(self) -> int:
        """Inputs one sum pool adds (1 without a pool)."""
        return self.pool[0] * self.pool[1] if self.pool else 1

    @property
    def is_recurrent(self) -> bool:
        """True when the layer's own spikes feed back through ``recurrent``."""
        return self.recurrent is not None

    def deployed(self) -> tuple[np.ndarray, tuple[int, int]]:
        """The weight as every target runs it, computed once: (int64 weight, stride), a conv followed
        by a sum pool folded into ONE conv (:func:`~qsnn_deploy.intmath.fold_sum_pool`)."""
        key = (id(self.weight), self.stride, self.pool)
        cached = self.__dict__.get("_deployed")
        if cached is None or cached[0] != key:
            w, stride = self.weight.astype(np.int64), tuple(self.stride)
            if self.kind == "conv" and self.pool is not None:
                w, stride = intmath.fold_sum_pool(w, stride, self.pool)
            cached = (key, (w, stride))
            self.__dict__["_deployed"] = cached
        return cached[1]

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample output shape for a per-sample input shape (already flattened if ``flatten_input``)."""
        if self.kind == "dense":
            return (self.out_channels,)
        _, h, w = in_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if self.pool is not None:
            ho, wo = ho // self.pool[0], wo // self.pool[1]
        return (self.out_channels, ho, wo)

    def fan_in(self) -> int:
        """Synapses per neuron (after the pool: each neuron sums pool-area × kernel inputs), recurrent ones included."""
        per = int(np.prod(self.weight.shape[1:])) * self.pool_area
        return per + (self.out_channels if self.is_recurrent else 0)

    def current_bound(self, input_max_abs: int) -> int:
        """Largest |J| any neuron can see: max over channels of Σ|W| × pool area × max|x| (+ Σ|R| for 0/1 spikes)."""
        w = np.abs(self.weight.astype(np.int64)).reshape(self.out_channels, -1).sum(axis=1) * self.pool_area * int(input_max_abs)
        if self.is_recurrent:
            w = w + np.abs(self.recurrent.astype(np.int64)).sum(axis=1)
        return int(w.max(initial=0))

    def describe(self) -> str:
        """The synapse in a few words: ``conv 16×1×5×5 s2 p1 pool 2×2``, ``dense 10×1024 (flatten)``, ``+ rec 10×10``."""
        shape = "×".join(str(int(d)) for d in np.shape(self.weight))
        rec = f" + recurrent {'×'.join(str(int(d)) for d in np.shape(self.recurrent))}" if self.is_recurrent else ""
        if self.kind != "conv":
            return f"{self.kind} {shape}" + (" (flatten)" if self.flatten_input else "") + rec
        out = f"conv {shape}"
        if tuple(self.stride) != (1, 1):
            out += f" s{_hw(self.stride)}"
        if tuple(self.padding) != (0, 0):
            out += f" p{_hw(self.padding)}"
        if self.pool is not None:
            out += f" pool {self.pool[0]}×{self.pool[1]}"
        return out

    # ------------------------------------------------------------------ manifest
    def to_manifest(self, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``({"kind", scalars..., "arrays": {field: key}}, {key: array})`` from the dataclass fields."""
        entry: dict[str, Any] = {}
        arrays: dict[str, np.ndarray] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self.ARRAYS:
                if value is not None:
                    arrays[prefix + f.name] = np.ascontiguousarray(value)
                    entry.setdefault("arrays", {})[f.name] = prefix + f.name
            elif isinstance(value, tuple):
                entry[f.name] = [int(v) for v in value]
            else:
                entry[f.name] = value if not isinstance(value, (np.integer, np.bool_)) else value.item()
        return entry, arrays

    @classmethod
    def from_manifest(cls, entry: dict[str, Any], arrays: dict[str, np.ndarray], layer: str) -> "Synapse":
        """Inverse of :meth:`to_manifest`; :class:`FrozenNetError` naming the layer and field."""
        keys = entry.get("arrays") or {}
        found: dict[str, Any] = {}
        for name in cls.ARRAYS:
            if name in keys:
                if keys[name] not in arrays:
                    raise FrozenNetError(layer, name, f"array {keys[name]!r} missing from the file")
                found[name] = arrays[keys[name]]
        if "weight" not in found:
            raise FrozenNetError(layer, "weight", "missing")
        unknown = set(entry) - {f.name for f in dataclasses.fields(cls)} - {"arrays"}
        if unknown:
            raise FrozenNetError(layer, f"synapse.{sorted(unknown)[0]}", "not a synapse field")
        rb = entry.get("recurrent_bits")
        return cls(kind=str(entry["kind"]), weight=found["weight"], weight_bits=int(entry["weight_bits"]),
                   stride=_pair(entry.get("stride", 1), "stride", layer), padding=_pair(entry.get("padding", 0), "padding", layer),
                   pool=_pair(entry["pool"], "pool", layer) if entry.get("pool") else None,
                   flatten_input=bool(entry.get("flatten_input", False)), recurrent=found.get("recurrent"),
                   recurrent_bits=None if rb is None else int(rb))


@dataclass
class Layer:
    """One layer of the frozen net: a :class:`Synapse` feeding one layer of neurons of one kind.

    The neuron's equation, parameters, bound and reference step live in its kind's module
    (:mod:`qsnn_deploy.neurons`: ``"lif"``, ``"cuba"``); it receives the synapse's exact current
    ``J_t`` every step. Shapes and bounds that involve only the weights are the synapse's.
    """

    name: str
    synapse: Synapse
    neuron: NeuronParams

    @property
    def kind(self) -> str:
        """The neuron kind (``"lif"``, ``"cuba"``...)."""
        return self.neuron.kind

    @property
    def out_channels(self) -> int:
        """Output channels (conv) or output neurons (dense)."""
        return self.synapse.out_channels

    @property
    def in_channels(self) -> int:
        """Input channels (conv) or fan-in (dense)."""
        return self.synapse.in_channels

    @property
    def kernel(self) -> tuple[int, int]:
        """Conv kernel (kH, kW) before pooling; (1, 1) for a dense layer."""
        return self.synapse.kernel

    @property
    def state_limit(self) -> int:
        """The largest |v| the neuron's B_v-bit membrane holds: 2**(B_v-1) - 1 (state units)."""
        return self.neuron.state_limit

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample output shape for a per-sample input shape."""
        return self.synapse.output_shape(in_shape)

    def fan_in(self) -> int:
        """Synapses per neuron (:meth:`Synapse.fan_in`)."""
        return self.synapse.fan_in()

    def current_bound(self, input_max_abs: int) -> int:
        """Largest |J| any neuron can see (:meth:`Synapse.current_bound`)."""
        return self.synapse.current_bound(input_max_abs)

    def describe(self) -> str:
        """The synapse in a few words (:meth:`Synapse.describe`)."""
        return self.synapse.describe()

    def __repr__(self) -> str:
        """One line, never an array: name, synapse, weight bits, neuron kind, F, B_v, reset, θ range."""
        n = self.neuron
        th = np.asarray(getattr(n, "threshold", np.zeros(0)))
        theta = "?" if th.size == 0 else (f"{th.min()}" if th.min() == th.max() else f"{th.min()}..{th.max()}")
        return (f"Layer({self.name!r}, {self.describe()}, int{self.synapse.weight_bits} weights, {n.kind}, "
                f"F={getattr(n, 'frac_bits', '?')}, B_v={getattr(n, 'state_bits', '?')}, reset={getattr(n, 'reset', '?')}, θ={theta})")


def LIFLayer(name: str, synapse: str, weight: np.ndarray, weight_bits: int, threshold: np.ndarray, bias: np.ndarray,
             decay: np.ndarray, reset: str = "subtract", frac_bits: int = intmath.DEFAULT_FRAC_BITS,
             state_bits: int = intmath.DEFAULT_STATE_BITS, stride: tuple[int, int] = (1, 1),
             padding: tuple[int, int] = (0, 0), pool: tuple[int, int] | None = None, flatten_input: bool = False,
             sigma: np.ndarray | None = None, recurrent: np.ndarray | None = None,
             recurrent_bits: int | None = None) -> Layer:
    """A :class:`Layer` of :class:`~qsnn_deploy.neurons.LIF` neurons from flat arguments (the format-1
    field names): ``synapse`` is ``"conv"`` or ``"dense"``, the rest as in :class:`Synapse` and
    :class:`~qsnn_deploy.neurons.LIF`."""
    return Layer(name, Synapse(synapse, weight, weight_bits, tuple(stride), tuple(padding),
                               tuple(pool) if pool is not None else None, flatten_input, recurrent, recurrent_bits),
                 LIF(threshold, bias, decay, reset, frac_bits, state_bits, sigma))


def _check_weight_range(layer: str, name: str, w: np.ndarray, bits, bits_name: str, max_bits: int = 16) -> None:
    """Integer weights within their declared signed width (1 bit: {-1, 0, 1}), at most ``max_bits``."""
    if not isinstance(bits, (int, np.integer)) or not 1 <= int(bits) <= max_bits:
        raise FrozenNetError(layer, bits_name, f"must be in 1..{max_bits}, got {bits!r}")
    lo, hi = (-1, 1) if bits == 1 else intmath.weight_range(int(bits), narrow=False)
    w64 = w.astype(np.int64)
    if w64.size and (w64.min() < lo or w64.max() > hi):
        raise FrozenNetError(layer, name, f"values {w64.min()}..{w64.max()} outside the {bits}-bit range {lo}..{hi}")
