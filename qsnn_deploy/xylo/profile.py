"""The ``xylo`` training profile: ``qsnn-train --profile xylo [--xylo-chip syns63300]`` trains only nets that
fit the chip (:mod:`.chips`), with the deploy-faithful Xylo layers of :mod:`qsnn_deploy.nn.xylo`.

An arch fits when (each refusal is a :class:`~qsnn_deploy.errors.FrozenNetError` naming the layer, the field
and the limit, before anything is trained):

* the input is one vector of at most ``chip.inputs`` (16) channels of spike counts (no image, no conv);
* it is a chain of ``linear (quant "xylo") -> lif (kind "xylo")`` blocks: int8 (or narrower) weights with one
  shift per matrix; every block but the last is a hidden layer (31 spikes a step, recurrent or not),
  the last is the readout (1 spike a step, no recurrent weights, at most ``chip.readouts`` neurons);
* only the first hidden layer has a bias: on Xylo layer ``l`` runs ``l`` steps behind the input (a hidden
  spike reaches the next layer one step later), and its neurons step from step 0, so a bias would drive them
  before their first input arrives, which the trained net (and the reference) do not;
* all hidden layers together hold at most ``chip.hidden`` neurons; on Xylo IMU only the first 128 hidden
  neurons take input and only the last 128 feed the readout, so the first and the last hidden layer
  hold at most 128 each;
* dashes lie in 0..15 (4 bits), state and thresholds are int16 (the neuron's own limits).

While training (:func:`project_xylo`, after every optimizer step) the learned dashes are kept inside their
range (the rounding clips them anyway; this keeps the float parameter from drifting away from it).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from ..errors import FrozenNetError
from .chips import DEFAULT_VERSION, Chip, chip as chip_of

if TYPE_CHECKING:
    from ..nn import QSequential

#: learning-rate multiplier of the per-neuron dashes (continuous parameters rounded to integers: a step of
#: the base rate would take ~1000 steps to move one dash by one)
DASH_LR_SCALE = 10.0
#: initial firing rates the calibration aims at (spikes per neuron per step)
HIDDEN_RATE, READOUT_RATE = 0.1, 0.05
#: initial recurrent weights: U(±REC_INIT/√H) model units
REC_INIT = 0.5


def check_xylo_arch(arch: dict[str, Any], version: str = DEFAULT_VERSION) -> Chip:
    """Refuse an arch spec that cannot run on Xylo ``version`` (module docstring); returns the chip."""
    chip = chip_of(version)
    where = f"{chip.name} ({chip.version})"
    shape = list((arch.get("input") or {}).get("shape") or [])
    if len(shape) != 1:
        raise FrozenNetError("input", "shape", f"{shape}: {where} takes one vector of at most {chip.inputs} input "
                             "channels (e.g. the rows encoding: --dataset mnist-rows), not an image")
    if int(shape[0]) > chip.inputs:
        raise FrozenNetError("input", "shape", f"{shape[0]} input channels; {where} has {chip.inputs}")
    entries = [e for e in arch.get("layers") or [] if e.get("type") not in ("dropout",)]
    blocks: list[tuple[dict, dict]] = []
    synapse = None
    for i, e in enumerate(entries):
        name = str(e.get("name") or f"layer{i}")
        kind = e.get("type")
        if kind == "linear":
            if e.get("quant") != "xylo":
                raise FrozenNetError(name, "quant", f"{e.get('quant')!r}; {where} holds int8 weights with one shift per "
                                     "matrix: the layer must be a XyloLinear (quant 'xylo')")
            bits = e.get("weight_bits")
            if bits is None or not 2 <= int(bits) <= chip.weight_bits:
                raise FrozenNetError(name, "weight_bits", f"{bits}; {where} holds {chip.weight_bits}-bit weights (2..8)")
            synapse = (name, e)
        elif kind == "lif":
            if e.get("kind") != "xylo":
                raise FrozenNetError(name, "kind", f"{e.get('kind', 'lif')!r}; {where} runs its own neuron (kind 'xylo')")
            if synapse is None:
                raise FrozenNetError(name, "type", "a neuron without a synapse in front of it")
            blocks.append((synapse[1] | {"name": synapse[0]}, e))
            synapse = None
        else:
            what = {"conv": "Xylo has no convolutions", "avgpool": "Xylo has no pooling",
                    "batchnorm": "Xylo has no BatchNorm (its per-neuron threshold and bias are trained directly)",
                    "flatten": "Xylo takes a flat vector"}.get(kind, "not a Xylo layer")
            raise FrozenNetError(name, "type", f"{kind!r}: {what}")
    if synapse is not None or len(blocks) < 2:
        raise FrozenNetError("net", "layers", f"{where} needs at least one hidden layer and a readout, each a XyloLinear "
                             "followed by a Xylo neuron")
    hidden, (ro_syn, ro) = blocks[:-1], blocks[-1]
    prev = int(shape[0])
    for syn, neu in blocks:
        if int(syn.get("in_features", -1)) != prev:
            raise FrozenNetError(syn["name"], "in_features", f"{syn.get('in_features')}; the layer before gives {prev}")
        size = int(neu.get("size", -1))
        if int(syn.get("out_features", -2)) != size:
            raise FrozenNetError(neu.get("name", "?"), "size", f"{size}; its synapse {syn['name']!r} gives {syn.get('out_features')}")
        lo, hi = (int(v) for v in neu.get("dash_range", (1, 15)))
        if not 0 <= lo <= hi <= chip.dash_max:
            raise FrozenNetError(neu.get("name", "?"), "dash_range", f"{lo}..{hi}; {where} holds 4-bit dashes 0..{chip.dash_max}")
        if neu.get("recurrent") and int(neu.get("rec_bits", 8)) > chip.weight_bits:
            raise FrozenNetError(neu.get("name", "?"), "rec_bits", f"{neu.get('rec_bits')}; {where} holds {chip.weight_bits}-bit weights")
        prev = size
    for syn, neu in hidden:
        if int(neu.get("max_spikes", 31)) != chip.hidden_spikes:
            raise FrozenNetError(neu.get("name", "?"), "max_spikes", f"{neu.get('max_spikes')}; a {where} hidden neuron "
                                 f"fires up to {chip.hidden_spikes} spikes a step (the cap the chip applies)")
    for k, (syn, neu) in enumerate(blocks[1:], start=1):
        if neu.get("bias", True):
            raise FrozenNetError(neu.get("name", "?"), "bias", f"a layer {k} step{'s' if k > 1 else ''} behind the input on "
                                 f"{where} must have no bias (limit 0): Xylo steps it from step 0, before its first input "
                                 "arrives; only the first hidden layer may have one")
    if int(ro.get("max_spikes", 1)) != chip.readout_spikes:
        raise FrozenNetError(ro.get("name", "?"), "max_spikes", f"{ro.get('max_spikes')}; a {where} readout neuron fires "
                             f"at most {chip.readout_spikes} spike a step")
    if ro.get("recurrent"):
        raise FrozenNetError(ro.get("name", "?"), "recurrent", f"{where} readout neurons have no recurrent weights")
    n_out = int(ro.get("size", 0))
    if n_out > chip.readouts:
        raise FrozenNetError(ro_syn["name"], "out_features", f"{n_out} readout neurons; {where} has {chip.readouts}")
    total = sum(int(neu.get("size", 0)) for _, neu in hidden)
    if total > chip.hidden:
        raise FrozenNetError(hidden[0][0]["name"], "out_features", f"{total} hidden neurons in all; {where} has {chip.hidden}")
    first, last = hidden[0], hidden[-1]
    if chip.input_expansion is not None and int(first[1]["size"]) > chip.input_expansion:
        raise FrozenNetError(first[0]["name"], "out_features", f"{first[1]['size']} neurons take the input; on {where} only "
                             f"the first {chip.input_expansion} hidden neurons do (input expansion)")
    if chip.output_expansion is not None and int(last[1]["size"]) > chip.output_expansion:
        raise FrozenNetError(last[0]["name"], "out_features", f"{last[1]['size']} neurons feed the readout; on {where} only "
                             f"the last {chip.output_expansion} hidden neurons do (output expansion)")
    return chip


def apply_xylo_profile(arch: dict[str, Any], version: str = DEFAULT_VERSION) -> dict[str, Any]:
    """``arch`` (a copy) checked for Xylo ``version`` and marked with the profile and chip."""
    import copy

    arch = copy.deepcopy(arch)
    chip = check_xylo_arch(arch, version)
    arch["profile"] = "xylo"
    arch["xylo_chip"] = chip.version
    return arch


def xylo_blocks(model: QSequential) -> list:
    """The Xylo blocks of a :class:`~qsnn_deploy.nn.QSequential` (synapse XyloLinear, neuron QXylo)."""
    from ..nn.xylo import QXylo

    return [b for b in model.blocks if isinstance(b.neuron, QXylo)]


@torch.no_grad()
def init_xylo(model: QSequential, rec_init: float = REC_INIT) -> None:
    """Initial recurrent weights ``U(±rec_init/√H)`` (model units) of every recurrent Xylo layer."""
    for b in xylo_blocks(model):
        r = b.neuron.recurrent
        if r is not None:
            r.uniform_(-1.0, 1.0).mul_(rec_init / math.sqrt(r.shape[0]))


@torch.no_grad()
def calibrate_xylo(model: QSequential, x: torch.Tensor, hidden_rate: float = HIDDEN_RATE,
                   readout_rate: float = READOUT_RATE, growth: float = 1.25, max_rounds: int = 40) -> list[float]:
    """Scale each Xylo layer's input weights up, layer by layer, until it fires ``hidden_rate`` (hidden layers) or
    ``readout_rate`` (the readout) spikes per neuron per step on ``x`` ([T, N, channels]); the fan-in
    initialisation leaves a net with no BatchNorm nearly silent. Returns each layer's final rate."""
    was = model.training
    model.eval()
    rates = []
    blocks = xylo_blocks(model)
    try:
        for k, b in enumerate(blocks):
            target = readout_rate if k == len(blocks) - 1 else hidden_rate
            rate = 0.0
            for _ in range(max_rounds):
                _, rec = model(x, record=True)
                rate = float(rec[b.name].mean())
                if rate >= target:
                    break
                b.synapse.weight.mul_(growth)
            rates.append(rate)
    finally:
        model.train(was)
    return rates


@torch.no_grad()
def project_xylo(model: QSequential) -> None:
    """Keep every learned dash inside its layer's range (module docstring)."""
    for b in xylo_blocks(model):
        lo, hi = b.neuron.dash_range
        for p in (b.neuron.dash_syn, b.neuron.dash_mem):
            p.clamp_(lo - 0.49, hi + 0.49)


def xylo_param_groups(model: QSequential, lr: float, dash_lr_scale: float = DASH_LR_SCALE) -> list[dict]:
    """Adam parameter groups: everything at ``lr`` first, then the dashes at ``lr · dash_lr_scale``
    (``lr_scale`` is what :class:`~qsnn_deploy.train.schedules.LRSchedule` multiplies its rate by)."""
    dash_ids = {id(p) for b in xylo_blocks(model) for p in (b.neuron.dash_syn, b.neuron.dash_mem)}
    rest = [p for p in model.parameters() if id(p) not in dash_ids]
    dashes = [p for p in model.parameters() if id(p) in dash_ids and p.requires_grad]
    groups = [{"params": rest, "lr": lr, "lr_scale": 1.0}]
    if dashes:
        groups.append({"params": dashes, "lr": lr * dash_lr_scale, "lr_scale": dash_lr_scale})
    return groups
