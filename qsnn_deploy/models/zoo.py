"""The seeds' architectures as arch specs (see :mod:`qsnn_deploy.models.spec`), their paper presets,
and the paper's initialisation.

* MNIST / FashionMNIST: 16C5-AP2-BN-LIF -> 64C5-AP2-BN-LIF -> Dense1024->10-Dropout-LIF, 1x28x28
  raw pixels (uint8, scale 1/255) repeated every step.
* DVS128 Gesture: 2->16C5-AP2-LIF -> 32C5-AP2-LIF -> Dense800->11-Dropout-LIF on 2x32x32 event-count
  frames (5 ms bins).

* MNIST / FashionMNIST as rows over time (``mnist-rows``, ``fashion-mnist-rows``: 16 channels of spike counts,
  :mod:`qsnn_deploy.data.rows`) for SynSense Xylo: 16 -> H recurrent Xylo neurons -> 10 Xylo readouts
  (:func:`xylo_arch`).

Precisions: ``float`` (torch layers), ``int8``/``int4``/``int2`` (Brevitas narrow range),
``binary`` (±1 weights, straight-through; threshold annealing).
"""
from __future__ import annotations

import math
from typing import Any, TypeVar

import torch
import torch.nn as nn

from .spec import ARCH_FORMAT, ARCH_VERSION

ModuleT = TypeVar("ModuleT", bound=nn.Module)

PRECISION_BITS = {"float": None, "int8": 8, "int4": 4, "int2": 2, "binary": 1}

#: Table I of "Navigating Local Minima in Quantized SNNs" (values of the authors' first released configs, their
#: ``conf.py``; their later ``run.py`` uses other values, see docs/training.md): LIF beta and threshold,
#: fast-sigmoid slope k, Adam learning rate, batch size, dropout, BatchNorm, gradient-norm clip and weight clip;
#: T = 100 steps; cosine period 10 epochs.
PRESETS: dict[str, dict[str, Any]] = {
    "mnist": {"beta": 0.921, "threshold": 2.04, "slope": 6.03, "lr": 1.9e-3, "batch_size": 128, "dropout": 0.094,
              "batchnorm": True, "grad_clip": 1.0, "weight_clip": 1.0, "num_steps": 100, "period_epochs": 10},
    "fashion-mnist": {"beta": 0.39, "threshold": 1.47, "slope": 7.66, "lr": 2.0e-3, "batch_size": 128, "dropout": 0.13,
                      "batchnorm": True, "grad_clip": 1.0, "weight_clip": 1.0, "num_steps": 100, "period_epochs": 10},
    "dvs128": {"beta": 0.93, "threshold": 1.47, "slope": 9.70, "lr": 2.4e-3, "batch_size": 16, "dropout": 0.29,
               "batchnorm": False, "grad_clip": 1.0, "weight_clip": 1.0, "num_steps": 200, "period_epochs": 10},
    # Xylo (qsnn_deploy.nn.xylo): threshold in model units (unit = 1024 state units), fast-sigmoid slope per
    # model unit, no BatchNorm; T = 16 rows (one per step)
    "mnist-rows": {"beta": None, "threshold": 1.0, "slope": 5.0, "lr": 2e-3, "batch_size": 128, "dropout": 0.0,
                   "batchnorm": False, "grad_clip": 1.0, "weight_clip": 0.0, "num_steps": 16, "period_epochs": None},
    "fashion-mnist-rows": {"beta": None, "threshold": 1.0, "slope": 5.0, "lr": 2e-3, "batch_size": 128, "dropout": 0.0,
                           "batchnorm": False, "grad_clip": 1.0, "weight_clip": 0.0, "num_steps": 16, "period_epochs": None},
}

#: Xylo nets: state units per model unit (θ = 1.0 is 1024 of the int16 state's ±32767: up to 31 spikes a step)
XYLO_UNIT = 1024.0
#: Xylo nets: initial dashes (hidden: current 1, membrane 3; readout: 1 and 4), learned per neuron
XYLO_DASHES = {"hidden": (1, 3), "readout": (1, 4)}


