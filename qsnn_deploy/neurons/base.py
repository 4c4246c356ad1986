"""What every neuron kind provides (docs/design.md §7), and the integer helpers they share.

A neuron kind is one module of :mod:`qsnn_deploy.neurons` holding:

* a dataclass of its integer parameters (subclass of :class:`NeuronParams`), with bit widths and
  units in its docstring; fields whose ``metadata`` says ``array=True`` are per-channel integer
  arrays (stored as ``.npy`` members of a ``.qsnn`` file), every other field is a JSON scalar;
  the manifest is written and read from these fields, never from hand-typed lists;
* its defining per-step equation, in the class docstring;
* :meth:`NeuronParams.validate` (one clear :class:`~qsnn_deploy.errors.FrozenNetError` naming the
  layer, the field and the limit);
* :meth:`NeuronParams.state_bound`, a proof of the largest |state| any input in range can produce;
* :meth:`NeuronParams.reference_step`: ONE pure NumPy step of the equation. It is the
  specification: every faster kernel of every backend is tested against it
  (``tests/test_neurons.py``);
* where Numba kernels run the kind (the NumPy reference simulator), its per-neuron step as one
  inlined Numba function beside ``reference_step`` (e.g. :func:`~.lif.lif_kernel_step`), built from
  :func:`decay_int` and :func:`saturate_int` here, so that every kernel runs the same lines.

Arrays are channels-last while a step runs: a state or current of shape ``[..., C]`` meets the
per-channel parameters ``[C]`` by broadcasting.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .. import intmath
from ..errors import FrozenNetError
from ..numba_support import HAVE_NUMBA, numba

if TYPE_CHECKING:
    from ..statebound import StateBound


def array_field(**kwargs: Any) -> Any:
    """A dataclass field holding a per-channel integer (or, for ``sigma``, float) array."""
    return field(metadata={"array": True}, **kwargs)


def decay_toward_zero(v: np.ndarray, d: int | np.ndarray) -> np.ndarray:
    """``sign(v·d) · (|v·d| >> 12)`` on int64 arrays: the 12-bit decay rounding toward zero (Loihi's rule).

    ``(x + ((x >> 63) & 4095)) >> 12`` is the same value without a branch: the arithmetic shift
    floors, and adding 4095 to a negative product first makes it round toward zero.
    """
    return intmath.decay_toward_zero_np(v, d)


def saturate(v: np.ndarray, limit: int) -> tuple[np.ndarray, int]:
    """``clip(v, ±limit)`` and the number of values that were clipped (saturation events)."""
    n = int(np.count_nonzero(v > limit) + np.count_nonzero(v < -limit))
    return (np.clip(v, -limit, limit) if n else v), n


if HAVE_NUMBA:
    @numba.njit(inline="always")
    def decay_int(x, d):
        """:func:`decay_toward_zero` of one int64 value (inlined into the Numba kernels)."""
        p = x * d
        return (p + ((p >> 63) & 4095)) >> 12

    @numba.njit(inline="always")
    def saturate_int(x, limit):
        """:func:`saturate` of one int64 value: (``clip(x, ±limit)``, 1 if it was clipped else 0)."""
        if x > limit:
            return limit, 1
        if x < -limit:
            return -limit, 1
        return x, 0
else:  # pragma: no cover - the kernels need Numba; reference_step does not
    decay_int = saturate_int = None


@dataclass
class NeuronParams:
    """Base of every neuron kind's integer parameters (see the module docstring).

    Subclasses set ``kind`` (the name in files and registries), ``state_names`` (the state
    variables, in the order :meth:`reference_step` takes and returns them) and
    ``saturating_states`` (the states that saturate at their bit width: each clip is a counted
    saturation event).
    """

    kind: ClassVar[str] = ""
    state_names: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------ manifest (from the fields)
    @classmethod
    def array_fields(cls) -> tuple[str, ...]:
        """Names of the per-channel array fields."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("array"))

    @classmethod
    def scalar_fields(cls) -> tuple[str, ...]:
        """Names of the JSON scalar fields."""
        return tuple(f.name for f in dataclasses.fields(cls) if not f.metadata.get("array"))

    @classmethod
    def required_arrays(cls) -> tuple[str, ...]:
        """Array fields that must be present in a file (those without a default)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("array")
                     and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)

    def to_manifest(self, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``({"kind", scalars..., "arrays": {field: key}}, {key: array})``; keys are ``prefix + field``."""
        entry: dict[str, Any] = {"kind": self.kind}
        arrays: dict[str, np.ndarray] = {}
        for name in self.scalar_fields():
            entry[name] = _json_scalar(getattr(self, name))
        entry["arrays"] = {}
        for name in self.array_fields():
            arr = getattr(self, name)
            if arr is None:
                continue
            key = prefix + name
            arrays[key] = np.ascontiguousarray(arr)
            entry["arrays"][name] = key
        return entry, arrays

    @classmethod
    def from_manifest(cls, entry: dict[str, Any], arrays: dict[str, np.ndarray], layer: str) -> "NeuronParams":
        """Inverse of :meth:`to_manifest`; :class:`FrozenNetError` naming the layer for a missing field."""
        kwargs: dict[str, Any] = {}
        keys = entry.get("arrays") or {}
        for name in cls.array_fields():
            key = keys.get(name)
            if key is None:
                if name in cls.required_arrays():
                    raise FrozenNetError(layer, name, "missing")
                continue
            if key not in arrays:
                raise FrozenNetError(layer, name, f"array {key!r} missing from the file")
            kwargs[name] = arrays[key]
        for f in dataclasses.fields(cls):
            if f.metadata.get("array"):
                continue
            if f.name in entry:
                kwargs[f.name] = _typed(f, entry[f.name], layer)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise FrozenNetError(layer, f.name, "missing")
        unknown = set(entry) - set(cls.scalar_fields()) - {"kind", "arrays"}
        if unknown:
            raise FrozenNetError(layer, sorted(unknown)[0], f"not a field of neuron kind {cls.kind!r} "
                                 f"(fields: {', '.join(cls.scalar_fields() + cls.array_fields())})")
        return cls(**kwargs)

    # ------------------------------------------------------------------ what every kind defines
    def validate(self, layer: str, channels: int) -> None:
        """Check every field (types, shapes ``(channels,)``, ranges); raise :class:`FrozenNetError`."""
        raise NotImplementedError

    @property
    def state_limit(self) -> int:
        """The largest |v| the membrane state holds (state units)."""
        return intmath.state_limit(self.state_bits)  # type: ignore[attr-defined]

    def state_bound(self, j_pos: np.ndarray, j_neg: np.ndarray) -> StateBound:
        """The proven :class:`~qsnn_deploy.statebound.StateBound` of this neuron fed currents in
        ``[-j_neg_c, j_pos_c]`` per channel (exact integers, J units) at every step."""
        raise NotImplementedError

    def channel_usage(self, j_pos: np.ndarray, j_neg: np.ndarray) -> np.ndarray:
        """Per channel, the largest fraction of its state limit any state variable can reach under the
        proven bound (≤ 1: no input in range can clip that channel); float64 ``[C]``."""
        raise NotImplementedError

    def initial_state(self, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
        """Every state variable at rest (zeros, int64) for a channels-last shape ``[..., C]``."""
        return tuple(np.zeros(shape, dtype=np.int64) for _ in self.state_names)

    def reference_step(self, state: tuple[np.ndarray, ...], j: np.ndarray
                       ) -> tuple[tuple[np.ndarray, ...], np.ndarray, int]:
        """One time step of the defining equation: ``(new state, spikes uint8, saturation events)``.

        ``j`` is the step's exact synaptic current (int64, J units, channels-last ``[..., C]``).
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ shared checks
    def _check_channel_array(self, layer: str, name: str, channels: int, *, lo: int | None = None,
                             hi: int | None = None, what: str = "") -> np.ndarray:
        arr = getattr(self, name)
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iu":
            raise FrozenNetError(layer, name, f"must be an integer numpy array, got {getattr(arr, 'dtype', type(arr))}")
        if arr.shape != (channels,):
            raise FrozenNetError(layer, name, f"must have shape ({channels},) (one per output channel), got {arr.shape}")
        a = arr.astype(np.int64)
        if a.size and ((lo is not None and a.min() < lo) or (hi is not None and a.max() > hi)):
            raise FrozenNetError(layer, name, f"values {a.min()}..{a.max()} outside {lo}..{hi}{what}")
        return a

    def _check_sigma(self, layer: str, channels: int) -> None:
        sigma = getattr(self, "sigma", None)
        if sigma is None:
            return
        s = np.asarray(sigma, dtype=np.float64)
        if s.shape != (channels,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise FrozenNetError(layer, "sigma", "must be finite, positive, one per output channel")

    def _check_width(self, layer: str, name: str, lo: int, hi: int) -> int:
        value = getattr(self, name)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not lo <= int(value) <= hi:
            raise FrozenNetError(layer, name, f"must be an int in {lo}..{hi}, got {value!r}")
        return int(value)

    def _check_choice(self, layer: str, name: str, choices: tuple[str, ...]) -> str:
        value = getattr(self, name)
        if value not in choices:
            raise FrozenNetError(layer, name, f"must be one of {choices}, got {value!r}")
        return value

    def describe(self) -> str:
        """A few words for summaries: the kind and its reset, e.g. ``lif subtract``."""
        return f"{self.kind} {getattr(self, 'reset', '')}".strip()


def _json_scalar(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return value


def _typed(f: dataclasses.Field, value: Any, layer: str) -> Any:
    """A manifest value converted to the field's declared scalar type (int, str, bool)."""
    kind = str(f.type)
    try:
        if kind.startswith("int"):
            if isinstance(value, bool) or not float(value).is_integer():
                raise ValueError(f"expected an integer, got {value!r}")
            return int(value)
        if kind.startswith("bool"):
            return bool(value)
        if kind.startswith("str"):
            return str(value)
    except (TypeError, ValueError) as exc:
        raise FrozenNetError(layer, f.name, str(exc)) from None
    return value
