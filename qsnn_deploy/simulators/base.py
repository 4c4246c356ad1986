"""What every backend returns, and the input checks every backend shares."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import FrozenNetError
from ..frozen import FrozenNet

SATURATION_MODES = ("count", "raise")


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


def prepare_input(net: FrozenNet, x, num_steps: int | None) -> tuple[np.ndarray, bool, int]:
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
