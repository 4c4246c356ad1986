"""qsnn-deploy: quantized spiking neural networks from training to integer hardware, bit-exact.

Main entry points:

* :func:`freeze` — torch model (snnTorch + Brevitas, or :class:`~qsnn_deploy.nn.QSequential`)
  -> :class:`FrozenNet` (integer tensors).
* :class:`FrozenNet` — save / load / validate the ``.qsnn`` format.
* :mod:`qsnn_deploy.simulators` — the NumPy reference and the torch (CPU/CUDA) backends.
* :mod:`qsnn_deploy.verify` — spike-train comparison across backends.
"""
from .errors import CheckpointError, FrozenNetError, QSNNError, SaturationError, UnsupportedLayerError
from .frozen import FrozenNet, InputSpec, LIFLayer
from .freeze import freeze

__version__ = "0.1.0"
__all__ = ["freeze", "FrozenNet", "InputSpec", "LIFLayer", "QSNNError", "FrozenNetError",
           "UnsupportedLayerError", "CheckpointError", "SaturationError", "__version__"]
