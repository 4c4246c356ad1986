"""``QLIF`` and ``QCUBA``: the project's integer neurons (kinds ``lif`` and ``cuba``) as Lava processes,
and the memory-mapped stream source/recorder the Lava runner feeds and reads a network with.

QLIF has one state per neuron, v (signed, ``state_bits`` wide, default 24), and per time step t
(time_step counted from 1, as Lava does)::

    r_t = [v_{t-1} > vth]                                  previous step's spike
    v_t = tz(v_{t-1} * decay) + (a_t << frac_bits) + bias - r_t * vth       reset="subtract"
    v_t = tz((1 - r_t) * v_{t-1} * decay) + (a_t << frac_bits) + bias       reset="zero"
    v_t = clip(v_t, -(2^(state_bits-1) - 1), 2^(state_bits-1) - 1)       (clips are counted)
    s_t = [v_t > vth]
    tz(x) = sign(x) * (|x| >> 12)                           decay rounds toward zero, 12 bits

This is docs/integer-semantics.md §2 exactly (snnTorch's order: θ is subtracted after the next decay). Lava's stock
LIF cannot hold it: its ``vth``/``du``/``dv`` are one value per layer and it resets to zero right
after the spike.

**Hold and periodic reset.** ``hold_steps`` keeps v at 0 and the output silent for the first
steps, while Lava's synapse pipeline is still filling (layer l, 0-based, receives its first input
at step l+2), so a bias is not integrated before the first input arrives, as in the reference.
With ``reset_interval`` R the time axis is cut into periods of R steps (period p spans steps
``reset_offset + p·R + 1 … reset_offset + (p+1)·R``) and every period repeats that rule: with
τ = ((t - 1 - reset_offset) mod R) + 1 the neuron is *live* for ``hold_steps < τ ≤ window_steps``
(``window_steps`` 0 = R); outside that window v is held at 0, nothing spikes and nothing is
counted. So each period is a fresh neuron started at its first step, exactly the per-sample run the
reference describes, whatever the previous period left in v: the reset is v = 0 before the first
live step (τ = hold_steps + 1), the step at which the period's first input arrives. Without
``reset_interval`` (None) τ = t and the window never ends: one sample, today's behaviour.

**Lanes.** A layer may hold ``lanes`` independent copies of its neurons side by side (lane-major:
neuron i of lane j is flat element j·N + i); the clip count ``saturations`` is kept per lane.

``QCUBA`` (class docstring) adds a current state i before v, with the same hold, window and lanes.

Units: a_in is the integer synaptic sum W·x (no shift); vth, bias and v are in state units
(2^frac_bits per unit of a); decay is a 12-bit multiplier 0..4096 (4096 = no leak); steps are Lava
time steps.
"""
from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class QLIF(AbstractProcess):
    """Integer LIF with per-neuron threshold, bias and decay, subtract or zero reset.

    Args:
        shape: neuron layout, Lava order ((x, y, c) for conv layers, (n,) for dense or lanes).
        vth: threshold θ per neuron [state units, 0 ≤ θ ≤ 2^(state_bits-1) - 1].
        bias: b per neuron [state units], added every live step.
        decay: d per neuron [12-bit multiplier, 0..4096].
        reset: "subtract" or "zero".
        frac_bits: F, the left shift of the synaptic input [bits].
        state_bits: B_v, the signed width of v [bits].
        hold_steps: number of first steps (of the run, or of every period) during which v is held
            at 0 and nothing spikes [steps].
        reset_interval: period R [steps]; None = no period (one sample per run).
        reset_offset: phase of the periods: period p starts at step reset_offset + p·R + 1 [steps, ≥ 0].
        window_steps: live steps end after period-local step window_steps [steps]; None = at R.
        lanes: independent neuron copies held side by side (lane-major); clips are counted per lane.
        count_steps: clips are counted only in the first ``count_steps`` live steps of each period (the
            sample's T steps; the drain steps after it are not the reference's) [steps]; None = every live step.
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], vth, bias=0, decay=4096, reset: str = "subtract",
                 frac_bits: int = 6, state_bits: int = 24, hold_steps: int = 0,
                 reset_interval: ty.Optional[int] = None, reset_offset: int = 0,
                 window_steps: ty.Optional[int] = None, lanes: int = 1, count_steps: ty.Optional[int] = None,
                 name: ty.Optional[str] = None, **kwargs) -> None:
        if reset not in ("subtract", "zero"):
            raise ValueError(f"QLIF reset must be 'subtract' or 'zero', got {reset!r}")
        _check_window("QLIF", shape, hold_steps, reset_interval, reset_offset, window_steps, lanes)
        super().__init__(shape=shape, name=name, **kwargs)
        full = lambda a: np.broadcast_to(np.asarray(a, dtype=np.int64), shape).copy()  # noqa: E731
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v = Var(shape=shape, init=np.zeros(shape, np.int64))
        self.vth = Var(shape=shape, init=full(vth))
        self.bias = Var(shape=shape, init=full(bias))
        self.decay = Var(shape=shape, init=full(decay))
        self.subtract = Var(shape=(1,), init=np.array([1 if reset == "subtract" else 0]))
        self.frac_bits = Var(shape=(1,), init=np.array([int(frac_bits)]))
        self.state_limit = Var(shape=(1,), init=np.array([(1 << (int(state_bits) - 1)) - 1], np.int64))
        _window_vars(self, hold_steps, reset_interval, reset_offset, window_steps, lanes, count_steps)


#: QCUBA's reset modes, as the integer its ``reset_mode`` Var holds
CUBA_RESETS = ("subtract", "zero", "zero_delayed")


class QCUBA(AbstractProcess):
    """Integer current-based LIF (qsnn-deploy's ``cuba`` kind): per-neuron θ, biases and both decays,
    subtract / zero / zero_delayed reset, any widths. Lava's CPU simulator only: not a stock Loihi 2 neuron.

    Two states per neuron, the current i (``current_bits`` wide) and the membrane v (``state_bits``
    wide); per live step t (``tz`` as for :class:`QLIF`, 12-bit decays rounding toward zero)::

        i_t = clip(tz(i_{t-1} * current_decay) + (a_t << frac_bits) + current_bias, ±(2^(current_bits-1) - 1))
        r_t = [v_{t-1} > vth]
        v_t = tz(v_{t-1} * decay) + i_t + bias - r_t * vth                   reset="subtract"
        v_t = tz((1 - r_t) * v_{t-1} * decay) + i_t + bias                   reset="zero"
        v_t = (1 - r_t) * (tz(v_{t-1} * decay) + i_t + bias)                 reset="zero_delayed"
        v_t = clip(v_t, ±(2^(state_bits-1) - 1));   s_t = [v_t > vth]        (clips of i and v counted)

    This is :class:`qsnn_deploy.neurons.CubaLIF`'s equation exactly. Hold, periodic reset (i and v
    held at 0 outside the live window) and lanes as for :class:`QLIF`.

    Args:
        shape: neuron layout, Lava order ((n,) for dense or lanes, (x, y, c) for conv layers).
        vth: θ per neuron [state units, 0 ≤ θ ≤ 2^(state_bits-1) - 1].
        bias: b per neuron, added to v every live step [state units].
        decay: d per neuron (membrane) [12-bit multiplier, 0..4096].
        current_decay: a per neuron (current) [12-bit multiplier, 0..4096].
        current_bias: bi per neuron, added to i every live step [state units].
        reset: "subtract", "zero" or "zero_delayed".
        frac_bits: F, the left shift of the synaptic input [bits].
        state_bits, current_bits: B_v and B_i, the signed widths of v and i [bits].
        hold_steps, reset_interval, reset_offset, window_steps, lanes, count_steps: as for :class:`QLIF`.
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], vth, bias=0, decay=4096, current_decay=0, current_bias=0,
                 reset: str = "subtract", frac_bits: int = 6, state_bits: int = 24, current_bits: int = 24,
                 hold_steps: int = 0, reset_interval: ty.Optional[int] = None, reset_offset: int = 0,
                 window_steps: ty.Optional[int] = None, lanes: int = 1, count_steps: ty.Optional[int] = None,
                 name: ty.Optional[str] = None, **kwargs) -> None:
        if reset not in CUBA_RESETS:
            raise ValueError(f"QCUBA reset must be one of {CUBA_RESETS}, got {reset!r}")
        _check_window("QCUBA", shape, hold_steps, reset_interval, reset_offset, window_steps, lanes)
        super().__init__(shape=shape, name=name, **kwargs)
        full = lambda a: np.broadcast_to(np.asarray(a, dtype=np.int64), shape).copy()  # noqa: E731
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.i = Var(shape=shape, init=np.zeros(shape, np.int64))
        self.v = Var(shape=shape, init=np.zeros(shape, np.int64))
        self.vth = Var(shape=shape, init=full(vth))
        self.bias = Var(shape=shape, init=full(bias))
        self.decay = Var(shape=shape, init=full(decay))
        self.current_decay = Var(shape=shape, init=full(current_decay))
        self.current_bias = Var(shape=shape, init=full(current_bias))
        self.reset_mode = Var(shape=(1,), init=np.array([CUBA_RESETS.index(reset)]))
        self.frac_bits = Var(shape=(1,), init=np.array([int(frac_bits)]))
        self.state_limit = Var(shape=(1,), init=np.array([(1 << (int(state_bits) - 1)) - 1], np.int64))
        self.current_limit = Var(shape=(1,), init=np.array([(1 << (int(current_bits) - 1)) - 1], np.int64))
        _window_vars(self, hold_steps, reset_interval, reset_offset, window_steps, lanes, count_steps)


