"""qsnn-deploy: quantized spiking neural networks from training to integer hardware, bit-exact.

Main entry points:

* :func:`freeze` — torch model (snnTorch + Brevitas, or :class:`~qsnn_deploy.nn.QSequential`)
  -> :class:`FrozenNet` (integer tensors).
* :class:`FrozenNet` — save / load / validate the ``.qsnn`` format; its :class:`Layer` s are a
  :class:`Synapse` plus a neuron kind (:mod:`qsnn_deploy.neurons`: :class:`LIF`, :class:`CubaLIF`).
* :mod:`qsnn_deploy.simulators` — the NumPy reference and the torch (CPU/CUDA) backends.
* :mod:`qsnn_deploy.verify` — spike-train comparison across backends.

A process that is one of the ``qsnn-*`` commands restarts itself here, once, with glibc's malloc tuned
(:mod:`qsnn_deploy.malloc_tuning`), before torch is imported; importing the package anywhere else does not.
"""
from .malloc_tuning import reexec_command_with_tuned_malloc

reexec_command_with_tuned_malloc()

from .errors import CheckpointError, FrozenNetError, QSNNError, SaturationError, UnsupportedLayerError
from .frozen import FrozenNet, InputSpec, Layer, LIFLayer, Synapse
from .neurons import LIF, CubaLIF
from .freeze import freeze

__version__ = "0.1.0"
__all__ = ["freeze", "FrozenNet", "InputSpec", "Layer", "Synapse", "LIFLayer", "LIF", "CubaLIF", "QSNNError", "FrozenNetError",
           "UnsupportedLayerError", "CheckpointError", "SaturationError", "__version__"]
