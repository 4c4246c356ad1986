"""torch model -> :class:`~qsnn_deploy.frozen.FrozenNet` (the only module that knows both worlds).

Folding (docs/integer-semantics.md §3), per LIF block ``synapse -> [avg-pool] -> [BatchNorm] -> neuron``:

* integer weights: Brevitas ``quant_weight().int()`` semantics (value / scale, exact), or a plain
  float weight quantized here to ``weight_bits`` (per tensor, symmetric, narrow range);
* ``sigma_c = s_w,c * s_x * p * a_c`` with ``a_c = gamma_c / sqrt(running_var_c + eps)``,
  ``p = 1/area`` of the average pool, ``s_x`` the input scale (1 for spikes);
* ``bias_c = a_c * conv_bias_c + beta_c - a_c * running_mean_c``;
* a channel with ``sigma_c < 0`` (negative BatchNorm gamma) has its weights negated, which flips
  the inequality back (narrow-range weights cannot overflow; a full-range weight that would is
  refused);
* ``theta_int = round(theta * 2**F / |sigma|)``, ``b_int = round(bias * 2**F / |sigma|)``,
  ``d = round(beta * 4096)``.

A SynSense Xylo block (:class:`~qsnn_deploy.nn.xylo.XyloLinear` + :class:`~qsnn_deploy.nn.xylo.QXylo`) freezes
to a ``dense`` synapse of its already-shifted integer weights ``w_int << shift`` (and recurrent weights
``R_int << shift_rec``) and a :class:`~qsnn_deploy.neurons.XyloNeuron` holding the very integers its forward
pass uses (:meth:`QXylo.frozen_neuron`); a model recording an input encoding (the rows datasets) passes it
on in ``metadata["input_encoding"]``, with a non-static input.

For :class:`~qsnn_deploy.nn.QLeaky` blocks these integers come from the neuron's own
``integer_params`` (the very function its forward pass uses): the frozen net is then exactly the
trained model. For plain ``snntorch.Leaky`` blocks they are rounded here, and agreement with the
float model is something :mod:`qsnn_deploy.verify` measures.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

from . import intmath
from .calling import ForwardFn, inspect_model
from .errors import FrozenNetError, QSNNWarning, SaturationWarning, UnsupportedLayerError
from .freeze_neurons import _float_neuron, _recurrent_weights, _with_recurrent
from .frozen import FrozenNet, InputSpec, Layer, Synapse
from .neurons import LIF, CubaLIF
from .statebound import choose_frac_bits, clip_risk_message, current_extremes, layer_state_bound
from .nn.blocks import Block, block_affine, parse_blocks, quantized_weight
from .nn.neuron import QNeuron
from .nn.sequential import QSequential
from .nn.xylo import QXylo

__all__ = ["freeze"]


def freeze(model: nn.Module, *, layers: Sequence | None = None, input_shape: Sequence[int] | None = None,
           input_scale: float | None = None, input_bits: int | None = None, input_signed: bool | None = None,
           num_steps: int | None = None, weight_bits: int = 8, frac_bits: int | None = None,
           state_bits: int = intmath.DEFAULT_STATE_BITS, metadata: dict | None = None,
           max_frac_bits: int = intmath.DEFAULT_FRAC_BITS, calibration: np.ndarray | None = None,
           calibration_margin: float = 2.0, forward: ForwardFn | None = None) -> FrozenNet:
    """Freeze a spiking torch model into integer tensors.

    Args:
        model: a :class:`~qsnn_deploy.nn.QSequential` (input facts are read from it), an
            ``nn.Sequential`` of blocks (snnTorch style, ``init_hidden=True`` neurons), or any module
            whose ``forward(x)`` runs its own time loop (the snnTorch tutorials' classes): its layer
            order and T are found by running it once (:mod:`qsnn_deploy.calling`).
        layers: the layer order where it cannot be found from the forward pass: the modules (or
            their names, or (name, module) pairs) in the order one time step applies them;
            functional ops as modules (``F.avg_pool2d(x, 2)`` -> ``nn.AvgPool2d(2)``,
            ``x.flatten(1)`` -> ``nn.Flatten()``).
        forward: ``forward(model, x, num_steps)`` for a model called in a way
            :mod:`qsnn_deploy.calling` does not recognise (used to find the layer order).
        input_shape, input_scale, input_bits, input_signed: the input facts (``input_shape`` is
            required when the model is not a QSequential; ``input_scale`` defaults to 1/255 for
            8-bit input).
        num_steps: T recorded in the frozen net; default: the model's own (a QSequential's
            ``num_steps``, or the length of the time loop a ``forward(x)`` runs), else 100.
        weight_bits: width for plain float synapses (Brevitas layers keep their own width).
        frac_bits, state_bits: F and B_v for plain ``snntorch.Leaky`` neurons (QLeaky keeps its own,
            the F it was trained with). ``frac_bits=None`` (default) chooses F per layer: the
            largest F ≤ ``max_frac_bits`` for which :mod:`qsnn_deploy.statebound` proves that no
            input in range can clip the state and every threshold is reachable.
        max_frac_bits: the largest F the automatic choice considers.
        calibration: integer inputs [N, *input_shape] (as the frozen net takes them), used only for
            layers where no F has a proof: F is then the largest one whose state, simulated on
            these inputs, stays within ``1 / calibration_margin`` of the limit.
        calibration_margin: the data-driven bound's safety factor (default 2: half the range).
        metadata: extra provenance stored in the frozen net.

    The frozen net's ``metadata["frac_bits"]`` records, per layer, F and its basis (``proof``,
    ``data``, ``trained``, ``fixed`` or ``unproven``). A layer whose state can clip gets a
    :class:`~qsnn_deploy.errors.QSNNWarning` naming it and the fix.
    """
    call = inspect_model(model, input_shape, forward=forward, layers=layers)
    blocks = parse_blocks(call.layers)
    num_steps = num_steps or call.num_steps
    if isinstance(model, QSequential):
        input_shape = input_shape or model.input_shape
        input_scale = model.input_scale if input_scale is None else input_scale
        input_bits = model.input_bits if input_bits is None else input_bits
        input_signed = model.input_signed if input_signed is None else input_signed
        num_steps = num_steps or model.num_steps
    if input_shape is None:
        raise FrozenNetError("input", "shape", "unknown: pass input_shape=(C, H, W) (or use a QSequential, which records it)")
    input_bits = 8 if input_bits is None else int(input_bits)
    if input_scale is None:
        input_scale = 1.0 / 255.0 if input_bits == 8 else 1.0
    encoding = getattr(model, "input_encoding", None) if isinstance(model, QSequential) else None
    spec = InputSpec(tuple(int(s) for s in input_shape), input_bits, bool(input_signed), float(input_scale), encoding is None)
    was_training = model.training
    model.eval()
    choices: dict[str, dict] = {}
    try:
        with torch.no_grad():
            frozen_layers = []
            shape = spec.shape
            x_range = spec.value_range
            for i, block in enumerate(blocks):
                s_x = spec.scale if i == 0 else 1.0
                _check_flat_input(block, shape, spec.shape)
                if isinstance(block.neuron, QXylo):
                    layer, choice = _freeze_xylo_block(block, shape, x_range)
                else:
                    layer, choice = _freeze_block(block, s_x, shape, weight_bits, frac_bits, state_bits, x_range, max_frac_bits)
                frozen_layers.append(layer)
                choices[layer.name] = choice
                shape = layer.output_shape((int(np.prod(shape)),) if layer.synapse.flatten_input else shape)
                x_range = (0, int(layer.neuron.max_spikes) if layer.kind == "xylo" else 1)
    finally:
        model.train(was_training)
    meta = {
        "source": f"{type(model).__module__}.{type(model).__name__}",
        "deploy_faithful": all(isinstance(b.neuron, QNeuron) for b in blocks),
        "synapses": {b.name: type(b.synapse).__name__ for b in blocks},
    }
    meta["frac_bits"] = _recorded(choices)
    if encoding:
        meta["input_encoding"] = dict(encoding)
    meta.update(metadata or {})
    net = FrozenNet(spec, frozen_layers, int(num_steps or 100), meta).validate()
    if calibration is not None:  # net.layers is frozen_layers: a data-driven F replaces a layer in place
        _calibrate_unproven(frozen_layers, choices, spec, int(num_steps or 100), calibration, calibration_margin, max_frac_bits)
        meta["frac_bits"] = _recorded(choices)
        net.validate()
    _warn_unproven(frozen_layers, choices)
    return net


def _recorded(choices: dict[str, dict]) -> dict[str, dict]:
    """The JSON part of the per-layer F choices (keys starting with ``_`` are working data)."""
    return {name: {k: v for k, v in c.items() if not k.startswith("_")} for name, c in choices.items()}


def _ordered_layers(model: nn.Module, layers=None, input_shape: Sequence[int] | None = None,
                    forward: ForwardFn | None = None) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` in the order one time step applies them (:func:`qsnn_deploy.calling.inspect_model`)."""
    return inspect_model(model, input_shape, forward=forward, layers=layers).layers


