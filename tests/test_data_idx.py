"""idx readers on the real MNIST / Fashion-MNIST files and on malformed files."""
from __future__ import annotations

import gzip
import struct

from pathlib import Path

import numpy as np
import pytest

from qsnn_deploy.data import (DatasetError, default_data_dir, find_dataset, load_fashion_mnist, load_idx_dataset,
                              load_mnist, read_idx)

MNIST = default_data_dir("mnist")
FASHION = default_data_dir("fashion-mnist")


def _needs(folder: Path, name: str):
    """Decorator: the test needs that dataset (fails in CI, skips elsewhere, when it is absent)."""
    def deco(fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
                from conftest import missing_data
                missing_data(f"no {name} at {folder}")
            return fn(*args, **kwargs)
        return wrapper
    return deco


needs_mnist = _needs(MNIST, "MNIST")
needs_fashion = _needs(FASHION, "Fashion-MNIST")


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write_pair(folder, n_images: int = 5, n_labels: int = 5, labels=None, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n_images, 28, 28), dtype=np.uint8)
    labels = np.arange(n_labels, dtype=np.uint8) % 10 if labels is None else np.asarray(labels, dtype=np.uint8)
    for name, arr in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        data = idx_bytes(arr)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


# ---------------------------------------------------------------------------- real data
@needs_mnist
def test_mnist_test_split():
    images, labels = load_mnist(MNIST)
    assert images.shape == (10000, 1, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert labels.min() == 0 and labels.max() == 9
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]


@needs_mnist
def test_mnist_limit_matches_full_read():
    full_x, full_y = load_mnist(MNIST, "train")
    x, y = load_mnist(MNIST, "train", limit=200)
    assert x.shape == (200, 1, 28, 28)
    np.testing.assert_array_equal(x, full_x[:200])
    np.testing.assert_array_equal(y, full_y[:200])


@needs_mnist
def test_mnist_train_split_count_and_mean():
    images, labels = load_mnist(MNIST, split="train")
    assert images.shape == (60000, 1, 28, 28) and labels.shape == (60000,)
    assert abs(float(images.mean()) - 0.1307 * 255) < 0.5


@needs_fashion
def test_fashion_mnist_balanced_test_split():
    images, labels = load_fashion_mnist(FASHION)
    assert images.shape == (10000, 1, 28, 28)
    assert np.bincount(labels, minlength=10).tolist() == [1000] * 10


@needs_mnist
@needs_fashion
def test_find_dataset_and_dispatch():
    assert find_dataset(MNIST) == "mnist"
    assert find_dataset(FASHION) == "fashion-mnist"
    x, y = load_idx_dataset(FASHION, limit=10)
    np.testing.assert_array_equal(y, load_fashion_mnist(FASHION, limit=10)[1])
    assert x.shape == (10, 1, 28, 28)


def test_find_dataset_without_idx_files(tmp_path):
    with pytest.raises(DatasetError, match="no idx files"):
        find_dataset(tmp_path)


def test_bad_split_and_limit(tmp_path):
    write_pair(tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_mnist(tmp_path, split="validation")
    with pytest.raises(ValueError, match="limit"):
        load_mnist(tmp_path, limit=-1)


# ---------------------------------------------------------------------------- read_idx
@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_read_idx_all_types(tmp_path, code):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(np.uint8 if code == 0x08 else np.float64)
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(idx_bytes(arr, code))
    out = read_idx(path)
    assert out.shape == (2, 3, 4) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr.astype(out.dtype))
    np.testing.assert_array_equal(read_idx(path, limit=1), out[:1])


def test_uncompressed_files(tmp_path):
    write_pair(tmp_path, gz=False)
    x, y = load_mnist(tmp_path, limit=3)
    assert x.shape == (3, 1, 28, 28) and y.tolist() == [0, 1, 2]


# ---------------------------------------------------------------------------- malformed files
def test_bad_magic(tmp_path):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 3) + b"abc")
    with pytest.raises(DatasetError, match="bad-idx1-ubyte.*magic"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("limit", [None, 2])
def test_truncated_payload(tmp_path, gz, limit):
    data = idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-100]
    path = tmp_path / ("short-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DatasetError, match=r"short-idx3-ubyte.*expected 3136 bytes.*file holds 3036"):
        read_idx(path, limit=limit)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "long-idx1-ubyte"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"\0")
    with pytest.raises(DatasetError, match="long-idx1-ubyte.*expected 4 bytes.*file holds 5"):
        read_idx(path)


@pytest.mark.parametrize("limit", [None, 2])
def test_truncated_gzip_stream(tmp_path, limit):
    rng = np.random.default_rng(1)
    data = gzip.compress(idx_bytes(rng.integers(0, 256, (100, 28, 28), dtype=np.uint8)))
    path = tmp_path / "cut-idx3-ubyte.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="cut-idx3-ubyte.gz.*truncated"):
        read_idx(path, limit=limit)


def test_not_gzip(tmp_path):
    path = tmp_path / "plain-idx1-ubyte.gz"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DatasetError, match="plain-idx1-ubyte.gz"):
        read_idx(path)


def test_count_mismatch(tmp_path):
    write_pair(tmp_path, n_images=5, n_labels=4)
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz holds 5 images.*t10k-labels-idx1-ubyte.gz holds 4"):
        load_mnist(tmp_path, limit=2)


def test_label_out_of_range(tmp_path):
    write_pair(tmp_path, labels=[0, 1, 12, 3, 4])
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz.*0..9.*12 at index 2"):
        load_fashion_mnist(tmp_path)


def test_missing_file(tmp_path):
    write_pair(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz: file not found") as info:
        load_mnist(tmp_path)
    assert str(tmp_path) in str(info.value) and "train-images-idx3-ubyte.gz" in str(info.value)
    with pytest.raises(DatasetError, match="missing-folder"):
        load_mnist(tmp_path / "missing-folder")
    with pytest.raises(DatasetError, match="nope-idx1-ubyte"):
        read_idx(tmp_path / "nope-idx1-ubyte")
