"""Safe checkpoints: a network rebuilt from plain data, never from pickled code.

A qsnn checkpoint is a dict written by ``torch.save`` that ``torch.load(weights_only=True)``
accepts (plain dicts/lists/numbers/strings and tensors only)::

    {"format": "qsnn-checkpoint", "version": 1,
     "arch": <arch spec, see qsnn_deploy.models.spec>, "state_dict": <model.state_dict()>,
     "config": <training config dict>, "metrics": <metrics dict>}

Reading never unpickles code: :func:`load_checkpoint` always uses ``weights_only=True``, and a
file that would need more (e.g. a pickled ``os.system`` call) is refused with a
:class:`~qsnn_deploy.errors.CheckpointError`.
"""
from __future__ import annotations

import math
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .errors import CheckpointError
from .fileio import atomic_path
from .models.spec import build_model
from .nn import QSequential

CHECKPOINT_FORMAT = "qsnn-checkpoint"
CHECKPOINT_VERSION = 1
_PLAIN = (type(None), bool, int, float, str)
ARCH_EXPANSION, ARCH_SLACK = 4, 1 << 26  # arch weight bytes allowed per state-dict byte, plus 64 MiB


def _check_plain(obj: Any, where: str) -> None:
    """Raise unless ``obj`` is plain data that ``torch.load(weights_only=True)`` reads back."""
    if isinstance(obj, _PLAIN) or isinstance(obj, torch.Tensor):
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise CheckpointError(f"{where}: key {k!r} is a {type(k).__name__}; keys must be str or int")
            _check_plain(v, f"{where}[{k!r}]")
        return
    hint = " (convert NumPy values with .item() or .tolist())" if type(obj).__module__ == "numpy" else ""
    raise CheckpointError(f"{where}: a {type(obj).__module__}.{type(obj).__qualname__} is not plain data "
                          f"(allowed: None, bool, int, float, str, list, tuple, dict, torch.Tensor){hint}")


def _build(arch: Any) -> QSequential:
    """``build_model(arch)`` with any failure reported as a CheckpointError."""
    try:
        return build_model(arch)
    except CheckpointError:
        raise
    except Exception as e:  # bad field values reach torch/brevitas constructors
        raise CheckpointError(f"arch spec does not build a model: {type(e).__name__}: {e}") from e


def _state_dict_problems(state: Mapping[str, Any], reference: Mapping[str, torch.Tensor]) -> list[str]:
    """Missing/unexpected keys and shape mismatches of ``state`` against ``reference``."""
    problems = []
    missing = [k for k in reference if k not in state]
    unexpected = [k for k in state if k not in reference]
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    for k, ref in reference.items():
        v = state.get(k)
        if v is None:
            continue
        if not isinstance(v, torch.Tensor):
            problems.append(f"{k}: expected a tensor, found {type(v).__name__}")
        elif v.shape != ref.shape:
            problems.append(f"{k}: shape {list(v.shape)} in checkpoint, {list(ref.shape)} in the model")
    return problems


