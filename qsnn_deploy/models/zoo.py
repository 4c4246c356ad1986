"""The seeds' architectures as arch specs (see :mod:`qsnn_deploy.models.spec`).

* MNIST / FashionMNIST: 16C5-AP2-BN-LIF -> 64C5-AP2-BN-LIF -> Dense1024->10-(Dropout)-LIF, 1x28x28
  raw pixels (uint8, scale 1/255) repeated every step.
* DVS128 Gesture: 2->16C5-AP2-LIF -> 32C5-AP2-LIF -> Dense800->11-LIF on 2x32x32 event frames.
"""
from __future__ import annotations

from typing import Any

from .spec import ARCH_FORMAT, ARCH_VERSION

PRECISION_BITS = {"float": None, "int8": 8, "int4": 4, "int2": 2}


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
    lif = _lif(beta, threshold, slope, reset, deploy_faithful, frac_bits, state_bits)
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
             frac_bits: int = 6, state_bits: int = 24) -> dict[str, Any]:
    """The seeds' DVS128 Gesture QSNN (2x32x32 event-count frames -> 11 classes)."""
    bits = _bits(precision)
    lif = _lif(beta, threshold, slope, reset, deploy_faithful, frac_bits, state_bits)
    layers = [
        {"type": "conv", "name": "conv1", "in_channels": 2, "out_channels": 16, "kernel_size": 5, "bias": False, "weight_bits": bits},
        {"type": "avgpool", "name": "pool1", "kernel_size": 2}, dict(lif, name="lif1"),
        {"type": "conv", "name": "conv2", "in_channels": 16, "out_channels": 32, "kernel_size": 5, "bias": False, "weight_bits": bits},
        {"type": "avgpool", "name": "pool2", "kernel_size": 2}, dict(lif, name="lif2"),
        {"type": "flatten", "name": "flatten"},
        {"type": "linear", "name": "fc", "in_features": 800, "out_features": 11, "bias": False, "weight_bits": bits},
        dict(lif, name="lif3"),
    ]
    return {"format": ARCH_FORMAT, "version": ARCH_VERSION, "name": "dvs128-qsnn",
            "input": {"shape": [2, 32, 32], "scale": 1.0, "bits": input_bits, "signed": False},
            "num_steps": num_steps, "layers": layers}
