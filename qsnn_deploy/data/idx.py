"""Readers for MNIST and Fashion-MNIST in their original idx format (no downloads, ever).

An idx file is a 4-byte magic number -- two zero bytes, a type code, the number of dimensions
``n`` -- then ``n`` big-endian uint32 sizes, then the data in C order (big-endian for multi-byte
types). The datasets ship as ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``; the same
names without ``.gz`` (uncompressed) are accepted too.

Every problem with a file raises :class:`DatasetError`, naming the file, what was expected and
what was found.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Sequence

import numpy as np

from ..errors import QSNNError

#: idx type code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
SPLIT_PREFIX = {"train": "train", "test": "t10k"}
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
_CHUNK = 1 << 20


class DatasetError(QSNNError, ValueError):
    """A dataset file or folder is missing, malformed, truncated or inconsistent."""


def _open(path: Path) -> BinaryIO:
    try:
        return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot open ({e})") from e


def _read(fh: BinaryIO, n: int, path: Path) -> bytes:
    """Up to ``n`` bytes; a corrupt or truncated gzip stream becomes a DatasetError."""
    try:
        return fh.read(n)
    except (EOFError, zlib.error, OSError) as e:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path}: truncated or corrupt gzip stream ({type(e).__name__}: {e})") from e


def _read_payload(fh: BinaryIO, n: int, path: Path) -> bytearray:
    """Up to ``n`` bytes, read in chunks: memory grows with what the file really holds, never with
    what its header claims (a header may claim 10^9 images in a 100-byte file)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = _read(fh, min(_CHUNK, n - len(buf)), path)
        if not chunk:
            break
        buf += chunk
    return buf


def _remaining_bytes(fh: BinaryIO, path: Path) -> int:
    """Count (and discard) the bytes left in ``fh``."""
    total = 0
    while chunk := _read(fh, _CHUNK, path):
        total += len(chunk)
    return total


def _decoded_size(path: Path) -> int:
    """Decoded size of the whole file in bytes (cheap where possible)."""
    if path.suffix != ".gz":
        return path.stat().st_size
    # A single-member gzip stores the decoded size mod 2**32 in its last 4 bytes; that is only a
    # hint (multi-member or damaged files), so callers re-check by decoding when it disagrees.
    with open(path, "rb") as raw:
        raw.seek(0, os.SEEK_END)
        if raw.tell() < 4:
            return -1
        raw.seek(-4, os.SEEK_END)
        return struct.unpack("<I", raw.read(4))[0]


