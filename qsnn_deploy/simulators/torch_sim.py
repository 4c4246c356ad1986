"""The integer semantics of a :class:`~qsnn_deploy.frozen.FrozenNet` in torch, on CPU or CUDA.

Same arithmetic as :mod:`qsnn_deploy.simulators.numpy_sim`: exact integer convs through float32
(or float64 beyond the 2**24 accumulation bound), rounded to the nearest integer right after the
conv as a guard against inexact GPU algorithms (Winograd/FFT, TF32 — TF32 is also switched off
while the simulator runs), then int64 membrane updates.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from .. import intmath
from ..errors import SaturationError
from ..frozen import FrozenNet
from .base import SATURATION_MODES, SimResult, prepare_input


@contextlib.contextmanager
def exact_float_math():
    """Switch off TF32 (and cuDNN autotuning) for the duration; restore afterwards."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark) = saved


def decay_toward_zero(v: torch.Tensor, d) -> torch.Tensor:
    """``sign(v*d) * (|v*d| >> 12)`` on int64 tensors."""
    x = v * d
    return (x + ((x >> 63) & (intmath.DECAY_ONE - 1))) >> intmath.DECAY_BITS


class TorchSimulator:
    """Integer simulation in torch. ``device`` may be ``"cpu"`` or ``"cuda"``."""

    name = "torch"

    def __init__(self, net: FrozenNet, device: str = "cpu", saturation: str = "count", batch_size: int = 128):
        if saturation not in SATURATION_MODES:
            raise ValueError(f"saturation must be one of {SATURATION_MODES}, got {saturation!r}")
        self.net = net.validate()
        self.device = torch.device(device)
        self.saturation = saturation
        self.batch_size = int(batch_size)
        self._layers = []
        x_bound = net.input.max_abs
        for layer in net.layers:
            bound = layer.current_bound(x_bound)
            dtype = torch.float32 if bound < intmath.FLOAT32_EXACT else torch.float64
            w, stride = layer.weight.astype(np.int64), layer.stride
            if layer.synapse == "conv" and layer.pool is not None:
                w, stride = intmath.fold_sum_pool(w, stride, layer.pool)
            dev = self.device
            self._layers.append(dict(
                layer=layer, dtype=dtype, stride=stride,
                weight=torch.as_tensor(w, dtype=dtype, device=dev),
                threshold=self._chan(layer.threshold, layer.synapse), bias=self._chan(layer.bias, layer.synapse),
                decay=self._chan(layer.decay, layer.synapse),
            ))
            x_bound = 1

    def _chan(self, arr: np.ndarray, synapse: str) -> torch.Tensor:
        t = torch.as_tensor(arr.astype(np.int64), device=self.device)
        return t.view(-1, 1, 1) if synapse == "conv" else t

    def run(self, x, num_steps: int | None = None, record_states: bool = False) -> SimResult:
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
        """Exact J for a batch x [B, ...] (integer-valued); int64."""
        layer = entry["layer"]
        xf = x.to(entry["dtype"])
        if layer.synapse == "conv":
            j = F.conv2d(xf, entry["weight"], stride=entry["stride"], padding=layer.padding)
        else:
            if layer.flatten_input:
                xf = xf.flatten(1)
            j = xf @ entry["weight"].T
        return torch.round(j).to(torch.int64)

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
            cur = (j << layer.frac_bits) + entry["bias"]
            shape = cur.shape if static else cur.shape[1:]
            v = torch.zeros(shape, dtype=torch.int64, device=self.device)
            out = torch.empty((steps,) + tuple(shape), dtype=torch.uint8, device=self.device)
            rec = torch.empty((steps,) + tuple(shape), dtype=torch.int64, device=self.device) if record else None
            th, d, vmax = entry["threshold"], entry["decay"], layer.state_limit
            n_sat = 0
            for t in range(steps):
                r = v > th
                if layer.reset == "zero":
                    v = torch.where(r, torch.zeros_like(v), v)
                v = decay_toward_zero(v, d) + (cur if static else cur[t])
                if layer.reset == "subtract":
                    v = v - r.to(torch.int64) * th
                over = (v > vmax) | (v < -vmax)
                if bool(over.any()):
                    count = int(over.sum())
                    if self.saturation == "raise":
                        raise SaturationError(f"layer {layer.name!r}: membrane state left the {layer.state_bits}-bit range "
                                              f"±{vmax} at step {t} ({count} neurons)")
                    n_sat += count
                    v = v.clamp(-vmax, vmax)
                out[t] = (v > th).to(torch.uint8)
                if record:
                    rec[t] = v
            static = False
            h = out
            spikes[layer.name] = out.cpu().numpy()
            sats[layer.name] = n_sat
            if record:
                states[layer.name] = rec.cpu().numpy()
        return spikes, sats, states
