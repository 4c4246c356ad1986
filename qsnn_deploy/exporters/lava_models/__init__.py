"""Lava process and bit-accurate ProcessModel for the project's integer LIF ("QLIF").

This folder holds only Lava classes: Lava's compiler imports every ``.py`` file in the folder of
a process's module to find its ProcessModels, so nothing else may live here. Importing this
package requires lava-nc (``python tools/install_lava.py``).
"""
from .process import QLIF, SpikeRecorder, unpack_spikes

__all__ = ["QLIF", "SpikeRecorder", "unpack_spikes"]
