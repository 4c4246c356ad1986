"""Hardware profiles: constraints training honours so that freeze maps every layer onto a target's
stock neuron with no approximation (docs/design.md §6).

``default``
    The seeds' neuron: subtract reset, per-channel θ from BatchNorm folding. On Lava it needs
    qsnn-deploy's custom ``QLIF`` ProcessModel (exact in Lava's CPU simulator, not stock Loihi 2).

``loihi``
    Every LIF layer is Lava's stock ``LIF`` (``PyLifModelBitAcc``) with the current fully decayed
    each step (``iDecay = 4096``)::

        u_t = a_t << 6                         a_t = W·x_t, W exact 8-bit mantissas, one exponent
        v_t = decay(v_{t-1}) + u_t + b         decay(v) = sign(v)·(|v·(4096 - dv)| >> 12), b = bias_mant << 6
        s_t = v_t > (vth << 6);  v_t[s_t] = 0  reset to zero

    which is the integer semantics with ``reset = "zero"``, F = 6, B_v = 24, one θ (a multiple of
    64: ``vth = θ >> 6``) and one β per layer, and no bias. So the profile trains:

    * zero reset, scalar θ and β (not learned per channel), θ on the 64-unit grid;
    * no BatchNorm: its per-channel scale would give per-channel θ. Its shift survives as one
      learned bias per channel, on the same 64-unit grid as θ (``bias_mant = b >> 6``, a signed
      13-bit mantissa: ``|b / σ| < 2**12`` current units, kept by the projection). Lava's stock LIF
      integrates a bias from its first step, before the first input reaches the layer; the exported
      network therefore runs with Lava's periodic reset (``LIFReset``), which zeroes u and v at the
      step each layer's first input arrives, so inside every sample window the stock neuron computes
      exactly the reference (docs/lava.md). Measured (100 MNIST batches, T = 25, 1,000 test
      digits): 75.7% without bias, 80.0% with it, 74.8% with a per-channel scale folded instead;
    * per-tensor weight scale (Brevitas' default), so σ and hence θ are one value per layer;
    * weights projected after every optimizer step so that the proven state bound
      (:mod:`qsnn_deploy.statebound`) holds: no input can clip the 24-bit state, and ``|a| << 6``
      stays inside the 24-bit current (where Lava's ``u`` would wrap). β defaults to 0.5: with the
      MNIST preset's 0.921 a static pixel input integrates a negative current 12.7 times, which
      leaves the first layer almost no weight budget under F = 6;
    * Adam's learning rate defaults to 1e-2 (``LOIHI_DEFAULT_LR``): without BatchNorm the preset's
      1.9e-3 learns markedly slower (100 MNIST batches, T = 25, 1,000 test digits, with the bias:
      78.8% at 5e-3, 86.8% at 1e-2, 84.0% at 2e-2; β 0.3: 72.8%, fast-sigmoid slope 25: 80.9%).

Every model trained with ``loihi`` passes ``qsnn-export --target lava --strict``.

``xylo``
    SynSense Xylo (:mod:`qsnn_deploy.xylo.profile`): 16-channel input, recurrent hidden Xylo neurons and
    Xylo readouts (:mod:`qsnn_deploy.nn.xylo`), sized for one chip version (``chip``, default Xylo IMU).
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from . import intmath
from .errors import FrozenNetError
from .statebound import StateBound

if TYPE_CHECKING:
    from .nn import QSequential

PROFILES = ("default", "loihi", "xylo")
LOIHI_FRAC_BITS = 6        # Lava's act_shift = vth_shift = 6
LOIHI_STATE_BITS = 24
LOIHI_THRESHOLD_STEP = 1 << LOIHI_FRAC_BITS
LOIHI_DEFAULT_BETA = 0.5
#: Lava's bias_mant is a signed 13-bit mantissa
LOIHI_BIAS_MANT_MAX = (1 << 12) - 1
#: Without BatchNorm the net needs a larger Adam step than the preset's 1.9e-3: after 100 MNIST
#: batches (T = 25, with the per-channel bias) 86.8% test accuracy at 1e-2, 78.8% at 5e-3, 84.0% at 2e-2
#: (without bias: 62.5% at 1.9e-3, 75.7% at 5e-3)
LOIHI_DEFAULT_LR = 1e-2
#: the projection aims this far under the state limit, so rounding cannot push a channel back over
PROJECTION_MARGIN = 0.97


def check_profile_name(profile: str) -> str:
    """Return ``profile`` if it names a known hardware profile (``"default"``, ``"loihi"``, ``"xylo"``); ValueError otherwise."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return profile


