"""Lava processes and bit-accurate ProcessModels: the project's integer LIF ("QLIF") and current-based
LIF ("QCUBA"), and the memory-mapped stream source / recorder of the Lava runner.

This folder holds only Lava classes: Lava's compiler imports every ``.py`` file in the folder of
a process's module to find its ProcessModels, so nothing else may live here. Importing this
package requires lava-nc (``python tools/install_lava.py``).
"""
from .process import QCUBA, QLIF, StreamRecorder, StreamSource

__all__ = ["QCUBA", "QLIF", "StreamRecorder", "StreamSource"]
