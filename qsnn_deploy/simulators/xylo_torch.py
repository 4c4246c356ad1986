"""The torch kernel of neuron kind ``"xylo"``: :mod:`.xylo_scan`'s algorithm as int64 torch ops on any device.

Same arithmetic as the NumPy kernel (its module docstring): per step, the positive and negative parts
of the ordered synaptic terms are summed by float64 GEMMs (integers below 2**53: exact on any device,
inside :func:`~.torch_sim.exact_float_math`); (sample, neuron) pairs whose partial sums could leave int16
are folded source by source with a saturating add each; then the kind's equation (decays, bias, fire)
in int64. Tested against the kind's ``reference_step`` in tests/test_xylo.py.
"""
from __future__ import annotations

import numpy as np
import torch

from ..neurons.xylo import I16_MAX, I16_MIN, MAX_HIDDEN_SPIKES
from .xylo_scan import layer_matrices


def _t(a, device, dtype=torch.int64) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


def _leak(x: torch.Tensor, dash: torch.Tensor) -> torch.Tensor:
    """``x >> dash``, or ``sign(x)`` where the shift gives 0."""
    d = torch.bitwise_right_shift(x, dash)
    return torch.where(d == 0, torch.sign(x), d)


class TorchXylo:
    """One xylo layer on ``device``: ``run(x, static, steps, record)`` over its input counts (kernel docstring).

    Args:
        layer: the frozen layer (kind ``"xylo"``, dense synapse, optional recurrent weights).
        device: torch device.
        cap: clip of the input counts (15 for the net's input, 31 for a layer's spikes).
    """

    takes_inputs = True

    def __init__(self, layer, device, cap: int = MAX_HIDDEN_SPIKES):
        n = layer.neuron
        self.layer, self.device, self.cap = layer, torch.device(device), int(cap)
        w, r = layer_matrices(layer)
        self.blocks = [self._block(w)] + ([self._block(r)] if r is not None else [])
        self.th, self.b, self.ds, self.dm = (_t(getattr(n, k), self.device) for k in ("threshold", "bias", "dash_syn", "dash_mem"))
        self.max_spikes = int(n.max_spikes)

    def _block(self, m: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W⁺ᵀ float64, W⁻ᵀ float64, W int64 [C, P]) of one weight block."""
        return (_t(np.maximum(m, 0).T, self.device, torch.float64), _t(np.minimum(m, 0).T, self.device, torch.float64),
                _t(m, self.device))

    def fold(self, isyn: torch.Tensor, counts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``isyn`` [B, C] after every block's terms in order (``counts[k]`` [B, P_k], capped), and the bool mask of
        the neurons where some add was clipped."""
        pos = torch.zeros(isyn.shape, dtype=torch.float64, device=self.device)
        neg = torch.zeros_like(pos)
        for c, (wp, wn, _) in zip(counts, self.blocks):
            cf = c.to(torch.float64)
            pos += cf @ wp
            neg += cf @ wn
        pos_i, neg_i = torch.round(pos).to(torch.int64), torch.round(neg).to(torch.int64)
        out = isyn + pos_i + neg_i
        unsafe = (isyn + pos_i > I16_MAX) | (isyn + neg_i < I16_MIN)
        clipped = torch.zeros(isyn.shape, dtype=torch.bool, device=self.device)
        if not bool(unsafe.any()):
            return out, clipped
        bi, ci = torch.nonzero(unsafe, as_tuple=True)
        s = isyn[bi, ci]
        hit = torch.zeros(s.shape, dtype=torch.bool, device=self.device)
        for c, (_, _, w) in zip(counts, self.blocks):
            cb = c[bi]
            for p in torch.nonzero(cb.any(dim=0)).flatten().tolist():
                raw = s + cb[:, p] * w[ci, p]
                s = raw.clamp(I16_MIN, I16_MAX)
                hit |= s != raw
        out[bi, ci] = s
        clipped[bi, ci] = hit
        return out, clipped

    def integrate(self, isyn: torch.Tensor, v: torch.Tensor, clipped: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The kind's equation after the fold (:meth:`~qsnn_deploy.neurons.XyloNeuron.integrate`), int64; the
        saturation events are the neurons clipped anywhere in the step (``clipped``: the fold's mask)."""
        isyn = isyn - _leak(isyn, self.ds)
        m = -_leak(v, self.dm)
        m = torch.where(m == -I16_MIN, torch.full_like(m, I16_MIN), m)
        raw = m + isyn
        dv = raw.clamp(I16_MIN, I16_MAX)
        clipped = clipped | (dv != raw)
        raw = dv + self.b
        dv = raw.clamp(I16_MIN, I16_MAX)
        clipped |= dv != raw
        raw = v + dv
        v = raw.clamp(I16_MIN, I16_MAX)
        clipped |= v != raw
        n_sat = clipped.sum()
        th = self.th
        safe_th = torch.where(th > 0, th, torch.ones_like(th))
        z = torch.where(v >= th, torch.where(th > 0, torch.clamp(torch.div(v, safe_th, rounding_mode="floor"),
                                                                   max=self.max_spikes),
                                             torch.full_like(v, self.max_spikes)), torch.zeros_like(v))
        return isyn, v - z * th, z, n_sat

    def run(self, x: torch.Tensor, static: bool, steps: int, record: bool
            ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(spike counts uint8 [T, B, C], v int64 [T, B, C] or None, saturation events per step) as NumPy arrays."""
        lead = 1 if static else 2
        x = x.reshape(tuple(x.shape[:lead]) + (-1,)).to(torch.int64).clamp(max=self.cap)
        b, c = x.shape[-2], self.th.shape[0]
        isyn = torch.zeros((b, c), dtype=torch.int64, device=self.device)
        v = torch.zeros_like(isyn)
        z = torch.zeros_like(isyn)
        out = torch.empty((steps, b, c), dtype=torch.uint8, device=self.device)
        rec = torch.empty((steps, b, c), dtype=torch.int64, device=self.device) if record else None
        per_step = torch.zeros(steps, dtype=torch.int64, device=self.device)
        for t in range(steps):
            counts = [x if static else x[t]]
            if len(self.blocks) > 1:
                counts.append(z.clamp(max=MAX_HIDDEN_SPIKES))
            isyn, clipped = self.fold(isyn, counts)
            isyn, v, z, per_step[t] = self.integrate(isyn, v, clipped)
            out[t] = z.to(torch.uint8)
            if record:
                rec[t] = v
        return out.cpu().numpy(), (rec.cpu().numpy() if record else None), per_step.cpu().numpy()
