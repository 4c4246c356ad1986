"""Images read as rows over time: the 16-channel encoding of MNIST / Fashion-MNIST for 16-input chips
(SynSense Xylo: 16 input channels, input spike counts 0..15 per channel per step).

One encoding, used by ``qsnn-train`` (datasets ``mnist-rows``, ``fashion-mnist-rows``), ``qsnn-verify``
and ``qsnn-report`` alike (:func:`encode_rows`), described by a JSON-able dict that checkpoints and
frozen nets carry (``input.encoding`` of the arch, ``metadata["input_encoding"]`` of the frozen net)::

    {"kind": "rows", "size": 16, "max_count": 15, "steps_per_row": 1, "blank_steps": 0}

Per image (uint8 [28, 28], pixels 0..255):

1. **area downsampling** to ``size × size``: output pixel (i, j) is the mean of the input over the square
   ``[i·s, (i+1)·s) × [j·s, (j+1)·s)``, ``s = 28 / size``, partial input pixels weighted by their covered
   area (OpenCV's ``INTER_AREA``). Computed in integers: with ``A[i, k]`` = the overlap of input
   column k with output column i in units of ``1/size`` (an integer; every row of A sums to 28),
   ``S = A · img · Aᵀ`` is exact and the mean is ``S / 28²``;
2. **intensity as spike counts**: ``count = round(mean / 255 · max_count)`` (ties up), in integers:
   ``(2·S·max_count + 28²·255) // (2·28²·255)``, so 0..``max_count``;
3. **rows over time**: row r (top first) is the input of steps ``r·k .. r·k + k - 1`` (``k`` =
   ``steps_per_row``, each of those steps carries the whole row's counts), its ``size`` columns the
   ``size`` input channels; then ``blank_steps`` steps of zeros (time for the recurrent layer and the
   readout to finish). ``T = size·k + blank_steps``.

The result is uint8 ``[T, N, size]`` (time first, as every simulator takes sequences).
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: dataset names of the encoding in ``qsnn-train`` -> the idx dataset they read
ROW_DATASETS = {"mnist-rows": "mnist", "fashion-mnist-rows": "fashion-mnist"}
ENCODING_KIND = "rows"
IMAGE_SIZE = 28
DEFAULT_ENCODING: dict[str, Any] = {"kind": ENCODING_KIND, "size": 16, "max_count": 15, "steps_per_row": 1,
                                    "blank_steps": 0}


def rows_encoding(size: int = 16, max_count: int = 15, steps_per_row: int = 1, blank_steps: int = 0) -> dict[str, Any]:
    """The encoding dict (module docstring), checked: ``size`` 1..28, ``max_count`` 1..255,
    ``steps_per_row`` ≥ 1, ``blank_steps`` ≥ 0."""
    enc = {"kind": ENCODING_KIND, "size": int(size), "max_count": int(max_count), "steps_per_row": int(steps_per_row),
           "blank_steps": int(blank_steps)}
    return check_encoding(enc)


def check_encoding(enc: Any) -> dict[str, Any]:
    """``enc`` as a complete, checked encoding dict; ValueError naming the field otherwise."""
    if not isinstance(enc, dict) or enc.get("kind") != ENCODING_KIND:
        raise ValueError(f"input encoding: expected a dict with kind {ENCODING_KIND!r}, got {enc!r}")
    full = dict(DEFAULT_ENCODING)
    full.update(enc)
    limits = {"size": (1, IMAGE_SIZE), "max_count": (1, 255), "steps_per_row": (1, 64), "blank_steps": (0, 1024)}
    for key, (lo, hi) in limits.items():
        v = full[key]
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not lo <= int(v) <= hi:
            raise ValueError(f"input encoding: field {key!r} must be an int in {lo}..{hi}, got {v!r}")
        full[key] = int(v)
    unknown = set(full) - set(DEFAULT_ENCODING)
    if unknown:
        raise ValueError(f"input encoding: unknown field {sorted(unknown)[0]!r} (fields: {', '.join(DEFAULT_ENCODING)})")
    return full


def encoding_steps(enc: dict[str, Any]) -> int:
    """T of one encoded image: ``size · steps_per_row + blank_steps``."""
    enc = check_encoding(enc)
    return enc["size"] * enc["steps_per_row"] + enc["blank_steps"]


def area_matrix(size: int, image: int = IMAGE_SIZE) -> np.ndarray:
    """int64 [size, image]: overlap of input pixel k with output pixel i, in units of ``1/size`` of a pixel
    (every row sums to ``image``; the mean over output pixel i's area is ``A[i] · x / image``)."""
    a = np.zeros((size, image), dtype=np.int64)
    for i in range(size):
        lo, hi = i * image, (i + 1) * image          # output pixel i covers [lo, hi) / size input pixels
        for k in range(image):
            klo, khi = k * size, (k + 1) * size      # input pixel k covers [klo, khi) / size
            a[i, k] = max(0, min(hi, khi) - max(lo, klo))
    return a


def downsample_counts(images: np.ndarray, size: int = 16, max_count: int = 15) -> np.ndarray:
    """uint8 [N, size, size] spike counts 0..max_count of uint8 images [N, 28, 28] or [N, 1, 28, 28]
    (steps 1 and 2 of the module docstring, exact integer arithmetic)."""
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"rows encoding reads 28×28 images ([N, 28, 28] or [N, 1, 28, 28]), got {x.shape}")
    if x.dtype.kind not in "iu" or (x.size and (x.min() < 0 or x.max() > 255)):
        raise ValueError("rows encoding reads uint8 pixels 0..255")
    a = area_matrix(size)
    s = np.einsum("ik,nkl,jl->nij", a, x.astype(np.int64), a, optimize=True)  # exact: < 2**31
    den = IMAGE_SIZE * IMAGE_SIZE * 255
    return ((2 * s * max_count + den) // (2 * den)).astype(np.uint8)


def encode_rows(images: np.ndarray, encoding: dict[str, Any] | None = None) -> np.ndarray:
    """uint8 ``[T, N, size]``: MNIST-style images [N, 1, 28, 28] (or [N, 28, 28]) as rows over time (module
    docstring). ``encoding`` defaults to :data:`DEFAULT_ENCODING` (16×16, counts 0..15, one row per step)."""
    enc = check_encoding(encoding if encoding is not None else DEFAULT_ENCODING)
    counts = downsample_counts(images, enc["size"], enc["max_count"])   # [N, rows, cols]
    seq = np.repeat(counts.transpose(1, 0, 2), enc["steps_per_row"], axis=0)  # [rows·k, N, cols]
    if enc["blank_steps"]:
        seq = np.concatenate([seq, np.zeros((enc["blank_steps"],) + seq.shape[1:], dtype=np.uint8)], axis=0)
    return np.ascontiguousarray(seq)


def input_bits(encoding: dict[str, Any]) -> int:
    """Unsigned width of one encoded value (4 for counts 0..15)."""
    return int(check_encoding(encoding)["max_count"]).bit_length()
