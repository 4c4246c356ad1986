"""Deploy-faithful current-based LIF neuron: a drop-in for ``snntorch.Synaptic`` (neuron kind ``"cuba"``).

Defining equations (integer states ``i`` and ``v``; one unit of either = ``q = |sigma| / 2**F`` membrane
units; :class:`qsnn_deploy.neurons.CubaLIF` is the specification)::

    J_t       = round((I_t - b) / |sigma|)               the exact integer synaptic current
    theta_int = min(g·round(theta / (q·g)), 2**(B_v-1)-1)   per channel, state units (grid g, as QLeaky)
    b_int     = g·round(b / (q·g))                        the block's bias, added to v (Loihi's place)
    a, d      = round(clamp(alpha, 0, 1)·4096), round(clamp(beta, 0, 1)·4096)
    i_t       = clip(decay(i_{t-1}, a) + J_t·2**F, ±(2**(B_i-1)-1))
    r_t       = [v_{t-1} > theta_int]
    v_t       = decay(v_{t-1}, d) + i_t + b_int - r_t·theta_int          reset "subtract"
    v_t       = decay((1 - r_t)·v_{t-1}, d) + i_t + b_int                reset "zero" (Loihi 2's order)
    v_t       = clip(v_t, ±(2**(B_v-1)-1))
    z_t       = H((v_t - theta_int)·q)                   surrogate gradient in membrane units
    decay(x, k) = sign(x·k)·(|x·k| >> 12)

Every rounding has a straight-through gradient, so the layer trains like ``snntorch.Synaptic`` while its
forward pass IS the frozen integer network's. The zero reset here is Loihi's (the membrane is zeroed
before the next step's decay, keeping that step's input: snnTorch's ``reset_delay=False``), so a
``--profile loihi`` CUBA layer maps onto Lava's stock ``LIF`` with ``du = 4095 - a`` and ``dv = 4096 - d``.

``forward(input, syn, mem, sigma=, bias=)`` returns ``(spikes, i, v)`` in state units (integer-valued
float64), like ``snntorch.Synaptic`` returns ``(spk, syn, mem)``.
"""
from __future__ import annotations

import snntorch as snn
import torch
from snntorch import surrogate

from .. import intmath
from ..neurons import CubaLIF
from .neuron import QNeuron, _channel_view, _np_int, _per_channel
from .ste import decay_ste, round_ste

RESETS = ("subtract", "zero")


