"""Deploy-faithful SynSense Xylo layers for training (neuron kind ``"xylo"``): :class:`XyloLinear` (a synapse of
int8 weights with one power-of-two shift) and :class:`QXylo` (Xylo's integrate-and-fire neuron with an int16
synaptic current and membrane, optionally with recurrent weights).

Per time step, per neuron (integers; xylosim 0.1.3 ``src/v2/cpp/XyloIAFNeuron.cpp`` and ``XyloLayer.cpp``)::

    J_t   = (W << s_in)·x_t + (R << s_rec)·z_{t-1}            exact integer current; x_t: input spike counts
                                                              (0..15), z: the layer's own spike counts (recurrent)
    a     = fold(isyn_{t-1}; terms of J_t)                    the synaptic terms added one by one, saturating
    isyn_t = a - dec(a, dash_syn)                             the current decays in the step it arrives
    dv    = sat16(isyn_t + wrap16(-dec(v_{t-1}, dash_mem)))   C's int16 negation: -(-32768) is -32768 (dash_mem 0)
    dv    = sat16(dv + bias)
    v     = sat16(v_{t-1} + dv)
    n_t   = min(cap, floor(v / θ)) if v ≥ θ else 0            spikes (cap 31 hidden, 1 readout), θ ≥ 1
    v_t   = v - n_t·θ                                         subtract reset, once per spike
    dec(x, d) = x >> d  if (x >> d) ≠ 0  else  sign(x)        arithmetic shift: at least one unit of leak
    sat16(x)  = clip(x, -32768, 32767)

``W``, ``R`` are int8 (or narrower) with one shift per matrix (0..7), θ and the bias int16, dashes 4-bit.
Xylo delivers the spikes one source at a time, each through a saturating 16-bit add: the input channels in
order (count·w each), then the layer's own previous spikes in order. Where no partial sum can leave int16
(``isyn + J⁺ ≤ 32767`` and ``isyn + J⁻ ≥ -32768``, ``J⁺``/``J⁻`` the sums of the positive/negative terms)
the fold is ``isyn + J``; elsewhere the forward pass folds the terms in that order (``order_events`` counts
those neuron-steps; ``saturation_events`` the neuron-steps with any clip). Its gradient is the sum's where
nothing clipped, 0 where something did (as a clamp's).

Units: the float parameters are in *model units*; one model unit is ``unit`` integer state units (one
per layer, a constant: 4096 by default). The integers the forward pass uses::

    w_int  = clip(round(w·unit / 2**s), ±(2**(b-1)-1)),   s = clip(ceil(log2(max|w·unit| / (2**(b-1)-1))), 0, 7)
    θ_int  = clip(round(θ·unit), 1, 32767)      bias_int = clip(round(bias·unit), -32768, 32767)
    dash   = clip(round(dash_param), lo, hi)

The matrices Xylo keeps in one ``weights_rec`` (every hidden layer's recurrent weights and the synapses between
hidden layers) share one shift, the largest any of them needs (:class:`ShiftGroup`, linked by
:class:`~qsnn_deploy.nn.QSequential`).

Every rounding, floor and clip has a straight-through gradient (the floor of ``x >> d`` the gradient of
``x·2**-d``, also towards ``d``); the spike count's gradient is a fast sigmoid around the nearest threshold
crossing: ``dn/dv = 1 / (k·|v - m·θ| / unit + 1)**2 / unit``, ``m = clip(round(v/θ), 1, cap)``. The forward
pass IS the integer layer's: values are integer-valued float32 tensors (float64 when a layer's
worst-case current could reach 2**24), so :func:`qsnn_deploy.freeze` gives a net whose spikes are
these, every neuron, every step.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable

import numpy as np
import torch
import torch.nn as nn

from ..neurons.xylo import XyloNeuron
from .neuron import QNeuron
from .ste import round_ste

if TYPE_CHECKING:
    from .blocks import Block

STATE_BITS = 16
STATE_MAX = (1 << (STATE_BITS - 1)) - 1      # 32767
STATE_MIN = -(1 << (STATE_BITS - 1))         # -32768
HIDDEN_MAX_SPIKES = 31
READOUT_MAX_SPIKES = 1
INPUT_MAX_SPIKES = 15
MAX_WEIGHT_SHIFT = 7
DASH_MIN, DASH_MAX = 1, 15
DEFAULT_UNIT = 4096.0
#: float32 holds every integer below 2**24 exactly
_F32_EXACT = float(1 << 24)


def weight_shift(w_state_absmax: float, bits: int, max_shift: int = MAX_WEIGHT_SHIFT) -> int:
    """The Xylo shift of a matrix whose largest |weight| is ``w_state_absmax`` state units: the smallest
    s in 0..max_shift with ``absmax / 2**s ≤ 2**(bits-1) - 1``."""
    top = (1 << (bits - 1)) - 1
    if not math.isfinite(w_state_absmax) or w_state_absmax <= top:
        return 0
    return int(min(max(math.ceil(math.log2(w_state_absmax / top) - 1e-12), 0), max_shift))


def quantize_shifted(w: torch.Tensor, unit: float, bits: int, max_shift: int = MAX_WEIGHT_SHIFT,
                     shift: int | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(``w_int << s`` as an integer-valued tensor with STE gradient, ``w_int``, s) of float weights ``w``
    (model units): the module docstring's rule, or the given ``shift`` (a :class:`ShiftGroup`'s)."""
    top = float((1 << (bits - 1)) - 1)
    ws = w * unit
    s = weight_shift(float(ws.detach().abs().max()) if ws.numel() else 0.0, bits, max_shift) if shift is None else int(shift)
    step = float(1 << s)
    q = round_ste(ws / step)
    q = q + (q.detach().clamp(-top, top) - q.detach())  # clip, gradient passed (STE)
    return q * step, q.detach(), s


