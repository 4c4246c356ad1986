"""``QSequential``: the documented way to declare a spiking network's layer order.

A ``QSequential`` is an ``nn.Sequential`` of LIF blocks (see :mod:`qsnn_deploy.nn.blocks`) plus the
facts the integer deployment needs: the input's float scale (1/255 for raw pixels fed as
``pixel/255``), shape and bit width, and the default number of time steps.

Its forward pass runs the whole network over T steps, layer by layer (the network is
feed-forward, so layer l at step t needs only layer l-1 at step t): each synapse processes all T
steps in one batched conv, a static input is convolved once, and each neuron module is called once
per step (so forward hooks on neurons see every step). Blocks closed by a
:class:`~qsnn_deploy.nn.QLeaky` run the integer semantics exactly (deploy-faithful); blocks closed
by a plain ``snntorch.Leaky`` run snnTorch's float semantics.
"""
from __future__ import annotations

import snntorch as snn
import torch
import torch.nn as nn

from ..errors import FrozenNetError, UnsupportedLayerError
from ..intmath import FLOAT32_EXACT, FLOAT64_EXACT
from .blocks import Block, block_affine, parse_blocks, quantized_weight, synaptic_current
from .fused_cuba import cuba_sequence
from .fused_lif import lif_sequence
from .neuron import QLeaky
from .synaptic import QSynaptic
from .ste import round_ste
from .xylo import QXylo, link_shift_groups, run_xylo_block


