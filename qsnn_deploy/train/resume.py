"""What a ``--resume`` may change, and where a stored run differs from the requested one.

A resume continues a run exactly as started: only the fields of :data:`RESUME_MAY_CHANGE` may differ;
any other difference of the config (:func:`resume_config_differences`) or of the architecture
(:func:`arch_difference`) is refused, naming the field.
"""
from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from .config import TrainConfig

RESUME_KEYS = ("epoch", "optimizer", "schedule", "rng", "history")
#: what a resume may change: how far to go (the epoch count, early stopping's patience: neither changes a
#: weight of the epochs both runs train), the T the model is evaluated and saved at, and where things are.
#: Every other field of the stored config must match, or the resume is refused naming the field (turning
#: early stopping on where the run held out no validation set is refused by ``val_size``: that would change
#: the training data), and which epochs are kept as ``epoch_<N>.pt`` (an output, like the name).
RESUME_MAY_CHANGE = ("epochs", "early_stopping", "eval_steps", "out_dir", "device", "data_dir", "name", "keep_epochs")
#: the fields a differing resume names first (what makes a checkpoint another run entirely)
_RESUME_FIRST = ("dataset", "profile", "precision", "deploy_faithful", "reset")


def resume_config_differences(stored: TrainConfig, requested: TrainConfig) -> list[tuple[str, Any, Any]]:
    """``(field, stored value, requested value)`` for every field (preset values filled in on both sides)
    that a resume of ``stored`` may not change but ``requested`` does; dataset, profile and precision first.
    """
    a, b = asdict(stored.resolved()), asdict(requested.resolved())
    names = [f.name for f in fields(TrainConfig) if f.name not in RESUME_MAY_CHANGE]
    names.sort(key=lambda n: _RESUME_FIRST.index(n) if n in _RESUME_FIRST else len(_RESUME_FIRST))
    return [(n, a[n], b[n]) for n in names if a[n] != b[n]]


def arch_difference(stored: Any, built: Any, where: str = "") -> str | None:
    """Where two arch specs first differ, ignoring the top-level ``num_steps`` (the evaluation T, which a
    resume may change), e.g. ``"layer 'lif1' (layers[3]), field 'beta': 0.921 vs 0.5"``; ``None`` when equal.
    """
    if isinstance(stored, dict) and isinstance(built, dict):
        for key in list(stored) + [k for k in built if k not in stored]:
            if not where and key == "num_steps":
                continue
            if key not in stored or key not in built:
                return f"field {where + str(key)!r}: {stored.get(key, '(absent)')!r} vs {built.get(key, '(absent)')!r}"
            if not where and key == "layers" and isinstance(stored[key], list) and isinstance(built[key], list):
                d = _layers_difference(stored[key], built[key])
            else:
                d = arch_difference(stored[key], built[key], f"{where}{key}.")
            if d is not None:
                return d
        return None
    if isinstance(stored, (list, tuple)) and isinstance(built, (list, tuple)):
        if len(stored) != len(built):
            return f"field {where.rstrip('.')!r}: {len(stored)} entries vs {len(built)}"
        for i, (u, v) in enumerate(zip(stored, built)):
            d = arch_difference(u, v, f"{where.rstrip('.')}[{i}].")
            if d is not None:
                return d
        return None
    if stored != built:
        return f"field {where.rstrip('.')!r}: {stored!r} vs {built!r}"
    return None


def _layers_difference(stored: list, built: list) -> str | None:
    """:func:`arch_difference` of two ``layers`` lists, naming the layer."""
    if len(stored) != len(built):
        return f"field 'layers': {len(stored)} layers vs {len(built)}"
    for i, (u, v) in enumerate(zip(stored, built)):
        d = arch_difference(u, v, "" if isinstance(u, dict) and isinstance(v, dict) else f"layers[{i}].")
        if d is not None:
            name = u.get("name", i) if isinstance(u, dict) else i
            return f"layer {name!r} (layers[{i}]), {d}"
    return None
