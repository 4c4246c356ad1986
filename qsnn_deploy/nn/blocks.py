"""Reading a layer sequence as LIF blocks: the one place that knows which torch modules map to what.

A *block* is ``[pre...] synapse [post...] neuron``:

* pre: ``nn.Flatten`` (start_dim=1), ``nn.Dropout*``, ``nn.Identity``
* synapse: ``nn.Conv2d`` / ``nn.Linear``, including Brevitas ``QuantConv2d`` / ``QuantLinear``
  (their true integer weights and scale are read with ``quant_weight()``), or any module that
  provides ``qsnn_int_weight() -> (int-valued weight tensor, scale, bit_width)``
* post: ``nn.AvgPool2d`` (kernel = stride, no padding: a sum pool with 1/area folded into the
  scale), ``nn.BatchNorm1d/2d`` (folded per channel), ``nn.Dropout*``, ``nn.Identity``
* neuron: ``snntorch.Leaky``, ``Synaptic``, ``RLeaky``, ``RSynaptic``, :class:`~qsnn_deploy.nn.QLeaky` or
  :class:`~qsnn_deploy.nn.xylo.QXylo` (fed by a :class:`~qsnn_deploy.nn.xylo.XyloLinear`)

Both :class:`~qsnn_deploy.nn.QSequential` (training forward) and :func:`qsnn_deploy.freeze` use
these functions, so what is trained and what is frozen agree by construction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import snntorch as snn
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UnsupportedLayerError
from .neuron import QNeuron
from .ste import round_ste
from .xylo import QXylo

PRE_TYPES = (nn.Flatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)
SYNAPSE_TYPES = (nn.Conv2d, nn.Linear)
POST_TYPES = (nn.AvgPool2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)
NEURON_TYPES = (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic, QXylo)

SUPPORTED = ("nn.Conv2d / brevitas QuantConv2d, nn.Linear / brevitas QuantLinear (synapses); "
             "nn.AvgPool2d (kernel = stride, no padding), nn.BatchNorm1d/2d, nn.Dropout*, nn.Identity (between "
             "synapse and neuron); nn.Flatten, nn.Dropout* (before a synapse); snntorch.Leaky, Synaptic, RLeaky, RSynaptic, "
             "qsnn_deploy.nn.QLeaky or qsnn_deploy.nn.xylo.QXylo "
             "(the neuron closing each block)")


@dataclass
class Block:
    """One synapse and the LIF neurons it feeds."""

    name: str
    synapse: nn.Module
    neuron: nn.Module
    pre: list[nn.Module] = field(default_factory=list)
    post: list[nn.Module] = field(default_factory=list)

    @property
    def deploy_faithful(self) -> bool:
        """True when the neuron is deploy-faithful (:class:`~qsnn_deploy.nn.QLeaky`, :class:`~qsnn_deploy.nn.QSynaptic`):
        the block runs the integer semantics."""
        return isinstance(self.neuron, QNeuron)

    @property
    def pools(self) -> list[nn.AvgPool2d]:
        """The average pools after the synapse (each becomes a sum pool in integers)."""
        return [m for m in self.post if isinstance(m, nn.AvgPool2d)]

    @property
    def batchnorm(self) -> nn.Module | None:
        """The BatchNorm after the synapse, folded into θ and b at freeze time, or None."""
        bns = [m for m in self.post if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
        return bns[0] if bns else None

    @property
    def flatten(self) -> bool:
        """True when the block's input is flattened first (an ``nn.Flatten`` before the synapse)."""
        return any(isinstance(m, nn.Flatten) for m in self.pre)


def _describe(name: str, module: nn.Module) -> str:
    return f"{name or '<module>'} ({type(module).__module__}.{type(module).__name__})"


def is_synapse(module: nn.Module) -> bool:
    """True for a module freeze treats as a synapse: ``nn.Conv2d``, ``nn.Linear`` (Brevitas layers included)
    or anything with a ``qsnn_int_weight()`` method.
    """
    return isinstance(module, SYNAPSE_TYPES) or hasattr(module, "qsnn_int_weight")


