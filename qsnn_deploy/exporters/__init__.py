"""Export targets. Each target is a function ``export(net, out, **options) -> list[Path]``
registered by name; ``qsnn-export --target NAME`` looks it up here. Adding a target is adding a
module and one line in ``_BUILTIN`` (or calling :func:`register_exporter`)."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

_BUILTIN: dict[str, str] = {
    "numpy": "qsnn_deploy.exporters.numpy_export:export",
}
_REGISTERED: dict[str, Callable[..., list[Path]]] = {}


def register_exporter(name: str, func: Callable[..., list[Path]]) -> None:
    _REGISTERED[name] = func


def available_targets() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def get_exporter(name: str) -> Callable[..., list[Path]]:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in _BUILTIN:
        raise KeyError(f"unknown target {name!r}; available: {', '.join(available_targets())}")
    module, attr = _BUILTIN[name].split(":")
    return getattr(importlib.import_module(module), attr)
