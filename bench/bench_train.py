"""Training throughput (samples/s) of the seeds' int4 MNIST net, measured in one run:

* snnTorch + Brevitas, the explicit per-step loop of the authors' code (float Leaky neurons),
* qsnn-deploy's deploy-faithful QSequential (QLeaky: integer semantics, straight-through),

one optimizer step = forward over T steps + spike-count MSE + backward + grad clip + Adam.

    python bench/bench_train.py [--steps 25 100] [--batch 128] [--iters 5] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qsnn_deploy.models import build_model, init_uniform_fan_in, preset_arch  # noqa: E402
from qsnn_deploy.train import spike_count_loss  # noqa: E402


def snntorch_forward(m, x, steps):
    mem1 = m.lif1.init_leaky(); mem2 = m.lif2.init_leaky(); mem3 = m.lif3.init_leaky()
    out = []
    for _ in range(steps):
        spk1, mem1 = m.lif1(m.bn1(F.avg_pool2d(m.conv1(x), 2)), mem1)
        spk2, mem2 = m.lif2(m.bn2(F.avg_pool2d(m.conv2(spk1), 2)), mem2)
        spk3, mem3 = m.lif3(m.dropout(m.fc(spk2.flatten(1))), mem3)
        out.append(spk3)
    return torch.stack(out)


def step_time(model, forward, x, y, iters):
    opt = torch.optim.Adam(model.parameters(), lr=1.9e-3)
    loss_fn = spike_count_loss()
    model.train()
    times = []
    for i in range(iters + 1):
        if x.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = loss_fn(forward(model, x), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if x.is_cuda:
            torch.cuda.synchronize()
        if i:  # first iteration = warm-up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, nargs="+", default=[25, 100])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    dev = torch.device(args.device)
    from qsnn_deploy.data import default_data_dir, load_mnist

    xs, ys = load_mnist(default_data_dir("mnist"), split="train", limit=args.batch)
    x = torch.as_tensor(xs, dtype=torch.float32, device=dev) / 255.0
    y = torch.as_tensor(ys, device=dev)
    print(f"seeds' MNIST net, int4, batch {args.batch}, device {dev}, torch threads {torch.get_num_threads()}")
    for steps in args.steps:
        torch.manual_seed(0)
        ours = init_uniform_fan_in(build_model(preset_arch("mnist", "int4", num_steps=steps))).to(dev)
        ref = build_model(preset_arch("mnist", "int4", num_steps=steps, deploy_faithful=False)).to(dev)
        ref.load_state_dict(ours.state_dict())
        t_ref = step_time(ref, lambda m, xb: snntorch_forward(m, xb, steps), x, y, args.iters)
        t_ours = step_time(ours, lambda m, xb: m(xb, num_steps=steps), x, y, args.iters)
        n = args.batch
        print(f"T={steps:3d}: snnTorch+Brevitas loop {n / t_ref:7.1f} samples/s | deploy-faithful QSequential "
              f"{n / t_ours:7.1f} samples/s | ratio {t_ref / t_ours:.2f}x | one MNIST epoch ≈ {60000 / (n / t_ours) / 60:.1f} min")


if __name__ == "__main__":
    main()
