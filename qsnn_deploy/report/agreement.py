"""Which backends ``qsnn-report`` compares with the trained model (its agreement section).

``--verify-backends auto`` (the default) runs every integer backend that can run here: ``torch``,
``onnx`` (ONNX Runtime) and ``nir`` (the NIR round trip), and, with ``--target NAME``, that target's
own backends (``lava``: the Loihi-style simulator ``loihi`` and Intel Lava ``lava``; ``xylo``: Rockpool's
XyloSim ``xylo``). A backend whose package is missing, or whose neuron-kernel table
(:class:`~qsnn_deploy.simulators.base.NeuronKernels`, :data:`KERNEL_TABLES`) refuses one of the net's
neuron kinds (e.g. ``onnx`` and ``nir`` for a Xylo net, ``xylo`` for a LIF net), is not run and is
listed, with the reason, as skipped (terminal, HTML, JSON ``verify.skipped``), never silently dropped.
An explicit list (``torch,onnx``) runs exactly those backends, and one that refuses the net fails by
name (:class:`~qsnn_deploy.errors.UnsupportedNeuronError`); ``''`` only the trained model.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Callable

from ..errors import UnsupportedNeuronError

if TYPE_CHECKING:
    from ..frozen import FrozenNet
    from ..simulators.base import NeuronKernels

#: Run by ``auto`` for every report.
CORE_BACKENDS = ("torch", "onnx", "nir")
#: Run by ``auto`` in addition, per ``--target``.
TARGET_BACKENDS: dict[str, tuple[str, ...]] = {"lava": ("loihi", "lava"), "xylo": ("xylo",)}


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


def _xylo() -> str | None:
    from ..xylo.rockpool_compat import XyloUnavailableError, check_version

    try:
        check_version("syns63300")
    except XyloUnavailableError as exc:
        return str(exc)
    return None


#: Per backend: a check returning why it cannot run here (None: it can).
AVAILABILITY: dict[str, Callable[[], str | None]] = {
    "torch": _modules("torch"), "onnx": _modules("onnx", "onnxruntime"), "nir": _modules("nir"),
    "loihi": lambda: None, "lava": _lava, "xylo": _xylo,
}

#: Per backend: where its neuron-kernel table lives (``module:attribute``); imported only for a backend
#: that can run here. A backend absent from this table is assumed to run every kind.
KERNEL_TABLES: dict[str, str] = {
    "numpy": "qsnn_deploy.simulators.numpy_sim:NUMPY_KERNELS",
    "torch": "qsnn_deploy.simulators.torch_sim:TORCH_KERNELS",
    "onnx": "qsnn_deploy.exporters.onnx_export:ONNX_KERNELS",
    "nir": "qsnn_deploy.exporters.nir_export:NIR_KERNELS",
    "loihi": "qsnn_deploy.lava.loihi_sim:LOIHI_KERNELS",
    "lava": "qsnn_deploy.lava.export:LAVA_KERNELS",
    "xylo": "qsnn_deploy.xylo.backend:XYLO_KERNELS",
}


def kernel_table(name: str) -> "NeuronKernels | None":
    """Backend ``name``'s :class:`~qsnn_deploy.simulators.base.NeuronKernels` (None when it has none listed)."""
    where = KERNEL_TABLES.get(name)
    if where is None:
        return None
    module, attr = where.split(":")
    return getattr(importlib.import_module(module), attr)


def refusal(name: str, net: "FrozenNet") -> str | None:
    """Why backend ``name`` cannot run ``net``'s neuron kinds (its kernel table's own words), None when it can."""
    table = kernel_table(name)
    if table is None:
        return None
    try:
        table.check(net)
    except UnsupportedNeuronError as exc:
        return f"cannot run neuron kind {exc.kind!r} (layer {exc.layer!r}): {exc.reason}"
    return None


def resolve_backends(spec: str | None, target: str | None = None,
                     net: "FrozenNet | None" = None) -> tuple[list[str], list[dict[str, str]]]:
    """``(backends to run, skipped)`` for a ``--verify-backends`` value.

    ``"auto"`` (or None): :data:`CORE_BACKENDS` plus ``target``'s :data:`TARGET_BACKENDS`, each only
    when it can run here and (given ``net``) its kernel table runs every layer of ``net``
    (:func:`refusal`); ``skipped`` lists the others as ``{"name", "reason"}``. Otherwise the
    comma-separated names, as given (the reference ``numpy`` is always run and is not listed; a named
    backend that refuses the net fails when it is built, naming the layer, kind and backend).
    """
    if spec is None or spec.strip().lower() == "auto":
        wanted = list(CORE_BACKENDS) + [b for b in TARGET_BACKENDS.get(target or "", ()) if b not in CORE_BACKENDS]
        run, skipped = [], []
        for name in wanted:
            why = AVAILABILITY.get(name, lambda: None)()
            if why is None and net is not None:
                why = refusal(name, net)
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


__all__ = ["CORE_BACKENDS", "TARGET_BACKENDS", "AVAILABILITY", "KERNEL_TABLES", "kernel_table", "refusal",
           "resolve_backends"]
