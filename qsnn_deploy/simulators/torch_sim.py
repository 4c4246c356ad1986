"""The integer semantics of a :class:`~qsnn_deploy.frozen.FrozenNet` in torch, on CPU or CUDA.

Same arithmetic as :mod:`qsnn_deploy.simulators.numpy_sim`, exact by construction on any device
(docs/integer-semantics.md, "Why every path is exact"):

* J is a float GEMM or direct convolution of integers whose every partial sum is an integer below
  the accumulator's exact limit: float32 below 2**24, float64 below 2**53, and past 2**53 the
  operands are cut into digits (:func:`~qsnn_deploy.intmath.plan_exact_split`) recombined in int64.
* Inside :func:`exact_float_math`, nothing may compute those floats with fewer bits or with a
  transform: TF32/bf16 reduced precision off (``fp32_precision = "ieee"``), cuDNN off (its
  Winograd/FFT algorithms are not exact on integers; PyTorch's own CUDA convolution is im2col +
  cuBLAS GEMM) and NNPACK off (Winograd/FFT on the CPU). The CPU convolution is oneDNN's direct
  algorithm or im2col + GEMM; both only add exact products.
* J is also rounded to the nearest integer right after the GEMM (a no-op when exact; a guard).
* Neuron updates are int64, one kernel per neuron kind (:data:`TORCH_KERNELS`: ``"lif"``, ``"cuba"``):
  in place on the device (no host sync per step), or on the CPU the NumPy reference's fused kernel
  for that kind (``scan="auto"``/``"fused"``, :data:`~.numpy_sim.NUMPY_KERNELS`). Each is tested
  against its kind's ``reference_step``.
* Kind ``"xylo"`` runs its whole layer from the input spike counts (:mod:`.xylo_torch`: ordered
  saturating synaptic terms), never the fused CPU kernel.
* A recurrent layer adds ``R·z_{t-1}`` (an exact float GEMM of the previous step's spikes) to J
  every step, on the device.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .. import intmath
from ..errors import FrozenNetError
from ..frozen import FrozenNet
from ..neurons import CubaLIF, NeuronParams
from .base import (NeuronKernels, SimResult, batches, check_saturation_mode, merge_batches, prepare_input,
                   raise_on_saturation)
from .lif_scan import HAVE_NUMBA
from .numpy_sim import NUMPY_KERNELS
from .xylo_scan import HIDDEN_CAP, INPUT_CAP
from .xylo_torch import TorchXylo


def _precision_switches() -> list:
    """The torch backends whose ``fp32_precision`` may allow TF32/bf16 for float32 (torch >= 2.9)."""
    b = torch.backends
    out = []
    for path in ("cuda.matmul", "cudnn.conv", "cudnn.rnn", "mkldnn.matmul", "mkldnn.conv", "mkldnn.rnn"):
        obj = b
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if obj is not None and hasattr(obj, "fp32_precision"):
            out.append(obj)
    return out


class _LegacyTF32:  # pragma: no cover - torch < 2.9
    """``allow_tf32`` seen through the ``fp32_precision`` interface ("ieee" = TF32 off)."""

    def __init__(self, obj):
        self.obj = obj

    @property
    def fp32_precision(self) -> str:
        return "tf32" if self.obj.allow_tf32 else "ieee"

    @fp32_precision.setter
    def fp32_precision(self, value: str) -> None:
        self.obj.allow_tf32 = value == "tf32"


@contextlib.contextmanager
def exact_float_math() -> Iterator[None]:
    """For the duration: float32 math in full IEEE precision (no TF32/bf16), no cuDNN, no NNPACK.

    Those are the only ways torch could compute an integer GEMM/convolution inexactly below the
    exact-integer bound of the float format (Winograd/FFT transforms, reduced-precision inputs).
    Everything is restored afterwards, also on error.
    """
    switches = _precision_switches()
    if not switches:  # pragma: no cover - torch < 2.9 has only the legacy TF32 flags
        switches = [_LegacyTF32(torch.backends.cuda.matmul), _LegacyTF32(torch.backends.cudnn)]
    saved_precision = [s.fp32_precision for s in switches]
    saved_cudnn = torch.backends.cudnn.enabled  # a plain flag: reading it does not touch the TF32 state
    with torch.backends.nnpack.flags(enabled=False):
        try:
            torch.backends.cudnn.enabled = False
            for s in switches:
                s.fp32_precision = "ieee"
            yield
        finally:
            for s, value in zip(switches, saved_precision):
                s.fp32_precision = value
            torch.backends.cudnn.enabled = saved_cudnn


def decay_toward_zero(v: torch.Tensor, d: int | torch.Tensor) -> torch.Tensor:
    """``sign(v*d) * (|v*d| >> 12)`` on int64 tensors."""
    x = v * d
    return (x + ((x >> 63) & (intmath.DECAY_ONE - 1))) >> intmath.DECAY_BITS


def _channel_tensor(arr, conv: bool, device) -> torch.Tensor:
    """A per-channel int64 parameter shaped to broadcast over [N, C, H, W] (conv) or [N, C] (dense)."""
    t = torch.as_tensor(np.asarray(arr).astype(np.int64), device=device)
    return t.view(-1, 1, 1) if conv else t


class _TorchLIF:
    """Kind ``"lif"`` (:class:`~qsnn_deploy.neurons.LIF`) as in-place int64 torch ops: one step at a time."""

    def __init__(self, neuron: NeuronParams, conv: bool, device):
        self.n = neuron
        self.th, self.b, self.d = (_channel_tensor(getattr(neuron, k), conv, device) for k in ("threshold", "bias", "decay"))
        self.vmax = neuron.state_limit

    def start(self, shape, device) -> None:
        """States at rest for a batch of ``shape`` (torch layout)."""
        self.v = torch.zeros(shape, dtype=torch.int64, device=device)
        self.x = torch.empty_like(self.v)
        self.tmp = torch.empty_like(self.v)

    def decay(self, v: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """``v ← sign(v·d)·(|v·d| >> 12)`` in place (through the scratch buffers)."""
        torch.mul(v, d, out=self.x)
        torch.bitwise_right_shift(self.x, 63, out=self.tmp)
        self.tmp.bitwise_and_(intmath.DECAY_ONE - 1)
        self.x.add_(self.tmp)
        return torch.bitwise_right_shift(self.x, intmath.DECAY_BITS, out=v)

    def step(self, j: torch.Tensor, fired: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
        """One step: ``fired`` = the previous step's spikes (None at t = 0); spikes into ``out``; clips (0-d)."""
        v, n = self.v, self.n
        if fired is not None and n.reset == "zero":
            v.masked_fill_(fired, 0)
        self.decay(v, self.d)
        v.add_((j << n.frac_bits) + self.b)
        if fired is not None and n.reset == "subtract":
            v.sub_(fired * self.th)
        sat = (v > self.vmax).sum() + (v < -self.vmax).sum()
        v.clamp_(-self.vmax, self.vmax)
        torch.gt(v, self.th, out=out)
        return sat


