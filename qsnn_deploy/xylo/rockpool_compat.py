"""The one place that imports Rockpool's Xylo simulator: the samna import workaround and the synapse-lifetime rule.

Two facts of rockpool 3.1.0 / xylosim 0.1.3 (docs/xylo.md, /work/shared/FACTS.md "SynSense Xylo"):

1. ``import rockpool.devices.xylo`` fails without SynSense's ``samna`` (the package ``__init__`` imports
   ``syns65302``, whose own ``__init__`` imports a samna module unguarded). samna cannot be installed
   here (the registry's package is a stub that downloads the real one at import). :func:`xylosim_class`
   registers ``rockpool.devices.xylo`` as an empty package module (its ``__path__`` set, its
   ``__init__`` NOT run) and imports the per-chip subpackage (``rockpool.devices.xylo.syns63300``),
   whose own samna imports are guarded. The installed files are never edited. syns65302 (Xylo Audio 3)
   cannot be imported at all without samna: refused by name.
2. xylosim's ``XyloLayer`` keeps raw C++ pointers to the ``XyloSynapse`` objects it was built from; if
   the Python lists holding them are freed before ``evolve()``, it reads freed memory (segfault,
   exit 139). Rockpool's ``XyloSim`` keeps them in ``mod._xylo_sim_params``; :func:`build_xylosim`
   returns that module, and whoever runs it must keep the module alive for as long as it runs
   (never keep only ``mod._xylo_layer``).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

#: chip versions whose XyloSim runs here (rockpool subpackage -> product name)
SIMULATED = {"syns63300": "Xylo IMU", "syns61201": "Xylo Audio 2"}
#: chip versions refused by name, with the reason
REFUSED = {
    "syns65302": "Xylo Audio 3: rockpool 3.1.0 cannot import its XyloSim without SynSense's samna, which cannot "
                 "be installed here (the registry's package is a download stub); use syns63300 (Xylo IMU)",
    "syns61300": "Xylo v1: rockpool's XyloSim.from_specification for it needs samna, and it has no bias",
}


class XyloUnavailableError(ImportError):
    """rockpool or xylosim is missing, or the chip version cannot be simulated here (message says which)."""


def _register_xylo_package() -> None:
    """Make ``rockpool.devices.xylo`` importable without running its ``__init__`` (which needs samna)."""
    name = "rockpool.devices.xylo"
    if name in sys.modules:
        return
    try:
        devices = importlib.import_module("rockpool.devices")
    except ImportError as exc:
        raise XyloUnavailableError(f"rockpool is not installed ({exc}); run `make setup` (rockpool==3.1.0)") from exc
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise XyloUnavailableError(f"{name} not found in the installed rockpool")
    pkg = types.ModuleType(name)
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__package__ = name
    pkg.__spec__ = spec
    sys.modules[name] = pkg
    setattr(devices, "xylo", pkg)


def check_version(version: str) -> str:
    """``version`` if its XyloSim runs here; :class:`XyloUnavailableError` naming the reason otherwise."""
    if version in SIMULATED:
        return version
    if version in REFUSED:
        raise XyloUnavailableError(f"chip version {version!r} refused: {REFUSED[version]}")
    raise XyloUnavailableError(f"unknown Xylo chip version {version!r}; known: {', '.join(sorted(SIMULATED))} "
                               f"(refused: {', '.join(sorted(REFUSED))})")


def xylo_module(version: str, submodule: str) -> types.ModuleType:
    """``rockpool.devices.xylo.<version>.<submodule>`` (e.g. ``xylo_mapper``), imported through the workaround."""
    check_version(version)
    _register_xylo_package()
    try:
        return importlib.import_module(f"rockpool.devices.xylo.{version}.{submodule}")
    except ImportError as exc:
        hint = " (pip install xylosim==0.1.3, or `make setup`)" if "xylosim" in str(exc) else ""
        raise XyloUnavailableError(f"cannot import rockpool's {version}.{submodule}: {exc}{hint}") from exc


def xylosim_class(version: str) -> Any:
    """Rockpool's ``XyloSim`` class for a chip version (``syns63300`` or ``syns61201``)."""
    return xylo_module(version, "xylo_sim").XyloSim


def build_xylosim(version: str, spec: dict[str, Any]) -> Any:
    """``XyloSim.from_specification(**spec)`` (rockpool's own code). Keep the returned module alive while it
    runs: it holds the synapse objects xylosim points to (module docstring, rule 2)."""
    return xylosim_class(version).from_specification(**spec)


def available(version: str = "syns63300") -> bool:
    """True when rockpool and xylosim import and ``version`` can be simulated."""
    try:
        xylosim_class(version)
    except XyloUnavailableError:
        return False
    return True