def apply_profile(arch: dict[str, Any], profile: str, chip: str | None = None) -> dict[str, Any]:
    """A copy of an arch spec with the profile's constraints applied (``default``: unchanged; ``xylo``: checked
    against the Xylo ``chip`` version, default Xylo IMU, and refused naming layer, field and limit)."""
    check_profile_name(profile)
    arch = copy.deepcopy(arch)
    if profile == "default":
        return arch
    if profile == "xylo":
        from .xylo.chips import DEFAULT_VERSION
        from .xylo.profile import apply_xylo_profile

        return apply_xylo_profile(arch, chip or DEFAULT_VERSION)
    layers = []
    for entry in arch["layers"]:
        kind = entry.get("type")
        if kind == "batchnorm":
            continue  # per-channel scale and shift: not in the profile (module docstring)
        entry = dict(entry)
        if kind in ("conv", "linear"):
            entry["bias"] = True  # one bias per channel: what BatchNorm's shift gave (module docstring)
        if kind == "lif":
            entry.update(reset="zero", frac_bits=LOIHI_FRAC_BITS, state_bits=LOIHI_STATE_BITS,
                         threshold_step=LOIHI_THRESHOLD_STEP, learn_threshold=False, deploy_faithful=True)
        layers.append(entry)
    arch["layers"] = layers
    arch["profile"] = profile
    check_arch(arch, profile)
    return arch


def check_arch(arch: dict[str, Any], profile: str, chip: str | None = None) -> None:
    """Refuse an arch that cannot meet ``profile``, naming the layer, the field and the limit."""
    if profile == "default":
        return
    if profile == "xylo":
        from .xylo.chips import DEFAULT_VERSION
        from .xylo.profile import check_xylo_arch

        check_xylo_arch(arch, chip or arch.get("xylo_chip") or DEFAULT_VERSION)
        return
    entries = list(arch.get("layers") or [])
    for i, entry in enumerate(entries):
        name = str(entry.get("name") or f"layer{i}")
        kind = entry.get("type")
        if kind == "conv" and entry.get("weight_bits"):
            pool = next((e for e in entries[i + 1:] if e.get("type") in ("avgpool", "lif")), None)
            if pool is not None and pool.get("type") == "avgpool":
                k = pool.get("kernel_size", 1)
                area = int(k) * int(k) if isinstance(k, int) else int(k[0]) * int(k[1])
                folded = int(entry["weight_bits"]) + max(area - 1, 0).bit_length()
                if folded > 8:
                    raise FrozenNetError(name, "weight_bits", f"{entry['weight_bits']}-bit weights summed over the "
                                         f"{area}-tap pool fold into {folded}-bit kernels; Loihi's weight mantissa holds 8")
        if kind == "batchnorm":
            raise FrozenNetError(name, "batchnorm", "the loihi profile has no BatchNorm (its per-channel scale gives "
                                 "per-channel thresholds, its shift a bias; stock Loihi holds one vth per layer)")
        if kind in ("conv", "linear") and entry.get("weight_bits") is None:
            raise FrozenNetError(name, "weight_bits", "the loihi profile needs integer weights (≤ 8-bit mantissas)")
        if kind in ("conv", "linear") and int(entry.get("weight_bits") or 0) > 8:
            raise FrozenNetError(name, "weight_bits", f"{entry.get('weight_bits')} bits exceeds Loihi's 8-bit weight mantissa")
        if kind == "lif":
            for key, want in (("reset", "zero"), ("frac_bits", LOIHI_FRAC_BITS), ("state_bits", LOIHI_STATE_BITS)):
                if entry.get(key) != want:
                    raise FrozenNetError(name, key, f"{entry.get(key)!r}; the loihi profile needs {want!r}")
            if entry.get("kind", "lif") == "cuba" and entry.get("reset") == "zero_delayed":
                raise FrozenNetError(name, "reset", "zero_delayed; the loihi profile's CUBA resets to zero in Loihi's order")
            for key in ("beta", "threshold") + (("alpha",) if entry.get("kind") == "cuba" else ()):
                if np.asarray(entry.get(key, 0.0), dtype=np.float64).size != 1:
                    raise FrozenNetError(name, key, "the loihi profile holds one value per layer (stock vth/dv are scalars)")