def _read_header(fh: BinaryIO, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    magic = _read(fh, 4, path)
    if len(magic) < 4:
        raise DatasetError(f"{path}: expected a 4-byte idx magic number, file holds {len(magic)} bytes")
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES:
        codes = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DatasetError(f"{path}: bad idx magic number {magic.hex()} (expected 00 00 <type code in {codes}> "
                           f"<ndim>); not an idx file")
    ndim = magic[3]
    if ndim == 0:
        raise DatasetError(f"{path}: idx header declares 0 dimensions (expected at least 1)")
    raw_dims = _read(fh, 4 * ndim, path)
    if len(raw_dims) < 4 * ndim:
        raise DatasetError(f"{path}: expected {4 * ndim} bytes of dimension sizes for {ndim} dims, "
                           f"file holds {len(raw_dims)}")
    return IDX_DTYPES[magic[2]], struct.unpack(f">{ndim}I", raw_dims)


def read_idx(path: str | os.PathLike, limit: int | None = None) -> np.ndarray:
    """Parse one idx file (gzip-compressed if its name ends in ``.gz``).

    Args:
        path: the file.
        limit: read only the first ``limit`` entries along axis 0 (all when None or larger than
            the file's count). The file's total size is still checked.

    Returns:
        An array of the file's shape (axis 0 cut to ``limit``) and dtype (uint8, int8, int16,
        int32, float32 or float64 for type codes 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E), in native
        byte order.

    Raises:
        DatasetError: missing file, bad magic number, header/payload size mismatch (payload must
            be exactly prod(dims) * itemsize bytes), truncated or corrupt gzip stream.
    """
    path = Path(path)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    with _open(path) as fh:
        dtype, dims = _read_header(fh, path)
        header = 4 + 4 * len(dims)
        expected = math.prod(dims) * dtype.itemsize
        what = f"bytes of data for shape {tuple(dims)} of {dtype.name}"
        count = dims[0] if limit is None else min(limit, dims[0])
        wanted = count * math.prod(dims[1:]) * dtype.itemsize
        payload = _read_payload(fh, wanted, path)
        if len(payload) < wanted:
            raise DatasetError(f"{path}: expected {expected} {what} (as its header claims), file holds "
                               f"{len(payload)}: truncated file or forged header; refused")
        if count == dims[0]:
            extra = _remaining_bytes(fh, path)
            if extra:
                raise DatasetError(f"{path}: expected {expected} {what}, file holds {expected + extra}")
        elif _decoded_size(path) != (header + expected) % (1 << 32 if path.suffix == ".gz" else 1 << 64):
            held = len(payload) + _remaining_bytes(fh, path)  # decode the rest to be sure
            if held != expected:
                raise DatasetError(f"{path}: expected {expected} {what}, file holds {held}")
    array = np.frombuffer(payload, dtype=dtype).reshape((count,) + tuple(dims[1:]))
    return array.astype(dtype.newbyteorder("="), copy=False) if dtype.itemsize > 1 else array


def _find_file(data_dir: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (data_dir / name).is_file():
            return data_dir / name
        if (data_dir / name).is_dir():
            raise DatasetError(f"{data_dir / name}: is a directory; expected an idx file")
    raise DatasetError(f"{data_dir / (stem + '.gz')}: file not found (nor {stem} uncompressed); the folder must hold "
                       f"{', '.join(_expected_names())} (or the same names without .gz)")


def _load_pair(data_dir: str | os.PathLike, split: str, limit: int | None, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in SPLIT_PREFIX:
        raise ValueError(f"split must be one of {sorted(SPLIT_PREFIX)}, got {split!r}")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: {dataset} folder not found (expected a folder holding "
                           f"{', '.join(_expected_names())})")
    prefix = SPLIT_PREFIX[split]
    img_path = _find_file(data_dir, f"{prefix}-images-idx3-ubyte")
    lbl_path = _find_file(data_dir, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(img_path, limit)
    labels = read_idx(lbl_path, limit)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DatasetError(f"{img_path}: expected uint8 images of shape [N, 28, 28], "
                           f"found {images.dtype} {list(images.shape)}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(f"{lbl_path}: expected uint8 labels of shape [N], found {labels.dtype} {list(labels.shape)}")
    # With a limit both arrays are cut; compare the full counts from the headers.
    n_img, n_lbl = _count(img_path), _count(lbl_path)
    if n_img != n_lbl:
        raise DatasetError(f"{img_path.name} holds {n_img} images but {lbl_path.name} holds {n_lbl} labels "
                           f"(expected equal counts) in {data_dir}")
    if labels.size and labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise DatasetError(f"{lbl_path}: expected labels in 0..{NUM_CLASSES - 1}, found {int(labels[bad])} at index {bad}")
    return np.ascontiguousarray(images[:, None, :, :]), labels.astype(np.int64)


def _count(path: Path) -> int:
    with _open(path) as fh:
        return _read_header(fh, path)[1][0]


def _expected_names() -> list[str]:
    return [f"{p}-{k}-ubyte.gz" for p in SPLIT_PREFIX.values() for k in ("images-idx3", "labels-idx1")]


def load_mnist(data_dir: str | os.PathLike, split: str = "test",
               limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST from idx files in ``data_dir``.

    Args:
        data_dir: folder holding ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``.
        split: ``"train"`` (60000 samples) or ``"test"`` (the t10k files, 10000 samples).
        limit: keep only the first ``limit`` samples (only those are decoded); None = all.

    Returns:
        ``(images, labels)``: images uint8 [N, 1, 28, 28], raw pixel values 0..255 (divide by 255
        for model units); labels int64 [N], class indices 0..9.

    Raises:
        DatasetError: missing/malformed files, image and label counts differ, label outside 0..9.
    """
    return _load_pair(data_dir, split, limit, "mnist")


def load_fashion_mnist(data_dir: str | os.PathLike, split: str = "test",
                       limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST from idx files in ``data_dir``; same format, arguments and return values as
    :func:`load_mnist` (images uint8 [N, 1, 28, 28], pixels 0..255; labels int64 [N], 0..9)."""
    return _load_pair(data_dir, split, limit, "fashion-mnist")


def find_dataset(data_dir: str | os.PathLike) -> str:
    """``"fashion-mnist"`` if the folder's name contains "fashion" (any case), else ``"mnist"``.

    Raises:
        DatasetError: the folder is missing or holds no idx files.
    """
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: is a file; expected a dataset folder holding {', '.join(_expected_names())}")
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: dataset folder not found")
    if not any(p.is_file() and "-idx" in p.name for p in data_dir.iterdir()):
        raise DatasetError(f"{data_dir}: holds no idx files (expected {', '.join(_expected_names())})")
    return "fashion-mnist" if "fashion" in data_dir.resolve().name.lower() else "mnist"


def load_idx_dataset(data_dir: str | os.PathLike, split: str = "test",
                     limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST or Fashion-MNIST from ``data_dir``, chosen by :func:`find_dataset`.

    Returns ``(images uint8 [N, 1, 28, 28], labels int64 [N])`` as :func:`load_mnist`.
    """
    loader = load_fashion_mnist if find_dataset(data_dir) == "fashion-mnist" else load_mnist
    return loader(data_dir, split, limit)


def _holds_idx(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() and "-idx" in p.name for p in folder.iterdir())


def resolve_idx_dir(data_dir: str | os.PathLike, hint: str | None = None) -> Path:
    """The MNIST-style idx folder ``data_dir`` names: the folder itself, or — given its parent (e.g.
    ``../shared/data``) — the one sub-folder holding idx files. Where the parent holds several
    (``mnist`` and ``fashion-mnist``), ``hint`` picks one: a dataset or model name containing
    "fashion"/"fmnist" selects Fashion-MNIST, one containing "mnist" MNIST.

    Raises:
        DatasetError: naming the folder and the layout expected, when neither fits.
    """
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: is a file; --data takes a dataset folder holding {', '.join(_expected_names())} "
                           "(e.g. ../shared/data/mnist), or its parent")
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: folder not found; --data takes a dataset folder holding "
                           f"{', '.join(_expected_names())} (e.g. ../shared/data/mnist), or its parent")
    if _holds_idx(data_dir):
        return data_dir
    found = sorted(p for p in data_dir.iterdir() if _holds_idx(p))
    if len(found) == 1:
        return found[0]
    if len(found) > 1 and hint:
        h = hint.lower()
        wanted = "fashion" if ("fashion" in h or "fmnist" in h) else ("mnist" if "mnist" in h else None)
        if wanted is not None:
            pick = [p for p in found if ("fashion" in p.name.lower()) == (wanted == "fashion")]
            if len(pick) == 1:
                return pick[0]
    if found:
        raise DatasetError(f"{data_dir}: holds several datasets ({', '.join(p.name for p in found)}); pass one of them, "
                           f"e.g. --data {found[0]}")
    raise DatasetError(f"{data_dir}: holds no MNIST-style idx files, nor does any folder in it; --data takes a folder "
                       f"holding {', '.join(_expected_names())} (e.g. ../shared/data/mnist), or its parent")


def fit_to_input(images: np.ndarray, input_shape: Sequence[int], source: str = "--data") -> np.ndarray:
    """Images [N, 1, 28, 28] shaped for a net's input: unchanged for (1, 28, 28), flattened in (C, H, W)
    order for a flat (784,) input; any other input shape is refused naming both shapes."""
    shape = tuple(int(s) for s in input_shape)
    if tuple(images.shape[1:]) == shape:
        return images
    if len(shape) == 1 and shape[0] == int(np.prod(images.shape[1:])):
        return images.reshape(images.shape[0], -1)
    raise DatasetError(f"the net takes samples of shape {shape}, {source} gives {tuple(images.shape[1:])} "
                       f"({int(np.prod(images.shape[1:]))} values); use inputs of the net's shape (e.g. --random)")


def default_data_dir(name: str) -> Path:
    """The default folder of dataset ``name`` (e.g. ``"mnist"``, ``"fashion-mnist"``).

    ``../shared/data/<name>`` relative to the current working directory if that folder exists,
    else relative to the repository root (the parent of the ``qsnn_deploy`` package folder).
    When neither exists the repository-root candidate is returned (loading it then raises a
    :class:`DatasetError` naming that path).
    """
    rel = Path("..") / "shared" / "data" / name
    cwd_candidate = Path.cwd() / rel
    if cwd_candidate.is_dir():
        return cwd_candidate.resolve()
    repo_root = Path(__file__).resolve().parents[2]
    return (repo_root / rel).resolve()
