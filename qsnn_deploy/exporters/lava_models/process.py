"""``QLIF``: the project's integer leaky integrate-and-fire neuron as a Lava process.

One state per neuron, v (signed, ``state_bits`` wide, default 24), and per time step t
(time_step counted from 1, as Lava does)::

    r_t = [v_{t-1} > vth]                                  previous step's spike
    v_t = tz(v_{t-1} * decay) + (a_t << frac_bits) + bias - r_t * vth       reset="subtract"
    v_t = tz((1 - r_t) * v_{t-1} * decay) + (a_t << frac_bits) + bias       reset="zero"
    v_t = clip(v_t, -(2^(state_bits-1) - 1), 2^(state_bits-1) - 1)       (clips are counted)
    s_t = [v_t > vth]
    tz(x) = sign(x) * (|x| >> 12)                           decay rounds toward zero, 12 bits

This is DESIGN.md §3 exactly (snnTorch's order: θ is subtracted after the next decay). Lava's stock
LIF cannot hold it: its ``vth``/``du``/``dv`` are one value per layer and it resets to zero right
after the spike. ``hold_steps`` keeps v at 0 and the output silent for the first steps, while
Lava's synapse pipeline is still filling (layer l, 0-based, receives its first input at step l+2),
so a bias is not integrated before the first input arrives, as in the reference.

Units: a_in is the integer synaptic sum W·x (no shift); vth, bias and v are in state units
(2^frac_bits per unit of a); decay is a 12-bit multiplier 0..4096 (4096 = no leak).
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
        shape: neuron layout, Lava order ((x, y, c) for conv layers, (n,) for dense).
        vth: threshold θ per neuron [state units, 0 ≤ θ ≤ 2^(state_bits-1) - 1].
        bias: b per neuron [state units], added every step.
        decay: d per neuron [12-bit multiplier, 0..4096].
        reset: "subtract" or "zero".
        frac_bits: F, the left shift of the synaptic input [bits].
        state_bits: B_v, the signed width of v [bits].
        hold_steps: number of first time steps during which v is held at 0 and nothing spikes.
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], vth, bias=0, decay=4096, reset: str = "subtract",
                 frac_bits: int = 6, state_bits: int = 24, hold_steps: int = 0,
                 name: ty.Optional[str] = None, **kwargs) -> None:
        if reset not in ("subtract", "zero"):
            raise ValueError(f"QLIF reset must be 'subtract' or 'zero', got {reset!r}")
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
        self.hold_steps = Var(shape=(1,), init=np.array([int(hold_steps)]))
        self.saturations = Var(shape=(1,), init=np.zeros(1, np.int64))


class SpikeRecorder(AbstractProcess):
    """Records a layer's 0/1 spikes for ``num_steps`` steps, bit-packed into 32-bit words.

    Lava's ``Var.get`` sends an array one element at a time through its runtime channel (about
    12 µs each): reading a 16×12×12 layer over 103 steps from a sink RingBuffer takes ~3 s. Packed
    32 spikes per element it takes ~0.1 s. ``packed`` holds ``np.packbits`` of the spike train
    [num_steps, *shape] (C order, big-endian bit order), grouped 4 bytes per element; it is filled
    at the last step. :func:`unpack_spikes` turns it back into a uint8 array.
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], num_steps: int, name: ty.Optional[str] = None, **kwargs) -> None:
        super().__init__(shape=shape, num_steps=num_steps, name=name, **kwargs)
        words = -(-int(np.prod(shape)) * int(num_steps) // 32)
        self.a_in = InPort(shape=shape)
        self.num_steps = Var(shape=(1,), init=np.array([int(num_steps)]))
        self.packed = Var(shape=(words,), init=np.zeros(words, np.int64))


def unpack_spikes(packed: np.ndarray, shape: ty.Tuple[int, ...], num_steps: int) -> np.ndarray:
    """Inverse of the :class:`SpikeRecorder` packing: uint8 [num_steps, *shape]."""
    words = np.asarray(packed).astype(np.int64).astype(">u4")
    bits = np.unpackbits(words.view(np.uint8))[: int(np.prod(shape)) * int(num_steps)]
    return bits.reshape((int(num_steps),) + tuple(shape))
