"""Spike-count loss and prediction (the papers' recipe).

The loss is snnTorch's own ``mse_count_loss``: the mean squared error between each output
neuron's spike count over T steps and a target count of ``correct_rate * T`` for the labelled
class and ``incorrect_rate * T`` for the others (0.8 / 0.2 in the papers), divided by T by snnTorch.
The prediction is the output neuron with most spikes (lowest index on ties, like the simulators).
"""
from __future__ import annotations

from typing import Callable

import torch
from snntorch import functional as SF


LOSSES = ("mse_count", "ce_count")


def spike_count_loss(correct_rate: float = 0.8, incorrect_rate: float = 0.2, kind: str = "mse_count"
                     ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(spikes [T, N, C], labels [N]) -> scalar``.

    ``kind``: ``"mse_count"`` (the papers': snnTorch's ``mse_count_loss`` with the two rates) or
    ``"ce_count"`` (snnTorch's ``ce_count_loss``: cross entropy of the summed output spikes).
    """
    if kind == "mse_count":
        return SF.mse_count_loss(correct_rate=correct_rate, incorrect_rate=incorrect_rate)
    if kind == "ce_count":
        return SF.ce_count_loss()
    raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")


def predict(spikes: torch.Tensor) -> torch.Tensor:
    """Class with most output spikes: ``spikes`` [T, N, C] -> [N]."""
    return spikes.sum(0).argmax(1)
