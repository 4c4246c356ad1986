"""The backend contract (:class:`Backend`), what every backend returns, and what they all share:
input checks, batch slicing, the saturation-mode check and the neuron-kind dispatch."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

import numpy as np

from ..errors import FrozenNetError, SaturationError, UnsupportedNeuronError
from ..frozen import FrozenNet, Layer

SATURATION_MODES = ("count", "raise")


@runtime_checkable
class Backend(Protocol):
    """What every backend is: built as ``Backend(net, **options)``, then ``run`` on integer inputs.

    Attributes:
        name: the backend's name in reports (``"numpy"``, ``"torch"``, ``"lava"``...).
        net: the frozen network it runs (validated).
        preferred_batch_size: samples :mod:`qsnn_deploy.verify` hands to one ``run`` call
            (``None``: the caller's choice).
    """

    name: str
    net: FrozenNet
    preferred_batch_size: int | None

    def run(self, x: Any, num_steps: int | None = None, record_states: bool = False) -> "SimResult":
        """Simulate ``x`` ([N, *shape] static, or [T, N, *shape]) for T steps: every layer's spikes."""
        ...


def check_saturation_mode(saturation: str, allowed: tuple[str, ...] = SATURATION_MODES, backend: str = "") -> str:
    """``saturation`` if it is one of ``allowed``, else ValueError naming the choices."""
    if saturation not in allowed:
        who = f"{backend}: " if backend else ""
        raise ValueError(f"{who}saturation must be one of {allowed}, got {saturation!r}")
    return saturation


def raise_on_saturation(per_step: np.ndarray, layer: Layer, saturation: str) -> int:
    """The total of ``per_step`` (saturation events per step); with ``saturation="raise"``,
    :class:`SaturationError` at the first step that had one, naming the layer, step and count."""
    per_step = np.asarray(per_step)
    if saturation == "raise" and per_step.any():
        t = int(np.flatnonzero(per_step)[0])
        n = layer.neuron
        also = f" (or the current its {n.current_bits}-bit range)" if hasattr(n, "current_bits") else ""
        raise SaturationError(f"layer {layer.name!r}: membrane state left the {n.state_bits}-bit range "
                              f"±{n.state_limit}{also} at step {t} ({int(per_step[t])} neurons)")
    return int(per_step.sum())


def batches(arr: np.ndarray, static: bool, batch_size: int) -> Iterator[np.ndarray]:
    """Slices of ``batch_size`` samples of an input: axis 0 when ``static`` ([N, ...]), else axis 1 ([T, N, ...])."""
    n = arr.shape[0] if static else arr.shape[1]
    step = max(1, int(batch_size))
    for start in range(0, n, step):
        yield arr[start:start + step] if static else arr[:, start:start + step]


def merge_batches(parts: list[tuple[dict, dict, dict | None]], names: list[str], record: bool) -> tuple[dict, dict, dict | None]:
    """(spikes, saturations, states) of consecutive batches joined along the sample axis (axis 1); one
    batch is returned as it is (no copy)."""
    if len(parts) == 1:
        spikes, sats, states = parts[0]
        return ({k: spikes[k] for k in names}, {k: int(sats[k]) for k in names},
                {k: states[k] for k in names} if record else None)
    spikes = {k: np.concatenate([p[0][k] for p in parts], axis=1) for k in names}
    sats = {k: int(sum(p[1][k] for p in parts)) for k in names}
    states = {k: np.concatenate([p[2][k] for p in parts], axis=1) for k in names} if record else None
    return spikes, sats, states


class NeuronKernels:
    """One backend's table: neuron kind -> its kernel for that kind, plus what it refuses and why.

    A backend builds one table and asks it for every layer (:meth:`for_layer`) when it is
    built, so a net holding a kind (or a recurrent synapse) the backend cannot run is refused
    before anything runs, naming the layer, the kind, the backend and the reason.

    Args:
        backend: the backend's name (for messages).
        kernels: kind -> kernel (whatever the backend calls; typically a function).
        recurrent: whether the backend runs recurrent synapses, or the reason it does not (a str).
        reasons: kind -> why the backend does not run it (kinds absent from both tables get a
            generic reason).
    """

    def __init__(self, backend: str, kernels: dict[str, Any], recurrent: bool | str = True,
                 reasons: dict[str, str] | None = None):
        self.backend = backend
        self.kernels = dict(kernels)
        self.recurrent = recurrent
        self.reasons = dict(reasons or {})

    def kinds(self) -> list[str]:
        """The kinds this backend runs, sorted."""
        return sorted(self.kernels)

    def for_layer(self, layer: Layer) -> Any:
        """The kernel for ``layer``'s neuron kind; :class:`UnsupportedNeuronError` when this backend refuses it."""
        kind = layer.kind
        if kind not in self.kernels:
            why = self.reasons.get(kind, f"this backend runs {', '.join(self.kinds())} neurons only")
            raise UnsupportedNeuronError(layer.name, kind, self.backend, why)
        if layer.synapse.is_recurrent and self.recurrent is not True:
            why = self.recurrent if isinstance(self.recurrent, str) else "this backend has no recurrent synapses"
            raise UnsupportedNeuronError(layer.name, f"recurrent {kind}", self.backend, why)
        return self.kernels[kind]

    def check(self, net: FrozenNet) -> list[Any]:
        """The kernel of every layer of ``net``, in order (refusing the first layer it cannot run)."""
        return [self.for_layer(layer) for layer in net.layers]


KernelFn = Callable[..., Any]


@dataclass
class SimResult:
    """Spike trains of every LIF layer of one run.

    Attributes:
        spikes: layer name -> uint8 array [T, N, *layer output shape] (torch layout, C before H, W).
        saturations: layer name -> number of (neuron, step) events where v was clipped to B_v bits.
        states: layer name -> int64 membrane states v_t [T, N, ...] (only when recorded).
        backend: name of the backend that produced it.
    """

    spikes: dict[str, np.ndarray]
    saturations: dict[str, int]
    states: dict[str, np.ndarray] | None = None
    backend: str = ""
    info: dict = field(default_factory=dict)

    @property
    def output_name(self) -> str:
        """Name of the output layer (the last LIF layer)."""
        return list(self.spikes)[-1]

    def output_counts(self) -> np.ndarray:
        """Spike count per output neuron, [N, classes], int64."""
        return self.spikes[self.output_name].sum(axis=0, dtype=np.int64).reshape(
            self.spikes[self.output_name].shape[1], -1)

    def predictions(self) -> np.ndarray:
        """Predicted class per sample: the output neuron with most spikes (lowest index on ties)."""
        return self.output_counts().argmax(axis=1)


def prepare_input(net: FrozenNet, x: np.ndarray, num_steps: int | None) -> tuple[np.ndarray, bool, int]:
    """Check an integer input against the net's :class:`InputSpec`.

    Accepts ``[N, *shape]`` (static: repeated at every step) or ``[T, N, *shape]``.
    Returns (int64 array, static flag, T).
    """
    arr = np.asarray(x)
    shape = tuple(net.input.shape)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise FrozenNetError("input", "x", "contains NaN or infinity")
        if not np.array_equal(arr, np.round(arr)):
            raise FrozenNetError("input", "x", "must hold integers (raw pixels, event counts or spikes), got fractional values; "
                                 f"the net's input scale is {net.input.scale:.6g} per unit")
    elif arr.dtype.kind not in "iu":
        raise FrozenNetError("input", "x", f"must be an integer array, got dtype {arr.dtype}")
    if arr.shape[1:] == shape and arr.ndim == len(shape) + 1:
        static, steps = True, int(num_steps or net.num_steps)
    elif arr.ndim == len(shape) + 2 and arr.shape[2:] == shape:
        static, steps = False, arr.shape[0]
        if num_steps is not None and num_steps != steps:
            raise FrozenNetError("input", "x", f"input has {steps} steps but num_steps={num_steps} was asked")
    else:
        raise FrozenNetError("input", "x", f"expected [N, {', '.join(map(str, shape))}] or [T, N, ...], got {arr.shape}")
    arr = arr.astype(np.int64)
    lo, hi = net.input.value_range
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise FrozenNetError("input", "x", f"values {arr.min()}..{arr.max()} outside the {net.input.bits}-bit input range {lo}..{hi}")
    return arr, static, steps
