"""Loihi-style fixed-point simulator (NumPy, vectorized over the batch); backend ``loihi``.

Per layer, one of two neuron rule sets (lava-nc 0.10.0 ``PyLifModelBitAcc`` as pinned down in docs/lava.md,
"Lava's fixed-point rules"):

* ``stock`` (Lava's LIF, fixed_pt), used when the layer maps exactly (the rule of
  :func:`qsnn_deploy.lava.check.stock_reasons`: zero reset, one θ and one decay per
  layer, F = 6, B_v = 24, θ a multiple of 64, a per-channel bias b a multiple of 64 with b >> 6
  within 13 signed bits, |a| << 6 below 2^23)::

      u = tz(u*(4096-(du+1))) + (a << 6);  u wraps to 24 bits      (du = 4095: u = a << 6)
      v = clip(tz(v*(4096-dv)) + u + b, ±(2^23-1));  s = v > (vth << 6);  v[s] = 0
      dv = 4096 - d,  vth = θ >> 6,  b = bias_mant << 6

* ``custom`` (the project's integer semantics, the extension a custom Lava ProcessModel runs):
  subtract reset with θ subtracted after the decay (snnTorch order), per-neuron θ, any F / B_v.

``pipeline=True`` simulates Lava's timing: every synapse adds one step, so layer l (0-based) sees
the input of step t at Lava step t+l+1; the run lasts T+L steps and ``info["raw_spikes"]`` holds
the Lava-timed trains. The returned ``spikes`` are aligned back (layer l shifted by l+1 steps).

**Before a layer's window** (rows τ = 1..l+1 of layer l, before the sample's first input reaches it):
a ``custom`` layer is held at v = 0 and silent, as the QLIF ProcessModel is. A ``stock`` layer runs
Lava's ``LIFReset`` (``PyLifResetModelBitAcc``) as the Lava runner builds it: it integrates (its
bias, the spikes of the layer before) in those rows too, then sets u = v = 0 at τ = l + 2 *before*
integrating that step's input, so from τ = l + 2 on it computes the reference exactly, whatever
came before. Without a bias those rows are silent. With one they are not, and in Lava's stream
(:mod:`.backend`: samples k lanes side by side, one per period of R = T + L (+ P) steps) they are
the previous sample of the same lane continued past its period end (its rows R+1..R+l+1; the rows of
a fresh network's warm-up for the first sample of a lane; an all-zero sample's for a lane left idle
by a partial last group). This simulator mirrors that stream (``lanes``, default Lava's 12;
``lanes=1`` or ``build="netx"`` for the netx build; ``lanes=None``: every sample fresh), keeping
each lane's last rows between ``run`` calls (``reset_stream()`` forgets them, as a new Lava network
does), so Lava's own runs of the same net (backend ``lava``) equal ``info["raw_spikes"]`` bit for
bit. That state is kept only for nets with a biased or recurrent stock layer.

**Recurrent layers** add ``R·z`` of the layer's own spikes one Lava step later (netx's ``dense_rec``
block). A stock recurrent layer's loop runs through its rows before the window too (the previous sample
continued, which may keep firing on its own); the Lava runner clears the recurrent synapse's output in
flight after row τ = l + 1, so at its first step the layer gets no recurrent input, as the reference's
``z_{-1} = 0``: the simulator does the same (``_recurrent(..., start)``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import intmath
from .check import stock_pad
from ..frozen import FrozenNet, Layer
from ..simulators.base import NeuronKernels, SimResult, check_saturation_mode, prepare_input
from .backend import DEFAULT_LANES, LavaSimulator
from ..simulators.numpy_sim import _PreparedLayer, _compact_dtype, _to_torch_layout, p_out_cl

LAVA_BATCH = LavaSimulator.preferred_batch_size
#: Kinds the Loihi-style simulator runs: a custom layer steps the kind's own ``reference_step`` (what a
#: custom Lava ProcessModel runs); a stock layer Lava's CUBA LIF (a ``"lif"`` layer with du = 4095, a
#: ``"cuba"`` one with its own du).
LOIHI_KERNELS = NeuronKernels("loihi", {"lif": "reference_step", "cuba": "reference_step"},
                              reasons={"xylo": "a Xylo neuron (int16 saturating bit-shift decay, up to 31 spikes per step, "
                                               "ordered saturating synaptic terms) is no Loihi neuron; run it with backend "
                                               "xylo (the vendor simulator), numpy or torch"})


def _tz(x: np.ndarray) -> np.ndarray:
    return (x + ((x >> 63) & (intmath.DECAY_ONE - 1))) >> intmath.DECAY_BITS


def _recurrent(p, out: np.ndarray, t: int, start: int = 0):
    """``R·z_{t-1}`` of a recurrent layer (its own spikes one Lava step earlier: a synapse adds one step), else 0.
    0 at the layer's first step ``start`` too: the Lava runner clears the recurrent synapse's output in flight
    after the step before it (a custom layer is silent there anyway)."""
    if p.recurrent is None or t == 0 or t == start:
        return 0
    return p._to_int(out[t - 1].astype(p.recurrent.dtype) @ p.recurrent)


def stock_exact(layer: Layer, current_bound: int = 0) -> bool:
    """True when Lava's stock LIF computes exactly this layer's integer semantics (the same rule the
    Lava exporter routes by: :func:`qsnn_deploy.lava.check.stock_reasons`)."""
    from .check import stock_reasons

    return not stock_reasons(layer, current_bound)


@dataclasses.dataclass
class _Lanes:
    """The Lava stream this simulator mirrors: per layer i, the spikes of rows τ = 1..i+1 that each lane's
    next sample will show (its predecessor's continuation), or ``fresh`` lanes (a new network)."""

    steps: int
    lanes: int
    fresh: np.ndarray                          # bool [lanes]
    tails: list[np.ndarray | None]             # per layer [i+1, lanes, *shape] uint8, None while all fresh


class LoihiSimulator:
    """NumPy simulator of Lava's fixed-point rules and timing (module docstring).

    Args:
        net: the frozen net.
        pipeline: Lava's timing (every synapse one step; raw trains over T + L steps) or the reference's.
        route: "auto" (per layer, the Lava exporter's route), "stock" or "custom" for every layer.
        saturation: "count" only (clips counted).
        lanes: the lane schedule of the Lava stream to mirror (``LavaSimulator``'s ``lanes``, default 12;
            ``None``: every sample as the first of a fresh network). Matters only for nets with a biased
            stock layer, whose raw rows before a layer's window belong to the previous sample of the lane.
        build: "lanes" or "netx" (``LavaSimulator``'s build; "netx" runs one lane, like ``lanes=1``).
    """

    name = "loihi"

    def __init__(self, net: FrozenNet, pipeline: bool = True, route: str = "auto", saturation: str = "count",
                 lanes: int | None = DEFAULT_LANES, build: str = "lanes"):
        check_saturation_mode(saturation, ("count",), backend=self.name)
        if build not in ("lanes", "netx"):
            raise ValueError(f"build must be 'lanes' or 'netx', got {build!r}")
        if lanes is not None and int(lanes) < 1:
            raise ValueError(f"lanes must be ≥ 1 or None, got {lanes}")
        self.net = net.validate()
        LOIHI_KERNELS.check(self.net)
        self.pipeline = bool(pipeline)
        self.layers, x_bound = [], net.input.max_abs
        for layer, (in_shape, _) in zip(net.layers, net.layer_shapes()):
            self.layers.append(_PreparedLayer(layer, in_shape, x_bound))
            x_bound = 1
        if route == "auto":
            from ..statebound import net_peak_currents

            self.routes = ["stock" if stock_exact(l, b) else "custom" for l, b in zip(net.layers, net_peak_currents(net))]
        else:
            self.routes = [route] * len(net.layers)
        self.lanes = None if lanes is None else (1 if build == "netx" else int(lanes))
        self.pad = stock_pad(self.routes) if self.pipeline else 0
        # Only a stock layer with a bias, or a recurrent stock layer (its loop may keep firing after the input ends),
        # can be active before its window; otherwise those rows are provably silent whatever ran before, and no
        # stream state is kept.
        self.biased_stock = [l.name for l, r in zip(net.layers, self.routes)
                             if r == "stock" and (np.any(l.neuron.bias != 0) or l.synapse.is_recurrent)]
        self.streamed = self.pipeline and self.lanes is not None and bool(self.biased_stock)
        if self.streamed:  # verify then hands both backends the same chunks (LavaSimulator's lanes restart per run)
            self.preferred_batch_size = LAVA_BATCH
        self._lane_state: _Lanes | None = None
        self._zero_tails: dict[int, list[np.ndarray]] = {}

    def reset_stream(self) -> None:
        """Forget the mirrored stream (as after ``LavaSimulator.close()``: the next sample starts fresh)."""
        self._lane_state = None

    def run(self, x: np.ndarray, num_steps: int | None = None, record_states: bool = False) -> SimResult:
        """Simulate integer input ``x`` ([N, *shape] static or [T, N, *shape]) with Lava's rules and timing.

        ``spikes`` are shifted back by l + 1 steps per layer l (comparable with the NumPy reference);
        ``info["raw_spikes"]`` holds the Lava-timed trains [T + L, N, ...] (L = number of layers).
        States are not recorded (``record_states`` is accepted for the backend interface).
        """
        arr, static, steps = prepare_input(self.net, x, num_steps)
        arr = arr.astype(_compact_dtype(self.net), copy=False)
        n = arr.shape[0] if static else arr.shape[1]
        L = len(self.layers)
        window = steps + L if self.pipeline else steps
        period = steps + L + self.pad
        total = period + L if self.streamed else window  # streamed: also the rows the next sample of the lane shows
        outs, sats = self._simulate(arr, static, steps, total, window)
        raw = {p.name: s[:window] for p, s in zip(self.layers, outs)}
        info = {"raw_spikes": raw, "routes": self.routes, "timing": "lava-pipeline" if self.pipeline else "reference"}
        if self.streamed:
            self._stream_rows(raw, outs, n, steps, period, total, window)
            info.update(lanes=self._lane_state.lanes, period_steps=period)
        aligned = {}
        for i, p in enumerate(self.layers):
            start = i + 1 if self.pipeline else 0
            aligned[p.name] = raw[p.name][start:start + steps]
        return SimResult(aligned, sats, None, backend=self.name, info=info)

    def _simulate(self, arr, static, steps, total, window):
        """Every layer over ``total`` rows (input columns, then zeros); per layer the spikes in torch layout."""
        if static:
            arr = np.broadcast_to(arr, (steps,) + arr.shape)
        h = np.moveaxis(arr, -3, -1) if arr.ndim >= 5 else arr
        if total > steps:  # zero input after the last column
            h = np.concatenate([h, np.zeros((total - steps,) + h.shape[1:], h.dtype)], axis=0)
        outs, sats = [], {}
        for i, (p, route) in enumerate(zip(self.layers, self.routes)):
            t_, b_ = h.shape[:2]
            j = p.currents(h.reshape((t_ * b_,) + h.shape[2:])).reshape((t_, b_) + p_out_cl(p))
            if self.pipeline:  # the synapse adds one step
                j = np.concatenate([np.zeros((1,) + j.shape[1:], np.int64), j[:-1]], axis=0)
            start = i + 1 if self.pipeline else 0
            s, n_sat = (self._stock if route == "stock" else self._custom)(p, j, start, window, start + steps)
            h = s
            outs.append(_to_torch_layout(s))
            sats[p.name] = n_sat
        return outs, sats

    def _stream_rows(self, raw, outs, n, steps, period, total, window) -> None:
        """Rows τ = 1..i+1 of layer i, before its window, as Lava's stream shows them: the previous sample
        of the lane continued past its period end (rows R+1..R+i+1 of its own run), or, in a fresh lane,
        the network's own warm-up (already there). Lanes mirror ``LavaSimulator``: k = min(lanes, n) side
        by side, reused while T is unchanged and k suffices; a partial last group runs zero samples in the
        other lanes."""
        if n == 0:
            return
        need = max(1, min(self.lanes, n))
        st = self._lane_state
        if st is None or st.steps != steps or st.lanes < need:
            st = self._lane_state = _Lanes(steps, need, np.ones(need, bool), [None] * len(self.layers))
        k = st.lanes
        groups = -(-n // k)
        m_last = n - (groups - 1) * k
        zero = self._zero_tail(steps, total, window, period) if m_last < k else None
        first = min(k, n)
        carried = np.nonzero(~st.fresh[:first])[0]
        for i, (p, s) in enumerate(zip(self.layers, outs)):
            tail = s[period:period + i + 1]                  # [i+1, n, ...]
            r = raw[p.name]
            if n > k:
                r[:i + 1, k:] = tail[:, :n - k]
            if carried.size:
                r[:i + 1, carried] = st.tails[i][:, carried]
            new = np.empty((i + 1, k) + tail.shape[2:], np.uint8)
            if zero is not None:
                new[:] = zero[i]
            new[:, :m_last] = tail[:, (groups - 1) * k:n]
            st.tails[i] = new
        st.fresh[:] = False

    def _zero_tail(self, steps, total, window, period) -> list[np.ndarray]:
        """Per layer i, rows R+1..R+i+1 of an all-zero sample (what an idle lane leaves behind)."""
        if steps not in self._zero_tails:
            zeros = np.zeros((steps, 1) + tuple(self.net.input.shape), _compact_dtype(self.net))
            outs, _ = self._simulate(zeros, False, steps, total, window)
            self._zero_tails[steps] = [s[period:period + i + 1] for i, s in enumerate(outs)]
        return self._zero_tails[steps]

    @staticmethod
    def _custom(p, j, start, end, count_end=None):
        """The integer semantics from row ``start`` (at rest and silent before it) to row ``end`` (silent
        after it, as the QLIF / QCUBA ProcessModel is outside its window): the kind's own reference step.
        Clips are counted in rows ``start``..``count_end`` - 1 (the sample's T steps, as the reference;
        default ``end``)."""
        count_end = end if count_end is None else count_end
        neuron = p.layer.neuron
        state = neuron.initial_state(j.shape[1:])
        out = np.zeros(j.shape, np.uint8)
        n_sat = 0
        for t in range(start, min(end, j.shape[0])):
            state, out[t], n = neuron.reference_step(state, j[t] + _recurrent(p, out, t))
            n_sat += n if t < count_end else 0
        return out, n_sat

    @staticmethod
    def _stock(p, j, start, end, count_end=None):
        """Lava's LIFReset (PyLifResetModelBitAcc) over every row: u = v = 0 at row ``start`` before that
        row's integration (the periodic reset, at the layer's first input), the bias integrated in every
        row before and after. Clips are counted in rows ``start``..``count_end`` - 1 (the sample's T steps;
        default ``end``)."""
        count_end = end if count_end is None else count_end
        neuron = p.layer.neuron
        dv = intmath.DECAY_ONE - int(np.atleast_1d(neuron.decay)[0])
        # "lif": u = a << 6 every step (du = 4095); "cuba": Lava's u decays by 4096 - (du + 1) = the current decay a
        du = 4095 - int(np.atleast_1d(neuron.current_decay)[0]) if neuron.kind == "cuba" else 4095
        vth = neuron.threshold.astype(np.int64) >> 6
        b = neuron.bias.astype(np.int64)
        u = np.zeros(j.shape[1:], np.int64)
        v = np.zeros(j.shape[1:], np.int64)
        out = np.zeros(j.shape, np.uint8)
        lim, n_sat = (1 << 23) - 1, 0
        for t in range(j.shape[0]):
            if t == start:  # LIFReset: reset first, then this step's integration
                u[...] = 0
                v[...] = 0
            u = _tz(u * (4096 - (du + 1))) + ((j[t] + _recurrent(p, out, t, start)) << 6)
            u = np.where(u > (1 << 23), u - (1 << 24), np.where(u <= -(1 << 23), u + (1 << 24), u))
            v = _tz(v * (4096 - dv)) + u + b
            if start <= t < count_end:
                n_sat += int(np.count_nonzero(np.abs(v) > lim))
            v = np.clip(v, -lim, lim)
            s = v > (vth << 6)
            v = np.where(s, 0, v)
            out[t] = s
        return out, n_sat