class QSequential(nn.Sequential):
    """A spiking ``nn.Sequential`` that knows its input and time steps.

    Args:
        *modules: layers in order (blocks of synapse, pool/BatchNorm/dropout, neuron).
        input_shape: per-sample input shape, e.g. (1, 28, 28).
        input_scale: float value of one integer input unit (1/255 for pixels, 1 for spikes).
        input_bits: width of the integer input (8 for pixels, 1 for spikes).
        input_signed: whether the integer input may be negative.
        num_steps: default T.
        input_encoding: how raw data becomes this input, as recorded in the arch (e.g. the rows-over-time
            encoding of :mod:`qsnn_deploy.data.rows`), or None; freeze copies it into the frozen net's metadata.

    ``fused`` (default True): deploy-faithful layers with a known fast-sigmoid slope and no forward
    hooks run all T steps as one autograd node (:mod:`qsnn_deploy.nn.fused_lif` for QLeaky,
    :mod:`qsnn_deploy.nn.fused_cuba` for QSynaptic): the same spikes bit for bit, far less autograd
    overhead in training. Hooks on a neuron (verify's per-step capture) or ``fused = False`` keep the
    step-by-step path.
    """

    fused: bool = True

    def __init__(self, *modules: nn.Module, input_shape: tuple[int, ...], input_scale: float = 1.0 / 255.0,
                 input_bits: int = 8, input_signed: bool = False, num_steps: int = 25,
                 input_encoding: dict | None = None):
        if len(modules) == 1 and isinstance(modules[0], dict):
            super().__init__(modules[0])  # an OrderedDict of named modules
        else:
            super().__init__(*modules)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.input_scale = float(input_scale)
        self.input_bits = int(input_bits)
        self.input_signed = bool(input_signed)
        self.num_steps = int(num_steps)
        self.input_encoding = dict(input_encoding) if input_encoding else None
        self._blocks = parse_blocks(list(self.named_children()))
        link_shift_groups(self._blocks)  # Xylo: one shift for every matrix that lands in weights_rec

    def _can_fuse(self, neuron: nn.Module) -> bool:
        return (self.fused and isinstance(neuron, (QLeaky, QSynaptic))
                and getattr(neuron, "surrogate_slope", None) is not None
                and not _has_hooks(neuron) and not torch.jit.is_scripting())

    @property
    def blocks(self) -> list[Block]:
        """The LIF blocks (synapse, pool/BatchNorm/dropout, neuron) in order, as parsed at construction."""
        return self._blocks

    def forward(self, x: torch.Tensor, num_steps: int | None = None, record: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run T steps. ``x``: [N, *input_shape] (repeated every step) or [T, N, *input_shape], float
        in model units (integer input × input_scale). Returns the output spikes [T, N, classes],
        or (output, {block name: spikes [T, N, ...]}) with ``record=True``."""
        per_sample = len(self.input_shape)
        if x.dim() == per_sample + 1:
            static, steps = True, int(num_steps or self.num_steps)
        elif x.dim() == per_sample + 2:
            static, steps = False, x.shape[0]
        else:
            raise ValueError(f"expected input [N, {self.input_shape}] or [T, N, {self.input_shape}], got {tuple(x.shape)}")
        h = x if static else x.reshape((-1,) + tuple(x.shape[2:]))
        n = x.shape[0] if static else x.shape[1]
        recorded = {}
        spikes = None
        x_max = float((1 << (self.input_bits - 1)) if self.input_signed else (1 << self.input_bits) - 1)
        for i, block in enumerate(self._blocks):
            scale = self.input_scale if i == 0 else 1.0
            if isinstance(block.neuron, QXylo):
                spikes = self._run_xylo(block, h, scale, static, steps, n, x_max)
                recorded[block.name] = spikes
                static = False
                h = spikes.reshape((steps * n,) + tuple(spikes.shape[2:]))
                x_max = float(block.neuron.max_spikes)
                continue
            x_max = 1.0
            fuse = self._can_fuse(block.neuron)
            current, sigma, bias = self._block_current(block, h, scale, integer_current=fuse)
            spikes = self._run_neuron(block, current, sigma, bias, static, steps, n, fuse)
            recorded[block.name] = spikes
            static = False
            h = spikes.reshape((steps * n,) + tuple(spikes.shape[2:]))
        return (spikes, recorded) if record else spikes

    # ------------------------------------------------------------------ internals
    def _run_xylo(self, block: Block, h: torch.Tensor, input_scale: float, static: bool, steps: int, n: int,
                  x_max: float) -> torch.Tensor:
        """A Xylo block (:mod:`qsnn_deploy.nn.xylo`) over all T steps: integer input counts [T, N, in] -> spike
        counts [T, N, size]."""
        for m in block.pre:
            h = m(h)
        if any(not isinstance(m, (nn.Identity, nn.Dropout)) for m in block.post):
            raise UnsupportedLayerError(f"block {block.name!r}: a Xylo layer takes nothing between its synapse and neuron "
                                        f"(found {[type(m).__name__ for m in block.post]})")
        if not hasattr(block.synapse, "shifted_weight"):
            raise UnsupportedLayerError(f"block {block.name!r}: a Xylo neuron (QXylo) needs a XyloLinear synapse, got "
                                        f"{type(block.synapse).__name__}")
        x = h if input_scale == 1.0 else round_ste(h / input_scale)
        x = x.reshape((1, n, -1)).expand(steps, n, -1) if static else x.reshape((steps, n, -1))
        return run_xylo_block(block.synapse, block.neuron, x, x_max)

    def _block_current(self, block: Block, h: torch.Tensor, input_scale: float, integer_current: bool = False):
        """(current, sigma, bias) of a block: the synaptic current in membrane units
        (``J·sigma + bias``), or — ``integer_current``, for the fused LIF — the integer current J
        itself (after training-time dropout), with the per-channel sigma and bias."""
        for m in block.pre:
            h = m(h)
        if not block.deploy_faithful:
            for m in [block.synapse] + block.post:
                h = m(h)
            return h, None, None
        quant = quantized_weight(block.synapse)
        if quant is None:
            raise UnsupportedLayerError(f"block {block.name!r}: a deploy-faithful neuron (QLeaky, QSynaptic) needs a quantized synapse "
                                        "(brevitas QuantConv2d/QuantLinear or a module with qsnn_int_weight())")
        w_int, w_scale, bits = quant
        first = block is self._blocks[0]
        # spikes from the previous layer (scale 1) are already exact integers 0/1: no rounding needed
        x_int = h if (not first and input_scale == 1.0) else round_ste(h / input_scale)
        x_max = ((1 << (self.input_bits - 1)) if self.input_signed else (1 << self.input_bits) - 1) if first else 1
        bound = _current_bound(block, w_int, x_int, bits, x_max)
        if bound >= FLOAT32_EXACT:
            if bound >= FLOAT64_EXACT:
                raise FrozenNetError(block.name, "weight", f"the deploy-faithful forward computes J in float64, exact "
                                     f"only below 2^53; this block's |J| may reach {int(bound)}. Use narrower weights "
                                     "or inputs (the frozen net still runs exactly in every backend).")
            x_int = x_int.to(torch.float64)  # docs/integer-semantics.md §2a: float32 holds J exactly only below 2**24
        j = synaptic_current(block, x_int, w_int)
        for m in block.post:
            if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d)):
                j = m(j)
        y_stats = None
        if self.training and block.batchnorm is not None:
            cb = block.synapse.bias
            # BatchNorm's batch statistics of y = J·sigma0 + conv_bias, from J's (float32, no float64 copy of J)
            dims = [d for d in range(j.dim()) if d != 1]
            var_j, mean_j = torch.var_mean(j, dim=dims, unbiased=False)
            s0 = w_scale.to(torch.float64) * input_scale * _pool_factor(block)
            cb64 = 0.0 if cb is None else cb.to(torch.float64)
            y_stats = (mean_j.to(torch.float64) * s0 + cb64, var_j.to(torch.float64) * s0 * s0, j.numel() // j.shape[1])
        if not self.training:
            # Evaluate the per-channel affine in float64 on the CPU: the exact same operations as freeze().
            sigma, bias = block_affine(block, w_scale, input_scale, on_cpu=True)
            sigma, bias = sigma.to(j.device), bias.to(j.device)
        else:
            sigma, bias = block_affine(block, w_scale, input_scale, y_stats)
        if integer_current:
            # J = round((J·sigma + bias - bias) / |sigma|) = sign(sigma)·J: a negative BatchNorm gamma flips it
            negative = sigma.detach() < 0
            if bool(negative.any()):
                j = j * _cview(torch.where(negative, -1.0, 1.0).to(j.dtype), j.dim())
            return j, sigma, bias
        current = j.to(torch.float64) * _cview(sigma, j.dim()) + _cview(bias, j.dim())
        return current, sigma, bias

    def _run_neuron(self, block: Block, current: torch.Tensor, sigma, bias, static: bool, steps: int, n: int,
                    fuse: bool = False):
        neuron = block.neuron
        if not static:
            current = current.reshape((steps, n) + tuple(current.shape[1:]))
        if fuse and isinstance(neuron, QSynaptic):  # current is the integer current J (_block_current)
            sigma_abs = sigma.to(torch.float64).abs()
            bias = bias.to(torch.float64)
            theta_int, b_int, a, d = neuron.integer_params(sigma_abs, bias)
            spikes, clipped = cuba_sequence(current, sigma_abs, bias, theta_int, b_int, a, d,
                                            frac_bits=neuron.frac_bits, state_bits=neuron.state_bits,
                                            current_bits=neuron.current_bits, zero_reset=neuron.reset_mode == "zero",
                                            slope=neuron.surrogate_slope,
                                            static=static, steps=steps, direct=True)
            neuron.saturation_events += clipped
            return spikes
        if fuse:  # QLeaky; current is the integer current J (_block_current)
            sigma_abs = sigma.to(torch.float64).abs()
            bias = bias.to(torch.float64)
            theta_int, b_int, d = neuron.integer_params(sigma_abs, bias)
            spikes, clipped = lif_sequence(current, sigma_abs, bias, theta_int, b_int, d, frac_bits=neuron.frac_bits,
                                           state_bits=neuron.state_bits, zero_reset=neuron.reset_mechanism_val != 0,
                                           slope=neuron.surrogate_slope, static=static, steps=steps, direct=True)
            neuron.saturation_events += clipped
            return spikes
        outs = []
        mem = syn = None
        if getattr(neuron, "init_hidden", False):
            neuron.reset_mem()
        for t in range(steps):
            cur_t = current if static else current[t]
            if isinstance(neuron, QSynaptic):
                spk, syn, mem = neuron(cur_t, syn, mem, sigma=sigma, bias=bias)
            elif isinstance(neuron, QLeaky):
                spk, mem = neuron(cur_t, mem, sigma=sigma, bias=bias)
            elif getattr(neuron, "init_hidden", False):
                out = neuron(cur_t)
                spk = out[0] if isinstance(out, tuple) else out
            else:
                if mem is None:
                    # snnTorch >= 0.9 neurons keep their last state in ``self.mem`` and resume from it when
                    # called with mem=None: start every forward from zero, or a batch would begin where the
                    # previous one ended (and backward would reach into the previous batch's graph)
                    mem, syn, prev = (torch.zeros_like(cur_t) for _ in range(3))
                if isinstance(neuron, snn.RSynaptic):
                    spk, syn, mem = neuron(cur_t, prev, syn, mem)
                elif isinstance(neuron, snn.Synaptic):
                    spk, syn, mem = neuron(cur_t, syn, mem)
                elif isinstance(neuron, snn.RLeaky):
                    spk, mem = neuron(cur_t, prev, mem)
                else:
                    spk, mem = neuron(cur_t, mem)
                prev = spk
            outs.append(spk.to(torch.float32))
        return torch.stack(outs)


def _has_hooks(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _current_bound(block: Block, w_int: torch.Tensor, x_int: torch.Tensor, bits: int, x_max: int) -> float:
    """Largest |J| this block can produce.

    First the static worst case from shapes and bit widths (fan-in x 2**(bits-1) x pool area x
    max|x|), which needs no look at the data (no GPU sync); only when that reaches 2**24 the actual
    weights and inputs are inspected: max over channels of sum|W| x pool area x max|x|.
    """
    area = round(1.0 / _pool_factor(block))
    fan_in = int(w_int[0].numel())
    static = float(fan_in) * float(1 << max(bits - 1, 0)) * area * float(x_max)
    if static < FLOAT32_EXACT or x_int.numel() == 0:
        return static if x_int.numel() else 0.0
    w_abs = w_int.detach().abs().reshape(w_int.shape[0], -1).sum(dim=1).max()
    return float(w_abs) * area * float(x_int.detach().abs().max())


def _pool_factor(block: Block) -> float:
    p = 1.0
    for pool in block.pools:
        k = pool.kernel_size
        k = (k, k) if isinstance(k, int) else k
        p /= float(k[0] * k[1])
    return p


def _cview(t: torch.Tensor, ndim: int) -> torch.Tensor:
    return t.view((-1,) + (1,) * max(ndim - 2, 0))
