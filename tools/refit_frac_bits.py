"""Re-fit the per-layer F of a trained qsnn checkpoint so that no layer's state can saturate.

    python tools/refit_frac_bits.py examples/mnist_int4_qsnn.pt --data ../shared/data/mnist

Every deploy-faithful layer gets the largest F ≤ 6 whose proven state bound
(:mod:`qsnn_deploy.statebound`) excludes saturation (:func:`qsnn_deploy.profiles.fit_frac_bits`);
the arch spec records the new F, the test accuracy is re-measured on the whole test split at the
checkpoint's T, and the checkpoint and its ``.metrics.json`` are rewritten in place (atomically).
The weights are unchanged: the model's own forward runs the new F, so model == frozen net still
holds by construction.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch

from qsnn_deploy.checkpoint import model_from_checkpoint, save_checkpoint
from qsnn_deploy.fileio import atomic_path
from qsnn_deploy.profiles import fit_frac_bits, unproven_frac_bits_message
from qsnn_deploy.train.datasets import load_datasets
from qsnn_deploy.train.trainer import evaluate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True, help="dataset folder (MNIST or FashionMNIST idx files)")
    p.add_argument("--dataset", default=None, help="mnist or fashion-mnist (default: the checkpoint's config)")
    p.add_argument("--max-frac-bits", type=int, default=6)
    a = p.parse_args(argv)
    model, ckpt = model_from_checkpoint(a.checkpoint)
    changes = fit_frac_bits(model, a.max_frac_bits)
    for name, fit in changes.items():
        print(f"{name}: F {fit.old} -> {fit.new} ({'proven saturation-free' if fit.proof else 'NO PROOF: kept'})")
    unproven = {name: fit for name, fit in changes.items() if not fit.proof}
    if unproven:
        print(unproven_frac_bits_message(unproven, a.max_frac_bits))
    arch = copy.deepcopy(ckpt["arch"])
    blocks = {b.neuron: b.name for b in model.blocks}
    neuron_names = {id(m): n for n, m in model.named_children()}
    by_name = {neuron_names[id(neuron)]: changes[block].new for neuron, block in blocks.items() if block in changes}
    for entry in arch["layers"]:
        if entry.get("type") == "lif" and entry.get("name") in by_name:
            entry["frac_bits"] = int(by_name[entry["name"]])
    config = dict(ckpt.get("config") or {})
    dataset = a.dataset or config.get("dataset", "mnist")
    _, _, test = load_datasets(dataset, a.data, 1, None, 0, 0)  # the test split (train: 1 sample)
    steps = int(arch.get("num_steps") or model.num_steps)
    acc = evaluate(model, test, steps, torch.device("cpu"))
    mpath = Path(a.checkpoint).with_suffix(".metrics.json")
    final = dict(ckpt.get("metrics") or {})  # a checkpoint holds the final metrics, flat
    final["test_accuracy_before_refit"] = final.get("test_accuracy")
    final.update(test_accuracy=float(acc), n_test=len(test), eval_steps=steps,
                 frac_bits={k: fit.new for k, fit in changes.items()})
    save_checkpoint(a.checkpoint, model, arch, config, final, train_state=ckpt.get("train_state"))
    if mpath.exists():
        m = json.loads(mpath.read_text())
        m["final"] = final
        with atomic_path(mpath) as tmp:
            Path(tmp).write_text(json.dumps(m, indent=2) + "\n")
    print(f"test accuracy {acc:.4f} on {len(test)} samples at T={steps} (before: {final['test_accuracy_before_refit']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