def _block_input_range(model, index: int) -> tuple[int, int]:
    if index > 0:
        return 0, 1
    if model.input_signed:
        return -(1 << (model.input_bits - 1)), (1 << (model.input_bits - 1)) - 1
    return 0, (1 << model.input_bits) - 1


def _block_area(block) -> int:
    """Sum-pool area after the block's synapse (1 without a pool)."""
    area = 1
    for pool in block.pools:
        k = pool.kernel_size
        k = (k, k) if isinstance(k, int) else k
        area *= int(k[0]) * int(k[1])
    return area


def _block_frozen(model, index: int, block):
    """(frozen neuron parameters, J⁺, J⁻) of one deploy-faithful block at its neuron's current F, θ and
    decays: what freeze would store, and the extremes of its exact current; None for other blocks."""
    from .nn.blocks import block_affine, quantized_weight
    from .nn.neuron import QNeuron
    from .statebound import current_extremes

    neuron = block.neuron
    quant = quantized_weight(block.synapse)
    if not isinstance(neuron, QNeuron) or quant is None:
        return None
    w_int, w_scale, _ = quant
    x_lo, x_hi = _block_input_range(model, index)
    sigma, bias = block_affine(block, w_scale, model.input_scale if index == 0 else 1.0, on_cpu=True)
    params = neuron.frozen_neuron(sigma.abs(), bias)
    jp, jn = current_extremes(w_int.detach().cpu().round().to(torch.int64).numpy(), x_lo, x_hi, _block_area(block))
    return params, jp, jn


def _clamp_bias_to_mantissa(model, index: int, block) -> None:
    """Keep a profile neuron's bias inside Lava's signed 13-bit ``bias_mant`` (``b = bias_mant << 6``
    with b on the 64-unit grid, so ``bias_mant = round(bias / σ)``): ``|bias| ≤ 4095·σ`` per channel."""
    from .nn.blocks import block_affine, quantized_weight
    from .nn.neuron import QNeuron

    bias = getattr(block.synapse, "bias", None)
    quant = quantized_weight(block.synapse)
    if bias is None or quant is None or not isinstance(block.neuron, QNeuron) or block.neuron.threshold_step <= 1:
        return
    sigma, _ = block_affine(block, quant[1], model.input_scale if index == 0 else 1.0, on_cpu=True)
    limit = torch.as_tensor((LOIHI_BIAS_MANT_MAX * sigma.abs()).numpy(), dtype=bias.dtype, device=bias.device)
    bias.copy_(torch.maximum(torch.minimum(bias, limit), -limit))


