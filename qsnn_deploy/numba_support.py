"""What the Numba kernels share: whether Numba is installed, where their compiled code is cached, and a
guard for Numba's side effect on multiprocessing's start method (used by the NumPy reference's kernels
and the fused training layers).

**Cache folder.** The kernels are compiled with ``cache=True``. Numba decides whether a cached kernel
is stale from the modification stamp of the one file that defines it (and the kernel's own
bytecode); it does not look at the files of the functions the kernel inlines. Our kernels inline
each neuron kind's step from :mod:`qsnn_deploy.neurons` (and the fused CUBA kernels the fused LIF's
pieces), so after an edit to one of those files (a ``git pull``, a patch) Numba would silently load
the old machine code. Every kernel of the package is therefore declared with :func:`cached_kernel`,
which caches it in a folder named after a hash of every source file of the package
(:func:`kernel_cache_dir`): any change to any of them compiles afresh. Numba's own setting
(``numba.config.CACHE_DIR``) is left as it was, for other libraries' kernels.

The folder is ``$NUMBA_CACHE_DIR/qsnn-deploy-<hash>`` when the user set ``NUMBA_CACHE_DIR``, else
``$XDG_CACHE_HOME`` (``~/.cache``)``/qsnn-deploy/numba-<hash>``, else (neither writable) the same under
the system's temporary folder; the :data:`KEEP_OLD_CACHES` most recent older ones are kept. Checkouts
with identical sources share one folder.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

try:  # pragma: no cover - both branches exercised where they apply
    import numba
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    numba = None
    HAVE_NUMBA = False

__all__ = ["HAVE_NUMBA", "numba", "cached_kernel", "leave_start_method_unset", "kernel_cache_dir", "source_hash"]

PACKAGE_ROOT = Path(__file__).resolve().parent
#: cache folders of earlier source versions kept beside the current one
KEEP_OLD_CACHES = 3


def source_hash(root: Path = PACKAGE_ROOT) -> str:
    """SHA-256 (16 hex digits) over the relative path and the bytes of every ``*.py`` file under ``root``."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
        return True
    except OSError:
        return False


def kernel_cache_dir(root: Path = PACKAGE_ROOT, environ: dict | None = None) -> Path | None:
    """The Numba cache folder for the package's sources as they are now (module docstring), created;
    older siblings beyond :data:`KEEP_OLD_CACHES` are removed. None if no candidate is writable."""
    env = os.environ if environ is None else environ
    digest = source_hash(root)
    candidates = []
    if env.get("NUMBA_CACHE_DIR"):
        candidates.append((Path(env["NUMBA_CACHE_DIR"]), "qsnn-deploy-"))
    xdg = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates.append((Path(xdg) / "qsnn-deploy", "numba-"))
    candidates.append((Path(tempfile.gettempdir()) / f"qsnn-deploy-{os.getuid() if hasattr(os, 'getuid') else 0}",
                       "numba-"))
    for parent, prefix in candidates:
        folder = parent / (prefix + digest)
        if _writable(folder):
            _prune(parent, prefix, keep=folder)
            return folder
    return None


def _prune(parent: Path, prefix: str, keep: Path) -> None:
    """Remove all but the :data:`KEEP_OLD_CACHES` most recent ``<prefix><hash>`` folders besides ``keep``."""
    try:
        old = [p for p in parent.iterdir() if p.is_dir() and p.name.startswith(prefix) and p != keep
               and len(p.name) == len(prefix) + 16]
        old.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for p in old[KEEP_OLD_CACHES:]:
            shutil.rmtree(p, ignore_errors=True)
    except OSError:  # pragma: no cover - a folder another process is pruning
        pass


@functools.lru_cache(maxsize=1)
def _package_cache_dir() -> Path | None:
    """:func:`kernel_cache_dir` of the installed sources, computed once per process."""
    return kernel_cache_dir()


def cached_kernel(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``numba.njit(cache=True, **options)``, its cache in :func:`kernel_cache_dir` (module docstring).

    Numba picks a function's cache folder when it is decorated, from ``numba.config.CACHE_DIR``: this
    sets it for that moment only and puts back the process's own setting.
    """
    def decorate(fn):
        before = numba.config.CACHE_DIR
        folder = _package_cache_dir()
        if folder is not None:
            numba.config.CACHE_DIR = str(folder)
        try:
            return numba.njit(cache=True, **options)(fn)
        finally:
            numba.config.CACHE_DIR = before
    return decorate


@contextlib.contextmanager
def leave_start_method_unset() -> Iterator[None]:
    """Numba's first parallel launch fixes multiprocessing's start method as a side effect (it asks for
    it); a later unforced ``set_start_method`` — Lava's, on import — would then fail with "context has
    already been set". Put back "unset" when it was unset before."""
    before = multiprocessing.get_start_method(allow_none=True)
    try:
        yield
    finally:
        if before is None and multiprocessing.get_start_method(allow_none=True) is not None:
            multiprocessing.set_start_method(None, force=True)
