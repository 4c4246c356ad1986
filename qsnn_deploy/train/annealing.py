"""Threshold annealing (binarized SNNs): after every optimizer step, each LIF layer's threshold
moves a fraction ``alpha`` of the way to its final value,

    θ ← θ + (θ_final − θ) · α

so θ_k = θ_final + (θ_0 − θ_final)(1 − α)^k after k steps. Starting from a small θ_0 keeps
neurons of a binarized network alive early in training; the final value sets the sparsity.
"""
from __future__ import annotations

from typing import Mapping

import snntorch as snn
import torch
import torch.nn as nn

from ..errors import TrainConfigError


class ThresholdAnnealer:
    """Anneal the thresholds of every ``snntorch.Leaky`` (incl. QLeaky) in ``model``.

    Args:
        model: the network.
        final: θ_final, one value for all layers or {neuron module name: value}.
        alpha: fraction moved per step, 0 < alpha <= 1.
        initial: optional θ_0 (same forms) written into the neurons now.
    """

    def __init__(self, model: nn.Module, final: float | Mapping[str, float], alpha: float,
                 initial: float | Mapping[str, float] | None = None):
        if not 0.0 < alpha <= 1.0:
            raise TrainConfigError(f"field 'anneal_alpha': must be in (0, 1], got {alpha}")
        self.alpha = float(alpha)
        self.neurons = {name: m for name, m in model.named_modules() if isinstance(m, snn.Leaky)}
        if not self.neurons:
            raise ValueError("threshold annealing needs at least one snntorch.Leaky / QLeaky neuron")
        self.final = {name: self._pick(final, name) for name in self.neurons}
        if initial is not None:
            with torch.no_grad():
                for name, m in self.neurons.items():
                    m.threshold.fill_(self._pick(initial, name))

    @staticmethod
    def _pick(value, name: str) -> float:
        if isinstance(value, Mapping):
            if name not in value:
                raise KeyError(f"no threshold given for neuron {name!r}")
            return float(value[name])
        return float(value)

    @torch.no_grad()
    def step(self) -> None:
        """One annealing step (call after every optimizer step): θ ← θ + (θ_final − θ)·α in every neuron."""
        for name, m in self.neurons.items():
            m.threshold.add_((self.final[name] - m.threshold) * self.alpha)

    def thresholds(self) -> dict[str, float]:
        """Current threshold per neuron module name (mean over channels, membrane units)."""
        return {name: float(m.threshold.detach().mean()) for name, m in self.neurons.items()}
