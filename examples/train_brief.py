"""Train the seeds' int4 MNIST QSNN briefly with the deploy-faithful neuron (QLeaky).

This is the short training that produces the shipped example ``examples/mnist_int4_brief.pt``:
a few hundred Adam steps of the paper's spike-count MSE loss (correct class targeted at 80% of
the steps, the others at 20%), raw pixels fed at every step. The full recipe (schedules, threshold
annealing, early stopping, sweeps, DDP) is ``qsnn-train``.

    python examples/train_brief.py --iters 400 --train-steps 25 --out examples/mnist_int4_brief.pt
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qsnn_deploy.checkpoint import save_checkpoint  # noqa: E402
from qsnn_deploy.data import default_data_dir, load_mnist  # noqa: E402
from qsnn_deploy.models import build_model, mnist_arch  # noqa: E402


def spike_count_mse(out_spikes: torch.Tensor, labels: torch.Tensor, correct: float = 0.8, incorrect: float = 0.2) -> torch.Tensor:
    """MSE between output spike counts [N, C] and targets correct*T / incorrect*T (snnTorch mse_count_loss)."""
    steps = out_spikes.shape[0]
    counts = out_spikes.sum(0)
    target = torch.full_like(counts, incorrect * steps)
    target[torch.arange(len(labels)), labels] = correct * steps
    return F.mse_loss(counts, target)


@torch.no_grad()
def accuracy(model, x: np.ndarray, y: np.ndarray, steps: int, batch: int = 250) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        out = model(torch.as_tensor(x[i:i + batch], dtype=torch.float32) / 255.0, num_steps=steps)
        correct += int((out.sum(0).argmax(1).numpy() == y[i:i + batch]).sum())
    return correct / len(x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=400)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--train-steps", type=int, default=25, help="T during training")
    p.add_argument("--deploy-steps", type=int, default=100, help="T stored as the model's default (deployment)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval", type=int, default=1000, help="test digits evaluated at the end")
    p.add_argument("--out", default=str(ROOT / "examples" / "mnist_int4_brief.pt"))
    args = p.parse_args()

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    data = default_data_dir("mnist")
    x_train, y_train = load_mnist(data, split="train")
    x_test, y_test = load_mnist(data, split="test", limit=args.eval)
    arch = mnist_arch(precision="int4", deploy_faithful=True, beta=0.5, threshold=1.0, slope=25.0,
                      reset="subtract", num_steps=args.deploy_steps)
    model = build_model(arch)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999))
    t0 = time.time()
    losses = []
    model.train()
    order = rng.permutation(len(x_train))
    bar = tqdm(range(args.iters), desc="brief training", unit="step")
    for it in bar:
        idx = order[(it * args.batch) % len(order):][:args.batch]
        xb = torch.as_tensor(x_train[idx], dtype=torch.float32) / 255.0
        yb = torch.as_tensor(y_train[idx], dtype=torch.int64)
        out = model(xb, num_steps=args.train_steps)
        loss = spike_count_mse(out, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
        if it % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
    train_seconds = time.time() - t0
    acc = accuracy(model, x_test, y_test, args.deploy_steps)
    print(f"test accuracy on the first {len(x_test)} test digits at T={args.deploy_steps}: {100 * acc:.2f}%")
    config = {"iters": args.iters, "batch": args.batch, "train_steps": args.train_steps, "lr": args.lr,
              "seed": args.seed, "optimizer": "adam", "loss": "spike-count MSE (0.8/0.2)", "script": "examples/train_brief.py"}
    metrics = {"test_accuracy_first_n": acc, "n_test": len(x_test), "eval_steps": args.deploy_steps,
               "final_train_loss": float(np.mean(losses[-20:])), "train_seconds": train_seconds}
    path = save_checkpoint(args.out, model, arch, config=config, metrics=metrics)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