def _check_flat_input(block: Block, shape: tuple[int, ...], input_shape: tuple[int, ...]) -> None:
    """A Linear synapse fed a (C, H, W) tensor without an nn.Flatten before it: say what to change."""
    if not isinstance(block.synapse, nn.Linear) or len(shape) == 1 or block.flatten:
        return
    n_in = int(np.prod(shape))
    fix = (f"give input_shape=({n_in},) (CLI: --input-shape {n_in}) if the model takes flat samples, or put "
           "nn.Flatten() before it" if shape == tuple(input_shape) else "put nn.Flatten() before it")
    raise UnsupportedLayerError(f"layer {block.name!r} ({type(block.synapse).__name__}, {block.synapse.in_features} inputs) "
                                f"receives a {'x'.join(map(str, shape))} tensor: {fix}")


def _integer_weight(block: Block, weight_bits: int) -> tuple[np.ndarray, torch.Tensor, int]:
    syn = block.synapse
    w = syn.weight.detach()
    if not torch.all(torch.isfinite(w)):
        raise FrozenNetError(block.name, "weight", "contains NaN or infinity")
    quant = quantized_weight(syn)
    if quant is not None:
        w_int, scale, bits = quant
        if not torch.all(torch.isfinite(scale)) or torch.any(scale <= 0):
            raise FrozenNetError(block.name, "weight_scale", f"must be finite and positive, got {scale.tolist()[:4]}...")
        w_int = torch.round(w_int.detach()).to(torch.int64).cpu().numpy()
        return w_int, scale.detach().cpu(), int(bits)
    if not 2 <= weight_bits <= 16:
        raise FrozenNetError(block.name, "weight_bits", f"must be in 2..16, got {weight_bits}")
    w64 = w.cpu().to(torch.float64)
    top = float((1 << (weight_bits - 1)) - 1)
    max_abs = float(w64.abs().max())
    scale = max_abs / top if max_abs > 0 else 1.0
    w_int = torch.round(w64 / scale).to(torch.int64).numpy()
    return w_int, torch.full((w.shape[0],), scale, dtype=torch.float64), int(weight_bits)


