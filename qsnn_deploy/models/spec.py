"""Architectures as plain data: a checkpoint rebuilds its network from this, never from pickled code.

An *arch spec* is a JSON-able dict::

    {"format": "qsnn-arch", "version": 1,
     "input": {"shape": [1, 28, 28], "scale": 1/255, "bits": 8, "signed": false},
     "num_steps": 25,
     "layers": [{"type": "conv", "name": "conv1", "in_channels": 1, "out_channels": 16, "kernel_size": 5,
                 "stride": 1, "padding": 0, "bias": false, "weight_bits": 4},
                {"type": "avgpool", "kernel_size": 2},
                {"type": "batchnorm", "num_features": 16},
                {"type": "lif", "beta": 0.5, "threshold": 1.0, "reset": "subtract", "deploy_faithful": true,
                 "slope": 25, "frac_bits": 6, "state_bits": 24},
                {"type": "flatten"}, {"type": "dropout", "p": 0.2},
                {"type": "linear", "name": "fc", "in_features": 1024, "out_features": 10, "bias": false, "weight_bits": 4},
                {"type": "lif", "kind": "cuba", "alpha": 0.8, ...}]}

A SynSense Xylo net (:mod:`qsnn_deploy.nn.xylo`) takes 16 channels of spike counts (``"input": {"shape": [16],
"scale": 1, "bits": 4, "encoding": {...}}``, the encoding of :mod:`qsnn_deploy.data.rows`) and pairs
``{"type": "linear", "quant": "xylo", "weight_bits": 8, "unit": 1024, ...}`` (int8 weights, one shift) with
``{"type": "lif", "kind": "xylo", "size": 128, "max_spikes": 31, "recurrent": true, "threshold": 1.0,
"dash_syn": 1, "dash_mem": 3, "bias": true, "learn_dash": true, "dash_range": [1, 15], "unit": 1024,
"slope": 5}``.

Layer types: ``conv``, ``linear`` (``weight_bits`` null = float torch layer, 1 = binarized
±1 weights with a straight-through estimator, 2..8 = Brevitas narrow-range integer weights), ``avgpool``, ``batchnorm``, ``dropout``, ``flatten``, ``lif``
(``deploy_faithful`` true = :class:`~qsnn_deploy.nn.QLeaky`, false = ``snntorch.Leaky``; with ``"kind": "cuba"``
and a current decay ``alpha``: :class:`~qsnn_deploy.nn.QSynaptic` / ``snntorch.Synaptic``).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch.nn as nn

from ..errors import CheckpointError
from ..nn import QLeaky, QSequential, QSynaptic, QXylo, XyloLinear
from ..nn.binary import BinaryConv2d, BinaryLinear

ARCH_FORMAT = "qsnn-arch"
ARCH_VERSION = 1
LAYER_TYPES = ("conv", "linear", "avgpool", "batchnorm", "dropout", "flatten", "lif")


def _require(entry: dict, key: str, index: int):
    if key not in entry:
        raise CheckpointError(f"arch layer {index} ({entry.get('type')!r}): missing field {key!r}")
    return entry[key]


def build_layer(entry: dict[str, Any], index: int) -> nn.Module:
    """One torch module from one layer entry."""
    import snntorch as snn
    from snntorch import surrogate

    kind = entry.get("type")
    if kind == "conv":
        args = dict(in_channels=int(_require(entry, "in_channels", index)), out_channels=int(_require(entry, "out_channels", index)),
                    kernel_size=_require(entry, "kernel_size", index), stride=entry.get("stride", 1),
                    padding=entry.get("padding", 0), bias=bool(entry.get("bias", False)))
        bits = entry.get("weight_bits")
        if bits is None:
            return nn.Conv2d(**args)
        if int(bits) == 1:
            return BinaryConv2d(**args)
        import brevitas.nn as qnn
        return qnn.QuantConv2d(**args, weight_bit_width=int(bits))
    if kind == "linear" and entry.get("quant") == "xylo":
        return XyloLinear(int(_require(entry, "in_features", index)), int(_require(entry, "out_features", index)),
                          weight_bits=int(entry.get("weight_bits") or 8), unit=float(entry.get("unit", 4096.0)))
    if kind == "linear":
        args = dict(in_features=int(_require(entry, "in_features", index)), out_features=int(_require(entry, "out_features", index)),
                    bias=bool(entry.get("bias", False)))
        bits = entry.get("weight_bits")
        if bits is None:
            return nn.Linear(**args)
        if int(bits) == 1:
            return BinaryLinear(**args)
        import brevitas.nn as qnn
        return qnn.QuantLinear(**args, weight_bit_width=int(bits))
    if kind == "avgpool":
        k = _require(entry, "kernel_size", index)
        return nn.AvgPool2d(k, k)
    if kind == "batchnorm":
        n = int(_require(entry, "num_features", index))
        return nn.BatchNorm2d(n) if entry.get("dims", 2) == 2 else nn.BatchNorm1d(n)
    if kind == "dropout":
        return nn.Dropout(float(entry.get("p", 0.5)))
    if kind == "flatten":
        return nn.Flatten()
    if kind == "lif" and entry.get("kind") == "xylo":
        return QXylo(int(_require(entry, "size", index)), max_spikes=int(entry.get("max_spikes", 31)),
                     threshold=entry.get("threshold", 1.0), dash_syn=entry.get("dash_syn", 2),
                     dash_mem=entry.get("dash_mem", 4), bias=bool(entry.get("bias", True)),
                     recurrent=bool(entry.get("recurrent", False)), rec_bits=int(entry.get("rec_bits", 8)),
                     unit=float(entry.get("unit", 4096.0)), slope=float(entry.get("slope", 5.0)),
                     learn_threshold=bool(entry.get("learn_threshold", True)), learn_dash=bool(entry.get("learn_dash", True)),
                     dash_range=tuple(entry.get("dash_range", (1, 15))))
    if kind == "lif":
        slope = float(entry.get("slope", 25))
        grad = surrogate.fast_sigmoid(slope=slope)
        common = dict(beta=entry.get("beta", 0.5), threshold=entry.get("threshold", 1.0), spike_grad=grad,
                      reset_mechanism=entry.get("reset", "subtract"), learn_beta=bool(entry.get("learn_beta", False)),
                      learn_threshold=bool(entry.get("learn_threshold", False)))
        kind = entry.get("kind", "lif")
        if kind not in ("lif", "cuba"):
            raise CheckpointError(f"arch layer {index} ('lif'): unknown neuron kind {kind!r}; known: lif, cuba, xylo")
        faithful = dict(frac_bits=int(entry.get("frac_bits", 6)), state_bits=int(entry.get("state_bits", 24)),
                        threshold_step=int(entry.get("threshold_step", 1)), surrogate_slope=slope)
        if kind == "cuba":
            cuba = dict(alpha=_require(entry, "alpha", index), learn_alpha=bool(entry.get("learn_alpha", False)))
            if entry.get("deploy_faithful", True):
                return QSynaptic(**common, **cuba, **faithful, current_bits=int(entry.get("current_bits", 24)))
            return snn.Synaptic(**common, **cuba)
        if entry.get("deploy_faithful", True):
            return QLeaky(**common, **faithful)
        return snn.Leaky(**common)
    raise CheckpointError(f"arch layer {index}: unknown type {kind!r}; known: {', '.join(LAYER_TYPES)}")


def build_model(arch: dict[str, Any]) -> QSequential:
    """A :class:`QSequential` from an arch spec (validated; errors name the layer)."""
    if not isinstance(arch, dict) or arch.get("format") != ARCH_FORMAT:
        raise CheckpointError(f"not a qsnn architecture spec (format {arch.get('format') if isinstance(arch, dict) else type(arch)!r})")
    if arch.get("version") != ARCH_VERSION:
        raise CheckpointError(f"unsupported arch version {arch.get('version')!r} (this build reads {ARCH_VERSION})")
    inp = arch.get("input") or {}
    modules: "OrderedDict[str, nn.Module]" = OrderedDict()
    for i, entry in enumerate(arch.get("layers") or []):
        if not isinstance(entry, dict):
            raise CheckpointError(f"arch layer {i}: expected a dict, got {type(entry).__name__}")
        name = str(entry.get("name") or f"{entry.get('type')}{i}")
        if name in modules:
            raise CheckpointError(f"arch layer {i}: duplicate name {name!r}")
        modules[name] = build_layer(entry, i)
    return QSequential(modules, input_shape=tuple(inp.get("shape", ())), input_scale=float(inp.get("scale", 1 / 255)),
                       input_bits=int(inp.get("bits", 8)), input_signed=bool(inp.get("signed", False)),
                       num_steps=int(arch.get("num_steps", 25)), input_encoding=inp.get("encoding"))
