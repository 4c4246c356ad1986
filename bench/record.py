"""A benchmark's figures kept as a JSON file (``--json PATH``, e.g. under ``bench/results/``), with what
they were measured on: the CPU model, its load when the run started, the library versions and the
commit. A figure quoted in the README or the docs should name such a file, so that it can be checked
and re-measured on the same kind of machine (the CPU model changes from machine to machine here, and
timings from two CPUs must not be compared).

    from record import write_results
    write_results(args.json, "bench_numpy_sim", rows)

The file is written atomically (a failed run leaves no half-written file) and holds::

    {"schema": "qsnn-bench-result", "version": 1, "bench": "bench_numpy_sim",
     "command": "python bench/bench_numpy_sim.py --repeats 2 --json ...",
     "machine": {"cpu": "AMD EPYC ...", "logical_cpus": 2, "load_average_1min": 1.97, ...},
     "results": ...}
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # qsnn_deploy from this checkout, as the bench scripts import it
    sys.path.insert(0, str(ROOT))

from qsnn_deploy.fileio import write_text_atomic  # noqa: E402

SCHEMA = "qsnn-bench-result"
VERSION = 1


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(root: Path = ROOT) -> str | None:
    """``HEAD``'s commit of the checkout the bench ran from, with ``+dirty`` when tracked files differ
    from it; None outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU model, logical CPUs, the 1-minute load average when the run
    started (another process's load slows a bench: > 0.5 per core means the figures are contended),
    library versions, torch's thread count, the commit and the UTC time."""
    import numpy as np
    import torch

    info: dict[str, Any] = {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version(), "numpy": np.__version__}
    try:
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    except OSError:  # not on every platform
        info["load_average_1min"] = None
    info.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    info["commit"] = git_commit()
    info["utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return info


def write_results(path: str | os.PathLike, bench: str, results: Any, argv: list[str] | None = None) -> Path:
    """Write ``results`` (JSON-serialisable; NumPy scalars are converted) with :func:`machine` and the
    command line to ``path``, atomically; returns the path."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0])
    shown = script.relative_to(ROOT).as_posix() if script.is_absolute() and ROOT in script.parents else str(script)
    record = {"schema": SCHEMA, "version": VERSION, "bench": bench,
              "command": shlex.join(["python", shown, *argv[1:]]), "machine": machine(), "results": results}
    out = Path(path)
    write_text_atomic(out, json.dumps(record, indent=2, default=_plain) + "\n")
    return out


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as plain Python numbers and lists."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