def xylo_arch(hidden: int = 128, classes: int = 10, precision: str = "int8", threshold: float = 1.0, slope: float = 5.0,
              encoding: dict[str, Any] | None = None, recurrent: bool = True, unit: float = XYLO_UNIT,
              dataset: str = "mnist-rows", hidden_layers: int = 1) -> dict[str, Any]:
    """A SynSense Xylo net (:mod:`qsnn_deploy.nn.xylo`): 16 input channels (spike counts 0..15, the rows encoding
    of :mod:`qsnn_deploy.data.rows`) -> ``hidden_layers`` layers of ``hidden`` recurrent Xylo neurons (≤ 31
    spikes a step) -> ``classes`` Xylo readout neurons (1 spike a step). int8 (or int4-in-8) weights with one
    shift per matrix, learned per-neuron thresholds and dashes; a learned bias on the first hidden layer only (on
    Xylo every later layer runs steps behind the input and would integrate its bias before its first input
    arrives: those must have none). Layer names: ``hidden`` (``hidden2``, ...) and ``readout`` (the synapses;
    the frozen layers carry these names)."""
    from ..data.rows import DEFAULT_ENCODING, encoding_steps, input_bits

    bits = _bits(precision)
    if bits is None or bits < 2:
        raise ValueError(f"a Xylo net holds int8 weights: precision must be int8, int4 or int2, got {precision!r}")
    if int(hidden_layers) < 1:
        raise ValueError(f"hidden_layers must be at least 1, got {hidden_layers}")
    enc = dict(encoding or DEFAULT_ENCODING)
    (hs, hm), (os_, om) = XYLO_DASHES["hidden"], XYLO_DASHES["readout"]
    neuron = {"type": "lif", "kind": "xylo", "threshold": threshold, "bias": False, "learn_dash": True,
              "dash_range": [1, 15], "unit": unit, "slope": slope}
    layers: list[dict[str, Any]] = []
    fan_in = enc["size"]
    for k in range(int(hidden_layers)):
        name = "hidden" if k == 0 else f"hidden{k + 1}"
        layers += [{"type": "linear", "quant": "xylo", "name": name, "in_features": fan_in, "out_features": hidden,
                    "weight_bits": bits, "unit": unit},
                   dict(neuron, name=f"{name}_neurons", size=hidden, max_spikes=31, recurrent=recurrent, rec_bits=bits,
                        dash_syn=hs, dash_mem=hm, bias=k == 0)]
        fan_in = hidden
    layers += [{"type": "linear", "quant": "xylo", "name": "readout", "in_features": fan_in, "out_features": classes,
                "weight_bits": bits, "unit": unit},
               dict(neuron, name="readout_neurons", size=classes, max_spikes=1, recurrent=False, dash_syn=os_, dash_mem=om)]
    return {"format": ARCH_FORMAT, "version": ARCH_VERSION, "name": f"{dataset}-xylo",
            "input": {"shape": [enc["size"]], "scale": 1.0, "bits": input_bits(enc), "signed": False, "encoding": enc},
            "num_steps": encoding_steps(enc), "layers": layers}


def _lif(beta, threshold, slope, reset, deploy_faithful, frac_bits=6, state_bits=24) -> dict[str, Any]:
    return {"type": "lif", "beta": beta, "threshold": threshold, "slope": slope, "reset": reset,
            "deploy_faithful": deploy_faithful, "frac_bits": frac_bits, "state_bits": state_bits}


def _bits(precision: str):
    if precision not in PRECISION_BITS:
        raise ValueError(f"precision must be one of {sorted(PRECISION_BITS)}, got {precision!r}")
    return PRECISION_BITS[precision]


def mnist_arch(precision: str = "int4", deploy_faithful: bool = True, beta: float = 0.5, threshold: float = 1.0,
               slope: float = 25.0, reset: str = "subtract", batchnorm: bool = True, dropout: float = 0.0,
               num_steps: int = 25, frac_bits: int = 6, state_bits: int = 24) -> dict[str, Any]:
    """The seeds' MNIST/FashionMNIST QSNN (1x28x28 -> 10 classes)."""
    bits = _bits(precision)
    # float weights have no integers to be faithful to: such a model uses plain snntorch.Leaky
    lif = _lif(beta, threshold, slope, reset, deploy_faithful and bits is not None, frac_bits, state_bits)
    layers: list[dict[str, Any]] = [
        {"type": "conv", "name": "conv1", "in_channels": 1, "out_channels": 16, "kernel_size": 5, "bias": False, "weight_bits": bits},
        {"type": "avgpool", "name": "pool1", "kernel_size": 2},
    ]
    if batchnorm:
        layers.append({"type": "batchnorm", "name": "bn1", "num_features": 16})
    layers += [dict(lif, name="lif1"),
               {"type": "conv", "name": "conv2", "in_channels": 16, "out_channels": 64, "kernel_size": 5, "bias": False, "weight_bits": bits},
               {"type": "avgpool", "name": "pool2", "kernel_size": 2}]
    if batchnorm:
        layers.append({"type": "batchnorm", "name": "bn2", "num_features": 64})
    layers += [dict(lif, name="lif2"), {"type": "flatten", "name": "flatten"},
               {"type": "linear", "name": "fc", "in_features": 1024, "out_features": 10, "bias": False, "weight_bits": bits}]
    if dropout > 0:
        layers.append({"type": "dropout", "name": "dropout", "p": dropout})
    layers.append(dict(lif, name="lif3"))
    return {"format": ARCH_FORMAT, "version": ARCH_VERSION, "name": "mnist-qsnn",
            "input": {"shape": [1, 28, 28], "scale": 1.0 / 255.0, "bits": 8, "signed": False},
            "num_steps": num_steps, "layers": layers}


