"""Loihi-style fixed-point simulator (NumPy, vectorized over the batch); backend ``loihi``.

Per layer, one of two neuron rule sets (lava-nc 0.10.0 PyLifModelBitAcc as pinned down in FACTS.md):

* ``stock`` (Lava's LIF, fixed_pt), used when the layer maps exactly (the rule of
  :func:`qsnn_deploy.exporters.lava_check.stock_reasons`: zero reset, one θ and one decay per
  layer, F = 6, B_v = 24, θ a multiple of 64, no bias, |a| << 6 below 2^23)::

      u = tz(u*(4096-(du+1))) + (a << 6);  u wraps to 24 bits      (du = 4095: u = a << 6)
      v = clip(tz(v*(4096-dv)) + u + b, ±(2^23-1));  s = v > (vth << 6);  v[s] = 0
      dv = 4096 - d,  vth = θ >> 6

* ``custom`` (the project's integer semantics, the extension a custom Lava ProcessModel runs):
  subtract reset with θ subtracted after the decay (snnTorch order), per-neuron θ, any F / B_v.

``pipeline=True`` simulates Lava's timing: every synapse adds one step, so layer l (0-based) sees
the input of step t at Lava step t+l+1; the run lasts T+L steps and ``info["raw_spikes"]`` holds
the Lava-timed trains. The returned ``spikes`` are aligned back (layer l shifted by l+1 steps).
During the l+1 warm-up steps a ``custom`` layer is held at v = 0 (no bias), as the QLIF
ProcessModel does in Lava; a ``stock`` layer would integrate its bias then (as Lava's stock LIF
does), which is why a layer with a bias is routed ``custom`` under ``route="auto"``.
Lava's own runs of the same net (backend ``lava``) equal ``info["raw_spikes"]`` bit for bit.
"""
from __future__ import annotations

import numpy as np

from .. import intmath
from ..frozen import FrozenNet
from .base import SATURATION_MODES, SimResult, prepare_input
from .numpy_sim import _PreparedLayer, _compact_dtype, _to_torch_layout, p_out_cl


def _tz(x: np.ndarray) -> np.ndarray:
    return (x + ((x >> 63) & (intmath.DECAY_ONE - 1))) >> intmath.DECAY_BITS


def stock_exact(layer, current_bound: int = 0) -> bool:
    """True when Lava's stock LIF computes exactly this layer's integer semantics (the same rule the
    Lava exporter routes by: :func:`qsnn_deploy.exporters.lava_check.stock_reasons`)."""
    from ..exporters.lava_check import stock_reasons

    return not stock_reasons(layer, current_bound)


class LoihiSimulator:
    name = "loihi"

    def __init__(self, net: FrozenNet, pipeline: bool = True, route: str = "auto", saturation: str = "count"):
        if saturation not in SATURATION_MODES:
            raise ValueError(f"saturation must be one of {SATURATION_MODES}")
        self.net = net.validate()
        self.pipeline = bool(pipeline)
        self.layers, x_bound = [], net.input.max_abs
        for layer, (in_shape, _) in zip(net.layers, net.layer_shapes()):
            self.layers.append(_PreparedLayer(layer, in_shape, x_bound))
            x_bound = 1
        if route == "auto":
            from ..statebound import net_peak_currents

            self.routes = ["stock" if stock_exact(l, b) else "custom" for l, b in zip(net.layers, net_peak_currents(net))]
        else:
            self.routes = [route] * len(net.layers)

    def run(self, x, num_steps=None, record_states=False) -> SimResult:
        arr, static, steps = prepare_input(self.net, x, num_steps)
        arr = arr.astype(_compact_dtype(self.net), copy=False)
        L = len(self.layers)
        total = steps + (L if self.pipeline else 0)
        if static:
            arr = np.broadcast_to(arr, (steps,) + arr.shape)
        h = np.moveaxis(arr, -3, -1) if arr.ndim >= 5 else arr
        if self.pipeline:  # zero input after the last column
            h = np.concatenate([h, np.zeros((L,) + h.shape[1:], h.dtype)], axis=0)
        raw, aligned, sats = {}, {}, {}
        for i, (p, route) in enumerate(zip(self.layers, self.routes)):
            t_, b_ = h.shape[:2]
            j = p.currents(h.reshape((t_ * b_,) + h.shape[2:])).reshape((t_, b_) + p_out_cl(p))
            if self.pipeline:  # the synapse adds one step
                j = np.concatenate([np.zeros((1,) + j.shape[1:], np.int64), j[:-1]], axis=0)
            start = i + 1 if self.pipeline else 0
            s, n_sat = (self._stock if route == "stock" else self._custom)(p, j, start)
            h = s
            raw[p.name] = _to_torch_layout(s)
            aligned[p.name] = raw[p.name][start:start + steps]
            sats[p.name] = n_sat
        return SimResult(aligned, sats, None, backend=self.name, info={"raw_spikes": raw, "routes": self.routes,
                                                                 "timing": "lava-pipeline" if self.pipeline else "reference"})

    @staticmethod
    def _custom(p, j, start):
        layer = p.layer
        th, b, d, vmax = p.threshold, p.bias, p.decay, layer.state_limit
        v = np.zeros(j.shape[1:], np.int64)
        out = np.zeros(j.shape, np.uint8)
        n_sat = 0
        for t in range(start, j.shape[0]):
            r = v > th
            if layer.reset == "zero":
                v = np.where(r, 0, v)
            v = _tz(v * d) + (j[t] << layer.frac_bits) + b
            if layer.reset == "subtract":
                v = v - r * th
            n_sat += int(np.count_nonzero(np.abs(v) > vmax))
            v = np.clip(v, -vmax, vmax)
            out[t] = v > th
        return out, n_sat

    @staticmethod
    def _stock(p, j, start):
        dv = intmath.DECAY_ONE - int(np.atleast_1d(p.decay)[0])
        du = 4095
        vth = p.threshold >> 6
        b = p.bias
        u = np.zeros(j.shape[1:], np.int64)
        v = np.zeros(j.shape[1:], np.int64)
        out = np.zeros(j.shape, np.uint8)
        lim, n_sat = (1 << 23) - 1, 0
        for t in range(j.shape[0]):
            u = _tz(u * (4096 - (du + 1))) + (j[t] << 6)
            u = np.where(u > (1 << 23), u - (1 << 24), np.where(u <= -(1 << 23), u + (1 << 24), u))
            v = _tz(v * (4096 - dv)) + u + b
            n_sat += int(np.count_nonzero(np.abs(v) > lim))
            v = np.clip(v, -lim, lim)
            s = v > (vth << 6)
            v = np.where(s, 0, v)
            out[t] = s
        return out, n_sat