def _check_window(what: str, shape, hold_steps, reset_interval, reset_offset, window_steps, lanes) -> None:
    """The hold / periodic-window / lanes arguments of QLIF and QCUBA (ValueError naming the process)."""
    if reset_interval is not None and int(reset_interval) < 1:
        raise ValueError(f"{what} reset_interval must be ≥ 1 step or None, got {reset_interval}")
    if int(reset_offset) < 0:
        raise ValueError(f"{what} reset_offset must be ≥ 0, got {reset_offset}")
    if window_steps is not None and not int(hold_steps) < int(window_steps) <= (reset_interval or window_steps):
        raise ValueError(f"{what} window_steps must lie in (hold_steps, reset_interval]: {hold_steps} < "
                         f"{window_steps} ≤ {reset_interval}")
    n = int(np.prod(shape))
    if int(lanes) < 1 or n % int(lanes):
        raise ValueError(f"{what} lanes must divide the {n} neurons, got {lanes}")


def _window_vars(proc: AbstractProcess, hold_steps, reset_interval, reset_offset, window_steps, lanes,
                 count_steps=None) -> None:
    """The Vars of the live window (``0`` encodes None), the per-lane clip counter and its window."""
    proc.hold_steps = Var(shape=(1,), init=np.array([int(hold_steps)]))
    proc.reset_interval = Var(shape=(1,), init=np.array([int(reset_interval or 0)]))
    proc.reset_offset = Var(shape=(1,), init=np.array([int(reset_offset)]))
    proc.window_steps = Var(shape=(1,), init=np.array([int(window_steps or 0)]))
    proc.saturations = Var(shape=(int(lanes),), init=np.zeros(int(lanes), np.int64))
    proc.count_steps = Var(shape=(1,), init=np.array([int(count_steps or 0)]))