class _TorchCuba(_TorchLIF):
    """Kind ``"cuba"`` (:class:`~qsnn_deploy.neurons.CubaLIF`): current then membrane, in place."""

    def __init__(self, neuron: CubaLIF, conv: bool, device):
        super().__init__(neuron, conv, device)
        self.a = _channel_tensor(neuron.current_decay, conv, device)
        self.bi = _channel_tensor(neuron.current_bias_or_zero(), conv, device)
        self.imax = neuron.current_limit

    def start(self, shape, device) -> None:
        """Both states at rest."""
        super().start(shape, device)
        self.i = torch.zeros_like(self.v)

    def step(self, j: torch.Tensor, fired: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
        """One step of the CUBA equation (current, then membrane with the kind's reset)."""
        i, v, n = self.i, self.v, self.n
        self.decay(i, self.a)
        i.add_((j << n.frac_bits) + self.bi)
        sat = (i > self.imax).sum() + (i < -self.imax).sum()
        i.clamp_(-self.imax, self.imax)
        if fired is not None and n.reset == "zero":
            v.masked_fill_(fired, 0)
        self.decay(v, self.d)
        v.add_(i + self.b)
        if fired is not None:
            if n.reset == "subtract":
                v.sub_(fired * self.th)
            elif n.reset == "zero_delayed":
                v.masked_fill_(fired, 0)
        sat = sat + (v > self.vmax).sum() + (v < -self.vmax).sum()
        v.clamp_(-self.vmax, self.vmax)
        torch.gt(v, self.th, out=out)
        return sat


#: The torch backend's kernel class for each neuron kind.
TORCH_KERNELS = NeuronKernels("torch", {"lif": _TorchLIF, "cuba": _TorchCuba, "xylo": TorchXylo})


#: ``scan``: "torch" (int64 torch ops on the device), "fused" (the NumPy reference's Numba kernel on
#: the CPU tensors), "auto" (fused on CPU when Numba is installed, else torch).
SCAN_MODES = ("auto", "torch", "fused")


class TorchSimulator:
    """Integer simulation in torch. ``device`` may be ``"cpu"`` or ``"cuda"``.

    Synaptic currents are torch GEMMs/convolutions on ``device`` (module docstring). The LIF
    recurrence runs as in-place int64 torch ops on ``device`` (``scan="torch"``, what CUDA uses),
    or, on the CPU by default, as the fused integer kernel the NumPy reference uses
    (:mod:`.lif_scan`): one pass over memory per step instead of ten; the tests run both and
    hold them equal.
    """

    name = "torch"

    def __init__(self, net: FrozenNet, device: str = "cpu", saturation: str = "count", batch_size: int = 128,
                 scan: str = "auto"):
        check_saturation_mode(saturation, backend=self.name)
        if scan not in SCAN_MODES:
            raise ValueError(f"scan must be one of {SCAN_MODES}, got {scan!r}")
        self.net = net.validate()
        self.device = torch.device(device)
        if scan == "fused" and (self.device.type != "cpu" or not HAVE_NUMBA):
            raise ValueError("scan='fused' runs the CPU kernel of qsnn_deploy.simulators.lif_scan: it needs device "
                             "'cpu' and numba installed")
        self._fused = scan == "fused" or (scan == "auto" and self.device.type == "cpu" and HAVE_NUMBA)
        self.saturation = saturation
        self.batch_size = int(batch_size)
        self._layers = []
        x_bound = net.input.max_abs
        x_signed = net.input.signed
        for index, layer in enumerate(net.layers):
            kernel = TORCH_KERNELS.for_layer(layer)
            if getattr(kernel, "takes_inputs", False):  # kind "xylo": the layer runs whole from its input counts
                self._layers.append(dict(layer=layer, recurrent=None,
                                         kernel=kernel(layer, self.device, INPUT_CAP if index == 0 else HIDDEN_CAP)))
                x_bound, x_signed = 1, False
                continue
            bound = layer.current_bound(x_bound)
            dtype = torch.float32 if bound < intmath.FLOAT32_EXACT else torch.float64
            w, stride = layer.synapse.deployed()
            limit = intmath.FLOAT32_EXACT if dtype == torch.float32 else intmath.FLOAT64_EXACT
            try:
                split = intmath.plan_exact_split(w, x_bound, x_signed, limit)
            except ValueError as exc:
                raise FrozenNetError(layer.name, "weight", f"torch backend: {exc}") from exc
            dev = self.device
            recurrent = None
            if layer.synapse.is_recurrent:  # R^T for 0/1 spikes: exact in the float type its own row sums allow
                r = layer.synapse.recurrent.astype(np.int64)
                r_dtype = torch.float32 if intmath.row_abs_sum_max(r) < intmath.FLOAT32_EXACT else torch.float64
                recurrent = torch.as_tensor(r.T.copy(), dtype=r_dtype, device=dev)
            self._layers.append(dict(
                layer=layer, dtype=dtype, stride=stride, split=split, recurrent=recurrent,
                weights=[(torch.as_tensor(wj, dtype=dtype, device=dev), ws, k, xs) for wj, ws, k, xs in split.terms()],
                kernel=kernel(layer.neuron, layer.synapse.kind == "conv", dev),
            ))
            x_bound, x_signed = 1, False

    def run(self, x: np.ndarray, num_steps: int | None = None, record_states: bool = False) -> SimResult:
        """Simulate integer input ``x`` ([N, *shape] static or [T, N, *shape]) for T steps on ``device``, in batches,
        inside :func:`exact_float_math`; spikes, saturation counts and (optionally) int64 states, as the reference.
        """
        arr, static, steps = prepare_input(self.net, x, num_steps)
        with torch.no_grad(), exact_float_math():
            parts = [self._run_batch(torch.as_tensor(xs, device=self.device), static, steps, record_states)
                     for xs in batches(arr, static, self.batch_size)]
        spikes, sats, states = merge_batches(parts, [layer.name for layer in self.net.layers], record_states)
        return SimResult(spikes, sats, states, backend=f"{self.name}-{self.device.type}")

    def currents(self, entry: dict, x: torch.Tensor) -> torch.Tensor:
        """Exact J for a batch x [B, ...] (integer-valued); int64.

        One float GEMM when the layer's bound allows it, else the sum of its digit pieces
        (``entry["split"]``), each exact, shifted and added in int64.
        """
        layer, split = entry["layer"], entry["split"]
        if layer.synapse.flatten_input:
            x = x.flatten(1)
        if split.pieces == 1:
            return self._gemm(entry, x.to(entry["dtype"]), entry["weights"][0][0])
        x = x.to(torch.int64)
        parts = [(1, x.clamp(min=0)), (-1, (-x).clamp(min=0))] if split.signed_input else [(1, x)]
        mask = (1 << split.input_digit_bits) - 1
        total = None
        for sign, xs in parts:
            digits = [((xs >> (split.input_digit_bits * k)) & mask).to(entry["dtype"]) for k in range(split.input_digit_count)]
            for wj, w_shift, k, x_shift in entry["weights"]:
                piece = self._gemm(entry, digits[k], wj) << (w_shift + x_shift)
                total = sign * piece if total is None else total + sign * piece
        return total

    @staticmethod
    def _gemm(entry: dict, xf: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        layer = entry["layer"]
        if layer.synapse.kind == "conv":
            if xf.device.type == "cpu":  # oneDNN's channels-last convolution: ~1.5x faster here, same exact sums
                xf = xf.contiguous(memory_format=torch.channels_last)
                w = w.contiguous(memory_format=torch.channels_last)
            j = F.conv2d(xf, w, stride=entry["stride"], padding=layer.synapse.padding)
        else:
            j = xf @ w.T
        return torch.round(j).to(torch.int64)

    def _scan_torch(self, entry: dict, j: torch.Tensor, static: bool, steps: int, record: bool):
        """The neuron kind's recurrence as int64 torch ops on ``self.device``, in place, one step at a time
        (a recurrent layer adds ``R·z_{t-1}`` to J first); saturation counted on the device (no host sync
        per step). Returns (spikes, states or None, saturation events per step)."""
        kernel, recurrent = entry["kernel"], entry["recurrent"]
        j = j.contiguous()
        shape = tuple(j.shape if static else j.shape[1:])
        kernel.start(shape, self.device)
        out = torch.empty((steps,) + shape, dtype=torch.bool, device=self.device)
        rec = torch.empty((steps,) + shape, dtype=torch.int64, device=self.device) if record else None
        per_step = torch.zeros(steps, dtype=torch.int64, device=self.device)
        for t in range(steps):
            jt = j if static else j[t]
            if recurrent is not None and t:
                jt = jt + torch.round(out[t - 1].to(recurrent.dtype) @ recurrent).to(torch.int64)
            per_step[t] = kernel.step(jt, out[t - 1] if t else None, out[t])
            if record:
                rec[t] = kernel.v
        return out.to(torch.uint8).cpu().numpy(), (rec.cpu().numpy() if record else None), per_step.cpu().numpy()

    def _scan_fused(self, entry: dict, j: torch.Tensor, static: bool, steps: int, record: bool):
        """The recurrence with the NumPy reference's fused CPU kernel for the layer's kind (:data:`NUMPY_KERNELS`)
        on the CPU tensor's memory, channels moved last for it and back."""
        layer = entry["layer"]
        jn = j.numpy()
        if jn.ndim >= 4 if static else jn.ndim >= 5:
            jn = np.moveaxis(jn, -3, -1)
        spikes, states, per_step = NUMPY_KERNELS.for_layer(layer)(layer.neuron, jn, static, steps, record, True)
        if spikes.ndim == 5:
            spikes = np.ascontiguousarray(np.moveaxis(spikes, -1, 2))
            states = np.ascontiguousarray(np.moveaxis(states, -1, 2)) if record else None
        return spikes, states, per_step

    def _run_batch(self, x: torch.Tensor, static: bool, steps: int, record: bool):
        spikes, sats, states = {}, {}, {}
        h = x
        for entry in self._layers:
            layer = entry["layer"]
            if getattr(entry["kernel"], "takes_inputs", False):
                out, rec, per_step = entry["kernel"].run(h, static, steps, record)
            elif static:
                j = self.currents(entry, h)
            else:
                t_, b_ = h.shape[:2]
                j = self.currents(entry, h.reshape((t_ * b_,) + tuple(h.shape[2:])))
                j = j.reshape((t_, b_) + tuple(j.shape[1:]))
            if getattr(entry["kernel"], "takes_inputs", False):
                pass
            elif self._fused and entry["recurrent"] is None:
                out, rec, per_step = self._scan_fused(entry, j, static, steps, record)
            else:
                out, rec, per_step = self._scan_torch(entry, j, static, steps, record)
            static = False
            h = torch.from_numpy(out).to(self.device)
            spikes[layer.name] = out
            sats[layer.name] = raise_on_saturation(per_step, layer, self.saturation)
            if record:
                states[layer.name] = rec
        return spikes, sats, states