class QSynaptic(QNeuron, snn.Synaptic):
    """Deploy-faithful ``Synaptic`` with integer current and membrane (module docstring).

    Args:
        alpha: current decay, scalar or one per channel; quantized to 12 bits.
        beta: membrane decay, scalar or one per channel; quantized to 12 bits.
        threshold: θ in membrane units, scalar or one per channel.
        spike_grad: surrogate gradient (default: fast sigmoid, slope 25).
        reset_mechanism: ``"subtract"`` (default) or ``"zero"`` (Loihi's order, module docstring).
        frac_bits, state_bits, threshold_step, current_scale, surrogate_slope: as :class:`~qsnn_deploy.nn.QLeaky`.
        current_bits: B_i, the signed width of the current (default 24, Loihi's ``u``).
        learn_alpha, learn_beta, learn_threshold: as in snnTorch.
    """

    kind = "cuba"

    def __init__(self, alpha, beta, threshold=1.0, spike_grad=None, reset_mechanism: str = "subtract",
                 frac_bits: int = intmath.DEFAULT_FRAC_BITS, state_bits: int = intmath.DEFAULT_STATE_BITS,
                 current_bits: int = intmath.DEFAULT_STATE_BITS, current_scale: float = 1.0,
                 learn_alpha: bool = False, learn_beta: bool = False, learn_threshold: bool = False,
                 threshold_step: int = 1, surrogate_slope: float | None = None):
        if reset_mechanism not in RESETS:
            raise ValueError(f"QSynaptic supports reset_mechanism {RESETS}, got {reset_mechanism!r}")
        super().__init__(alpha=alpha, beta=beta, threshold=threshold,
                         spike_grad=spike_grad if spike_grad is not None else surrogate.fast_sigmoid(slope=25),
                         reset_mechanism=reset_mechanism, learn_alpha=learn_alpha, learn_beta=learn_beta,
                         learn_threshold=learn_threshold, reset_delay=True)
        if int(threshold_step) < 1:
            raise ValueError(f"QSynaptic threshold_step must be a positive integer, got {threshold_step!r}")
        self.frac_bits = int(frac_bits)
        self.state_bits = int(state_bits)
        self.current_bits = int(current_bits)
        self.current_scale = float(current_scale)
        self.threshold_step = int(threshold_step)
        self.saturation_events = 0
        self.surrogate_slope = 25.0 if spike_grad is None else (None if surrogate_slope is None else float(surrogate_slope))

    @property
    def reset_mode(self) -> str:
        """The :class:`~qsnn_deploy.neurons.CubaLIF` reset this neuron runs (``"subtract"`` or ``"zero"``)."""
        return "subtract" if self.reset_mechanism_val == 0 else "zero"

    def integer_params(self, sigma_abs: torch.Tensor, bias: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(theta_int, b_int, a, d) per channel, float64 integer-valued tensors with STE gradients (freeze
        calls this same method)."""
        c = sigma_abs.shape[0]
        dev = sigma_abs.device
        scale = float(1 << self.frac_bits)
        theta = _per_channel(self.threshold, c, dev, "threshold")
        alpha = _per_channel(self.alpha, c, dev, "alpha").clamp(0.0, 1.0)
        beta = _per_channel(self.beta, c, dev, "beta").clamp(0.0, 1.0)
        g = float(self.threshold_step)
        top = float(intmath.state_limit(self.state_bits) // int(g) * int(g))
        theta_int = (round_ste(theta * scale / (sigma_abs * g)) * g).clamp(max=top)
        b_int = round_ste(bias * scale / (sigma_abs * g)) * g
        return theta_int, b_int, round_ste(alpha * float(intmath.DECAY_ONE)), round_ste(beta * float(intmath.DECAY_ONE))

    def frozen_neuron(self, sigma_abs: torch.Tensor, bias: torch.Tensor) -> CubaLIF:
        """The :class:`~qsnn_deploy.neurons.CubaLIF` parameters :meth:`integer_params` gives."""
        th, b, a, d = (_np_int(t) for t in self.integer_params(sigma_abs, bias))
        return CubaLIF(th, b, a, d, None, self.reset_mode, self.frac_bits, self.state_bits, self.current_bits,
                       sigma_abs.detach().cpu().numpy().astype("float64"))

    def forward(self, input_: torch.Tensor, syn: torch.Tensor | None = None, mem: torch.Tensor | None = None, *,
                sigma: torch.Tensor | None = None, bias: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One time step. ``input_``: float current [N, C, ...]; returns (spikes, i, v)."""
        sigma_abs, bias = self.synapse_scale(input_, sigma, bias)
        theta_int, b_int, a, d = self.integer_params(sigma_abs, bias)
        nd = input_.dim()
        sig_v, th_v, b_v, a_v, d_v, bias_v = (_channel_view(t, nd) for t in (sigma_abs, theta_int, b_int, a, d, bias))
        current = round_ste((input_.to(torch.float64) - bias_v) / sig_v)
        if syn is None or syn.shape != input_.shape:
            syn = torch.zeros_like(input_, dtype=torch.float64)
        if mem is None or mem.shape != input_.shape:
            mem = torch.zeros_like(input_, dtype=torch.float64)
        i = decay_ste(syn.to(torch.float64), a_v) + current * float(1 << self.frac_bits)
        i = self._clip(i, intmath.state_limit(self.current_bits))
        v_prev = mem.to(torch.float64)
        reset = (v_prev > th_v).to(torch.float64).detach()
        if self.reset_mechanism_val == 0:
            v = decay_ste(v_prev, d_v) + i + b_v - reset * th_v
        else:
            v = decay_ste((1.0 - reset) * v_prev, d_v) + i + b_v
        v = self._clip(v, intmath.state_limit(self.state_bits))
        spk = self.spike_grad((v - th_v) * sig_v / float(1 << self.frac_bits))
        return spk.to(input_.dtype), i, v

    def _clip(self, x: torch.Tensor, limit: int) -> torch.Tensor:
        over = x.detach().abs() > float(limit)
        if bool(over.any()):
            self.saturation_events += int(over.sum())
            x = x.clamp(-float(limit), float(limit))
        return x