def save_checkpoint(path: str | os.PathLike, model: nn.Module, arch: dict[str, Any],
                    config: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
                    train_state: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights with the arch spec that rebuilds it, atomically.

    Args:
        path: destination file (conventionally ``*.pt``); an existing file is replaced only
            once the new one is completely written.
        model: the trained network; its ``state_dict()`` must fit ``build_model(arch)``.
        arch: arch spec (plain data, see :mod:`qsnn_deploy.models.spec`).
        config, metrics: plain-data dicts (training configuration, results); default ``{}``.
        train_state: optional plain data + tensors to resume training (optimizer and schedule
            state, epoch, RNG state), stored under ``"train_state"``.

    Returns:
        The path written.

    Raises:
        CheckpointError: the arch does not build, the state dict does not fit it, or arch/config/
            metrics hold something other than plain data.
    """
    config = {} if config is None else config
    metrics = {} if metrics is None else metrics
    for name, value in (("arch", arch), ("config", config), ("metrics", metrics)):
        if not isinstance(value, dict):
            raise CheckpointError(f"{name} must be a dict, got {type(value).__name__}")
        _check_plain(value, name)
    with torch.random.fork_rng(devices=[]):  # building modules draws init weights: keep the caller's RNG untouched
        reference = _build(arch).state_dict()
    state = model.state_dict()
    problems = _state_dict_problems(state, reference)
    if problems:
        raise CheckpointError("model does not match its arch spec: " + "; ".join(problems))
    ckpt = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "arch": arch,
            "state_dict": state, "config": config, "metrics": metrics}
    if train_state is not None:
        _check_plain(train_state, "train_state")
        ckpt["train_state"] = train_state
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def _refused_global(message: str) -> str | None:
    """The global named in torch's weights-only refusal, e.g. ``posix.system``."""
    m = re.search(r"GLOBAL\s+([\w.]+)", message)
    return m.group(1) if m else None


def _check_structure(ckpt: Any, source: str) -> dict[str, Any]:
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{source}: not a qsnn checkpoint (holds a {type(ckpt).__name__}, expected a dict "
                              f"with format {CHECKPOINT_FORMAT!r})")
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{source}: not a qsnn checkpoint (format {ckpt.get('format')!r}, expected "
                              f"{CHECKPOINT_FORMAT!r}; keys: {', '.join(map(str, ckpt))})")
    version = ckpt.get("version")
    if version != CHECKPOINT_VERSION:
        raise CheckpointError(f"{source}: unsupported checkpoint version {version!r} "
                              f"(this qsnn-deploy reads version {CHECKPOINT_VERSION})")
    for key, kind in (("arch", dict), ("state_dict", Mapping), ("config", dict), ("metrics", dict)):
        if not isinstance(ckpt.get(key), kind):
            found = "missing" if key not in ckpt else f"a {type(ckpt[key]).__name__}"
            raise CheckpointError(f"{source}: field {key!r} must be a {kind.__name__}, found {found}")
    return ckpt


def _torch_load_safe(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into a clear CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory; expected a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        name = _refused_global(str(e))
        if name is not None:
            raise CheckpointError(f"{path}: refused: the file would execute code when unpickled (it references "
                                  f"the global {name}, which is not plain data); it was not loaded. Only "
                                  "tensors and plain data are accepted in a qsnn checkpoint") from None
        detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(e))
        raise CheckpointError(f"{path}: truncated or corrupt, or not a torch checkpoint (the weights-only "
                              f"unpickler failed: {detail.group(1) if detail else _first_line(e)})") from None
    except (RuntimeError, EOFError, OSError, ValueError, UnicodeDecodeError, AttributeError, IndexError, TypeError,
            OverflowError) as e:  # TypeError: e.g. a storage claiming a negative/absurd element count
        raise CheckpointError(f"{path}: truncated or corrupt ({type(e).__name__}: {_first_line(e)})") from None
    return ckpt


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Weights for a user's own model class (``--model-class``): a plain ``state_dict`` saved with
    ``torch.save``, or a qsnn checkpoint (its ``state_dict`` is used). Never unpickles code."""
    path = Path(path)
    obj = _torch_load_safe(path)
    if isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT:
        obj = _check_structure(obj, str(path))["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise CheckpointError(f"{path}: expected a state_dict (a mapping of names to tensors)")
    for name, tensor in obj.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: parameter {name!r} holds NaN or infinite values")
    return dict(obj)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a qsnn checkpoint without executing any code from the file.

    Uses ``torch.load(path, map_location="cpu", weights_only=True)``; tensors come back on the CPU.

    Returns:
        The checkpoint dict (``format``, ``version``, ``arch``, ``state_dict``, ``config``,
        ``metrics``).

    Raises:
        CheckpointError: file missing; truncated or corrupt; a pickle that references globals
            outside torch's weights-only allowlist (it would execute code when unpickled);
            not a dict with format ``"qsnn-checkpoint"`` and version 1.
    """
    path = Path(path)
    ckpt = _torch_load_safe(path)
    return _check_structure(ckpt, str(path))


def _first_line(e: BaseException) -> str:
    """The first sentence of an exception's message (torch appends long generic advice)."""
    text = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", str(e).strip())  # torch's C++ prefix
    return text.splitlines()[0].split(". ")[0].rstrip(".") if text else "unexpected end of file"


def _check_arch_sizes(arch: Any, state: Mapping[str, Any], source: str) -> None:
    """Refuse, before building it, an arch spec whose conv/linear layers claim far more weights than
    the state dict holds (a forged 10^6 x 10^6 linear layer would allocate its claim). Smaller
    disagreements are reported after the build, key by key."""
    layers = arch.get("layers") if isinstance(arch, dict) else None
    claims = []
    for i, entry in enumerate(layers if isinstance(layers, list) else []):
        if not isinstance(entry, dict) or entry.get("type") not in ("conv", "linear"):
            continue
        try:
            if entry["type"] == "linear":
                claim = [int(entry["out_features"]), int(entry["in_features"])]
            else:
                k = entry["kernel_size"]
                kh, kw = (int(k), int(k)) if isinstance(k, (int, float)) else (int(k[0]), int(k[1]))
                claim = [int(entry["out_channels"]), int(entry["in_channels"]), kh, kw]
        except (KeyError, TypeError, ValueError, IndexError, OverflowError):
            continue  # reported by the build with the layer's index
        claims.append((str(entry.get("name") or f"{entry['type']}{i}"), claim))
    claimed = sum(4 * math.prod(max(c, 0) for c in claim) for _, claim in claims)  # float32 weights
    held = sum(v.numel() * v.element_size() for v in state.values() if isinstance(v, torch.Tensor))
    if claimed > ARCH_EXPANSION * held + ARCH_SLACK:
        name, claim = max(claims, key=lambda nc: math.prod(nc[1]))
        have = state.get(f"{name}.weight")
        have = list(have.shape) if isinstance(have, torch.Tensor) else "nothing"
        raise CheckpointError(f"{source}: the arch spec claims {claimed} bytes of weights (layer {name!r}: {name}.weight "
                              f"of shape {claim}; the state dict holds {have}), the state dict {held} bytes (limit "
                              f"{ARCH_EXPANSION} x + {ARCH_SLACK}); refused before building it")


def model_from_checkpoint(ckpt_or_path: dict[str, Any] | str | os.PathLike) -> tuple[QSequential, dict[str, Any]]:
    """Rebuild the network of a checkpoint (a loaded dict or a path) and load its weights.

    Returns:
        ``(model, ckpt)``: the :class:`~qsnn_deploy.nn.QSequential` in eval mode, on the CPU, and
        the checkpoint dict.

    Raises:
        CheckpointError: unreadable file (see :func:`load_checkpoint`); arch does not build;
            missing/unexpected keys or shape mismatches against the rebuilt model; a NaN or
            infinite value in a floating-point tensor (the error names the parameter).
    """
    if isinstance(ckpt_or_path, dict):
        ckpt, source = _check_structure(ckpt_or_path, "checkpoint"), "checkpoint"
    else:
        ckpt, source = load_checkpoint(ckpt_or_path), str(ckpt_or_path)
    state = ckpt["state_dict"]
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex()):
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise CheckpointError(f"{source}: parameter {key!r} holds {bad} non-finite value(s) (NaN or inf)")
    _check_arch_sizes(ckpt["arch"], state, source)
    model = _build(ckpt["arch"])
    problems = _state_dict_problems(state, model.state_dict())
    if problems:
        raise CheckpointError(f"{source}: state dict does not fit the arch spec: " + "; ".join(problems))
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: cannot load the state dict: {e}") from e
    return model.eval(), ckpt
