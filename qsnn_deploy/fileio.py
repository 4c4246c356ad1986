"""File I/O shared by every reader and writer.

* Atomic output: a failed export never leaves a half-written file behind, and an output path
  that cannot be written (a directory, a folder under a regular file, a read-only folder) is
  refused with one :class:`~qsnn_deploy.errors.QSNNError` naming the path (docs/bad-input.md).
* Size claims: a file whose header claims more data than the file can hold is refused before
  anything is allocated (:func:`check_claimed_size`, :func:`check_hdf5_sizes`).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .errors import CheckpointError, QSNNError

if TYPE_CHECKING:
    import h5py

#: A payload may decode to at most this many times its stored size (deflate, the strongest
#: compression an .npz/.gz/HDF5 file here can use, tops out near 1032:1), plus ``SIZE_SLACK``.
MAX_EXPANSION = 1100
SIZE_SLACK = 1 << 16


def output_error(path: str | os.PathLike, exc: OSError) -> QSNNError:
    """One clear error for an output path that cannot be written."""
    reason = exc.strerror or type(exc).__name__
    where = exc.filename if exc.filename and str(exc.filename) != str(path) and ".part" not in str(exc.filename) else None
    return QSNNError(f"{path}: cannot write the output file ({reason}{f': {where}' if where else ''})")


def check_output_path(path: str | os.PathLike, kind: str = "file") -> Path:
    """Refuse, before any work is done, an output that cannot be written.

    ``kind="file"``: ``path`` must not be a directory; ``kind="dir"``: ``path`` must be a
    directory if it exists. Missing parent folders are fine (they are created when the output is
    written, like ``mkdir -p``) as long as the closest existing ancestor is a writable directory.
    Nothing is created here.
    """
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise QSNNError(f"{path}: is a directory; expected an output file path")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise QSNNError(f"{path}: is a file; expected an output directory")
    anc = path.parent if kind == "file" else path
    while not anc.exists() and not anc.is_symlink() and anc != anc.parent:
        anc = anc.parent
    if anc.exists() and not anc.is_dir():
        raise QSNNError(f"{path}: cannot create the output there: {anc} is a file, not a directory")
    if anc.is_dir() and not os.access(anc, os.W_OK | os.X_OK):
        raise QSNNError(f"{path}: cannot write the output: directory {anc} is not writable")
    return path


def check_claimed_size(path: str | os.PathLike, what: str, claimed: int, stored: int) -> None:
    """Refuse a payload whose header claims more bytes than ``stored`` bytes can decode to."""
    limit = MAX_EXPANSION * max(int(stored), 0) + SIZE_SLACK
    if claimed > limit:
        raise CheckpointError(f"{path}: {what} claims {claimed} bytes but only {stored} bytes are stored "
                              f"(limit {limit} = {MAX_EXPANSION} x stored + {SIZE_SLACK}); refused without reading it")


def check_hdf5_sizes(h5file: h5py.File, path: str | os.PathLike) -> None:
    """Refuse an open HDF5 file (``h5py.File``) holding a dataset that claims more bytes than the
    whole file can decode to. Reads only metadata."""
    import h5py

    stored = Path(path).stat().st_size
    found: list[tuple[str, h5py.Dataset]] = []
    h5file.visititems(lambda name, obj: found.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
    for name, ds in found:
        claimed = int(ds.size or 0) * int(ds.dtype.itemsize)
        check_claimed_size(path, f"dataset {name!r} (shape {ds.shape}, {ds.dtype})", claimed, stored)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    The rename is atomic on POSIX file systems. On any exception the temporary file is removed
    and ``path`` is left untouched (an older file there survives). Missing parent folders are
    created; a path that is a directory, or under a regular file or a read-only folder, raises
    :class:`~qsnn_deploy.errors.QSNNError` naming it.
    """
    path = Path(path)
    if path.is_dir():
        raise QSNNError(f"{path}: is a directory; expected an output file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise output_error(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
