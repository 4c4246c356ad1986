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
* Membrane updates are int64: in place on the device (no host sync per step), or on the CPU the
  NumPy reference's fused kernel (``scan="auto"``/``"fused"``, :mod:`.lif_scan`).
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from .. import intmath
from ..errors import FrozenNetError, SaturationError
from ..frozen import FrozenNet
from .base import SATURATION_MODES, SimResult, prepare_input
from .lif_scan import HAVE_NUMBA, lif_scan


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
def exact_float_math():
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


def decay_toward_zero(v: torch.Tensor, d) -> torch.Tensor:
    """``sign(v*d) * (|v*d| >> 12)`` on int64 tensors."""
    x = v * d
    return (x + ((x >> 63) & (intmath.DECAY_ONE - 1))) >> intmath.DECAY_BITS


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
        if saturation not in SATURATION_MODES:
            raise ValueError(f"saturation must be one of {SATURATION_MODES}, got {saturation!r}")
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
        for layer in net.layers:
            bound = layer.current_bound(x_bound)
            dtype = torch.float32 if bound < intmath.FLOAT32_EXACT else torch.float64
            w, stride = layer.weight.astype(np.int64), layer.stride
            if layer.synapse == "conv" and layer.pool is not None:
                w, stride = intmath.fold_sum_pool(w, stride, layer.pool)
            limit = intmath.FLOAT32_EXACT if dtype == torch.float32 else intmath.FLOAT64_EXACT
            try:
                split = intmath.plan_exact_split(w, x_bound, x_signed, limit)
            except ValueError as exc:
                raise FrozenNetError(layer.name, "weight", f"torch backend: {exc}") from exc
            dev = self.device
            self._layers.append(dict(
                layer=layer, dtype=dtype, stride=stride, split=split,
                weights=[(torch.as_tensor(wj, dtype=dtype, device=dev), ws, k, xs) for wj, ws, k, xs in split.terms()],
                threshold=self._chan(layer.threshold, layer.synapse), bias=self._chan(layer.bias, layer.synapse),
                decay=self._chan(layer.decay, layer.synapse),
            ))
            x_bound, x_signed = 1, False

    def _chan(self, arr: np.ndarray, synapse: str) -> torch.Tensor:
        t = torch.as_tensor(arr.astype(np.int64), device=self.device)
        return t.view(-1, 1, 1) if synapse == "conv" else t

    def run(self, x, num_steps: int | None = None, record_states: bool = False) -> SimResult:
        """Simulate integer input ``x`` ([N, *shape] static or [T, N, *shape]) for T steps on ``device``, in batches,
        inside :func:`exact_float_math`; spikes, saturation counts and (optionally) int64 states, as the reference.
        """
        arr, static, steps = prepare_input(self.net, x, num_steps)
        n = arr.shape[0] if static else arr.shape[1]
        parts = []
        with torch.no_grad(), exact_float_math():
            for start in range(0, n, self.batch_size):
                xs = arr[start:start + self.batch_size] if static else arr[:, start:start + self.batch_size]
                parts.append(self._run_batch(torch.as_tensor(xs, device=self.device), static, steps, record_states))
        names = [layer.name for layer in self.net.layers]
        spikes = {k: np.concatenate([p[0][k] for p in parts], axis=1) for k in names}
        sats = {k: int(sum(p[1][k] for p in parts)) for k in names}
        states = {k: np.concatenate([p[2][k] for p in parts], axis=1) for k in names} if record_states else None
        return SimResult(spikes, sats, states, backend=f"{self.name}-{self.device.type}")

    def currents(self, entry: dict, x: torch.Tensor) -> torch.Tensor:
        """Exact J for a batch x [B, ...] (integer-valued); int64.

        One float GEMM when the layer's bound allows it, else the sum of its digit pieces
        (``entry["split"]``), each exact, shifted and added in int64.
        """
        layer, split = entry["layer"], entry["split"]
        if layer.flatten_input:
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
        if layer.synapse == "conv":
            if xf.device.type == "cpu":  # oneDNN's channels-last convolution: ~1.5x faster here, same exact sums
                xf = xf.contiguous(memory_format=torch.channels_last)
                w = w.contiguous(memory_format=torch.channels_last)
            j = F.conv2d(xf, w, stride=entry["stride"], padding=layer.padding)
        else:
            j = xf @ w.T
        return torch.round(j).to(torch.int64)

    def _scan_torch(self, entry: dict, j: torch.Tensor, static: bool, steps: int, record: bool):
        """The LIF recurrence (:mod:`.lif_scan` docstring) as int64 torch ops on ``self.device``, in
        place; saturation counted on the device (no host sync per step)."""
        layer = entry["layer"]
        cur = ((j << layer.frac_bits) + entry["bias"]).contiguous()  # one layout for every in-place op below
        shape = cur.shape if static else cur.shape[1:]
        v = torch.zeros(shape, dtype=torch.int64, device=self.device)
        x = torch.empty_like(v)
        tmp = torch.empty_like(v)
        out = torch.empty((steps,) + tuple(shape), dtype=torch.bool, device=self.device)
        rec = torch.empty((steps,) + tuple(shape), dtype=torch.int64, device=self.device) if record else None
        th, d, vmax = entry["threshold"], entry["decay"], layer.state_limit
        per_step = torch.zeros(steps, dtype=torch.int64, device=self.device)
        r = torch.zeros(shape, dtype=torch.bool, device=self.device)
        for t in range(steps):
            if t:
                r = out[t - 1]                              # r_t = [v_{t-1} > θ] = s_{t-1}
                if layer.reset == "zero":
                    v.masked_fill_(r, 0)
            torch.mul(v, d, out=x)
            torch.bitwise_right_shift(x, 63, out=tmp)
            tmp.bitwise_and_(intmath.DECAY_ONE - 1)
            x.add_(tmp)
            torch.bitwise_right_shift(x, intmath.DECAY_BITS, out=v)   # decay toward zero
            v.add_(cur if static else cur[t])
            if layer.reset == "subtract" and t:
                v.sub_(r * th)
            per_step[t] = (v > vmax).sum() + (v < -vmax).sum()
            v.clamp_(-vmax, vmax)
            torch.gt(v, th, out=out[t])
            if record:
                rec[t] = v
        per_step = per_step.cpu().numpy()
        if self.saturation == "raise" and per_step.any():
            t = int(np.flatnonzero(per_step)[0])
            raise SaturationError(f"layer {layer.name!r}: membrane state left the {layer.state_bits}-bit range "
                                  f"±{vmax} at step {t} ({int(per_step[t])} neurons)")
        return out.to(torch.uint8).cpu().numpy(), (rec.cpu().numpy() if record else None), int(per_step.sum())

    def _scan_fused(self, entry: dict, j: torch.Tensor, static: bool, steps: int, record: bool):
        """The recurrence with the NumPy reference's fused CPU kernel (:func:`.lif_scan.lif_scan`) on
        the CPU tensor's memory, channels moved last for it and back."""
        layer = entry["layer"]
        jn = j.numpy()
        if jn.ndim >= 4 if static else jn.ndim >= 5:
            jn = np.moveaxis(jn, -3, -1)
        spikes, states, n_sat = lif_scan(jn, static, steps, layer.frac_bits, layer.threshold, layer.bias, layer.decay,
                                         layer.reset, layer.state_bits, name=layer.name, saturation=self.saturation,
                                         record=record)
        if spikes.ndim == 5:
            spikes = np.ascontiguousarray(np.moveaxis(spikes, -1, 2))
            states = np.ascontiguousarray(np.moveaxis(states, -1, 2)) if record else None
        return spikes, states, n_sat

    def _run_batch(self, x: torch.Tensor, static: bool, steps: int, record: bool):
        spikes, sats, states = {}, {}, {}
        h = x
        for entry in self._layers:
            layer = entry["layer"]
            if static:
                j = self.currents(entry, h)
            else:
                t_, b_ = h.shape[:2]
                j = self.currents(entry, h.reshape((t_ * b_,) + tuple(h.shape[2:])))
                j = j.reshape((t_, b_) + tuple(j.shape[1:]))
            if self._fused:
                out, rec, n_sat = self._scan_fused(entry, j, static, steps, record)
            else:
                out, rec, n_sat = self._scan_torch(entry, j, static, steps, record)
            static = False
            h = torch.from_numpy(out).to(self.device)
            spikes[layer.name] = out
            sats[layer.name] = n_sat
            if record:
                states[layer.name] = rec
        return spikes, sats, states
