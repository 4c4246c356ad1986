"""Binarized synapses for threshold-annealing networks: weights ``sign(w)`` with a straight-through
gradient (``w`` is the latent float weight; ``sign(0)`` is taken as +1).

Each module exposes ``qsnn_int_weight() -> (int-valued weight, scale, bit_width=1)``, the protocol
:mod:`qsnn_deploy.nn.blocks` and :func:`qsnn_deploy.freeze` read: the deployed weights are exactly
±1 with scale ``scale`` (default 1.0, so ``J = sum(±x)``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def sign_ste(w: torch.Tensor) -> torch.Tensor:
    """±1 forward (0 -> +1); identity gradient, cut where |w| > 1 (the usual hard-tanh STE)."""
    hard = torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))
    soft = w.clamp(-1.0, 1.0)
    return soft + (hard - soft).detach()


class _Binary:
    scale: float

    def qsnn_int_weight(self):
        w = sign_ste(self.weight)
        return w, torch.full((w.shape[0],), float(self.scale), dtype=torch.float64, device=w.device), 1


class BinaryConv2d(_Binary, nn.Conv2d):
    """``nn.Conv2d`` whose forward uses ``scale * sign(w)`` weights."""

    def __init__(self, *args, scale: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``conv2d(x, scale · sign(w))`` with a straight-through gradient to the latent weight ``w``."""
        return F.conv2d(x, sign_ste(self.weight) * self.scale, self.bias, self.stride, self.padding)


class BinaryLinear(_Binary, nn.Linear):
    """``nn.Linear`` whose forward uses ``scale * sign(w)`` weights."""

    def __init__(self, *args, scale: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``linear(x, scale · sign(w))`` with a straight-through gradient to the latent weight ``w``."""
        return F.linear(x, sign_ste(self.weight) * self.scale, self.bias)