def parse_blocks(named_modules: Sequence[tuple[str, nn.Module]]) -> list[Block]:
    """Group an ordered list of (name, module) into :class:`Block` s; reject anything unsupported."""
    blocks: list[Block] = []
    pre: list[nn.Module] = []
    syn: tuple[str, nn.Module] | None = None
    post: list[nn.Module] = []
    for name, m in named_modules:
        if isinstance(m, NEURON_TYPES):
            if syn is None:
                raise UnsupportedLayerError(f"neuron {_describe(name, m)} has no synapse (Conv2d/Linear) in front of it")
            blocks.append(Block(name=syn[0], synapse=syn[1], neuron=m, pre=pre, post=post))
            pre, syn, post = [], None, []
        elif is_synapse(m):
            if syn is not None:
                raise UnsupportedLayerError(f"{_describe(name, m)} follows synapse {syn[0]!r} with no LIF neuron in "
                                            "between; every synapse must feed a snntorch.Leaky / QLeaky")
            _check_synapse(name, m)
            syn = (name, m)
        elif syn is None and isinstance(m, PRE_TYPES):
            if isinstance(m, nn.Flatten) and (m.start_dim != 1 or m.end_dim != -1):
                raise UnsupportedLayerError(f"{_describe(name, m)}: only Flatten(start_dim=1, end_dim=-1) is supported")
            pre.append(m)
        elif syn is not None and isinstance(m, POST_TYPES):
            if isinstance(m, nn.AvgPool2d):
                _check_pool(name, m)
            post.append(m)
        else:
            where = "after a synapse" if syn is not None else "before a synapse"
            raise UnsupportedLayerError(f"unsupported layer {_describe(name, m)} {where}. Supported: {SUPPORTED}")
    if syn is not None or any(not isinstance(m, (nn.Identity, nn.Dropout)) for m in pre + post):
        raise UnsupportedLayerError("the network must end with a LIF neuron (snntorch.Leaky / QLeaky); "
                                    f"found trailing modules after the last neuron: {[type(m).__name__ for m in pre + post]}")
    if not blocks:
        raise UnsupportedLayerError(f"no synapse + LIF block found. Supported: {SUPPORTED}")
    return blocks


def _check_synapse(name: str, m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d):
        if m.groups != 1 or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise UnsupportedLayerError(f"{_describe(name, m)}: only groups=1, dilation=1, numeric zero padding are supported")
    for attr in ("input_quant", "output_quant"):
        q = getattr(m, attr, None)
        if q is not None and getattr(q, "is_quant_enabled", False):
            raise UnsupportedLayerError(f"{_describe(name, m)}: brevitas {attr} is enabled; qsnn-deploy reads the integer "
                                        "input from the frozen net's InputSpec instead. Use input_quant=None/output_quant=None.")


def _check_pool(name: str, m: nn.AvgPool2d) -> None:
    k = _pair(m.kernel_size)
    s = _pair(m.stride if m.stride is not None else m.kernel_size)
    if k != s or _pair(m.padding) != (0, 0) or m.ceil_mode or m.divisor_override is not None:
        raise UnsupportedLayerError(f"{_describe(name, m)}: only AvgPool2d with stride = kernel, padding 0, "
                                    f"ceil_mode False is supported (got kernel {k}, stride {s}, padding {m.padding})")


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


# ------------------------------------------------------------------------------ integer weights
def quantized_weight(syn: nn.Module) -> tuple[torch.Tensor, torch.Tensor, int] | None:
    """(integer-valued weight with STE gradient, per-channel scale float64 [C_out], bit width).

    None for a plain float ``nn.Conv2d`` / ``nn.Linear`` (its weights are quantized at freeze).
    """
    c_out = syn.weight.shape[0]
    if hasattr(syn, "qsnn_int_weight"):
        w_int, scale, bits = syn.qsnn_int_weight()
    elif hasattr(syn, "quant_weight") and getattr(getattr(syn, "weight_quant", None), "is_quant_enabled", False):
        qw = syn.quant_weight()
        scale = qw.scale
        w_int = round_ste(qw.value / scale)
        bits = int(qw.bit_width)
        zp = getattr(qw, "zero_point", None)
        if zp is not None and bool(torch.any(torch.as_tensor(zp) != 0)):
            raise UnsupportedLayerError(f"{type(syn).__name__}: asymmetric weight quantization (zero point ≠ 0) is not supported")
    else:
        return None
    scale = torch.as_tensor(scale, device=syn.weight.device).to(torch.float64).flatten()
    if scale.numel() == 1:
        scale = scale.expand(c_out)
    if scale.numel() != c_out:
        raise UnsupportedLayerError(f"{type(syn).__name__}: weight scale must be per tensor or per output channel, got {scale.numel()} values")
    return w_int, scale, bits


