"""Random inputs for the fused-neuron tests (tests/test_fused_lif.py, tests/test_fused_cuba.py): one layer of
3 channels, conv ``[N=4, C, 3, 3]`` or dense ``[N=5, C]``, static (one input for every step) or per step
(``[T, ...]``)."""
from __future__ import annotations

import torch


def fused_case(seed: int, static: bool, conv: bool, steps: int, *, j_range: tuple[int, int],
               theta_range: tuple[int, int], decay_ranges: tuple[tuple[int, int], ...]) -> tuple[torch.Tensor, ...]:
    """``(current, sigma, bias, theta, b_int, *decays)``, float64 and requiring gradients, drawn in that order
    from ``seed``: integer currents J in ``j_range`` scaled per channel (``current = J·σ + bias``), integer
    thresholds θ in ``theta_range``, integer biases b in -30..29 and one integer decay per channel for each of
    ``decay_ranges`` (the LIF's d; the CUBA's a then d), every range half-open like ``torch.randint``."""
    g = torch.Generator().manual_seed(seed)
    c = 3
    shape = (4, c, 3, 3) if conv else (5, c)
    shape = shape if static else (steps,) + shape
    sigma = (torch.rand(c, generator=g, dtype=torch.float64) * 0.5 + 0.05).requires_grad_()
    bias = (torch.randn(c, generator=g, dtype=torch.float64) * 0.1).requires_grad_()
    j = torch.randint(*j_range, shape, generator=g).to(torch.float64)
    view = (-1,) + (1,) * (len(shape) - (2 if static else 3))
    current = (j * sigma.detach().view(view) + bias.detach().view(view)).requires_grad_()
    theta = torch.randint(*theta_range, (c,), generator=g).to(torch.float64).requires_grad_()
    b_int = torch.randint(-30, 30, (c,), generator=g).to(torch.float64).requires_grad_()
    decays = [torch.randint(*r, (c,), generator=g).to(torch.float64).requires_grad_() for r in decay_ranges]
    return (current, sigma, bias, theta, b_int, *decays)
