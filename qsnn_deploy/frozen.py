"""The frozen integer network: the hub every simulator and exporter reads (docs/design.md §1).

A :class:`FrozenNet` is framework-free: plain dataclasses holding NumPy integer tensors. It is
saved as one ``.qsnn`` file: an uncompressed NumPy ``.npz`` archive holding a JSON manifest (key
``manifest.json``, UTF-8 bytes) and one ``.npy`` array per tensor. It is read back with
``numpy.load(allow_pickle=False)``: no code can run while loading. The format is documented in
``docs/frozen-format.md``.

A layer (:class:`Layer`) is a :class:`Synapse` plus a neuron of one kind (:mod:`qsnn_deploy.neurons`;
``"lif"``: snnTorch ``Leaky``, ``"cuba"``: snnTorch ``Synaptic``). Per time step ``t`` (integers)::

    J_t     = sumpool_P( W ⊛ x_t ) + R · z_{t-1}          exact integer conv (or dense), an optional sum pool
                                                       (the folded avg-pool), optional recurrent weights R
    state_t, z_t = neuron.step(state_{t-1}, J_t)       the kind's equation (its module's docstring), e.g. LIF:
    v_t     = decay(v_{t-1}) + (J_t << F) + b - [v_{t-1} > θ]·θ,  clipped to B_v bits,  z_t = [v_t > θ]

Format version 2 stores each layer as ``{"name", "synapse": {...}, "neuron": {"kind", ...}}``, both
written and read from the dataclasses' fields; version-1 files (flat LIF layers, written before
neuron kinds) are read as LIF layers, bit for bit the same network.
"""
from __future__ import annotations

import dataclasses
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError, FrozenNetError
from .fileio import atomic_path, check_claimed_size
from .layer import MAX_RECURRENT_BITS, SYNAPSES, Layer, LIFLayer, Synapse, _check_weight_range  # noqa: F401 - re-exported
from .neurons import LIF, NeuronParams, neuron_class

FORMAT_NAME = "qsnn-frozen"
FORMAT_VERSION = 2
#: versions this build reads (1: flat LIF layers, before neuron kinds)
READABLE_VERSIONS = (1, 2)
#: Size limits checked by :meth:`FrozenNet.validate` (a forged file cannot make a simulator
#: allocate absurd buffers): values per sample of the input and of every layer's output, and T.
MAX_NEURONS = 1 << 24
MAX_STEPS = 1 << 20


def _shape(shape) -> str:
    return "×".join(str(int(v)) for v in shape)


@dataclass
class InputSpec:
    """The network's integer input.

    Attributes:
        shape: per-sample shape, (C, H, W) for images or (features,).
        bits: width of one input value (8 for raw uint8 pixels, 1 for spikes / events).
        signed: whether input values may be negative.
        scale: float value of one input unit in the trained model (1/255 for pixels fed as
            ``pixel/255``; 1.0 for spikes).
        static: True when the trained model feeds the same input at every time step.
    """

    shape: tuple[int, ...]
    bits: int = 8
    signed: bool = False
    scale: float = 1.0 / 255.0
    static: bool = True

    @property
    def max_abs(self) -> int:
        """Largest magnitude an input value can take."""
        return (1 << (self.bits - 1)) if self.signed else (1 << self.bits) - 1

    @property
    def value_range(self) -> tuple[int, int]:
        """(min, max) integer input value: 0..2**bits-1 unsigned, -2**(bits-1)..2**(bits-1)-1 signed."""
        if self.signed:
            return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        return 0, (1 << self.bits) - 1


