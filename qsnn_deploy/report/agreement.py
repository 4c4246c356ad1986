"""Which backends ``qsnn-report`` compares with the trained model (its agreement section).

``--verify-backends auto`` (the default) runs every integer backend that can run here: ``torch``,
``onnx`` (ONNX Runtime) and ``nir`` (the NIR round trip), and, with ``--target NAME``, that target's
own backends (``lava``: the Loihi-style simulator ``loihi`` and Intel Lava ``lava``). A backend
whose package is missing is not run and is listed, with the reason, as skipped (terminal, HTML,
JSON ``verify.skipped``), never silently dropped. An explicit list (``torch,onnx``) runs exactly
those backends; ``''`` only the trained model.
"""
from __future__ import annotations

import importlib.util
from typing import Callable

#: Run by ``auto`` for every report.
CORE_BACKENDS = ("torch", "onnx", "nir")
#: Run by ``auto`` in addition, per ``--target``.
TARGET_BACKENDS: dict[str, tuple[str, ...]] = {"lava": ("loihi", "lava")}


def _modules(*names: str) -> Callable[[], str | None]:
    def check() -> str | None:
        missing = [n for n in names if importlib.util.find_spec(n) is None]
        return f"{', '.join(missing)} not installed" if missing else None
    return check


def _lava() -> str | None:
    from ..lava.backend import LavaUnavailableError, import_lava

    try:
        import_lava()
    except LavaUnavailableError as exc:
        return str(exc)
    return None


#: Per backend: a check returning why it cannot run here (None: it can).
AVAILABILITY: dict[str, Callable[[], str | None]] = {
    "torch": _modules("torch"), "onnx": _modules("onnx", "onnxruntime"), "nir": _modules("nir"),
    "loihi": lambda: None, "lava": _lava,
}


def resolve_backends(spec: str | None, target: str | None = None) -> tuple[list[str], list[dict[str, str]]]:
    """``(backends to run, skipped)`` for a ``--verify-backends`` value.

    ``"auto"`` (or None): :data:`CORE_BACKENDS` plus ``target``'s :data:`TARGET_BACKENDS`, each only
    when it can run here; ``skipped`` lists the others as ``{"name", "reason"}``. Otherwise the
    comma-separated names, as given (the reference ``numpy`` is always run and is not listed).
    """
    if spec is None or spec.strip().lower() == "auto":
        wanted = list(CORE_BACKENDS) + [b for b in TARGET_BACKENDS.get(target or "", ()) if b not in CORE_BACKENDS]
        run, skipped = [], []
        for name in wanted:
            why = AVAILABILITY.get(name, lambda: None)()
            if why is None:
                run.append(name)
            else:
                skipped.append({"name": name, "reason": why})
        return run, skipped
    names: list[str] = []
    for b in spec.split(","):
        b = b.strip()
        if b and b not in names:
            names.append(b)
    return names, []


__all__ = ["CORE_BACKENDS", "TARGET_BACKENDS", "AVAILABILITY", "resolve_backends"]
