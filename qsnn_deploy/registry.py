"""Name -> implementation tables for pluggable targets (backends, exporters).

Built-in entries are ``"module:attribute"`` strings imported on first use, so optional
dependencies (Lava, onnxruntime, ...) are only imported when their target is asked for.
"""
from __future__ import annotations

import importlib
from typing import Any


class Registry:
    """A table of named implementations of one ``kind`` ("backend", "target", ...)."""

    def __init__(self, kind: str, builtin: dict[str, str]):
        self.kind = kind
        self._builtin = dict(builtin)
        self._registered: dict[str, Any] = {}

    def register(self, name: str, obj: Any) -> None:
        """Add (or replace) ``name``."""
        self._registered[name] = obj

    def unregister(self, name: str) -> None:
        """Remove a registered ``name`` (built-in entries stay; unknown names are ignored)."""
        self._registered.pop(name, None)

    def names(self) -> list[str]:
        """Every known name, built-in and registered, sorted."""
        return sorted(set(self._builtin) | set(self._registered))

    def get(self, name: str) -> Any:
        """The implementation registered as ``name``; KeyError listing the known names otherwise."""
        if name in self._registered:
            return self._registered[name]
        if name not in self._builtin:
            raise KeyError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        module, attr = self._builtin[name].split(":")
        return getattr(importlib.import_module(module), attr)
