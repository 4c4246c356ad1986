"""Spike-count loss and prediction (the papers' recipe).

The loss is snnTorch's own ``mse_count_loss``: the mean squared error between each output
neuron's spike count over T steps and a target count of ``correct_rate * T`` for the labelled
class and ``incorrect_rate * T`` for the others (0.8 / 0.2 in the papers), divided by T by snnTorch.
The prediction is the output neuron with most spikes (lowest index on ties, like the simulators).
"""
from __future__ import annotations

import torch
from snntorch import functional as SF


def spike_count_loss(correct_rate: float = 0.8, incorrect_rate: float = 0.2):
    """``loss(spikes [T, N, C], labels [N]) -> scalar``."""
    return SF.mse_count_loss(correct_rate=correct_rate, incorrect_rate=incorrect_rate)


def predict(spikes: torch.Tensor) -> torch.Tensor:
    """Class with most output spikes: ``spikes`` [T, N, C] -> [N]."""
    return spikes.sum(0).argmax(1)