def dvs_arch(precision: str = "int4", deploy_faithful: bool = True, beta: float = 0.5, threshold: float = 1.0,
             slope: float = 25.0, reset: str = "subtract", num_steps: int = 200, input_bits: int = 8,
             dropout: float = 0.0, frac_bits: int = 6, state_bits: int = 24) -> dict[str, Any]:
    """The seeds' DVS128 Gesture QSNN (2x32x32 event-count frames -> 11 classes)."""
    bits = _bits(precision)
    # float weights have no integers to be faithful to: such a model uses plain snntorch.Leaky
    lif = _lif(beta, threshold, slope, reset, deploy_faithful and bits is not None, frac_bits, state_bits)
    layers = [
        {"type": "conv", "name": "conv1", "in_channels": 2, "out_channels": 16, "kernel_size": 5, "bias": False, "weight_bits": bits},
        {"type": "avgpool", "name": "pool1", "kernel_size": 2}, dict(lif, name="lif1"),
        {"type": "conv", "name": "conv2", "in_channels": 16, "out_channels": 32, "kernel_size": 5, "bias": False, "weight_bits": bits},
        {"type": "avgpool", "name": "pool2", "kernel_size": 2}, dict(lif, name="lif2"),
        {"type": "flatten", "name": "flatten"},
        {"type": "linear", "name": "fc", "in_features": 800, "out_features": 11, "bias": False, "weight_bits": bits},
    ]
    if dropout > 0:
        layers.append({"type": "dropout", "name": "dropout", "p": dropout})
    layers.append(dict(lif, name="lif3"))
    return {"format": ARCH_FORMAT, "version": ARCH_VERSION, "name": "dvs128-qsnn",
            "input": {"shape": [2, 32, 32], "scale": 1.0, "bits": input_bits, "signed": False},
            "num_steps": num_steps, "layers": layers}


def preset_arch(dataset: str, precision: str = "int4", num_steps: int | None = None, deploy_faithful: bool = True,
                reset: str = "subtract", **overrides: Any) -> dict[str, Any]:
    """The arch of ``dataset`` ("mnist", "fashion-mnist", "dvs128") with its Table I neuron values."""
    if dataset not in PRESETS:
        raise ValueError(f"dataset must be one of {sorted(PRESETS)}, got {dataset!r}")
    p = dict(PRESETS[dataset], **{k: v for k, v in overrides.items() if v is not None})
    steps = num_steps or p["num_steps"]
    common = dict(precision=precision, deploy_faithful=deploy_faithful, beta=p["beta"], threshold=p["threshold"],
                  slope=p["slope"], reset=reset, dropout=p["dropout"], num_steps=steps)
    if dataset == "dvs128":
        arch = dvs_arch(**common)
    else:
        arch = mnist_arch(batchnorm=p["batchnorm"], **common)
        arch["name"] = f"{dataset}-qsnn"
    return arch


def init_uniform_fan_in(model: ModuleT) -> ModuleT:
    """Paper eq. 7-8: every synaptic weight ~ U(-sqrt(a), sqrt(a)) with a = 1 / fan_in; biases 0.

    Initialises ``model`` in place and returns it (the same object, so its type is kept).
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            bound = math.sqrt(1.0 / fan_in)
            with torch.no_grad():
                m.weight.uniform_(-bound, bound)
                if m.bias is not None:
                    m.bias.zero_()
    return model