class ShiftGroup:
    """Weight matrices that Xylo stores as ONE matrix with one shift: every hidden-to-hidden matrix (each hidden
    layer's recurrent weights and the synapses between hidden layers) lives in ``weights_rec``. The group's shift
    is the largest any member needs, so that every member is ``int8 << shift`` exactly.

    ``members``: ``(weight parameter, unit, bits)`` (a plain list: the parameters stay registered in their own
    modules)."""

    def __init__(self, members: list[tuple[nn.Parameter, float, int]]):
        self.members = list(members)

    def shift(self) -> int:
        """The shared shift (0..7)."""
        return max((weight_shift(float(p.detach().abs().max()) * unit if p.numel() else 0.0, bits)
                    for p, unit, bits in self.members), default=0)


class XyloLinear(nn.Linear):
    """A Xylo weight matrix (input or readout): float weight [out, in] in model units, used as ``b``-bit
    integers with one power-of-two shift (module docstring). No bias (Xylo's bias sits on the neuron).

    Args:
        in_features, out_features: sizes.
        weight_bits: b, 2..8 (Xylo holds int8; 4 = int4 values in the 8-bit field).
        unit: state units per model unit (the neuron's ``unit``).
    """

    def __init__(self, in_features: int, out_features: int, weight_bits: int = 8, unit: float = DEFAULT_UNIT):
        super().__init__(in_features, out_features, bias=False)
        if not 2 <= int(weight_bits) <= 8:
            raise ValueError(f"XyloLinear weight_bits must be 2..8 (Xylo holds int8 weights), got {weight_bits}")
        self.weight_bits = int(weight_bits)
        self.unit = float(unit)
        #: the Xylo matrix this one shares its shift with (set by :func:`link_shift_groups`), or None
        self.shift_group: ShiftGroup | None = None

    def shifted_weight(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(``w_int << s`` with STE gradient, ``w_int``, s); s is the shift group's when there is one."""
        shift = self.shift_group.shift() if self.shift_group is not None else None
        return quantize_shifted(self.weight, self.unit, self.weight_bits, shift=shift)

    def qsnn_int_weight(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The block protocol: (integer weight ``w_int << s``, scale 1/unit, bit width of ``w_int << s``)."""
        w, _, s = self.shifted_weight()
        return w, torch.tensor(1.0 / self.unit, dtype=torch.float64), self.weight_bits + s


class _SpikeCount(torch.autograd.Function):
    """n = min(cap, floor(v/θ)) where v ≥ θ, else 0 (θ ≥ 1 integers), with the fast-sigmoid surrogate of
    the module docstring."""

    @staticmethod
    def forward(ctx, v, theta, cap: int, slope: float, unit: float):
        q = torch.floor(v / theta)
        # v/θ is correctly rounded; make the floor exact for any integers anyway
        q = q + (q * theta + theta <= v).to(v.dtype) - (q * theta > v).to(v.dtype)
        n = q.clamp(0.0, float(cap))
        ctx.save_for_backward(v, theta)
        ctx.cfg = (cap, slope, unit)
        return n

    @staticmethod
    def backward(ctx, g):
        v, theta = ctx.saved_tensors
        cap, slope, unit = ctx.cfg
        m = torch.round(v / theta).clamp(1.0, float(cap))
        s = 1.0 / (slope * (v - m * theta).abs() / unit + 1.0) ** 2 / unit
        gv = g * s
        gth = -(g * s * m)
        gth = gth.reshape(-1, gth.shape[-1]).sum(0) if theta.dim() == 1 else gth
        return gv, gth, None, None, None


def decay_amount(x: torch.Tensor, pow2: torch.Tensor) -> torch.Tensor:
    """``dec(x, d)`` (``x >> d``, or ``sign(x)`` where that is 0) with the gradient of ``x·2**-d``;
    ``pow2 = 2**-d`` (exact)."""
    smooth = x * pow2
    q = torch.floor(smooth)
    exact = torch.where(q == 0, torch.sign(x), q)
    return smooth + (exact - smooth).detach()


def sat16(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(clip(x, -32768, 32767), bool mask of the clipped values); clamp's gradient."""
    y = x.clamp(float(STATE_MIN), float(STATE_MAX))
    return y, y.detach() != x.detach()


class QXylo(QNeuron, nn.Module):
    """Xylo's neuron (module docstring), deploy-faithful, for training.

    Args:
        size: neurons in the layer.
        max_spikes: spikes per neuron per step (31 hidden, 1 readout).
        threshold: initial θ in model units (scalar or [size]); learned (``learn_threshold``).
        dash_syn, dash_mem: initial bit-shift decays (scalar or [size]); learned per neuron when ``learn_dash``
            (as continuous values rounded with a straight-through gradient), within ``dash_range``.
        bias: learn a per-neuron bias (int16, model units), else none (0).
        recurrent: hold a recurrent weight matrix [size, size] (``rec_bits``-bit, one shift), fed the layer's
            spike counts of the previous step.
        unit: state units per model unit.
        slope: the surrogate's fast-sigmoid slope k (per model unit of v).
    """

    kind = "xylo"

    def __init__(self, size: int, max_spikes: int = HIDDEN_MAX_SPIKES, threshold=1.0, dash_syn=2, dash_mem=4,
                 bias: bool = True, recurrent: bool = False, rec_bits: int = 8, unit: float = DEFAULT_UNIT,
                 slope: float = 5.0, learn_threshold: bool = True, learn_dash: bool = True,
                 dash_range: tuple[int, int] = (DASH_MIN, DASH_MAX)):
        super().__init__()
        if not 1 <= int(max_spikes) <= HIDDEN_MAX_SPIKES:
            raise ValueError(f"QXylo max_spikes must be 1..{HIDDEN_MAX_SPIKES}, got {max_spikes}")
        if not 2 <= int(rec_bits) <= 8:
            raise ValueError(f"QXylo rec_bits must be 2..8 (Xylo holds int8 weights), got {rec_bits}")
        lo, hi = (int(v) for v in dash_range)
        if not DASH_MIN - 1 <= lo <= hi <= DASH_MAX:
            raise ValueError(f"QXylo dash_range must lie within 0..{DASH_MAX}, got {dash_range}")
        self.size = int(size)
        self.max_spikes = int(max_spikes)
        self.unit = float(unit)
        self.slope = float(slope)
        self.rec_bits = int(rec_bits)
        self.dash_range = (lo, hi)

        def vec(v) -> torch.Tensor:
            return torch.as_tensor(v, dtype=torch.float32).flatten().expand(self.size).clone()

        self.threshold = nn.Parameter(vec(threshold), requires_grad=bool(learn_threshold))
        self.dash_syn = nn.Parameter(vec(dash_syn), requires_grad=bool(learn_dash))
        self.dash_mem = nn.Parameter(vec(dash_mem), requires_grad=bool(learn_dash))
        self.bias = nn.Parameter(torch.zeros(self.size)) if bias else None
        self.recurrent = nn.Parameter(torch.zeros(self.size, self.size)) if recurrent else None
        #: the Xylo matrix the recurrent weights share their shift with (:func:`link_shift_groups`), or None
        self.shift_group: ShiftGroup | None = None
        self._saturation_events: int | torch.Tensor = 0
        self._order_events: int | torch.Tensor = 0

    # ----------------------------------------------------------------- event counters
    @property
    def saturation_events(self) -> int:
        """Neuron-steps so far where a value was clipped to int16 (isyn + J, dv, dv + bias or v + dv): one event per
        neuron-step, as :meth:`~qsnn_deploy.neurons.XyloNeuron.reference_step` counts them."""
        if isinstance(self._saturation_events, torch.Tensor):
            self._saturation_events = int(self._saturation_events)
        return self._saturation_events

    @saturation_events.setter
    def saturation_events(self, value: int | torch.Tensor) -> None:
        self._saturation_events = value

    @property
    def order_events(self) -> int:
        """Neuron-steps so far where a partial sum of the step's synaptic terms could leave int16, so the forward
        pass folded the terms one by one in Xylo's order (module docstring)."""
        if isinstance(self._order_events, torch.Tensor):
            self._order_events = int(self._order_events)
        return self._order_events

    @order_events.setter
    def order_events(self, value: int | torch.Tensor) -> None:
        self._order_events = value

    # ----------------------------------------------------------------- integers
    def integer_params(self) -> dict[str, torch.Tensor]:
        """θ, bias, dash_syn, dash_mem as integer-valued float32 tensors [size] with STE gradients, and
        ``pow_syn``, ``pow_mem`` = 2**-dash (exact)."""
        lo, hi = self.dash_range
        th = round_ste(self.threshold * self.unit)
        th = th + (th.detach().clamp(1.0, float(STATE_MAX)) - th.detach())
        out = {"threshold": th,
               "dash_syn": _clip_ste(round_ste(self.dash_syn), lo, hi),
               "dash_mem": _clip_ste(round_ste(self.dash_mem), lo, hi)}
        if self.bias is not None:
            b = round_ste(self.bias * self.unit)
            out["bias"] = b + (b.detach().clamp(float(STATE_MIN), float(STATE_MAX)) - b.detach())
        else:
            out["bias"] = torch.zeros(self.size, device=self.threshold.device)
        out["pow_syn"] = torch.pow(2.0, -out["dash_syn"])
        out["pow_mem"] = torch.pow(2.0, -out["dash_mem"])
        return out

    def recurrent_weight(self) -> tuple[torch.Tensor, torch.Tensor, int] | None:
        """(``R_int << s_rec`` with STE gradient, ``R_int``, s_rec), or None without recurrence."""
        if self.recurrent is None:
            return None
        shift = self.shift_group.shift() if self.shift_group is not None else None
        return quantize_shifted(self.recurrent, self.unit, self.rec_bits, shift=shift)

    def frozen_neuron(self, sigma_abs: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> XyloNeuron:
        """The :class:`~qsnn_deploy.neurons.XyloNeuron` parameters the forward pass uses (freeze stores these;
        ``sigma`` = one state unit in model units, ``1/unit``). The arguments are ignored (Xylo layers carry
        their own scale)."""
        p = {k: v.detach().cpu().round().to(torch.int64).numpy() for k, v in self.integer_params().items()}
        return XyloNeuron(p["threshold"], p["bias"], p["dash_syn"], p["dash_mem"], int(self.max_spikes),
                          np.full(self.size, 1.0 / self.unit, dtype=np.float64))

    # ----------------------------------------------------------------- forward
    def forward(self, j: torch.Tensor, isyn: torch.Tensor | None = None, v: torch.Tensor | None = None,
                prev: torch.Tensor | None = None, *, params: dict | None = None, rec: torch.Tensor | None = None,
                x: torch.Tensor | None = None, w: torch.Tensor | None = None, x_cap: int = HIDDEN_MAX_SPIKES
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step. ``j``: the feed-forward integer current [N, size] (``(W << s)·x_t``), ``prev``: this
        layer's spike counts of the previous step (recurrent layers). ``params``/``rec``: the integers of
        :meth:`integer_params` / :meth:`recurrent_weight` (computed once per sequence by the caller). ``x``, ``w``:
        the step's input counts [N, in] and the shifted integer weights [size, in] behind ``j``: with them, a
        neuron-step where a partial sum of the synaptic terms could leave int16 gets Xylo's ordered fold (module
        docstring; counted in ``order_events``), without them ``sat16(isyn + J)``.
        Returns ``(spike counts, isyn, v)``, integer-valued tensors."""
        p = params if params is not None else self.integer_params()
        if isyn is None:
            isyn = torch.zeros_like(j)
        if v is None:
            v = torch.zeros_like(j)
        sources = [] if x is None or w is None else [(x.detach().clamp(max=float(x_cap)), w.detach())]
        if self.recurrent is not None and prev is not None:
            r = rec if rec is not None else self.recurrent_weight()[0]
            r = r.to(j.dtype)
            j = j + prev @ r.t()
            if sources:
                sources.append((prev.detach().clamp(max=float(HIDDEN_MAX_SPIKES)), r.detach()))
        a = isyn + j
        if sources:
            folded, n1, ordered = _ordered_fold(isyn.detach(), sources)
            a = torch.where(n1, folded.to(a.dtype), a)  # where nothing clipped the fold IS the sum
        else:
            a, n1 = sat16(a)
        isyn = a - decay_amount(a, p["pow_syn"].to(j.dtype))
        m = -decay_amount(v, p["pow_mem"].to(j.dtype))
        m = torch.where(m.detach() == -STATE_MIN, m - 65536.0, m)  # C's int16 negation of -32768 wraps (dash_mem 0)
        dv, n2 = sat16(isyn + m)
        dv, n3 = sat16(dv + p["bias"].to(j.dtype))
        v, n4 = sat16(v + dv)
        th = p["threshold"].to(j.dtype)
        n = _SpikeCount.apply(v, th, self.max_spikes, self.slope, self.unit)
        v = v - n.detach() * th
        if not torch.jit.is_scripting():
            events = (n1 | n2 | n3 | n4).sum()  # one per neuron-step clipped anywhere (the kind's count)
            self.saturation_events = events + self.saturation_events  # a tensor until read (no sync per step)
            if sources:
                self.order_events = ordered + self.order_events
        return n, isyn, v


def _ordered_fold(isyn: torch.Tensor, sources: list[tuple[torch.Tensor, torch.Tensor]]
                  ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Xylo's synaptic input of one step: ``isyn`` [N, C] plus every source's term ``count·w``, in order (the
    sources in the list's order, within one the inputs p = 0, 1, ...), each add saturating to int16.
    ``sources``: ``(counts [N, P], integer weights [C, P])``. Where no partial sum can leave int16 (the positive
    and the negative terms summed apart stay inside) this is the plain sum; the other neuron-steps are folded
    term by term. Returns (result [N, C], bool mask of the neuron-steps where an add clipped, number folded)."""
    f64 = torch.float64
    base = isyn.to(f64)
    pos = base.clone()
    neg = base.clone()
    total = base.clone()
    for counts, w in sources:
        c, w64 = counts.to(f64), w.to(f64)
        pos += c @ w64.clamp(min=0).t()
        neg += c @ w64.clamp(max=0).t()
        total += c @ w64.t()
    unsafe = (pos > STATE_MAX) | (neg < STATE_MIN)
    clipped = torch.zeros_like(unsafe)
    n_unsafe = int(unsafe.sum())
    if not n_unsafe:
        return total, clipped, 0
    ni, ci = unsafe.nonzero(as_tuple=True)
    acc = base[ni, ci]
    hit = torch.zeros_like(acc, dtype=torch.bool)
    for counts, w in sources:
        terms = counts.to(f64)[ni] * w.to(f64)[ci]          # [K, P], in source order
        for q in range(terms.shape[1]):
            raw = acc + terms[:, q]
            acc = raw.clamp(float(STATE_MIN), float(STATE_MAX))
            hit |= acc != raw
    total[ni, ci] = acc
    clipped[ni, ci] = hit
    return total, clipped, n_unsafe


def link_shift_groups(blocks: Iterable[Block]) -> ShiftGroup | None:
    """Tie the shifts of what Xylo holds in ``weights_rec`` (module :class:`ShiftGroup`): given the blocks of a
    net (``.synapse``, ``.neuron``), the Xylo blocks but the last (the hidden layers; the last is the readout,
    ``weights_out``) contribute their recurrent weights, and every hidden block after the first its synapse
    (the first one's is ``weights_in``). Returns the group (None when it holds nothing)."""
    xylo = [b for b in blocks if isinstance(b.neuron, QXylo) and isinstance(b.synapse, XyloLinear)]
    hidden = xylo[:-1]
    members: list[tuple[nn.Module, nn.Parameter, float, int]] = []
    for k, b in enumerate(hidden):
        if b.neuron.recurrent is not None:
            members.append((b.neuron, b.neuron.recurrent, b.neuron.unit, b.neuron.rec_bits))
        if k:
            members.append((b.synapse, b.synapse.weight, b.synapse.unit, b.synapse.weight_bits))
    if not members:
        return None
    group = ShiftGroup([(p, unit, bits) for _, p, unit, bits in members])
    for module, _, _, _ in members:
        module.shift_group = group
    return group


def _clip_ste(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return x + (x.detach().clamp(float(lo), float(hi)) - x.detach())


def current_bound(w_eff: torch.Tensor, x_max: float) -> float:
    """Largest |J| of integer weights ``w_eff`` [out, in] fed values 0..x_max: max row Σ|w|·x_max."""
    if w_eff.numel() == 0:
        return 0.0
    return float(w_eff.detach().abs().sum(dim=1).max()) * float(x_max)


#: run Xylo layers through the fused Numba kernel (:mod:`qsnn_deploy.nn.fused_xylo`) on the CPU when no hook
#: watches the neuron (False: always the step-by-step path)
USE_FUSED = True


def run_xylo_block(synapse: XyloLinear, neuron: QXylo, x: torch.Tensor, x_max: float) -> torch.Tensor:
    """All T steps of one Xylo layer: ``x`` [T, N, in] integer-valued spike counts (0..x_max, also the clip Xylo
    applies to them: 15 for the net's input, 31 for a layer's spikes) -> spike counts [T, N, size] (float32).
    With a forward hook on ``neuron`` (verify's per-step capture), on another device than the CPU, without
    Numba or with ``USE_FUSED = False`` it calls ``neuron`` once per step; otherwise one fused autograd node
    (:mod:`qsnn_deploy.nn.fused_xylo`) gives the same counts. Both fold the synaptic terms in Xylo's order
    where a partial sum could leave int16 (``neuron.order_events`` counts those neuron-steps)."""
    from . import fused_xylo

    w_eff, _, _ = synapse.shifted_weight()
    p = neuron.integer_params()
    rw = neuron.recurrent_weight()
    rec = rw[0] if rw is not None else None
    bound = current_bound(w_eff, x_max) + (current_bound(rec, neuron.max_spikes) if rec is not None else 0.0)
    dtype = torch.float32 if bound + 4 * STATE_MAX < _F32_EXACT else torch.float64
    steps, n = x.shape[0], x.shape[1]
    xs = x.to(dtype)
    w = w_eff.to(dtype)
    j_all = (xs.reshape(steps * n, -1) @ w.t()).reshape(steps, n, -1)
    hooked = bool(neuron._forward_hooks or neuron._forward_pre_hooks)
    if USE_FUSED and fused_xylo.HAVE_NUMBA and x.device.type == "cpu" and not hooked and not torch.jit.is_scripting():
        spikes, sat, ordered = fused_xylo.xylo_sequence(j_all, rec, p, neuron.max_spikes, neuron.slope, neuron.unit,
                                                        x=xs.detach(), w=w.detach(), x_cap=int(x_max))
        neuron.saturation_events = neuron.saturation_events + sat
        neuron.order_events = neuron.order_events + ordered
        return spikes
    isyn = v = prev = None
    outs = []
    for t in range(steps):
        n_t, isyn, v = neuron(j_all[t], isyn, v, prev, params=p, rec=rec, x=xs[t], w=w, x_cap=int(x_max))
        prev = n_t
        outs.append(n_t)
    return torch.stack(outs).to(torch.float32)
