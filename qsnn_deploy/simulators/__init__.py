"""Backends that run a :class:`~qsnn_deploy.frozen.FrozenNet`.

Every backend is a class built as ``Backend(net, **options)`` with a method
``run(x, num_steps=None, record_states=False) -> SimResult``. Backends are looked up by name;
a new target registers itself with :func:`register_backend` (or by one line in ``_BUILTIN``),
and nothing in the core changes.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from .base import SimResult, prepare_input

# name -> "module:attribute", imported on first use so that optional dependencies stay optional.
_BUILTIN: dict[str, str] = {
    "numpy": "qsnn_deploy.simulators.numpy_sim:NumpySimulator",
    "torch": "qsnn_deploy.simulators.torch_sim:TorchSimulator",
}
_REGISTERED: dict[str, Callable[..., Any]] = {}


def register_backend(name: str, factory: Callable[..., Any]) -> None:
    """Make ``factory(net, **options)`` available as backend ``name``."""
    _REGISTERED[name] = factory


def available_backends() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def get_backend(name: str) -> Callable[..., Any]:
    """The backend class (factory) registered under ``name``."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in _BUILTIN:
        raise KeyError(f"unknown backend {name!r}; available: {', '.join(available_backends())}")
    module, attr = _BUILTIN[name].split(":")
    return getattr(importlib.import_module(module), attr)


def create_backend(name: str, net, **options) -> Any:
    return get_backend(name)(net, **options)


__all__ = ["SimResult", "prepare_input", "register_backend", "available_backends", "get_backend", "create_backend"]
