"""glibc's allocator, tuned for CPU training: the settings ``qsnn-train`` starts itself with.

Training the int4 MNIST/FashionMNIST net at T = 100 on a CPU allocates and frees activation tensors of
2-120 MB thousands of times a second. glibc's default malloc hands blocks that large back to the kernel
(``munmap`` above its mmap threshold, heap trimming above its trim threshold), and the kernel zeroes
every page again on the next touch: on this project's 2-core machine that was ≈ 200,000 page faults a
second and 30-40% of the training time spent in the kernel. With

* ``MALLOC_MMAP_THRESHOLD_`` = 16 GiB (large blocks come from the heap, not from fresh ``mmap``),
* ``MALLOC_TRIM_THRESHOLD_`` = 16 GiB (freed memory is not returned to the kernel),
* ``MALLOC_TOP_PAD_`` = 1 GiB (the heap grows in large steps),

freed blocks are reused instead (``bench/bench_malloc.py`` measures both). The process keeps its peak
memory for its lifetime, which a training run does anyway. glibc reads these variables only when a
process starts, so the ``qsnn-train`` command re-executes itself once with them set
(:func:`reexec_with_tuned_malloc`) before it imports the data or builds a model. Nothing changes
where the variables do not apply (not Linux, not glibc), where the user set any of them (or
``GLIBC_TUNABLES``) — their values are kept as given — or with ``QSNN_MALLOC_TUNING=0``. The
training arithmetic is the same either way: only where freed memory goes differs.
"""
from __future__ import annotations

import os
import platform
import sys
from typing import Mapping

#: glibc malloc settings (bytes) qsnn-train runs with
TUNED_MALLOC: dict[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": str(16 << 30),
    "MALLOC_TRIM_THRESHOLD_": str(16 << 30),
    "MALLOC_TOP_PAD_": str(1 << 30),
}
#: set to ``0`` to keep glibc's defaults
OPT_OUT = "QSNN_MALLOC_TUNING"
#: variables through which a user (or an earlier re-execution) already chose the allocator's settings
_USER_SETTINGS = (*TUNED_MALLOC, "GLIBC_TUNABLES")


def tuned_environ(environ: Mapping[str, str], system: str | None = None, libc: str | None = None) -> dict[str, str] | None:
    """``environ`` with :data:`TUNED_MALLOC` added, or ``None`` where nothing should change: not Linux
    with glibc (``system`` / ``libc`` default to this interpreter's), ``QSNN_MALLOC_TUNING=0``, or any of the
    allocator's variables (or ``GLIBC_TUNABLES``) already set."""
    system = sys.platform if system is None else system
    libc = platform.libc_ver()[0] if libc is None else libc
    if not system.startswith("linux") or libc != "glibc":
        return None
    if environ.get(OPT_OUT, "").strip() == "0" or any(k in environ for k in _USER_SETTINGS):
        return None
    return {**environ, **TUNED_MALLOC}


def reexec_with_tuned_malloc() -> None:
    """Replace this process by the same command line (``sys.orig_argv``: interpreter options and
    ``-m module`` or the console script included) with :data:`TUNED_MALLOC` in its environment; return
    without doing anything where :func:`tuned_environ` says nothing should change (so the re-executed
    process, which has the variables, does not do it again)."""
    env = tuned_environ(os.environ)
    argv = list(getattr(sys, "orig_argv", []))
    if env is None or not argv or not sys.executable:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def malloc_settings(environ: Mapping[str, str] | None = None) -> str:
    """One line naming the allocator settings this process started with (for ``qsnn-train -v``)."""
    environ = os.environ if environ is None else environ
    given = [f"{k}={environ[k]}" for k in _USER_SETTINGS if k in environ]
    if given:
        return "glibc malloc settings: " + ", ".join(given)
    if environ.get(OPT_OUT, "").strip() == "0":
        return f"glibc malloc defaults ({OPT_OUT}=0)"
    return "allocator defaults (none of the malloc variables set; qsnn-train sets them on Linux with glibc)"
