"""The frozen integer network: the hub every simulator and exporter reads (docs/design.md §1).

A :class:`FrozenNet` is framework-free: plain dataclasses holding NumPy integer tensors. It is
saved as one ``.qsnn`` file: an uncompressed NumPy ``.npz`` archive holding a JSON manifest (key
``manifest.json``, UTF-8 bytes) and one ``.npy`` array per tensor. It is read back with
``numpy.load(allow_pickle=False)``: no code can run while loading. The format is documented in
``docs/frozen-format.md``.

Layer semantics (one :class:`LIFLayer`; ``t`` is the time step, all values integers)::

    x_t     input: spikes {0,1} from the previous layer, or the network's integer input
    J_t     = sumpool_P( W ⊛ x_t )                     exact integer conv (or dense), then an
                                                       optional sum pool (the folded avg-pool)
    r_t     = [v_{t-1} > theta]                        reset from the previous state (strict >)
    v_t     = decay(v_{t-1}) + (J_t << F) + b - r_t*theta        reset = "subtract"
    v_t     = decay((1 - r_t) * v_{t-1}) + (J_t << F) + b        reset = "zero"
    v_t     = clip(v_t, -(2**(B_v-1)-1), 2**(B_v-1)-1)           saturation (counted or raised)
    z_t     = [v_t > theta]                            output spikes
    decay(v) = sign(v*d) * (|v*d| >> 12)               d = round(beta*4096), 12 bits

``theta`` (threshold), ``b`` (bias) are per output channel, in state units (one unit of ``v`` is
``|sigma|/2**F`` in the trained model's membrane units); ``d`` is per channel (a per-layer decay
is stored repeated). ``sigma`` (float64, per channel) is kept for information and for targets with
float semantics (NIR): the trained model's membrane equals ``v * sigma / 2**F``.
"""
from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import intmath
from .errors import CheckpointError, FrozenNetError
from .fileio import atomic_path, check_claimed_size

