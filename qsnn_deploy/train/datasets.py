"""Training data held in memory as integer arrays (what the integer network consumes).

Images (MNIST, FashionMNIST) are uint8 [N, 1, 28, 28] fed as ``pixel/255`` at every step (static,
no encoding, as in the paper). Event data (DVS128 Gesture) are uint8 count frames [N, T, 2, 32, 32]
fed as counts (scale 1). The rows datasets (``mnist-rows``, ``fashion-mnist-rows``) are the same images read as
rows over time (:func:`qsnn_deploy.data.rows.encode_rows`): uint8 spike counts [N, T, 16] fed as counts (scale 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import TrainConfigError


@dataclass
class ArrayDataset:
    """Integer samples and labels. ``static``: x is [N, ...] repeated every step, else [N, T, ...]."""

    x: np.ndarray
    y: np.ndarray
    scale: float
    static: bool = True

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Float model input (``x * scale``; time first for sequences) and int64 labels."""
        xb = torch.as_tensor(self.x[idx], device=device).to(torch.float32) * self.scale
        if not self.static:
            xb = xb.transpose(0, 1).contiguous()  # [B, T, ...] -> [T, B, ...]
        return xb, torch.as_tensor(self.y[idx], dtype=torch.int64, device=device)

    def subset(self, idx: np.ndarray) -> "ArrayDataset":
        """The samples ``idx`` (same scale and static flag)."""
        return ArrayDataset(self.x[idx], self.y[idx], self.scale, self.static)


def load_datasets(dataset: str, data_dir: str | None = None, limit_train: int | None = None,
                  limit_test: int | None = None, val_size: int = 0, seed: int = 0, num_steps: int | None = None,
                  encoding: dict | None = None) -> tuple[ArrayDataset, ArrayDataset | None, ArrayDataset]:
    """(train, validation or None, test). The validation set is the last ``val_size`` training samples.

    The rows datasets read the images with ``encoding`` (:mod:`qsnn_deploy.data.rows`; default 16×16, counts
    0..15, one row per step).

    For event data, ``num_steps`` = T sets the number of frames: the first second of each recording
    in T bins of ``1 s / T`` (default 200 bins of 5 ms, the DVS128 preset).
    """
    from ..data import default_data_dir, load_fashion_mnist, load_mnist, resolve_idx_dir

    if dataset in ("mnist", "fashion-mnist"):
        # the dataset folder or its parent (../shared/data): the sub-folder is picked by the dataset name
        folder = resolve_idx_dir(data_dir, hint=dataset) if data_dir else default_data_dir(dataset)
        loader = load_mnist if dataset == "mnist" else load_fashion_mnist
        x_tr, y_tr = loader(folder, split="train", limit=None if val_size else limit_train)
        x_te, y_te = loader(folder, split="test", limit=limit_test)
        train = ArrayDataset(x_tr, y_tr, 1.0 / 255.0, True)
        test = ArrayDataset(x_te, y_te, 1.0 / 255.0, True)
    elif dataset in ("mnist-rows", "fashion-mnist-rows"):
        from ..data.rows import ROW_DATASETS, encode_rows

        base = ROW_DATASETS[dataset]
        folder = resolve_idx_dir(data_dir, hint=base) if data_dir else default_data_dir(base)
        loader = load_mnist if base == "mnist" else load_fashion_mnist
        x_tr, y_tr = loader(folder, split="train", limit=None if val_size else limit_train)
        x_te, y_te = loader(folder, split="test", limit=limit_test)
        # stored [N, T, 16] (ArrayDataset.batch puts time first)
        train = ArrayDataset(encode_rows(x_tr, encoding).transpose(1, 0, 2).copy(), y_tr, 1.0, False)
        test = ArrayDataset(encode_rows(x_te, encoding).transpose(1, 0, 2).copy(), y_te, 1.0, False)
    elif dataset in ("dvs128", "synthetic-dvs"):
        from ..data import events as ev

        duration_us = 1_000_000
        frames = dict(bin_us=duration_us // int(num_steps) if num_steps else 5000, duration_us=duration_us)
        if num_steps and duration_us % int(num_steps):
            raise TrainConfigError(f"--steps {num_steps}: event frames are 1 s / T long; T must divide 1,000,000 µs")
        if dataset == "dvs128":
            folder = Path(data_dir) if data_dir else default_data_dir("dvs128")
            tr, te = ev.DVSGesture(folder, train=True, **frames), ev.DVSGesture(folder, train=False, **frames)
        else:
            tr = ev.SyntheticGestures(limit_train or 220, seed=seed, **frames)
            te = ev.SyntheticGestures(limit_test or 110, seed=seed + 1, **frames)
        train = _materialize(tr, limit_train)
        test = _materialize(te, limit_test)
    else:
        raise ValueError(f"unknown dataset {dataset!r}; known: mnist, fashion-mnist, mnist-rows, "
                         "fashion-mnist-rows, dvs128, synthetic-dvs")
    val = None
    if val_size:
        if val_size >= len(train):
            raise TrainConfigError(f"field 'val_size': {val_size} validation samples must be fewer than the training set's {len(train)}")
        n = len(train)
        val = train.subset(np.arange(n - val_size, n))
        train = train.subset(np.arange(0, n - val_size))
        if limit_train:
            train = train.subset(np.arange(min(limit_train, len(train))))
    return train, val, test


def _materialize(ds, limit: int | None) -> ArrayDataset:
    n = len(ds) if limit is None else min(limit, len(ds))
    xs, ys = zip(*(ds[i] for i in range(n)))
    return ArrayDataset(np.stack([np.asarray(x) for x in xs]).astype(np.uint8), np.asarray(ys, dtype=np.int64), 1.0, False)
