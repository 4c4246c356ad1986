"""Deploy-faithful leaky integrate-and-fire neuron: a drop-in for ``snntorch.Leaky``.

Defining equations (integer state ``v``, one unit of ``v`` = ``q = |sigma| / 2**F`` membrane units)::

    J_t       = round((I_t - b) / |sigma|)             the exact integer synaptic current
    theta_int = min(g·round(theta / (q·g)), 2**(B_v-1)-1)   per channel, state units, a multiple of the
                                                       grid g (``threshold_step``, 1 by default; 64 in the
                                                       stock-Loihi profile, where vth is θ >> 6)
    b_int     = g·round(b / (q·g))                      on the same grid (Lava: bias_mant = b >> 6)
    d         = round(clamp(beta, 0, 1) * 4096)        12-bit decay
    r_t       = [v_{t-1} > theta_int]
    v_t       = decay(v_{t-1}) + J_t * 2**F + b_int - r_t * theta_int          reset "subtract"
    v_t       = decay((1 - r_t) * v_{t-1}) + J_t * 2**F + b_int                reset "zero"
    v_t       = clip(v_t, ±(2**(B_v-1) - 1))
    z_t       = H((v_t - theta_int) * q)               surrogate gradient in membrane units
    decay(v)  = sign(v*d) * (|v*d| >> 12)

All roundings use straight-through gradients, so the layer trains like ``snntorch.Leaky`` while
its forward pass IS the frozen integer network's: after training, :func:`qsnn_deploy.freeze`
yields the same spikes, every neuron, every step. ``sigma`` and ``b`` describe the synapse in
front of the neuron (weight scale x input scale x pool x BatchNorm); :class:`QSequential` passes
them. Used alone, ``sigma`` defaults to the ``current_scale`` given at construction and ``b`` to 0.

The returned state (``mem``) is ``v`` in state units (integer-valued float64); multiply by ``q``
(:meth:`QLeaky.membrane`) for membrane units.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import snntorch as snn
from snntorch import surrogate

from .. import intmath
from ..neurons import LIF, NeuronParams
from .ste import decay_ste, round_ste

if TYPE_CHECKING:
    import numpy as np


class QNeuron:
    """What every deploy-faithful neuron shares (:class:`QLeaky`, :class:`~qsnn_deploy.nn.QSynaptic`): its
    forward pass runs the integer semantics of one neuron kind (``kind``, :mod:`qsnn_deploy.neurons`), and
    :meth:`frozen_neuron` gives that kind's integer parameters, the very ones the forward pass uses."""

    kind = ""

    def synapse_scale(self, input_: torch.Tensor, sigma: torch.Tensor | None, bias: torch.Tensor | None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """(|sigma|, bias) as float64 [C] for a step's input [N, C, ...]: the synapse's per-channel scale and
        bias as given, or, used alone, ``current_scale`` and 0."""
        c = input_.shape[1] if input_.dim() > 1 else input_.shape[0]
        if sigma is None:
            sigma = torch.full((c,), self.current_scale, dtype=torch.float64, device=input_.device)
        if bias is None:
            bias = torch.zeros(c, dtype=torch.float64, device=input_.device)
        return sigma.to(torch.float64).abs(), bias.to(torch.float64)

    def frozen_neuron(self, sigma_abs: torch.Tensor, bias: torch.Tensor) -> NeuronParams:
        """The neuron kind's integer parameters for a synapse of per-channel scale ``sigma_abs`` and bias
        ``bias`` (float64 [C], membrane units): what :func:`qsnn_deploy.freeze` stores."""
        raise NotImplementedError


def _np_int(t: torch.Tensor):
    return t.detach().cpu().round().to(torch.int64).numpy()


class QLeaky(QNeuron, snn.Leaky):
    """Deploy-faithful ``Leaky`` with integer state (see module docstring for the equations).

    Args:
        beta: membrane decay, scalar or one per channel (shape [C]); quantized to 12 bits.
        threshold: θ in membrane units, scalar or one per channel.
        spike_grad: surrogate gradient (default: fast sigmoid, slope 25).
        reset_mechanism: ``"subtract"`` (default) or ``"zero"``.
        frac_bits: F, fractional bits of the state (default 6).
        threshold_step: g, the integer threshold and bias are multiples of g (default 1; the
            ``loihi`` profile uses 64 so that Lava's stock ``vth = θ >> 6`` and
            ``bias_mant = b >> 6`` hold them exactly).
        state_bits: B_v, signed state width (default 24).
        current_scale: sigma used when none is passed to ``forward`` (input already in J units: 1).
        learn_beta, learn_threshold: as in snnTorch.
        surrogate_slope: the slope k of ``spike_grad`` when it is snnTorch's fast sigmoid (set by
            the model builder; 25 when ``spike_grad`` is None). Only with a known slope can
            :class:`QSequential` run the layer through the fused all-steps kernel
            (:mod:`qsnn_deploy.nn.fused_lif`); None keeps the step-by-step path.
    """

    def __init__(self, beta, threshold=1.0, spike_grad=None, reset_mechanism: str = "subtract",
                 frac_bits: int = intmath.DEFAULT_FRAC_BITS, state_bits: int = intmath.DEFAULT_STATE_BITS,
                 current_scale: float = 1.0, learn_beta: bool = False, learn_threshold: bool = False,
                 threshold_step: int = 1, surrogate_slope: float | None = None):
        if reset_mechanism not in intmath.RESET_MODES:
            raise ValueError(f"QLeaky supports reset_mechanism {intmath.RESET_MODES}, got {reset_mechanism!r}")
        super().__init__(beta=beta, threshold=threshold,
                         spike_grad=spike_grad if spike_grad is not None else surrogate.fast_sigmoid(slope=25),
                         reset_mechanism=reset_mechanism, learn_beta=learn_beta, learn_threshold=learn_threshold,
                         reset_delay=True)
        self.frac_bits = int(frac_bits)
        self.state_bits = int(state_bits)
        self.current_scale = float(current_scale)
        if int(threshold_step) < 1:
            raise ValueError(f"QLeaky threshold_step must be a positive integer, got {threshold_step!r}")
        self.threshold_step = int(threshold_step)
        self.saturation_events = 0
        self.surrogate_slope = 25.0 if spike_grad is None else (None if surrogate_slope is None else float(surrogate_slope))

    # ----------------------------------------------------------------- integer parameters
    def integer_params(self, sigma_abs: torch.Tensor, bias: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(theta_int, b_int, d) per channel as float64 tensors (integer-valued, STE gradients).

        ``sigma_abs`` and ``bias`` are float64 per-channel tensors [C]. :func:`qsnn_deploy.freeze`
        calls this same method, so frozen and trained integers are identical.
        """
        c = sigma_abs.shape[0]
        dev = sigma_abs.device
        scale = float(1 << self.frac_bits)
        theta = _per_channel(self.threshold, c, dev, "threshold")
        beta = _per_channel(self.beta, c, dev, "beta").clamp(0.0, 1.0)
        # A threshold at or above the state limit means "never fires" (|v| <= limit), so clamping it
        # there changes no spike and keeps the frozen threshold within B_v bits.
        g = float(getattr(self, "threshold_step", 1))
        top = float(intmath.state_limit(self.state_bits) // int(g) * int(g))
        theta_int = (round_ste(theta * scale / (sigma_abs * g)) * g).clamp(max=top)
        b_int = round_ste(bias * scale / (sigma_abs * g)) * g
        d = round_ste(beta * float(intmath.DECAY_ONE))
        return theta_int, b_int, d

    kind = "lif"

    def frozen_neuron(self, sigma_abs: torch.Tensor, bias: torch.Tensor) -> LIF:
        """The :class:`~qsnn_deploy.neurons.LIF` parameters :meth:`integer_params` gives (freeze stores these)."""
        th, b, d = (_np_int(t) for t in self.integer_params(sigma_abs, bias))
        return LIF(th, b, d, "subtract" if self.reset_mechanism_val == 0 else "zero", self.frac_bits, self.state_bits,
                   sigma_abs.detach().cpu().numpy().astype("float64"))

    def membrane(self, v: torch.Tensor, sigma: torch.Tensor | np.ndarray | float) -> torch.Tensor:
        """State ``v`` converted to membrane units, ``v * |sigma| / 2**F``."""
        return v * _channel_view(torch.as_tensor(sigma, dtype=torch.float64, device=v.device).abs(), v.dim()) / (1 << self.frac_bits)

    # ----------------------------------------------------------------- forward
    def forward(self, input_: torch.Tensor, mem: torch.Tensor | None = None, *,
                sigma: torch.Tensor | None = None, bias: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step. ``input_``: float current [N, C, ...]; returns (spikes, v)."""
        sigma_abs, bias = self.synapse_scale(input_, sigma, bias)
        theta_int, b_int, d = self.integer_params(sigma_abs, bias)
        nd = input_.dim()
        sig_v, th_v, b_v, d_v, bias_v = (_channel_view(t, nd) for t in (sigma_abs, theta_int, b_int, d, bias))
        current = round_ste((input_.to(torch.float64) - bias_v) / sig_v)
        if mem is None or mem.shape != input_.shape:
            mem = torch.zeros_like(input_, dtype=torch.float64)
        v_prev = mem.to(torch.float64)
        reset = (v_prev > th_v).to(torch.float64).detach()
        if self.reset_mechanism_val == 0:
            v = decay_ste(v_prev, d_v) + current * float(1 << self.frac_bits) + b_v - reset * th_v
        else:
            v = decay_ste((1.0 - reset) * v_prev, d_v) + current * float(1 << self.frac_bits) + b_v
        vmax = float(intmath.state_limit(self.state_bits))
        if not torch.jit.is_scripting():
            over = (v.detach().abs() > vmax)
            if bool(over.any()):
                self.saturation_events += int(over.sum())
                v = v.clamp(-vmax, vmax)
        spk = self.spike_grad((v - th_v) * sig_v / float(1 << self.frac_bits))
        return spk.to(input_.dtype), v


def _per_channel(value, channels: int, device, name: str) -> torch.Tensor:
    t = torch.as_tensor(value, device=device).to(torch.float64).flatten()
    if t.numel() == 1:
        return t.expand(channels)
    if t.numel() != channels:
        raise ValueError(f"QLeaky {name}: expected a scalar or {channels} values (one per channel), got {t.numel()}")
    return t


def _channel_view(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """[C] -> [C, 1, 1] for [N, C, H, W] tensors; unchanged for [N, C]."""
    return t.view((-1,) + (1,) * max(ndim - 2, 0))
