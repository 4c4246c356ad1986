"""What :func:`~qsnn_deploy.freeze.freeze` reads from a neuron module besides its integers: the kind and
reset a plain snnTorch neuron (``Leaky``, ``Synaptic``, ``RLeaky``, ``RSynaptic``) freezes to, and the
recurrent weights of a recurrent one, carried on the synapse at the narrowest signed width that holds them
(≤ :data:`~qsnn_deploy.frozen.MAX_RECURRENT_BITS` bits)."""
from __future__ import annotations

import dataclasses

import numpy as np
import snntorch as snn
import torch
import torch.nn as nn

from . import intmath
from .errors import FrozenNetError, UnsupportedLayerError
from .frozen import MAX_RECURRENT_BITS, Synapse


@dataclasses.dataclass
class _FloatNeuron:
    """How a plain snnTorch neuron freezes: the kind, its reset, whether it has α, its recurrent module."""

    kind: str
    reset: str
    alpha: bool
    recurrent: nn.Module | None


def _float_neuron(name: str, neuron: nn.Module) -> _FloatNeuron:
    """The neuron kind a plain snnTorch neuron freezes to, or :class:`UnsupportedLayerError` saying why not.

    ``Leaky``/``RLeaky`` -> ``"lif"``; ``Synaptic``/``RSynaptic`` -> ``"cuba"``. Resets (snnTorch 1.0,
    docs/design.md §7): "subtract" with the default ``reset_delay=True``; "zero" with ``reset_delay=False``
    (Loihi's order) for every class, and with ``reset_delay=True`` for ``Leaky`` (whose zero reset keeps
    the step's input); ``Synaptic``/``RLeaky``/``RSynaptic`` with ``reset_delay=True`` zero the NEW
    membrane value (the step's input is lost): kind ``"cuba"`` with reset ``"zero_delayed"`` (an
    ``RLeaky`` as a current with α = 0, i.e. ``i = J << F``: the same equation).
    """
    if not isinstance(neuron, (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic)):
        raise UnsupportedLayerError(f"block {name!r}: neuron {type(neuron).__name__} is not a snntorch Leaky, Synaptic, "
                                    "RLeaky or RSynaptic")
    cls = type(neuron).__name__
    modes = {0: "subtract", 1: "zero"}
    val = int(neuron.reset_mechanism_val)  # a 0-d tensor in snnTorch: dict lookups need the int
    if val not in modes:
        raise UnsupportedLayerError(f"block {name!r}: reset_mechanism 'none' is not supported (use 'subtract' or 'zero')")
    delay = bool(getattr(neuron, "reset_delay", True))
    reset = modes[val]
    if not delay and reset == "subtract":
        raise UnsupportedLayerError(f"block {name!r}: {cls}(reset_mechanism='subtract', reset_delay=False) is not supported "
                                    "(θ would be subtracted before the decay); use reset_delay=True or the zero reset")
    if getattr(neuron, "inhibition", False) or getattr(neuron, "state_quant", False):
        raise UnsupportedLayerError(f"block {name!r}: inhibition and state_quant are not supported")
    g = float(torch.as_tensor(getattr(neuron, "graded_spikes_factor", 1.0)))
    if g != 1.0:
        raise UnsupportedLayerError(f"block {name!r}: graded_spikes_factor={g} (only binary spikes are supported)")
    recurrent = getattr(neuron, "recurrent", None) if isinstance(neuron, (snn.RLeaky, snn.RSynaptic)) else None
    if isinstance(recurrent, nn.Conv2d):
        raise UnsupportedLayerError(f"block {name!r}: {cls} with a convolutional recurrent connection (conv2d_channels/"
                                    "kernel_size) is not supported; recurrent layers are dense (linear_features or all_to_all=False)")
    cuba = isinstance(neuron, (snn.Synaptic, snn.RSynaptic))
    if reset == "zero" and delay and not isinstance(neuron, snn.Leaky):
        return _FloatNeuron("cuba", "zero_delayed", cuba, recurrent)
    return _FloatNeuron("cuba" if cuba else "lif", reset, cuba, recurrent)


def _recurrent_weights(name: str, module: nn.Module, out_shape: tuple[int, ...], is_conv: bool) -> tuple[np.ndarray, np.ndarray]:
    """(R [C, C] float64, bias [C] float64) of an RLeaky/RSynaptic recurrent module: a Linear
    (``all_to_all=True``) or snnTorch's ``RecurrentOneToOne`` (``V·z``: a diagonal R)."""
    if is_conv or len(out_shape) != 1:
        raise UnsupportedLayerError(f"block {name!r}: a recurrent neuron after a conv synapse is not supported (dense only)")
    c = out_shape[0]
    if isinstance(module, nn.Linear):
        if tuple(module.weight.shape) != (c, c):
            raise FrozenNetError(name, "recurrent", f"Linear {tuple(module.weight.shape)} does not match the layer's {c} neurons")
        w = module.weight.detach().cpu().to(torch.float64).numpy()
        b = module.bias.detach().cpu().to(torch.float64).numpy() if module.bias is not None else np.zeros(c)
    elif hasattr(module, "V"):
        v = torch.as_tensor(module.V).detach().cpu().to(torch.float64).reshape(-1)
        if v.numel() not in (1, c):
            raise FrozenNetError(name, "V", f"{v.numel()} values for {c} neurons (one, or one per neuron)")
        w = np.diag(np.broadcast_to(v.numpy(), (c,)).copy())
        b = np.zeros(c)
    else:
        raise UnsupportedLayerError(f"block {name!r}: recurrent module {type(module).__name__} is not supported")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise FrozenNetError(name, "recurrent", "contains NaN or infinity")
    return w, b


def _with_recurrent(name: str, synapse: Synapse, recurrent: np.ndarray) -> Synapse:
    """``synapse`` carrying the integer recurrent weights at the narrowest signed width that holds them
    (≤ :data:`~qsnn_deploy.frozen.MAX_RECURRENT_BITS`: on the feed-forward current's grid, a recurrent weight
    fed 0/1 spikes is large where the layer's input is fine-grained, e.g. pixel/255)."""
    bits = intmath.bits_for_signed(int(np.abs(recurrent).max(initial=0)))
    if bits > MAX_RECURRENT_BITS:
        raise FrozenNetError(name, "recurrent", f"recurrent weights reach {int(np.abs(recurrent).max())} J units: more than "
                             f"{MAX_RECURRENT_BITS} bits on the feed-forward weights' grid (much larger than the feed-forward weights)")
    dtype = np.int8 if bits <= 8 else (np.int16 if bits <= 16 else np.int32)
    return dataclasses.replace(synapse, recurrent=recurrent.astype(dtype), recurrent_bits=bits)
