"""glibc's allocator, tuned for long tensor work: the settings every ``qsnn-*`` command starts with.

Training the int4 MNIST/FashionMNIST net at T = 100 on a CPU allocates and frees activation tensors of
2-120 MB thousands of times a second, and ``qsnn-verify`` / ``qsnn-report`` run the PyTorch model over the
same shapes. glibc's default malloc hands blocks that large back to the kernel (``munmap`` above its mmap
threshold, heap trimming above its trim threshold), and the kernel zeroes every page again on the next
touch: on this project's 2-core machine that was ≈ 200,000 page faults a second and 30-40% of the training
time spent in the kernel. With

* ``MALLOC_MMAP_THRESHOLD_`` = 16 GiB (large blocks come from the heap, not from fresh ``mmap``),
* ``MALLOC_TRIM_THRESHOLD_`` = 16 GiB (freed memory is not returned to the kernel),
* ``MALLOC_TOP_PAD_`` = 1 GiB (the heap grows in large steps),

freed blocks are reused instead (``bench/bench_train.py --malloc both`` and ``bench/bench_commands.py``
measure both). The process keeps its peak memory for its lifetime, which a command that ends when its
work ends can afford.

glibc reads these variables only when a process starts, so a process that is one of the commands
(:func:`command_of` its ``sys.orig_argv``: the ``qsnn-train`` / ``qsnn-verify`` / ``qsnn-report`` /
``qsnn-export`` console scripts or ``python -m qsnn_deploy.cli.<command>``) re-executes itself once with
them set (:func:`reexec_command_with_tuned_malloc`), when ``qsnn_deploy`` is first imported: before torch is
imported, so the restart costs one interpreter start, not a second import of torch. Any other process
that imports the package (a notebook, pytest, a user's script) is left alone. Nothing changes where the
variables do not apply (not Linux, not glibc), where the user set any of them (or ``GLIBC_TUNABLES``) —
their values are kept as given — or with ``QSNN_MALLOC_TUNING=0``. The arithmetic is the same either way:
only where freed memory goes differs.

This module imports nothing but the standard library (it runs before everything else).
"""
from __future__ import annotations

import os
import platform
import sys
from typing import Mapping, Sequence

#: glibc malloc settings (bytes) the qsnn-* commands run with
TUNED_MALLOC: dict[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": str(16 << 30),
    "MALLOC_TRIM_THRESHOLD_": str(16 << 30),
    "MALLOC_TOP_PAD_": str(1 << 30),
}
#: set to ``0`` to keep glibc's defaults
OPT_OUT = "QSNN_MALLOC_TUNING"
#: the commands, by console-script name and by module (``python -m``)
COMMANDS: dict[str, str] = {f"qsnn-{c}": f"qsnn_deploy.cli.{c}" for c in ("train", "verify", "report", "export")}
#: interpreter options that take the next argument as their value (``python -X utf8 -m ...``)
_OPTIONS_WITH_VALUE = ("-X", "-W", "--check-hash-based-pycs")
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


def command_of(orig_argv: Sequence[str]) -> str | None:
    """The ``qsnn-*`` command a process runs, from its full command line (``sys.orig_argv``: the interpreter,
    its options, then ``-m module`` or a script path, then the arguments), or ``None`` for anything else
    (``-c``, stdin, another script or module, an interactive interpreter)."""
    args = list(orig_argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-" or arg.startswith("-c"):
            return None
        if arg.startswith("-m"):  # "-m module" or "-mmodule"
            module = arg[2:] or (args[i + 1] if i + 1 < len(args) else "")
            return next((c for c, m in COMMANDS.items() if m == module), None)
        if arg in _OPTIONS_WITH_VALUE:
            i += 2
            continue
        if arg.startswith("-"):  # -u, -O, -X=..., -W... and the like
            i += 1
            continue
        name = os.path.basename(arg)
        return name if name in COMMANDS else None
    return None


def reexec_command_with_tuned_malloc() -> None:
    """When this process is a ``qsnn-*`` command (:func:`command_of`), replace it by the same command line
    (``sys.orig_argv``, interpreter options included) with :data:`TUNED_MALLOC` in its environment; return
    without doing anything for any other process, or where :func:`tuned_environ` says nothing should change
    (so the re-executed process, which has the variables, does not do it again)."""
    argv = list(getattr(sys, "orig_argv", []))
    if not argv or not sys.executable or command_of(argv) is None:
        return
    env = tuned_environ(os.environ)
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def malloc_settings(environ: Mapping[str, str] | None = None) -> str:
    """One line naming the allocator settings this process started with (every command's ``-v``)."""
    environ = os.environ if environ is None else environ
    given = [f"{k}={environ[k]}" for k in _USER_SETTINGS if k in environ]
    if given:
        return "glibc malloc settings: " + ", ".join(given)
    if environ.get(OPT_OUT, "").strip() == "0":
        return f"glibc malloc defaults ({OPT_OUT}=0)"
    return "allocator defaults (none of the malloc variables set; the qsnn-* commands set them on Linux with glibc)"
