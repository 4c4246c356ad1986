"""A training run's history, and its compact form inside a checkpoint's ``train_state``.

One record per optimizer step (``iteration``, ``epoch``, ``loss``, ``lr``) and one per epoch (loss, lr,
timing, accuracies). The per-step records are most of a long run's checkpoint: 65 MNIST epochs of 430
batches are 28k records, ≈ 1.4 MB as a list of dicts. A checkpoint stores them as four columns instead
(:func:`pack_steps`): ``iteration`` and ``epoch`` as int32 tensors, ``loss`` as float32 when every value is
a float32 value (``loss.item()`` of a float32 loss always is) else float64, ``lr`` as float64; ≈ 20 bytes
a step. :func:`unpack_steps` gives back the identical Python values, and still reads the list form older
checkpoints hold, so a resumed run's history equals an uninterrupted one's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import CheckpointError

#: the per-step fields, in the order of ``steps.csv``
STEP_FIELDS = ("iteration", "epoch", "loss", "lr")
_INT32_MAX = 2**31 - 1


@dataclass
class History:
    """Training history: one dict per optimizer step (iteration, epoch, loss, lr) and one per epoch
    (loss, lr, timing, accuracies).
    """
    steps: list[dict[str, float]] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)


def pack_steps(steps: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """The per-step records as four column tensors (see the module docstring); exact: the values
    :func:`unpack_steps` returns are the ones given."""
    cols = {name: [s[name] for s in steps] for name in STEP_FIELDS}
    for name in ("iteration", "epoch"):
        if any(not 0 <= int(v) <= _INT32_MAX for v in cols[name]):
            raise ValueError(f"history: a step's {name!r} is outside 0..{_INT32_MAX}")
    loss32 = torch.tensor(cols["loss"], dtype=torch.float32)
    exact32 = loss32.double().tolist() == [float(v) for v in cols["loss"]]
    return {"iteration": torch.tensor(cols["iteration"], dtype=torch.int32),
            "epoch": torch.tensor(cols["epoch"], dtype=torch.int32),
            "loss": loss32 if exact32 else torch.tensor(cols["loss"], dtype=torch.float64),
            "lr": torch.tensor(cols["lr"], dtype=torch.float64)}


def unpack_steps(stored: Any) -> list[dict[str, Any]]:
    """The per-step records from a checkpoint: the column form of :func:`pack_steps`, or the list of
    dicts older checkpoints hold. A malformed entry raises :class:`~qsnn_deploy.errors.CheckpointError`
    naming the field."""
    if isinstance(stored, list):
        if not all(isinstance(s, dict) and all(k in s for k in STEP_FIELDS) for s in stored):
            raise CheckpointError(f"train_state.history.steps: every step must hold {', '.join(STEP_FIELDS)}")
        return list(stored)
    if not isinstance(stored, dict):
        raise CheckpointError(f"train_state.history.steps: expected columns or a list, got {type(stored).__name__}")
    lengths = set()
    for name in STEP_FIELDS:
        col = stored.get(name)
        if not isinstance(col, torch.Tensor) or col.dim() != 1:
            raise CheckpointError(f"train_state.history.steps.{name}: expected a 1-D tensor")
        lengths.add(col.numel())
    if len(lengths) != 1:
        raise CheckpointError(f"train_state.history.steps: columns of different lengths {sorted(lengths)}")
    cols = [stored[name].tolist() for name in STEP_FIELDS]
    return [dict(zip(STEP_FIELDS, row)) for row in zip(*cols)]