FORMAT_NAME = "qsnn-frozen"
FORMAT_VERSION = 1
SYNAPSES = ("conv", "dense")
#: Size limits checked by :meth:`FrozenNet.validate` (a forged file cannot make a simulator
#: allocate absurd buffers): values per sample of the input and of every layer's output, and T.
MAX_NEURONS = 1 << 24
MAX_STEPS = 1 << 20


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
class LIFLayer:
    """One synapse (conv or dense, optional sum pool) feeding one layer of integer LIF neurons.

    Per time step (module docstring): ``J = sumpool(W ⊛ x)``; ``v = decay(v) + (J << F) + b - r·θ``
    with ``r = [v_prev > θ]`` (reset "subtract"; "zero" zeroes v where r instead, before the decay);
    ``v = clip(v, ±(2**(B_v-1)-1))``; spike ``[v > θ]``; ``decay(v) = sign(v·d)·(|v·d| >> 12)``.

    Attributes (bit widths in brackets):
        name: unique layer name.
        synapse: ``"conv"`` or ``"dense"``.
        weight: integer weights, torch layout: (C_out, C_in, kH, kW) or (C_out, C_in)
            [``weight_bits``, signed, narrow range].
        weight_bits: declared weight width; every weight lies in ±(2**(bits-1)-1).
        threshold: θ per output channel, int64 [state units, 0 ≤ θ ≤ 2**(B_v-1)-1].
        bias: b per output channel, int64 [state units, added every step].
        decay: d per output channel, int64 [12 bits, 0..4096; 4096 = no leak].
        reset: ``"subtract"`` or ``"zero"``.
        frac_bits: F, the left shift applied to J [bits].
        state_bits: B_v, the signed width of the membrane state [bits].
        stride, padding: conv only, (H, W) order.
        pool: sum-pool kernel (H, W) applied to the conv output, or None. Stride = kernel.
        flatten_input: dense only: the input is flattened in (C, H, W) order first.
        sigma: float64 per channel, one unit of J in the trained model's membrane units.
    """

    name: str
    synapse: str
    weight: np.ndarray
    weight_bits: int
    threshold: np.ndarray
    bias: np.ndarray
    decay: np.ndarray
    reset: str = "subtract"
    frac_bits: int = intmath.DEFAULT_FRAC_BITS
    state_bits: int = intmath.DEFAULT_STATE_BITS
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    pool: tuple[int, int] | None = None
    flatten_input: bool = False
    sigma: np.ndarray | None = None

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
        return (int(self.weight.shape[2]), int(self.weight.shape[3])) if self.synapse == "conv" else (1, 1)

    @property
    def state_limit(self) -> int:
        """The largest |v| the B_v-bit state holds: 2**(B_v-1) - 1 (state units)."""
        return intmath.state_limit(self.state_bits)

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample output shape for a per-sample input shape."""
        if self.synapse == "dense":
            return (self.out_channels,)
        _, h, w = in_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if self.pool is not None:
            ho, wo = ho // self.pool[0], wo // self.pool[1]
        return (self.out_channels, ho, wo)

    def fan_in(self) -> int:
        """Synapses per neuron (after the pool: each neuron sums pool-area × kernel inputs)."""
        per = int(np.prod(self.weight.shape[1:]))
        return per * (self.pool[0] * self.pool[1] if self.pool else 1)

    def current_bound(self, input_max_abs: int) -> int:
        """Largest |J| any neuron can see: max over channels of Σ|W| × pool area × max|x|."""
        w = np.abs(self.weight.astype(np.int64)).reshape(self.out_channels, -1).sum(axis=1)
        area = self.pool[0] * self.pool[1] if self.pool else 1
        return int(w.max(initial=0)) * area * int(input_max_abs)

    def describe(self) -> str:
        """The synapse in a few words: ``conv 16×1×5×5 s2 p1 pool 2×2`` or ``dense 10×1024 (flatten)``."""
        shape = "×".join(str(int(d)) for d in np.shape(self.weight))
        if self.synapse != "conv":
            return f"{self.synapse} {shape}" + (" (flatten)" if self.flatten_input else "")
        out = f"conv {shape}"
        if tuple(self.stride) != (1, 1):
            out += f" s{_hw(self.stride)}"
        if tuple(self.padding) != (0, 0):
            out += f" p{_hw(self.padding)}"
        if self.pool is not None:
            out += f" pool {self.pool[0]}×{self.pool[1]}"
        return out

    def __repr__(self) -> str:
        """One line, never an array: name, synapse, weight bits, F, B_v, reset, θ range."""
        th = np.asarray(self.threshold)
        theta = "?" if th.size == 0 else (f"{th.min()}" if th.min() == th.max() else f"{th.min()}..{th.max()}")
        return (f"LIFLayer({self.name!r}, {self.describe()}, int{self.weight_bits} weights, F={self.frac_bits}, "
                f"B_v={self.state_bits}, reset={self.reset}, θ={theta})")


@dataclass
class FrozenNet:
    """A feed-forward network of :class:`LIFLayer` s driven by an integer input.

    Attributes:
        input: the input description.
        layers: LIF layers in order; the last one's spikes are the network's output
            (prediction = the output neuron with most spikes).
        num_steps: T, the default number of time steps.
        metadata: free-form JSON-serialisable provenance (source model, deploy-faithful or not...).
    """

    input: InputSpec
    layers: list[LIFLayer]
    num_steps: int = 100
    metadata: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ shapes and bounds
    def layer_shapes(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """(input shape, output shape) per layer, per sample."""
        shapes, cur = [], tuple(self.input.shape)
        for layer in self.layers:
            in_shape = cur
            if layer.flatten_input:
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
    def _validate_layer(layer: LIFLayer, in_shape: tuple[int, ...], x_max: int) -> tuple[int, ...]:
        n = layer.name
        if layer.synapse not in SYNAPSES:
            raise FrozenNetError(n, "synapse", f"must be one of {SYNAPSES}, got {layer.synapse!r}")
        w = layer.weight
        if not isinstance(w, np.ndarray) or w.dtype.kind not in "iu":
            raise FrozenNetError(n, "weight", f"must be an integer numpy array, got {getattr(w, 'dtype', type(w))}")
        want_ndim = 4 if layer.synapse == "conv" else 2
        if w.ndim != want_ndim:
            raise FrozenNetError(n, "weight", f"{layer.synapse} weight must have {want_ndim} dims, got shape {w.shape}")
        if not 1 <= layer.weight_bits <= 16:
            raise FrozenNetError(n, "weight_bits", f"must be in 1..16, got {layer.weight_bits}")
        lo, hi = intmath.weight_range(layer.weight_bits, narrow=False)
        if layer.weight_bits == 1:
            lo, hi = -1, 1  # binary weights {-1, +1} (and 0 for pruned synapses)
        w64 = w.astype(np.int64)
        if w64.size and (w64.min() < lo or w64.max() > hi):
            raise FrozenNetError(n, "weight", f"values {w64.min()}..{w64.max()} outside the {layer.weight_bits}-bit range {lo}..{hi}")
        if layer.reset not in intmath.RESET_MODES:
            raise FrozenNetError(n, "reset", f"must be one of {intmath.RESET_MODES}, got {layer.reset!r}")
        if not 2 <= layer.state_bits <= 48:
            raise FrozenNetError(n, "state_bits", f"must be in 2..48 (int64 room for v*d), got {layer.state_bits}")
        if not 0 <= layer.frac_bits <= layer.state_bits - 2:
            raise FrozenNetError(n, "frac_bits", f"must be in 0..{layer.state_bits - 2}, got {layer.frac_bits}")
        c_out = w.shape[0]
        vmax = intmath.state_limit(layer.state_bits)
        for fname in ("threshold", "bias", "decay"):
            arr = getattr(layer, fname)
            if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iu":
                raise FrozenNetError(n, fname, f"must be an integer numpy array, got {getattr(arr, 'dtype', type(arr))}")
            if arr.shape != (c_out,):
                raise FrozenNetError(n, fname, f"must have shape ({c_out},) (one per output channel), got {arr.shape}")
        th = layer.threshold.astype(np.int64)
        if th.min(initial=0) < 0 or th.max(initial=0) > vmax:
            raise FrozenNetError(n, "threshold", f"values {th.min()}..{th.max()} outside 0..{vmax} ({layer.state_bits}-bit state)")
        b = np.abs(layer.bias.astype(np.int64)).max(initial=0)
        if b > vmax:
            raise FrozenNetError(n, "bias", f"|bias| = {b} exceeds the {layer.state_bits}-bit state limit {vmax}")
        d = layer.decay.astype(np.int64)
        if d.min(initial=0) < 0 or d.max(initial=0) > intmath.DECAY_ONE:
            raise FrozenNetError(n, "decay", f"values {d.min()}..{d.max()} outside 0..4096 (12-bit decay)")
        if layer.sigma is not None:
            s = np.asarray(layer.sigma, dtype=np.float64)
            if s.shape != (c_out,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
                raise FrozenNetError(n, "sigma", "must be finite, positive, one per output channel")
        # shapes
        if layer.flatten_input:
            if layer.synapse != "dense":
                raise FrozenNetError(n, "flatten_input", "only a dense synapse can flatten its input")
            in_shape = (int(np.prod(in_shape)),)
        if layer.synapse == "dense":
            if len(in_shape) != 1:
                raise FrozenNetError(n, "flatten_input", f"a dense layer needs a flat input, got shape {in_shape}; set flatten_input")
            if w.shape[1] != in_shape[0]:
                raise FrozenNetError(n, "weight", f"expects {w.shape[1]} inputs, the previous layer gives {in_shape[0]}")
            if layer.pool is not None:
                raise FrozenNetError(n, "pool", "pooling needs a conv synapse")
        else:
            if len(in_shape) != 3:
                raise FrozenNetError(n, "weight", f"a conv layer needs a (C, H, W) input, got {in_shape}")
            if w.shape[1] != in_shape[0]:
                raise FrozenNetError(n, "weight", f"expects {w.shape[1]} input channels, the previous layer gives {in_shape[0]}")
            if min(layer.stride) < 1 or min(layer.padding) < 0:
                raise FrozenNetError(n, "stride", f"stride must be ≥1 and padding ≥0, got {layer.stride}, {layer.padding}")
            if layer.pool is not None and min(layer.pool) < 1:
                raise FrozenNetError(n, "pool", f"pool kernel must be ≥1, got {layer.pool}")
        out = layer.output_shape(in_shape)
        if any(s <= 0 for s in out):
            raise FrozenNetError(n, "weight", f"output shape {out} is empty for input {in_shape}")
        if math.prod(out) > MAX_NEURONS:
            raise FrozenNetError(n, "weight", f"output shape {out} holds more than {MAX_NEURONS} neurons (limit)")
        bound = layer.current_bound(x_max)
        if (bound << layer.frac_bits) + vmax * 3 >= 1 << 62:
            raise FrozenNetError(n, "weight", f"worst-case current {bound} << {layer.frac_bits} overflows int64")
        return out

    # ------------------------------------------------------------------ (de)serialisation
    def to_manifest(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able manifest and the named integer arrays it refers to."""
        arrays: dict[str, np.ndarray] = {}
        layers = []
        for i, layer in enumerate(self.layers):
            entry: dict[str, Any] = {
                "name": layer.name,
                "synapse": layer.synapse,
                "weight_bits": int(layer.weight_bits),
                "reset": layer.reset,
                "frac_bits": int(layer.frac_bits),
                "state_bits": int(layer.state_bits),
                "stride": list(layer.stride),
                "padding": list(layer.padding),
                "pool": list(layer.pool) if layer.pool else None,
                "flatten_input": bool(layer.flatten_input),
                "arrays": {},
            }
            for fname in ("weight", "threshold", "bias", "decay", "sigma"):
                arr = getattr(layer, fname)
                if arr is None:
                    continue
                key = f"layer{i}.{fname}"
                arrays[key] = np.ascontiguousarray(arr)
                entry["arrays"][fname] = key
            layers.append(entry)
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
        """Rebuild a net from a parsed manifest and its arrays (the inverse of :meth:`to_manifest`), validated;
        :class:`~qsnn_deploy.errors.CheckpointError` for another format or version or a missing field.
        """
        if manifest.get("format") != FORMAT_NAME:
            raise CheckpointError(f"not a qsnn frozen network (format {manifest.get('format')!r})")
        if manifest.get("version") != FORMAT_VERSION:
            raise CheckpointError(f"unsupported frozen-network version {manifest.get('version')!r} (this build reads {FORMAT_VERSION})")
        try:
            spec = manifest["input"]
            inp = InputSpec(tuple(int(s) for s in spec["shape"]), int(spec["bits"]), bool(spec["signed"]),
                            float(spec["scale"]), bool(spec.get("static", True)))
            layers = []
            for entry in manifest["layers"]:
                name = str(entry["name"])
                arr = {}
                for fname, key in entry["arrays"].items():
                    if key not in arrays:
                        raise FrozenNetError(name, fname, f"array {key!r} missing from the file")
                    arr[fname] = arrays[key]
                for req in ("weight", "threshold", "bias", "decay"):
                    if req not in arr:
                        raise FrozenNetError(name, req, "missing")
                layers.append(LIFLayer(
                    name=name, synapse=str(entry["synapse"]), weight=arr["weight"],
                    weight_bits=int(entry["weight_bits"]), threshold=arr["threshold"], bias=arr["bias"],
                    decay=arr["decay"], reset=str(entry["reset"]), frac_bits=int(entry["frac_bits"]),
                    state_bits=int(entry["state_bits"]), stride=_pair(entry["stride"], "stride", name),
                    padding=_pair(entry["padding"], "padding", name),
                    pool=_pair(entry["pool"], "pool", name) if entry.get("pool") else None,
                    flatten_input=bool(entry["flatten_input"]), sigma=arr.get("sigma"),
                ))
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
        input -> output shape, weight bits, F, B_v and reset."""
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
            lines.append(f"  {layer.name}: {layer.describe()}, {where}, int{layer.weight_bits} weights, "
                         f"F={layer.frac_bits}, B_v={layer.state_bits}, reset={layer.reset}")
        return "\n".join(lines) + ")"

    def summary_lines(self) -> list[str]:
        """One human-readable line per layer."""
        lines = [f"input {self.input.shape} {self.input.bits}-bit {'signed' if self.input.signed else 'unsigned'}, scale {self.input.scale:.6g}, T={self.num_steps}"]
        for layer, (i, o) in zip(self.layers, self.layer_shapes()):
            extra = f" pool{layer.pool}" if layer.pool else ""
            lines.append(f"{layer.name}: {layer.synapse} {tuple(layer.weight.shape)} int{layer.weight_bits}{extra} {i}->{o} reset={layer.reset} F={layer.frac_bits} B_v={layer.state_bits}")
        return lines


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