def _channel_values(value, name: str, block: Block, out_shape: tuple[int, ...], per_channel_1d: bool) -> np.ndarray:
    """Per-channel float64 values of beta/threshold; reject per-neuron values that differ within a channel."""
    t = torch.as_tensor(value).detach().cpu().to(torch.float64)
    c = out_shape[0]
    if t.numel() == 1:
        return np.full(c, float(t.reshape(())), dtype=np.float64)
    if per_channel_1d and t.dim() == 1 and t.numel() == c:
        return t.numpy().copy()
    try:
        full = torch.broadcast_to(t, out_shape)  # snnTorch's own broadcasting against [C, (H, W)]
    except RuntimeError as exc:
        raise FrozenNetError(block.name, name, f"shape {tuple(t.shape)} does not broadcast to the layer output {out_shape}") from exc
    flat = full.reshape(c, -1)
    if not torch.all(flat == flat[:, :1]):
        raise FrozenNetError(block.name, name, "differs between neurons of one channel; the frozen format holds one value per channel")
    return flat[:, 0].numpy().copy()


def _freeze_block(block: Block, s_x: float, in_shape: tuple[int, ...], weight_bits: int,
                  frac_bits: int | None, state_bits: int, x_range: tuple[int, int] = (0, 255),
                  max_frac_bits: int = intmath.DEFAULT_FRAC_BITS) -> tuple[Layer, dict]:
    name = block.name
    syn = block.synapse
    neuron = block.neuron
    w_int, w_scale, bits = _integer_weight(block, weight_bits)
    sigma_t, bias_t = block_affine(block, w_scale, s_x, on_cpu=True)
    sigma = sigma_t.numpy()
    if not np.all(np.isfinite(sigma)) or not np.all(np.isfinite(bias_t.numpy())):
        raise FrozenNetError(name, "batchnorm", "scale or bias is NaN/infinite (check BatchNorm running_var and weights)")
    if np.any(sigma == 0):
        bad = np.flatnonzero(sigma == 0).tolist()
        raise FrozenNetError(name, "batchnorm", f"channels {bad[:8]} have a zero scale (BatchNorm gamma = 0): their neurons "
                             "would see a constant current; remove them or re-train")
    negative = sigma < 0
    if negative.any():
        lo, _ = intmath.weight_range(bits, narrow=False)
        if bits > 1 and np.any(w_int[negative] == lo):
            raise FrozenNetError(name, "weight", f"channels {np.flatnonzero(negative).tolist()[:8]} need negating (negative "
                                 f"BatchNorm gamma) but hold {lo}, which has no {bits}-bit negation; use narrow-range weights")
        w_int[negative] = -w_int[negative]
    sigma_abs = torch.as_tensor(np.abs(sigma))
    # shapes
    flat_in = (int(np.prod(in_shape)),) if block.flatten else in_shape
    is_conv = isinstance(syn, nn.Conv2d) or w_int.ndim == 4
    pools = block.pools
    if len(pools) > 1:
        raise UnsupportedLayerError(f"block {name!r}: more than one AvgPool2d between synapse and neuron")
    pool = tuple(int(k) for k in ((pools[0].kernel_size,) * 2 if isinstance(pools[0].kernel_size, int) else pools[0].kernel_size)) if pools else None
    recurrent = None
    if isinstance(neuron, QNeuron):  # the integers its own forward pass uses
        float_neuron = neuron.frozen_neuron(sigma_abs, bias_t)
        theta_int, b_int, decay = float_neuron.threshold, float_neuron.bias, float_neuron.decay
        reset, f_bits, s_bits = float_neuron.reset, float_neuron.frac_bits, float_neuron.state_bits
        choice = {"F": int(f_bits), "basis": "trained"}
    else:
        fn = _float_neuron(name, neuron)
        reset, s_bits = fn.reset, state_bits
        f_bits = intmath.DEFAULT_FRAC_BITS if frac_bits is None else int(frac_bits)
        choice = {"F": int(f_bits), "basis": "fixed"}
        probe = Synapse("conv" if is_conv else "dense", w_int, bits, _pair(getattr(syn, "stride", 1)),
                        _pair(getattr(syn, "padding", 0)), pool)
        out_shape = probe.output_shape(flat_in)
        beta = _channel_values(neuron.beta, "beta", block, out_shape, per_channel_1d=False)
        theta = _channel_values(neuron.threshold, "threshold", block, out_shape, per_channel_1d=False)
        alpha = _channel_values(neuron.alpha, "alpha", block, out_shape, per_channel_1d=False) if fn.alpha else None
        if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(theta))) or (alpha is not None and not np.all(np.isfinite(alpha))):
            raise FrozenNetError(name, "beta/threshold", "NaN or infinite")
        decay = intmath.decay_from_beta(beta)
        current_decay = np.zeros_like(decay) if fn.kind == "cuba" and alpha is None else (
            intmath.decay_from_beta(alpha) if alpha is not None else None)
        bias_f = bias_t.numpy()
        recurrent = None
        if fn.recurrent is not None:
            rec_w, rec_b = _recurrent_weights(name, fn.recurrent, out_shape, is_conv)
            recurrent = np.round(rec_w / np.abs(sigma)[:, None]).astype(np.int64)  # J units: R·z / |σ| per channel
            bias_f = bias_f + rec_b  # the recurrent Linear's bias is added every step, like the synapse's
        j_pos, j_neg = current_extremes(w_int, x_range[0], x_range[1], probe.pool_area)
        if recurrent is not None:
            r_pos, r_neg = current_extremes(recurrent, 0, 1)
            j_pos, j_neg = j_pos + r_pos, j_neg + r_neg

        def neuron_at(f: int):
            th_f = intmath.quantize_on_grid(theta, np.abs(sigma), f)
            b_f = intmath.quantize_on_grid(bias_f, np.abs(sigma), f)
            if fn.kind == "lif":
                return LIF(th_f, b_f, decay, reset, f, s_bits)
            # snnTorch adds the synapse's bias to the input I, i.e. to the current
            return CubaLIF(th_f, np.zeros_like(b_f), current_decay, decay, b_f, reset, f, s_bits, s_bits)

        def bound_at(f: int):
            return neuron_at(f).state_bound(j_pos, j_neg)

        if frac_bits is None:
            f_bits, proof, _ = choose_frac_bits(bound_at, f_max=max_frac_bits)
            if not proof:  # no proof: keep the threshold within a quarter of the range (4x headroom)
                quarter = [f for f in range(max_frac_bits, -1, -1) if bound_at(f).theta_max <= intmath.state_limit(s_bits) // 4]
                f_bits = quarter[0] if quarter else 0
            choice = {"F": int(f_bits), "basis": "proof" if proof else "unproven",
                      "_requantize": (np.asarray(theta, np.float64), bias_f, np.abs(sigma))}
        float_neuron = neuron_at(f_bits)
        theta_int = float_neuron.threshold
        b_int = float_neuron.bias if fn.kind == "lif" else float_neuron.current_bias
    vmax = intmath.state_limit(s_bits)
    if theta_int.min() < 0:
        raise FrozenNetError(name, "threshold", f"negative threshold {theta_int.min()} (state units): neurons would fire with no input")
    if theta_int.max() > vmax:
        # |v| never exceeds vmax, so such a neuron can never fire: clamping keeps that exactly, but the
        # float model's neuron could fire. Say so loudly; verify measures the effect.
        n_over = int(np.count_nonzero(theta_int > vmax))
        warnings.warn(f"layer {name!r}: {n_over} channel threshold(s) up to {theta_int.max()} state units exceed the "
                      f"{s_bits}-bit state limit {vmax}; clamped (those neurons can never fire). Lower frac_bits or "
                      "raise state_bits to keep them.", QSNNWarning, stacklevel=3)
        theta_int = np.minimum(theta_int, vmax)
    if np.abs(b_int).max(initial=0) > vmax:
        raise FrozenNetError(name, "bias", f"{np.abs(b_int).max()} state units exceeds the {s_bits}-bit state limit {vmax}")

    synapse = Synapse("conv" if is_conv else "dense", w_int.astype(np.int8 if bits <= 8 else np.int16), bits,
                      _pair(getattr(syn, "stride", 1)) if is_conv else (1, 1),
                      _pair(getattr(syn, "padding", 0)) if is_conv else (0, 0), pool, block.flatten)
    sigma_abs = np.abs(sigma).astype(np.float64)
    if float_neuron.kind == "lif":
        neuron_params = LIF(theta_int.astype(np.int64), b_int.astype(np.int64), decay.astype(np.int64), reset,
                            int(f_bits), int(s_bits), sigma_abs)
    elif isinstance(neuron, QNeuron):  # QSynaptic: its bias sits on the membrane (Loihi's place)
        neuron_params = dataclasses.replace(float_neuron, threshold=theta_int.astype(np.int64), sigma=sigma_abs)
    else:  # snnTorch Synaptic: the synapse's bias enters the current
        neuron_params = dataclasses.replace(float_neuron, threshold=theta_int.astype(np.int64),
                                            current_bias=b_int.astype(np.int64), sigma=sigma_abs)
    if recurrent is not None:
        synapse = _with_recurrent(name, synapse, recurrent)
    layer = Layer(name, synapse, neuron_params)
    bound = layer_state_bound(layer, *x_range)
    choice.update(proven_saturation_free=bool(bound.saturation_free), worst_case_abs_v=float(bound.peak),
                  state_limit=int(layer.state_limit), _bound=bound)
    if choice["basis"] == "unproven" and bound.saturation_free:
        choice["basis"] = "proof"
    return layer, choice


def _freeze_xylo_block(block: Block, in_shape: tuple[int, ...], x_range: tuple[int, int]) -> tuple[Layer, dict]:
    """A Xylo block as a frozen layer: the shifted integer weights (``w_int << shift``; J units = state units),
    the shifted recurrent weights, and the neuron's own integers (module docstring)."""
    name, syn, neuron = block.name, block.synapse, block.neuron
    if not hasattr(syn, "shifted_weight"):
        raise UnsupportedLayerError(f"block {name!r}: a Xylo neuron (QXylo) needs a XyloLinear synapse, got {type(syn).__name__}")
    if len(in_shape) != 1 or block.pools or block.batchnorm is not None:
        raise UnsupportedLayerError(f"block {name!r}: a Xylo layer is dense on a flat input, with no pool or BatchNorm")
    if not torch.all(torch.isfinite(syn.weight)):
        raise FrozenNetError(name, "weight", "contains NaN or infinity")
    w_eff, _, shift = syn.shifted_weight()
    w = w_eff.detach().cpu().round().to(torch.int64).numpy()
    bits = int(syn.weight_bits) + int(shift)
    synapse = Synapse("dense", w.astype(np.int8 if bits <= 8 else np.int16), bits, flatten_input=False)
    rec = neuron.recurrent_weight()
    if rec is not None:
        if not torch.all(torch.isfinite(neuron.recurrent)):
            raise FrozenNetError(name, "recurrent", "contains NaN or infinity")
        synapse = _with_recurrent(name, synapse, rec[0].detach().cpu().round().to(torch.int64).numpy())
    layer = Layer(name, synapse, neuron.frozen_neuron())
    j_pos, j_neg = current_extremes(w, x_range[0], x_range[1])
    if rec is not None:
        r_pos, r_neg = current_extremes(synapse.recurrent.astype(np.int64), 0, int(neuron.max_spikes))
        j_pos, j_neg = j_pos + r_pos, j_neg + r_neg
    bound = layer.neuron.state_bound(j_pos, j_neg)
    # Xylo's int16 states saturate by design and the reference models every clip; nothing to re-fit (F = 0)
    return layer, {"F": 0, "basis": "xylo", "proven_saturation_free": bool(bound.saturation_free),
                   "worst_case_abs_v": float(bound.peak), "state_limit": int(layer.state_limit), "_bound": bound}


def _requantized(layer: Layer, choice: dict, f: int) -> Layer:
    theta, bias, sigma = choice["_requantize"]
    vmax = intmath.state_limit(layer.neuron.state_bits)
    th = np.minimum(intmath.quantize_on_grid(theta, sigma, f), vmax)
    b = intmath.quantize_on_grid(bias, sigma, f).astype(np.int64)
    where = "current_bias" if layer.kind == "cuba" else "bias"  # the synapse's bias enters a CUBA neuron's current
    return dataclasses.replace(layer, neuron=dataclasses.replace(layer.neuron, frac_bits=int(f), threshold=th.astype(np.int64),
                                                                 **{where: b}))


def _calibrate_unproven(layers: list[Layer], choices: dict, spec: InputSpec, steps: int, calibration,
                        margin: float, max_frac_bits: int) -> None:
    """Data-driven F for layers with no proof: the largest F whose simulated |v| on ``calibration``
    stays within ``limit / margin`` (layer by layer, earlier layers already fixed)."""
    from .simulators.numpy_sim import NumpySimulator

    x = np.asarray(calibration)
    if x.shape[1:] != tuple(spec.shape) or x.shape[0] < 1:
        raise FrozenNetError("input", "calibration", f"expected integer inputs [N, {', '.join(map(str, spec.shape))}], got {x.shape}")
    for i, layer in enumerate(layers):
        choice = choices[layer.name]
        if choice.get("basis") != "unproven" or "_requantize" not in choice:
            continue
        peaks: dict[int, int] = {}
        for f in range(max_frac_bits, -1, -1):
            cand = _requantized(layer, choice, f)
            if cand.neuron.threshold.max(initial=0) >= cand.state_limit:
                continue
            probe = FrozenNet(spec, layers[:i] + [cand], steps)
            states = NumpySimulator(probe, saturation="count").run(x, num_steps=steps, record_states=True).states[cand.name]
            peaks[f] = int(np.abs(states).max(initial=0))
            if peaks[f] * margin <= cand.state_limit:
                break
        # the largest F within the stated margin; failing that, the largest F that never clipped (margin 1)
        for want in (margin, 1.0):
            fits = [f for f, peak in peaks.items() if peak * want <= layer.state_limit and peak < layer.state_limit]
            if fits:
                f = max(fits)
                layers[i] = _requantized(layer, choice, f)
                choice.update(F=int(f), basis="data", calibration_samples=int(x.shape[0]), calibration_margin=float(want),
                              observed_abs_v=peaks[f])
                break


def _warn_unproven(layers: list[Layer], choices: dict) -> None:
    for layer in layers:
        c = choices[layer.name]
        if c.get("proven_saturation_free") or c.get("basis") == "xylo" or (
                c.get("basis") == "data" and c.get("calibration_margin", 0) >= 2.0):
            continue
        if c.get("basis") == "data":
            warnings.warn(f"layer {layer.name!r}: F = {layer.neuron.frac_bits} kept the state within the limit on the "
                          f"{c['calibration_samples']} calibration inputs (peak |v| {c['observed_abs_v']} of {layer.state_limit}), "
                          "but with less than a 2x margin and no proof; other inputs may clip it (qsnn-verify counts clips)",
                          SaturationWarning, stacklevel=3)
            continue
        hint = ("re-fit F with qsnn_deploy.profiles.fit_frac_bits(model) (or train with --profile loihi)"
                if c.get("basis") == "trained" else "pass calibration=<inputs> to freeze, or a smaller frac_bits")
        warnings.warn(clip_risk_message(layer, c["_bound"], hint), SaturationWarning, stacklevel=3)


def _pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(x) for x in v)
    return v if len(v) == 2 else (v[0], v[0])


def frozen_layer_names(model: nn.Module, layers: Iterable | None = None,
                       input_shape: Sequence[int] | None = None) -> list[str]:
    """Names the frozen layers of ``model`` will carry (the synapse module names)."""
    return [b.name for b in parse_blocks(_ordered_layers(model, layers, input_shape))]
