"""Export targets. Each target is a function ``export(net, out, stem=...) -> list[Path]``
registered by name; ``qsnn-export --target NAME`` looks it up here. Adding a target is adding a
module and one line in ``TARGETS`` (or calling :func:`register_exporter`)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..registry import Registry

TARGETS = Registry("target", {
    "numpy": "qsnn_deploy.exporters.numpy_export:export",
    "nir": "qsnn_deploy.exporters.nir_export:export",
    "onnx": "qsnn_deploy.exporters.onnx_export:export",
    "lava": "qsnn_deploy.lava.export:export",
    "xylo": "qsnn_deploy.xylo.export:export",
})


# Hardware constraint checks per target: ``check(net) -> obj`` with ``.fits`` (bool: runs exactly on
# the stock hardware), ``.summary() -> str``, ``.to_dict()`` and ``.layers`` (per layer: ``.name``,
# ``.route``, ``.fits``, ``.cores``, ``.detail()``). ``qsnn-export --check/--strict`` uses them.
CHECKS = Registry("constraint check", {
    "lava": "qsnn_deploy.lava.check:check_net",
    "xylo": "qsnn_deploy.xylo.check:check_net",
})


def register_exporter(name: str, func: Callable[..., list[Path]]) -> None:
    """Make ``func(net, out, stem=...) -> list[Path]`` available as ``qsnn-export --target NAME``."""
    TARGETS.register(name, func)


def available_targets() -> list[str]:
    """Every export target name, sorted (``lava``, ``nir``, ``numpy``, ``onnx``, ``xylo`` and any registered)."""
    return TARGETS.names()


def get_exporter(name: str) -> Callable[..., list[Path]]:
    """The export function of target ``name`` (imported on first use); KeyError listing the known names."""
    return TARGETS.get(name)


def target_suffix(name: str) -> str | None:
    """The file suffix target ``name`` writes (its module's ``SUFFIX``, e.g. ``".onnx"``), or None."""
    import importlib

    return getattr(importlib.import_module(get_exporter(name).__module__), "SUFFIX", None)