@torch.no_grad()
def project_to_state_budget(model: QSequential, max_rounds: int = 30) -> int:
    """Shrink the float weights of every channel whose proven state bound (F, θ, β of its neuron,
    the worst input in range) could clip the state; returns how many channel shrinks were made.

    Works on a :class:`~qsnn_deploy.nn.QSequential` of deploy-faithful blocks; repeats until every
    channel of every layer is provably saturation-free (the per-tensor weight scale moves when the
    largest weight shrinks, and θ·β does not shrink with the weights, so one pass may not suffice).

    Each side of the bound is projected on its own: the positive weights of a channel shrink when
    its upper bound (J⁺, θ) is over, its negative weights when its lower bound (J⁻) is. Scaling a
    whole channel cannot lower the bound of the channel that holds the per-tensor largest weight
    (its integer weights do not change), and a CUBA neuron's current multiplies that pattern by
    1/(1 − α): shrinking one side changes the integer pattern. A layer whose bound does not come
    down (θ/σ alone over the limit, or a pattern no shrink can fix) is refused naming the layer
    instead of shrinking its weights until it never fires.
    """
    shrinks = 0
    for i, block in enumerate(model.blocks):
        weight = block.synapse.weight
        _clamp_bias_to_mantissa(model, i, block)
        best, stalled = np.inf, 0
        for _ in range(max_rounds):
            frozen = _block_frozen(model, i, block)
            if frozen is None:
                break
            params, jp, jn = frozen
            zero = np.zeros_like(np.asarray(jp))
            upper = params.channel_usage(jp, zero)   # proven peak / limit per channel from J⁺ (and θ, b)
            lower = params.channel_usage(zero, jn)   # ... from J⁻ (and b)
            over_up, over_down = upper > PROJECTION_MARGIN, lower > PROJECTION_MARGIN
            if not (over_up.any() or over_down.any()):
                break
            peak = float(max(upper.max(), lower.max()))
            stalled = stalled + 1 if peak >= best * (1.0 - 1e-6) else 0
            best = min(best, peak)
            if stalled >= 3:
                raise FrozenNetError(block.name, "weight", f"the proven state bound reaches {peak:.3g}× its "
                                     "state limit and shrinking the weights does not lower it (θ/σ or the "
                                     "integer weight pattern alone is over): lower β, α or θ for this layer")
            # aim a further margin under the target: the rounding to integers moves the sums
            target = PROJECTION_MARGIN * PROJECTION_MARGIN
            f_up = np.where(over_up, target / np.maximum(upper, 1e-12), 1.0)
            f_down = np.where(over_down, target / np.maximum(lower, 1e-12), 1.0)
            shape = (-1,) + (1,) * (weight.dim() - 1)
            up_t = torch.as_tensor(f_up, dtype=weight.dtype, device=weight.device).view(shape)
            down_t = torch.as_tensor(f_down, dtype=weight.dtype, device=weight.device).view(shape)
            weight.copy_(torch.where(weight > 0, weight * up_t, weight * down_t))
            shrinks += int((over_up | over_down).sum())
        else:
            frozen = _block_frozen(model, i, block)
            if frozen is not None and float(frozen[0].channel_usage(frozen[1], frozen[2]).max()) > 1.0:
                raise FrozenNetError(block.name, "weight", f"the proven state bound is still over its state "
                                     f"limit after {max_rounds} projection rounds: lower β, α or θ for this layer")
    return shrinks


@torch.no_grad()
def calibrate_initial_firing(model: QSequential, x: torch.Tensor, num_steps: int, target_rate: float = 0.05,
                             growth: float = 1.25, max_rounds: int = 40, project: bool = True) -> list[float]:
    """Scale each layer's initial weights up, layer by layer, until it fires at ``target_rate``
    (spikes per neuron per step) on the batch ``x`` ([N, ...] repeated every step, or [T, N, ...]);
    with ``project`` (the ``loihi`` profile) the state budget is kept after every step.

    Without BatchNorm (the ``loihi`` profile) the paper's fan-in initialisation leaves the deeper
    layers silent, and a silent network gets no gradient through its output spikes. Returns the
    final rate of each layer.
    """
    was_training = model.training
    model.eval()
    rates: list[float] = []
    try:
        for block in model.blocks:
            rate = 0.0
            for _ in range(max_rounds):
                _, rec = model(x, num_steps=num_steps, record=True)
                rate = float(rec[block.name].mean())
                if rate >= target_rate:
                    break
                block.synapse.weight.mul_(growth)
                if project:
                    project_to_state_budget(model)
            rates.append(rate)
    finally:
        model.train(was_training)
    return rates


