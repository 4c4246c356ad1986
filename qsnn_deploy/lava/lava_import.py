"""Importing Lava for the ``lava`` backend: Lava's Python 3.11 / numpy 2 patches applied first
(:mod:`.compat`), its 'fork' start method made possible in a process that used multiprocessing before,
and one clear :class:`LavaUnavailableError` (naming ``tools/install_lava.py``) when Lava is missing."""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from ..errors import QSNNError

if TYPE_CHECKING:
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from .models import QLIF, StreamRecorder, StreamSource


class LavaUnavailableError(QSNNError):
    """Lava (lava-nc / lava-dl) is not installed, or cannot be patched for this Python (:mod:`.compat`)."""


def _allow_lava_fork_start_method() -> None:
    """Lava's message infrastructure calls ``multiprocessing.set_start_method('fork')`` (unforced) when
    it is first imported, which raises "context has already been set" in any process that has used
    multiprocessing before (a tqdm progress bar's lock is enough). When the process already uses
    'fork' that call changes nothing, so the setting is cleared for Lava to make it again; any other
    start method is a clear error rather than Lava's crash."""
    import multiprocessing
    import sys

    if "lava.magma.runtime.message_infrastructure.multiprocessing" in sys.modules:
        return
    method = multiprocessing.get_start_method(allow_none=True)
    if method is None:
        return
    if method != "fork":
        raise LavaUnavailableError(f"Lava runs its processes with the 'fork' start method, but this Python process "
                                   f"already uses {method!r} (multiprocessing.set_start_method); run Lava in a process "
                                   "that keeps the default 'fork'")
    multiprocessing.set_start_method(None, force=True)


def import_lava() -> tuple[ModuleType, type[RunSteps], type[Loihi2SimCfg], type[StreamSource], type[StreamRecorder],
                           type[QLIF]]:
    """Import what the runner needs from Lava, with a clear error when Lava is missing.

    Lava's three Python 3.11 / numpy 2 fixes are applied at import time by :mod:`.compat` (installed
    when ``qsnn_deploy.lava`` is imported); a Lava module imported unpatched before that is an error.

    Returns:
        ``(hdf5, RunSteps, Loihi2SimCfg, StreamSource, StreamRecorder, QLIF)``: netx's ``hdf5``
        module, Lava's run condition and run config classes, and qsnn-deploy's Lava processes.

    Raises:
        LavaUnavailableError: Lava is not installed, a patch does not recognise its source, or this
            process uses a multiprocessing start method other than 'fork'.
    """
    from . import compat

    compat.install()
    _allow_lava_fork_start_method()
    try:
        compat.check_loaded()
        from lava.lib.dl.netx import hdf5
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg

        from .models import QLIF, StreamRecorder, StreamSource
    except compat.LavaPatchError as exc:  # Lava is there, but its source is not the one the patches know
        raise LavaUnavailableError(f"the lava backend cannot patch Lava for this Python: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - ImportError, or Lava's own errors on an unpatched Python 3.11
        raise LavaUnavailableError(
            f"the lava backend needs lava-nc 0.10.0 and lava-dl 0.6.0, installed by 'python tools/install_lava.py' "
            f"(make setup does it; docs/lava.md, set-up): {type(exc).__name__}: {exc}") from None
    return hdf5, RunSteps, Loihi2SimCfg, StreamSource, StreamRecorder, QLIF