class StreamSource(AbstractProcess):
    """Sends, at every Lava step t, row (t - 1) mod ``ring_steps`` of an int32 array that the parent
    process writes into a memory-mapped file (``path``, C order, shape [ring_steps, *shape]).

    Lava's RingBuffer holds its data in a Var fixed at compile time; this source lets one compiled
    network take new samples between ``run`` calls (the parent writes the next rows while the
    network is paused). Values are sent as they are (int32: 8-bit graded pixels, or 0/1 events).
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], path: str, ring_steps: int, name: ty.Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(shape=shape, path=str(path), ring_steps=int(ring_steps), name=name, **kwargs)
        self.s_out = OutPort(shape=shape)


class StreamRecorder(AbstractProcess):
    """Writes, at every Lava step t, the 0/1 spikes it receives into row (t - 1) mod ``ring_steps`` of
    a memory-mapped uint8 file (``path``, C order, shape [ring_steps, *shape]) that the parent reads
    while the network is paused.

    Lava's ``Var.get`` sends an array one element at a time through its runtime channel (about
    12 µs each): reading 200 samples of a 16×12×12 layer that way would take minutes. The file is
    shared page cache: the parent reads it directly.
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], path: str, ring_steps: int, name: ty.Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(shape=shape, path=str(path), ring_steps=int(ring_steps), name=name, **kwargs)
        self.a_in = InPort(shape=shape)
