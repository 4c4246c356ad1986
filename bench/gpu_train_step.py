"""Part (b) of ``bench/gpu_check.py``: one deploy-faithful training step on a device and on the CPU from
the same seed and batch, compared (forward spikes: required identical; weights after the step:
reported, with the documented reason they may differ in their last bits; see gpu_check's docstring)."""
from __future__ import annotations

import contextlib
import time
import warnings
from typing import Any

import numpy as np
import torch

WEIGHT_DIFF_REASON = (
    "float32 reductions in the backward pass (cuDNN/cuBLAS on CUDA, oneDNN/OpenMP on the CPU) sum in "
    "different, kernel-chosen orders; float addition is not associative, so gradients may differ in the "
    "last bits and Adam carries that into the weights. Deterministic algorithms make each device repeat "
    "itself, not agree with the other. The forward spikes are integer-exact and are required to be identical.")


def sync(dev: torch.device) -> None:
    """Wait for ``dev``'s queued work (CUDA); nothing on the CPU."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


@contextlib.contextmanager
def deterministic_algorithms():
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` and cuDNN's deterministic mode for
    the block; yields the list of warnings (ops without a deterministic implementation)."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield caught
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]


def _share_dropout_masks(model: torch.nn.Module, seed: int) -> list[str]:
    """Make every dropout module draw its mask from one seeded CPU generator (then moved to the
    tensor's device): the same masks on every device. Same distribution and scaling as nn.Dropout
    (keep with probability 1-p, scale kept values by 1/(1-p))."""
    import types

    gen = torch.Generator().manual_seed(seed)
    patched = []
    for name, m in model.named_modules():
        if type(m) is torch.nn.Dropout:  # element-wise masks (the archs here use only nn.Dropout)
            def forward(self, x, _gen=gen):
                if not self.training or self.p == 0.0:
                    return x
                keep = torch.rand(x.shape, generator=_gen) >= self.p
                scale = keep.to(x.dtype) / (1.0 - self.p)
                return x * scale.to(x.device)
            m.forward = types.MethodType(forward, m)
            patched.append(name)
    return patched


def train_step(device: str, x: np.ndarray, y: np.ndarray, steps: int, seed: int = 0) -> dict[str, Any]:
    """One training step of the trainer's recipe on ``device``; returns what is compared (on the CPU)."""
    from qsnn_deploy.nn.blocks import is_synapse
    from qsnn_deploy.train import TrainConfig, Trainer, spike_count_loss
    from qsnn_deploy.train.datasets import ArrayDataset

    cfg = TrainConfig(dataset="mnist", precision="int4", num_steps=steps, batch_size=len(y), seed=seed,
                      device=str(device), epochs=1)
    trainer = Trainer(cfg, log=lambda _s: None)
    c = trainer.cfg
    with deterministic_algorithms() as caught:
        arch, model, opt = trainer.build()  # seeds everything, builds on the CPU, paper init, then .to(device)
        dropouts = _share_dropout_masks(model, seed)
        before = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        model.train()
        dev = trainer.device
        xb, yb = ArrayDataset(x, y, 1.0 / 255.0, True).batch(np.arange(len(y)), dev)
        loss_fn = spike_count_loss(c.correct_rate, c.incorrect_rate)
        synapses = [m for m in model.modules() if is_synapse(m)]
        sync(dev)
        t0 = time.perf_counter()
        out, recorded = model(xb, num_steps=c.num_steps, record=True)
        loss = loss_fn(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip) if c.grad_clip else None
        opt.step()
        if c.weight_clip:
            with torch.no_grad():
                for m in synapses:
                    m.weight.clamp_(-c.weight_clip, c.weight_clip)
        sync(dev)
        seconds = time.perf_counter() - t0
    grads = {n: p.grad.detach().cpu().clone() for n, p in model.named_parameters() if p.grad is not None}
    return {
        "device": str(dev), "lr": c.lr, "batch": len(y), "num_steps": c.num_steps, "seconds": seconds,
        "loss": float(loss.detach().cpu()), "grad_norm": None if grad_norm is None else float(grad_norm.detach().cpu()),
        "spikes": {k: v.detach().to("cpu", torch.uint8).numpy() for k, v in recorded.items()},
        "grads": grads, "before": before,
        "after": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "dropout_shared_mask": dropouts,
        "nondeterministic_ops": sorted({str(w.message).splitlines()[0] for w in caught
                                        if "deterministic" in str(w.message)}),
    }


def _max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.numel() == 0:
        return 0.0
    return float((a.to(torch.float64) - b.to(torch.float64)).abs().max())


def compare_train_steps(ref: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Forward spikes (required equal) and weights/gradients (reported) of two training steps."""
    spikes = {}
    for name, a in ref["spikes"].items():
        b = other["spikes"][name]
        mism = int(np.count_nonzero(a != b)) if a.shape == b.shape else int(a.size)
        spikes[name] = {"equal": bool(a.shape == b.shape and mism == 0), "mismatched_values": mism,
                        "spikes": int(a.sum(dtype=np.int64))}
    weights = {}
    for k, a in ref["after"].items():
        b = other["after"][k]
        upd = _max_abs_diff(a, ref["before"][k]) if a.is_floating_point() else None
        weights[k] = {"equal": bool(torch.equal(a, b)), "max_abs_diff": _max_abs_diff(a, b),
                      "max_abs_update": upd, "shape": list(a.shape)}
    grads = {k: {"equal": bool(torch.equal(g, other["grads"][k])), "max_abs_diff": _max_abs_diff(g, other["grads"][k]),
                 "max_abs": float(g.abs().max()) if g.numel() else 0.0}
             for k, g in ref["grads"].items()}
    same_init = all(torch.equal(v, other["before"][k]) for k, v in ref["before"].items())
    weights_equal = all(w["equal"] for w in weights.values())
    return {
        "reference_device": ref["device"], "device": other["device"], "same_initial_weights": same_init,
        "forward_spikes_equal": all(s["equal"] for s in spikes.values()) and same_init,
        "spikes": spikes, "loss_reference": ref["loss"], "loss_device": other["loss"],
        "grad_norm_reference": ref["grad_norm"], "grad_norm_device": other["grad_norm"],
        "weights_equal": weights_equal, "weights": weights, "grads": grads,
        "weight_difference_reason": None if weights_equal else WEIGHT_DIFF_REASON,
        "lr": ref["lr"], "batch": ref["batch"], "num_steps": ref["num_steps"],
        "seconds_reference": ref["seconds"], "seconds_device": other["seconds"],
        "dropout_shared_mask": ref["dropout_shared_mask"],
        "nondeterministic_ops": sorted(set(ref["nondeterministic_ops"]) | set(other["nondeterministic_ops"])),
    }


def check_training_step(device: str, x: np.ndarray, y: np.ndarray, steps: int, seed: int = 0) -> dict[str, Any]:
    """One training step on ``device`` and one on the CPU (same seed, same batch), compared."""
    ref = train_step("cpu", x, y, steps, seed)
    other = train_step(device, x, y, steps, seed)
    return compare_train_steps(ref, other)