def synaptic_current(block: Block, x_int: torch.Tensor, w_int: torch.Tensor) -> torch.Tensor:
    """J = sumpool(W_int ⊛ x_int), exact integers in float32 (no bias)."""
    syn = block.synapse
    w = w_int.to(x_int.dtype)
    if isinstance(syn, nn.Conv2d) or w.dim() == 4:
        j = F.conv2d(x_int, w, stride=syn.stride, padding=syn.padding)
    else:
        j = F.linear(x_int, w)
    for pool in block.pools:
        k = _pair(pool.kernel_size)
        j = F.avg_pool2d(j, k, k) * float(k[0] * k[1])  # sum pool: exact for integers < 2**24
    return j


def block_affine(block: Block, w_scale: torch.Tensor, input_scale: float,
                 y_for_stats: torch.Tensor | None = None, on_cpu: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (sigma, bias), float64: the float current is ``I = sigma * J + bias``.

    ``sigma = s_w * s_x * p * a_bn`` and ``bias = a_bn * conv_bias + (beta_bn - a_bn * mean)``.
    With ``y_for_stats`` (training: the pre-BatchNorm current, or its per-channel
    ``(mean, biased variance, count)``) the BatchNorm uses that batch's statistics and updates its
    running statistics like ``nn.BatchNorm`` does; otherwise its running statistics.
    ``on_cpu=True`` evaluates everything on detached CPU copies (what freeze and eval-mode
    forwards use, so that they run the very same float64 operations).
    """
    def _t(x: torch.Tensor) -> torch.Tensor:
        return (x.detach().cpu() if on_cpu else x).to(torch.float64)

    w_scale = _t(w_scale)
    dev = w_scale.device
    c = w_scale.shape[0]
    p = 1.0
    for pool in block.pools:
        k = _pair(pool.kernel_size)
        p = p / float(k[0] * k[1])
    sigma0 = w_scale * float(input_scale) * p
    syn_bias = block.synapse.bias
    cb = _t(syn_bias) if syn_bias is not None else torch.zeros(c, dtype=torch.float64, device=dev)
    bn = block.batchnorm
    if bn is None:
        return sigma0, cb
    gamma = _t(bn.weight) if bn.weight is not None else torch.ones(c, dtype=torch.float64, device=dev)
    beta = _t(bn.bias) if bn.bias is not None else torch.zeros(c, dtype=torch.float64, device=dev)
    if y_for_stats is not None and bn.training and not on_cpu:
        if isinstance(y_for_stats, tuple):  # (mean [C], biased var [C], values per channel), already reduced
            mean, var, n = y_for_stats
        else:
            dims = [d for d in range(y_for_stats.dim()) if d != 1]
            y = y_for_stats.to(torch.float64)
            mean = y.mean(dim=dims)
            var = y.var(dim=dims, unbiased=False)
            n = y.numel() // c
        if bn.track_running_stats:
            with torch.no_grad():
                bn.num_batches_tracked += 1
                m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                bn.running_mean.mul_(1 - m).add_(m * mean.detach().to(bn.running_mean.dtype))
                bn.running_var.mul_(1 - m).add_(m * (var.detach() * n / max(n - 1, 1)).to(bn.running_var.dtype))
    else:
        mean = _t(bn.running_mean)
        var = _t(bn.running_var)
    a = gamma / torch.sqrt(var + float(bn.eps))
    return sigma0 * a, a * cb + beta - a * mean