@dataclass
class FrozenNet:
    """A network of :class:`Layer` s (feed-forward between layers; a layer may be recurrent in itself)
    driven by an integer input.

    Attributes:
        input: the input description.
        layers: spiking layers in order; the last one's spikes are the network's output
            (prediction = the output neuron with most spikes).
        num_steps: T, the default number of time steps.
        metadata: free-form JSON-serialisable provenance (source model, deploy-faithful or not...).
    """

    input: InputSpec
    layers: list[Layer]
    num_steps: int = 100
    metadata: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ shapes and bounds
    def layer_shapes(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """(input shape, output shape) per layer, per sample."""
        shapes, cur = [], tuple(self.input.shape)
        for layer in self.layers:
            in_shape = cur
            if layer.synapse.flatten_input:
                cur = (int(np.prod(cur)),)
            out = layer.output_shape(cur)
            shapes.append((in_shape, out))
            cur = out
        return shapes

    def current_bounds(self) -> list[int]:
        """Worst-case |J| per layer (checked against float32/float64 exactness)."""
        bounds, x_max = [], self.input.max_abs
        for layer in self.layers:
            bounds.append(layer.current_bound(x_max))
            x_max = 1
        return bounds

    # ------------------------------------------------------------------ validation
    def validate(self) -> "FrozenNet":
        """Check every rule of the format; raise :class:`FrozenNetError` naming layer and field."""
        spec = self.input
        if not spec.shape or any(int(s) <= 0 for s in spec.shape):
            raise FrozenNetError("input", "shape", f"must be positive, got {spec.shape}")
        if not 1 <= spec.bits <= 32:
            raise FrozenNetError("input", "bits", f"must be in 1..32, got {spec.bits}")
        if not (math.isfinite(spec.scale) and spec.scale > 0):
            raise FrozenNetError("input", "scale", f"must be a finite positive float, got {spec.scale}")
        if math.prod(int(s) for s in spec.shape) > MAX_NEURONS:
            raise FrozenNetError("input", "shape", f"{spec.shape} holds more than {MAX_NEURONS} values per sample (limit)")
        if not isinstance(self.num_steps, (int, np.integer)) or not 1 <= self.num_steps <= MAX_STEPS:
            raise FrozenNetError("net", "num_steps", f"must be an int in 1..{MAX_STEPS}, got {self.num_steps!r}")
        if not self.layers:
            raise FrozenNetError("net", "layers", "a frozen network needs at least one LIF layer")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names) or any(not n for n in names):
            raise FrozenNetError("net", "layers", f"layer names must be unique and non-empty: {names}")
        cur = tuple(int(s) for s in spec.shape)
        x_max = spec.max_abs
        for layer in self.layers:
            cur = self._validate_layer(layer, cur, x_max)
            x_max = 1
        return self

    @staticmethod
    def _validate_layer(layer: Layer, in_shape: tuple[int, ...], x_max: int) -> tuple[int, ...]:
        n = layer.name
        if not isinstance(layer, Layer) or not isinstance(layer.synapse, Synapse):
            raise FrozenNetError(n if isinstance(getattr(layer, "name", None), str) else "?", "layer",
                                 f"expected a Layer (synapse + neuron), got {type(layer).__name__}")
        syn = layer.synapse
        if syn.kind not in SYNAPSES:
            raise FrozenNetError(n, "synapse", f"must be one of {SYNAPSES}, got {syn.kind!r}")
        w = syn.weight
        if not isinstance(w, np.ndarray) or w.dtype.kind not in "iu":
            raise FrozenNetError(n, "weight", f"must be an integer numpy array, got {getattr(w, 'dtype', type(w))}")
        want_ndim = 4 if syn.kind == "conv" else 2
        if w.ndim != want_ndim:
            raise FrozenNetError(n, "weight", f"{syn.kind} weight must have {want_ndim} dims, got shape {w.shape}")
        _check_weight_range(n, "weight", w, syn.weight_bits, "weight_bits")
        if not isinstance(layer.neuron, NeuronParams):
            raise FrozenNetError(n, "neuron", f"expected a neuron kind's parameters, got {type(layer.neuron).__name__}")
        c_out = w.shape[0]
        layer.neuron.validate(n, c_out)
        if syn.recurrent is not None:
            if syn.kind != "dense":
                raise FrozenNetError(n, "recurrent", "recurrent weights need a dense synapse")
            r = syn.recurrent
            if not isinstance(r, np.ndarray) or r.dtype.kind not in "iu" or r.shape != (c_out, c_out):
                raise FrozenNetError(n, "recurrent", f"must be an integer array of shape ({c_out}, {c_out}), got "
                                     f"{getattr(r, 'dtype', type(r))} {getattr(r, 'shape', '')}")
            _check_weight_range(n, "recurrent", r, syn.recurrent_bits, "recurrent_bits", MAX_RECURRENT_BITS)
        elif syn.recurrent_bits is not None:
            raise FrozenNetError(n, "recurrent_bits", "set without recurrent weights")
        # shapes
        if syn.flatten_input:
            if syn.kind != "dense":
                raise FrozenNetError(n, "flatten_input", "only a dense synapse can flatten its input")
            in_shape = (int(np.prod(in_shape)),)
        if syn.kind == "dense":
            if len(in_shape) != 1:
                raise FrozenNetError(n, "flatten_input", f"a dense layer needs a flat input, got shape {in_shape}; set flatten_input")
            if w.shape[1] != in_shape[0]:
                raise FrozenNetError(n, "weight", f"expects {w.shape[1]} inputs, the previous layer gives {in_shape[0]}")
            if syn.pool is not None:
                raise FrozenNetError(n, "pool", "pooling needs a conv synapse")
        else:
            if len(in_shape) != 3:
                raise FrozenNetError(n, "weight", f"a conv layer needs a (C, H, W) input, got {in_shape}")
            if w.shape[1] != in_shape[0]:
                raise FrozenNetError(n, "weight", f"expects {w.shape[1]} input channels, the previous layer gives {in_shape[0]}")
            if min(syn.stride) < 1 or min(syn.padding) < 0:
                raise FrozenNetError(n, "stride", f"stride must be ≥1 and padding ≥0, got {syn.stride}, {syn.padding}")
            if syn.pool is not None and min(syn.pool) < 1:
                raise FrozenNetError(n, "pool", f"pool kernel must be ≥1, got {syn.pool}")
        out = syn.output_shape(in_shape)
        if any(s <= 0 for s in out):
            raise FrozenNetError(n, "weight", f"output shape {out} is empty for input {in_shape}")
        if math.prod(out) > MAX_NEURONS:
            raise FrozenNetError(n, "weight", f"output shape {out} holds more than {MAX_NEURONS} neurons (limit)")
        bound = syn.current_bound(x_max)
        frac = int(getattr(layer.neuron, "frac_bits", 0))
        if (bound << frac) + layer.neuron.state_limit * 3 >= 1 << 62:
            raise FrozenNetError(n, "weight", f"worst-case current {bound} << {frac} overflows int64")
        return out

    # ------------------------------------------------------------------ (de)serialisation
    def to_manifest(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able manifest (format version 2) and the named integer arrays it refers to; every layer's
        entry comes from its synapse's and neuron's dataclass fields (array keys ``layer{i}.{field}``)."""
        arrays: dict[str, np.ndarray] = {}
        layers = []
        for i, layer in enumerate(self.layers):
            syn_entry, syn_arrays = layer.synapse.to_manifest(f"layer{i}.")
            neu_entry, neu_arrays = layer.neuron.to_manifest(f"layer{i}.")
            arrays.update(syn_arrays)
            arrays.update(neu_arrays)
            layers.append({"name": layer.name, "synapse": syn_entry, "neuron": neu_entry})
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "input": {
                "shape": [int(s) for s in self.input.shape],
                "bits": int(self.input.bits),
                "signed": bool(self.input.signed),
                "scale": float(self.input.scale),
                "static": bool(self.input.static),
            },
            "num_steps": int(self.num_steps),
            "metadata": self.metadata,
            "layers": layers,
        }
        return manifest, arrays

    def save(self, path: str | Path) -> Path:
        """Validate, then write one ``.qsnn`` file atomically. Returns the path."""
        self.validate()
        manifest, arrays = self.to_manifest()
        blob = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
        arrays["manifest.json"] = np.frombuffer(blob, dtype=np.uint8)
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        return path

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> "FrozenNet":
        """Rebuild a net from a parsed manifest and its arrays (the inverse of :meth:`to_manifest`; version-1
        manifests are read as LIF layers), validated; :class:`~qsnn_deploy.errors.CheckpointError` for another
        format or version or a malformed manifest, :class:`FrozenNetError` naming the layer and field.
        """
        if manifest.get("format") != FORMAT_NAME:
            raise CheckpointError(f"not a qsnn frozen network (format {manifest.get('format')!r})")
        version = manifest.get("version")
        if version not in READABLE_VERSIONS:
            raise CheckpointError(f"unsupported frozen-network version {version!r} (this build reads "
                                  f"{', '.join(map(str, READABLE_VERSIONS))})")
        try:
            spec = manifest["input"]
            inp = InputSpec(tuple(int(s) for s in spec["shape"]), int(spec["bits"]), bool(spec["signed"]),
                            float(spec["scale"]), bool(spec.get("static", True)))
            read = _layer_from_v1 if version == 1 else _layer_from_v2
            layers = [read(entry, arrays) for entry in manifest["layers"]]
            net = cls(inp, layers, int(manifest["num_steps"]), dict(manifest.get("metadata") or {}))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            if isinstance(exc, FrozenNetError):
                raise
            raise CheckpointError(f"malformed frozen-network manifest: {type(exc).__name__}: {exc}") from exc
        return net.validate()

    @classmethod
    def load(cls, path: str | Path) -> "FrozenNet":
        """Read and validate a ``.qsnn`` file. Never unpickles; never allocates more than the file
        can hold (every array's header is checked against its stored size first)."""
        path = Path(path)
        if path.is_dir():
            raise CheckpointError(f"{path}: is a directory; expected a .qsnn file")
        if not path.is_file():
            raise CheckpointError(f"{path}: no such file")
        try:
            _check_npz_members(path)
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"{path}: not a readable .qsnn file (truncated or corrupt?): "
                                  f"{type(exc).__name__}: {exc}") from None
        if "manifest.json" not in arrays:
            raise CheckpointError(f"{path}: no manifest.json inside; not a .qsnn file")
        try:
            manifest = json.loads(arrays.pop("manifest.json").tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: manifest.json is not valid JSON: {exc}") from None
        if not isinstance(manifest, dict):
            raise CheckpointError(f"{path}: manifest.json holds a {type(manifest).__name__}, expected an object")
        return cls.from_manifest(manifest, arrays)

    def __repr__(self) -> str:
        """A few lines, never an array: the input, then one line per layer with its name, synapse,
        input -> output shape, weight bits, neuron kind, F, B_v and reset."""
        spec = self.input
        head = (f"FrozenNet(input {_shape(spec.shape)} {spec.bits}-bit {'signed' if spec.signed else 'unsigned'}, "
                f"T={self.num_steps}, {len(self.layers)} layer{'s' if len(self.layers) != 1 else ''}")
        try:
            shapes = self.layer_shapes()
        except Exception:  # noqa: BLE001 - a repr must not fail on a net that does not validate
            shapes = [None] * len(self.layers)
        lines = [head]
        for layer, io in zip(self.layers, shapes):
            where = f"{_shape(io[0])} -> {_shape(io[1])}" if io else "? -> ?"
            n = layer.neuron
            lines.append(f"  {layer.name}: {layer.describe()}, {where}, int{layer.synapse.weight_bits} weights, "
                         f"{n.kind}, F={getattr(n, 'frac_bits', '?')}, B_v={getattr(n, 'state_bits', '?')}, "
                         f"reset={getattr(n, 'reset', '?')}")
        return "\n".join(lines) + ")"

    def summary_lines(self) -> list[str]:
        """One human-readable line per layer."""
        lines = [f"input {self.input.shape} {self.input.bits}-bit {'signed' if self.input.signed else 'unsigned'}, scale {self.input.scale:.6g}, T={self.num_steps}"]
        for layer, (i, o) in zip(self.layers, self.layer_shapes()):
            syn, n = layer.synapse, layer.neuron
            extra = f" pool{syn.pool}" if syn.pool else ""
            rec = " recurrent" if syn.is_recurrent else ""
            lines.append(f"{layer.name}: {syn.kind} {tuple(syn.weight.shape)} int{syn.weight_bits}{extra}{rec} {i}->{o} "
                         f"{n.kind} reset={getattr(n, 'reset', '?')} F={getattr(n, 'frac_bits', '?')} B_v={getattr(n, 'state_bits', '?')}")
        return lines


def _layer_from_v2(entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> Layer:
    """A version-2 layer entry: ``{"name", "synapse": {...}, "neuron": {"kind", ...}}``."""
    name = str(entry["name"])
    neuron = entry["neuron"]
    if not isinstance(neuron, dict) or not isinstance(entry["synapse"], dict):
        raise FrozenNetError(name, "neuron", "synapse and neuron must be JSON objects")
    cls = neuron_class(neuron.get("kind"), name)
    return Layer(name, Synapse.from_manifest(entry["synapse"], arrays, name), cls.from_manifest(neuron, arrays, name))


#: the synapse fields of a version-1 (flat) layer entry; every other field is the LIF neuron's
_V1_SYNAPSE = ("weight_bits", "stride", "padding", "pool", "flatten_input")


def _layer_from_v1(entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> Layer:
    """A version-1 layer entry (flat LIF layer, written before neuron kinds): the same network."""
    name = str(entry["name"])
    keys = dict(entry["arrays"])
    syn = {k: entry[k] for k in _V1_SYNAPSE if k in entry}
    syn.update(kind=entry["synapse"], arrays={"weight": keys.pop("weight")} if "weight" in keys else {})
    neuron = {k: v for k, v in entry.items() if k not in _V1_SYNAPSE + ("name", "synapse", "arrays")}
    neuron.update(kind=LIF.kind, arrays=keys)
    return Layer(name, Synapse.from_manifest(syn, arrays, name), LIF.from_manifest(neuron, arrays, name))


def frozen_differences(a: FrozenNet, b: FrozenNet) -> list[str]:
    """Every field where two frozen nets differ (values, dtypes, shapes; the neuron kind); empty when identical.

    Layers are compared field by field from their synapse's and neuron's dataclass fields.
    """
    diffs = []
    for f in dataclasses.fields(InputSpec):
        if getattr(a.input, f.name) != getattr(b.input, f.name):
            diffs.append(f"input.{f.name}: {getattr(a.input, f.name)!r} vs {getattr(b.input, f.name)!r}")
    if a.num_steps != b.num_steps:
        diffs.append(f"num_steps: {a.num_steps} vs {b.num_steps}")
    if a.metadata != b.metadata:
        diffs.append("metadata differs")
    if len(a.layers) != len(b.layers):
        return diffs + [f"{len(a.layers)} vs {len(b.layers)} layers"]
    for la, lb in zip(a.layers, b.layers):
        if la.name != lb.name:
            diffs.append(f"{la.name}.name: {la.name!r} vs {lb.name!r}")
        if la.kind != lb.kind:
            diffs.append(f"{la.name}.neuron.kind: {la.kind!r} vs {lb.kind!r}")
            continue
        for part in ("synapse", "neuron"):
            pa, pb = getattr(la, part), getattr(lb, part)
            for f in dataclasses.fields(pa):
                x, y = getattr(pa, f.name), getattr(pb, f.name)
                where = f"{la.name}.{part}.{f.name}"
                if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
                    if x is None or y is None:
                        diffs.append(f"{where}: present in one net only")
                    elif x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y):
                        diffs.append(f"{where}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
                                     + ("" if x.shape != y.shape else f", {int(np.count_nonzero(x != y))} values differ"))
                elif x != y:
                    diffs.append(f"{where}: {x!r} vs {y!r}")
    return diffs


def _check_npz_members(path: Path) -> None:
    """Refuse, before NumPy allocates anything, an archive member whose ``.npy`` header claims more
    data than the member holds (e.g. a 10^12-element array in a small file), or that holds Python
    objects (which only unpickling could read)."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename
            check_claimed_size(path, f"archive member {name!r}", info.file_size, info.compress_size)
            if not name.endswith(".npy"):
                continue
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise CheckpointError(f"{path}: member {name!r}: unsupported .npy version {version}")
                header = fh.tell()
            if dtype.hasobject:
                raise CheckpointError(f"{path}: member {name!r} holds Python objects (dtype {dtype}); refused: "
                                      "reading it would unpickle code. A .qsnn file holds integer arrays only")
            claimed = math.prod(shape) * dtype.itemsize
            if claimed != info.file_size - header:
                raise CheckpointError(f"{path}: member {name!r}: its header claims shape {tuple(shape)} of {dtype} "
                                      f"({claimed} bytes) but the member holds {info.file_size - header} bytes; "
                                      "refused without allocating it (truncated or forged file)")


def load(path: str | Path) -> FrozenNet:
    """Shorthand for :meth:`FrozenNet.load`."""
    return FrozenNet.load(path)
