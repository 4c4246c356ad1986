"""The seeds' architectures as arch specs (see :mod:`qsnn_deploy.models.spec`), their paper presets,
and the paper's initialisation.

* MNIST / FashionMNIST: 16C5-AP2-BN-LIF -> 64C5-AP2-BN-LIF -> Dense1024->10-Dropout-LIF, 1x28x28
  raw pixels (uint8, scale 1/255) repeated every step.
* DVS128 Gesture: 2->16C5-AP2-LIF -> 32C5-AP2-LIF -> Dense800->11-Dropout-LIF on 2x32x32 event-count
  frames (5 ms bins).

Precisions: ``float`` (torch layers), ``int8``/``int4``/``int2`` (Brevitas narrow range),
``binary`` (±1 weights, straight-through; threshold annealing).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

from .spec import ARCH_FORMAT, ARCH_VERSION

PRECISION_BITS = {"float": None, "int8": 8, "int4": 4, "int2": 2, "binary": 1}

#: Table I of "Navigating Local Minima in Quantized SNNs" (values of the authors' released configs):
#: LIF beta and threshold, fast-sigmoid slope k, Adam learning rate, batch size, dropout, BatchNorm,
#: gradient-norm clip and weight clip; T = 100 steps; cosine period 10 epochs.
PRESETS: dict[str, dict[str, Any]] = {
    "mnist": {"beta": 0.921, "threshold": 2.04, "slope": 6.03, "lr": 1.9e-3, "batch_size": 128, "dropout": 0.094,
              "batchnorm": True, "grad_clip": 1.0, "weight_clip": 1.0, "num_steps": 100, "period_epochs": 10},
    "fashion-mnist": {"beta": 0.39, "threshold": 1.47, "slope": 7.66, "lr": 2.0e-3, "batch_size": 128, "dropout": 0.13,
                      "batchnorm": True, "grad_clip": 1.0, "weight_clip": 1.0, "num_steps": 100, "period_epochs": 10},
    "dvs128": {"beta": 0.93, "threshold": 1.47, "slope": 9.70, "lr": 2.4e-3, "batch_size": 16, "dropout": 0.29,
               "batchnorm": False, "grad_clip": 1.0, "weight_clip": 1.0, "num_steps": 200, "period_epochs": 10},
}


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
                reset: str = "subtract", **overrides) -> dict[str, Any]:
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


def init_uniform_fan_in(model: nn.Module) -> nn.Module:
    """Paper eq. 7-8: every synaptic weight ~ U(-sqrt(a), sqrt(a)) with a = 1 / fan_in; biases 0."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            bound = math.sqrt(1.0 / fan_in)
            with torch.no_grad():
                m.weight.uniform_(-bound, bound)
                if m.bias is not None:
                    m.bias.zero_()
    return model
