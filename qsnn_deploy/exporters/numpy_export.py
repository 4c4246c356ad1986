"""``--target numpy``: the frozen network itself, as one ``.qsnn`` file (see docs/frozen-format.md),
which :class:`~qsnn_deploy.simulators.numpy_sim.NumpySimulator` runs."""
from __future__ import annotations

from pathlib import Path

from ..frozen import FrozenNet

SUFFIX = ".qsnn"


def export(net: FrozenNet, out: str | Path, stem: str = "model") -> list[Path]:
    """Write ``net`` to ``out`` (a file path ending in .qsnn, or a directory). Atomic."""
    out = Path(out)
    path = out if out.suffix == SUFFIX else out / f"{stem}{SUFFIX}"
    return [net.save(path)]