class FracBitsFit(NamedTuple):
    """What :func:`fit_frac_bits` did to one layer."""

    old: int                  # F before (fractional bits of θ and the decayed state)
    new: int                  # F after (= old when no F proves the layer)
    proof: bool               # True: no input in range can clip the state at ``new``
    bound: StateBound         # the proven bound at ``new``; with no proof, the bound at F = 0 (the smallest state)


@torch.no_grad()
def fit_frac_bits(model: QSequential, max_frac_bits: int = intmath.DEFAULT_FRAC_BITS
                  ) -> dict[str, FracBitsFit]:
    """Give every deploy-faithful neuron of a trained :class:`~qsnn_deploy.nn.QSequential` the largest
    F ≤ ``max_frac_bits`` whose proven state bound cannot saturate (:mod:`qsnn_deploy.statebound`).

    This is the "re-freeze" of a model trained with one F for all layers: the model's own forward
    then runs with the new F, so PyTorch model == frozen net still holds by construction (its
    accuracy must be re-measured: θ and the decay are re-rounded on the new grid). Returns
    ``{block name: FracBitsFit(old F, new F, proof, bound)}``; a layer with no proof keeps its F, and
    its ``bound`` is the one at F = 0, which says by how much even the smallest state is too narrow.
    """
    from .nn.neuron import QNeuron
    from .statebound import choose_frac_bits

    changes = {}
    for i, block in enumerate(model.blocks):
        neuron = block.neuron
        if not isinstance(neuron, QNeuron):
            continue
        old = neuron.frac_bits

        def bound_at(f: int, i=i, block=block, neuron=neuron) -> StateBound:
            neuron.frac_bits = f
            params, jp, jn = _block_frozen(model, i, block)
            return params.state_bound(jp, jn)

        if _block_frozen(model, i, block) is None:
            continue
        f, proof, bound = choose_frac_bits(bound_at, f_max=max_frac_bits)
        if not proof:
            bound = bound_at(0)
        neuron.frac_bits = f if proof else old
        changes[block.name] = FracBitsFit(old, neuron.frac_bits, proof, bound)
    return changes


def unproven_frac_bits_message(unproven: dict[str, FracBitsFit],
                                max_frac_bits: int = intmath.DEFAULT_FRAC_BITS) -> str:
    """What ``qsnn-train`` logs about the layers :func:`fit_frac_bits` could not prove: how far over its
    state width each one is even at F = 0, and what would give a proof."""
    layers = "; ".join(f"{name}: worst-case |v| {fit.bound.peak:.3g} even at F = 0, {fit.bound.peak / fit.bound.limit:.2g}× "
                       f"its {fit.bound.state_bits}-bit limit {fit.bound.limit:,}" for name, fit in unproven.items())
    return (f"no F ≤ {max_frac_bits} proves these layers saturation-free, so they keep their F; freeze will name them "
            f"and qsnn-verify counts any clip: {layers}. For a proof: a smaller β for the layer (the bound grows as "
            "1/(1 − β)), a narrower input range, or --profile loihi (which projects the weights into the "
            "state bound after every optimizer step)")


def frac_bits_of_layers(model: QSequential) -> dict[str, int]:
    """``{arch layer name of each deploy-faithful neuron: its F}``: what an arch spec must hold so that the
    model it builds runs at the F that :func:`fit_frac_bits` chose."""
    from .nn.neuron import QNeuron

    names = {id(m): n for n, m in model.named_children()}
    return {names[id(b.neuron)]: int(b.neuron.frac_bits) for b in model.blocks
            if isinstance(b.neuron, QNeuron) and id(b.neuron) in names}


def set_arch_frac_bits(arch: dict[str, Any], frac_bits: dict[str, int]) -> None:
    """Write ``{layer name: F}`` (:func:`frac_bits_of_layers`) into the spiking layers of an arch spec."""
    for entry in arch.get("layers") or []:
        if entry.get("type") == "lif" and entry.get("name") in frac_bits:
            entry["frac_bits"] = int(frac_bits[entry["name"]])
