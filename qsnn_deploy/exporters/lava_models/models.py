"""Bit-accurate fixed-point ProcessModel of :class:`~.process.QLIF` (tag ``fixed_pt``, CPU).

Selected by ``Loihi2SimCfg(select_tag="fixed_pt")``. All arithmetic in int64; the equations are
in :mod:`.process`. The synaptic input arrives as int32 (a conv over raw 8-bit pixels exceeds 16
bits), the spikes leave as 0/1.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from qsnn_deploy.exporters.lava_models.process import QLIF, SpikeRecorder  # absolute: Lava loads this file by path

DECAY_BITS = 12


@implements(proc=QLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyQLifModelFixed(PyLoihiProcessModel):
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
    saturations: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)

    def run_spk(self) -> None:
        a = self.a_in.recv().astype(np.int64)
        if self.time_step <= int(self.hold_steps[0]):
            self.s_out.send(np.zeros(self.v.shape, np.int32))
            return
        v = self.v.astype(np.int64)
        vth = self.vth
        fired = v > vth
        subtract = bool(self.subtract[0])
        if not subtract:
            v = np.where(fired, 0, v)
        prod = v * self.decay
        v = np.sign(prod) * (np.abs(prod) >> DECAY_BITS)
        v = v + (a << int(self.frac_bits[0])) + self.bias
        if subtract:
            v = v - fired * vth
        lim = int(self.state_limit[0])
        self.saturations[0] += int(np.count_nonzero(np.abs(v) > lim))
        v = np.clip(v, -lim, lim)
        self.v[:] = v
        self.s_out.send((v > vth).astype(np.int32))


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeRecorderModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    num_steps: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    packed: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)

    def run_spk(self) -> None:
        s = self.a_in.recv()
        total = int(self.num_steps[0])
        if not hasattr(self, "_train"):
            self._train = np.zeros((total,) + s.shape, np.uint8)
        t = self.time_step - 1
        if t < total:
            self._train[t] = s != 0
        if t == total - 1:
            packed = np.packbits(self._train.reshape(-1))
            packed = np.concatenate([packed, np.zeros(-len(packed) % 4, np.uint8)])
            self.packed[:] = packed.view(">u4").astype(np.int64)
