"""Backends that run a :class:`~qsnn_deploy.frozen.FrozenNet`.

Every backend is a class built as ``Backend(net, **options)`` with a method
``run(x, num_steps=None, record_states=False) -> SimResult``. Backends are looked up by name;
a new target registers itself with :func:`register_backend` (or by one line in ``BACKENDS``),
and nothing in the core changes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..registry import Registry
from .base import SimResult, prepare_input

if TYPE_CHECKING:
    from ..frozen import FrozenNet

BACKENDS = Registry("backend", {
    "numpy": "qsnn_deploy.simulators.numpy_sim:NumpySimulator",
    "torch": "qsnn_deploy.simulators.torch_sim:TorchSimulator",
    "onnx": "qsnn_deploy.exporters.onnx_runtime:OnnxRuntimeBackend",
    "nir": "qsnn_deploy.exporters.nir_export:NirRoundTripBackend",
    "loihi": "qsnn_deploy.lava.loihi_sim:LoihiSimulator",
    "lava": "qsnn_deploy.lava.backend:LavaSimulator",
    "xylo": "qsnn_deploy.xylo.backend:XyloSimBackend",
})


def register_backend(name: str, factory: Callable[..., Any]) -> None:
    """Make ``factory(net, **options)`` available as backend ``name``."""
    BACKENDS.register(name, factory)


def available_backends() -> list[str]:
    """Every backend name, sorted (``lava``, ``loihi``, ``nir``, ``numpy``, ``onnx``, ``torch``, ``xylo`` and any registered)."""
    return BACKENDS.names()


def get_backend(name: str) -> Callable[..., Any]:
    """The backend class (factory) registered under ``name``."""
    return BACKENDS.get(name)


def create_backend(name: str, net: FrozenNet, **options: Any) -> Any:
    """Build backend ``name`` for the frozen ``net``: ``get_backend(name)(net, **options)``."""
    return get_backend(name)(net, **options)


__all__ = ["SimResult", "prepare_input", "BACKENDS", "register_backend", "available_backends", "get_backend", "create_backend"]
