"""Bit-accurate fixed-point ProcessModels of :class:`~.process.QLIF` and :class:`~.process.QCUBA` (tag
``fixed_pt``, CPU), and the models of the memory-mapped stream source and recorder.

Selected by ``Loihi2SimCfg(select_tag="fixed_pt")``. All QLIF / QCUBA arithmetic in int64; the equations and
the hold / periodic-reset window are in :mod:`.process`. The synaptic input arrives as int32 (a conv
over raw 8-bit pixels exceeds 16 bits), the spikes leave as 0/1.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

# absolute: Lava loads this file by path
from qsnn_deploy.lava.models.process import QCUBA, QLIF, StreamRecorder, StreamSource

DECAY_BITS = 12


def _tz(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``sign(x·k) · (|x·k| >> 12)``: the 12-bit decay, rounding toward zero (int64)."""
    prod = x * k
    return np.sign(prod) * (np.abs(prod) >> DECAY_BITS)


class _Windowed:
    """The hold / periodic live window shared by QLIF and QCUBA (:mod:`.process`)."""

    def _tau(self) -> tuple[int, int]:
        """(τ, the last live τ): this step within its period, 1-based (see :mod:`.process`)."""
        period = int(self.reset_interval[0])
        if period:
            return (self.time_step - 1 - int(self.reset_offset[0])) % period + 1, int(self.window_steps[0]) or period
        return self.time_step, self.time_step

    def _live(self) -> bool:
        """True when this step lies in the live window of its period (see :mod:`.process`)."""
        tau, end = self._tau()
        return int(self.hold_steps[0]) < tau <= end

    def _clip(self, x: np.ndarray, lim: int) -> np.ndarray:
        """``clip(x, ±lim)``, each clipped value counted in its lane's ``saturations`` (within ``count_steps``)."""
        count = int(self.count_steps[0])
        if not count or self._tau()[0] <= int(self.hold_steps[0]) + count:
            lanes = self.saturations.shape[0]
            self.saturations += np.count_nonzero((np.abs(x) > lim).reshape(lanes, -1), axis=1)
        return np.clip(x, -lim, lim)


@implements(proc=QLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyQLifModelFixed(_Windowed, PyLoihiProcessModel):
    """Bit-accurate CPU model of :class:`~.process.QLIF` (tag ``fixed_pt``): int64 arithmetic.

    Per live step: ``r = [v > vth]``; reset ``zero`` zeroes v where r; ``v = tz(v·decay) + (a << F) + bias``
    (``tz`` rounds toward zero, 12-bit decay); reset ``subtract`` then takes ``r·vth`` off;
    ``v = clip(v, ±state_limit)`` (clips counted per lane); spike ``v > vth``. Units: state units.
    """
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    decay: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=13)
    subtract: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=1)
    frac_bits: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=8)
    state_limit: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    hold_steps: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    reset_interval: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    reset_offset: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    window_steps: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    saturations: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)
    count_steps: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)

    def run_spk(self) -> None:
        """One Lava time step: receive W·x, update v (held at 0 outside the live window), send spikes."""
        a = self.a_in.recv().astype(np.int64)
        if not self._live():
            self.v[:] = 0
            self.s_out.send(np.zeros(self.v.shape, np.int32))
            return
        v = self.v.astype(np.int64)
        vth = self.vth
        fired = v > vth
        subtract = bool(self.subtract[0])
        if not subtract:
            v = np.where(fired, 0, v)
        v = _tz(v, self.decay) + (a << int(self.frac_bits[0])) + self.bias
        if subtract:
            v = v - fired * vth
        v = self._clip(v, int(self.state_limit[0]))
        self.v[:] = v
        self.s_out.send((v > vth).astype(np.int32))


@implements(proc=QCUBA, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyQCubaModelFixed(_Windowed, PyLoihiProcessModel):
    """Bit-accurate CPU model of :class:`~.process.QCUBA` (tag ``fixed_pt``): int64 arithmetic.

    Per live step (state units; ``tz`` rounds toward zero, 12-bit decays)::

        i = clip(tz(i·current_decay) + (a << F) + current_bias, ±current_limit)
        r = [v > vth];  "zero": v = 0 where r
        v = tz(v·decay) + i + bias;  "subtract": v -= r·vth;  "zero_delayed": v = 0 where r
        v = clip(v, ±state_limit);  spike v > vth            (clips of i and v counted per lane)

    i and v are held at 0 and nothing spikes outside the live window.
    """
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)
    i: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)
    decay: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=13)
    current_decay: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=13)
    current_bias: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)
    reset_mode: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=2)
    frac_bits: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=8)
    state_limit: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)
    current_limit: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)
    hold_steps: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    reset_interval: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    reset_offset: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    window_steps: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    saturations: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)
    count_steps: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)

    def run_spk(self) -> None:
        """One Lava time step: receive W·x, update i then v (held at 0 outside the live window), send spikes."""
        a = self.a_in.recv().astype(np.int64)
        if not self._live():
            self.i[:] = 0
            self.v[:] = 0
            self.s_out.send(np.zeros(self.v.shape, np.int32))
            return
        i = _tz(self.i.astype(np.int64), self.current_decay) + (a << int(self.frac_bits[0])) + self.current_bias
        i = self._clip(i, int(self.current_limit[0]))
        v = self.v.astype(np.int64)
        vth = self.vth
        fired = v > vth
        mode = int(self.reset_mode[0])  # 0 subtract, 1 zero, 2 zero_delayed (process.CUBA_RESETS)
        if mode == 1:
            v = np.where(fired, 0, v)
        v = _tz(v, self.decay) + i + self.bias
        if mode == 0:
            v = v - fired * vth
        elif mode == 2:
            v = np.where(fired, 0, v)
        v = self._clip(v, int(self.state_limit[0]))
        self.i[:] = i
        self.v[:] = v
        self.s_out.send((v > vth).astype(np.int32))


@implements(proc=StreamSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyStreamSourceModel(PyLoihiProcessModel):
    """CPU model of :class:`~.process.StreamSource`: at step t, sends row ``(t - 1) % ring`` of a
    memory-mapped int32 file (the input the parent wrote for this period)."""
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def run_spk(self) -> None:
        """One Lava time step: send this step's input row."""
        if not hasattr(self, "_rows"):  # opened in the Lava process, after the fork
            ring = int(self.proc_params["ring_steps"])
            self._rows = np.memmap(self.proc_params["path"], dtype=np.int32, mode="r",
                                   shape=(ring,) + tuple(self.s_out.shape))
        self.s_out.send(np.array(self._rows[(self.time_step - 1) % self._rows.shape[0]]))


@implements(proc=StreamRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyStreamRecorderModel(PyLoihiProcessModel):
    """CPU model of :class:`~.process.StreamRecorder`: at step t, writes the received spikes (0/1,
    uint8) to row ``(t - 1) % ring`` of a memory-mapped file the parent reads."""
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)

    def run_spk(self) -> None:
        """One Lava time step: store the received spikes in this step's row."""
        s = self.a_in.recv()
        if not hasattr(self, "_rows"):
            ring = int(self.proc_params["ring_steps"])
            self._rows = np.memmap(self.proc_params["path"], dtype=np.uint8, mode="r+",
                                   shape=(ring,) + tuple(self.a_in.shape))
        self._rows[(self.time_step - 1) % self._rows.shape[0]] = s != 0
