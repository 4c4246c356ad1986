"""Training throughput (samples/s) of the seeds' int4 MNIST net, measured in one run:

* snnTorch + Brevitas, the explicit per-step loop of the authors' code (float Leaky neurons),
* qsnn-deploy's deploy-faithful QSequential (QLeaky: integer semantics, straight-through),

one optimizer step = forward over T steps + spike-count MSE + backward + grad clip + Adam.
``--neuron cuba`` makes every spiking layer current-based (snnTorch ``Synaptic`` / ``QSynaptic``,
α = 0.5, as ``qsnn-train --neuron cuba``); ``fused`` then runs :mod:`qsnn_deploy.nn.fused_cuba`.

``--malloc both`` runs every variant twice, with glibc's default malloc and with the settings
``qsnn-train`` starts itself with (:mod:`qsnn_deploy.malloc_tuning`), and prints the ratio
(``tuned`` / ``default``: one of them; the default, ``tuned``, is what ``qsnn-train`` runs with).

    python bench/bench_train.py [--steps 25 100] [--batch 128] [--iters 5] [--device cpu|cuda] [--neuron lif|cuba] [--malloc tuned|default|both]
                              [--json bench/results/train_<cpu>.json]   (bench/record.py)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import snntorch as snn
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qsnn_deploy.models import build_model, init_uniform_fan_in, preset_arch  # noqa: E402
from qsnn_deploy.train import spike_count_loss  # noqa: E402
from qsnn_deploy.train.config import CUBA_DEFAULT_ALPHA  # noqa: E402
from qsnn_deploy.malloc_tuning import TUNED_MALLOC  # noqa: E402


def snntorch_forward(m, x, steps):
    if isinstance(m.lif1, snn.Synaptic):
        return snntorch_cuba_forward(m, x, steps)
    mem1 = m.lif1.init_leaky(); mem2 = m.lif2.init_leaky(); mem3 = m.lif3.init_leaky()
    out = []
    for _ in range(steps):
        spk1, mem1 = m.lif1(m.bn1(F.avg_pool2d(m.conv1(x), 2)), mem1)
        spk2, mem2 = m.lif2(m.bn2(F.avg_pool2d(m.conv2(spk1), 2)), mem2)
        spk3, mem3 = m.lif3(m.dropout(m.fc(spk2.flatten(1))), mem3)
        out.append(spk3)
    return torch.stack(out)


def snntorch_cuba_forward(m, x, steps):
    """The same loop with snnTorch ``Synaptic`` neurons (a current and a membrane state per layer)."""
    syn1, mem1 = m.lif1.init_synaptic(); syn2, mem2 = m.lif2.init_synaptic(); syn3, mem3 = m.lif3.init_synaptic()
    out = []
    for _ in range(steps):
        spk1, syn1, mem1 = m.lif1(m.bn1(F.avg_pool2d(m.conv1(x), 2)), syn1, mem1)
        spk2, syn2, mem2 = m.lif2(m.bn2(F.avg_pool2d(m.conv2(spk1), 2)), syn2, mem2)
        spk3, syn3, mem3 = m.lif3(m.dropout(m.fc(spk2.flatten(1))), syn3, mem3)
        out.append(spk3)
    return torch.stack(out)


def bench_arch(steps: int, neuron: str, deploy_faithful: bool = True) -> dict:
    """The seeds' int4 MNIST arch; ``neuron="cuba"``: every spiking layer current-based, α = 0.5."""
    arch = preset_arch("mnist", "int4", num_steps=steps, deploy_faithful=deploy_faithful)
    if neuron == "cuba":
        for entry in arch["layers"]:
            if entry.get("type") == "lif":
                entry.update(kind="cuba", alpha=CUBA_DEFAULT_ALPHA)
    return arch


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


VARIANTS = {
    "snntorch": "snnTorch+Brevitas loop",
    "fused": "deploy-faithful QSequential (fused)",
    "stepwise": "deploy-faithful, step by step (fused = False)",
}


def run_one(variant: str, steps: int, batch: int, iters: int, device: str, neuron: str = "lif") -> dict:
    """One variant in this process: median seconds per optimizer step and peak memory (bytes)."""
    import resource

    dev = torch.device(device)
    from qsnn_deploy.data import default_data_dir, load_mnist

    xs, ys = load_mnist(default_data_dir("mnist"), split="train", limit=batch)
    x = torch.as_tensor(xs, dtype=torch.float32, device=dev) / 255.0
    y = torch.as_tensor(ys, device=dev)
    torch.manual_seed(0)
    ours = init_uniform_fan_in(build_model(bench_arch(steps, neuron))).to(dev)
    if variant == "snntorch":
        model = build_model(bench_arch(steps, neuron, deploy_faithful=False)).to(dev)
        model.load_state_dict(ours.state_dict())
        forward = lambda m, xb: snntorch_forward(m, xb, steps)  # noqa: E731
    else:
        model = ours
        model.fused = variant == "fused"
        forward = lambda m, xb: m(xb, num_steps=steps)  # noqa: E731
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    seconds = step_time(model, forward, x, y, iters)
    peak = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"seconds": seconds, "peak_bytes": int(peak), "peak_kind": "CUDA allocated" if dev.type == "cuda" else "process RSS"}


def main() -> None:
    import json
    import subprocess

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, nargs="+", default=[25, 100])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--variants", default="snntorch,fused,stepwise",
                   help="which to run (comma-separated): snntorch, fused, stepwise")
    p.add_argument("--neuron", default="lif", choices=("lif", "cuba"),
                   help="neuron kind of every spiking layer: lif (Leaky / QLeaky) or cuba (Synaptic / QSynaptic)")
    p.add_argument("--malloc", default="tuned", choices=("tuned", "default", "both"),
                   help="glibc malloc of each variant's process: qsnn-train's tuned settings, glibc's defaults, or both")
    p.add_argument("--json", help="also write the figures, with the machine they ran on, to this file (bench/record.py)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one variant in this process, print JSON
    args = p.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.steps[0], args.batch, args.iters, args.device, args.neuron)))
        return
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    mallocs = ("tuned", "default") if args.malloc == "both" else (args.malloc,)
    print(f"seeds' MNIST net, int4, {args.neuron} neurons, batch {args.batch}, device {args.device}, "
          f"torch threads {torch.get_num_threads()}; "
          "each variant in a fresh process (peak memory = that process's)")
    runs: list[dict] = []  # one per T × variant × malloc
    ratios: list[dict] = []  # one per T: fused vs snnTorch
    for steps in args.steps:
        res = {}
        for v in variants:  # one process each, so that the peak memory is that variant's alone
            for m in mallocs:
                out = subprocess.run([sys.executable, __file__, "--one", v, "--steps", str(steps), "--batch", str(args.batch),
                                      "--iters", str(args.iters), "--device", args.device, "--neuron", args.neuron],
                                     check=True, capture_output=True, text=True, env=_malloc_env(m)).stdout
                r = res[v, m] = json.loads(out.strip().splitlines()[-1])
                runs.append({"steps": steps, "variant": v, "malloc": m, "samples_per_s": args.batch / r["seconds"], **r})
                print(f"T={steps:3d}: {VARIANTS[v]:46s} {args.batch / r['seconds']:7.1f} samples/s, "
                      f"peak {r['peak_bytes'] / 2**20:7.0f} MiB ({r['peak_kind']}), {m} malloc", flush=True)
            if len(mallocs) == 2:
                print(f"T={steps:3d}: {VARIANTS[v]}: tuned malloc {res[v, 'default']['seconds'] / res[v, 'tuned']['seconds']:.2f}x "
                      "the throughput of glibc's defaults", flush=True)
        m = mallocs[0]
        if ("snntorch", m) in res and ("fused", m) in res:
            ratio = res["snntorch", m]["seconds"] / res["fused", m]["seconds"]
            mem = res["fused", m]["peak_bytes"] / res["snntorch", m]["peak_bytes"]
            print(f"T={steps:3d}: ratio {ratio:.2f}x (deploy-faithful / snnTorch throughput, both {m} malloc; target >= 0.83), "
                  f"memory {mem:.2f}x snnTorch's; one MNIST epoch ≈ {60000 * res['fused', m]['seconds'] / args.batch / 60:.1f} min")
            ratios.append({"steps": steps, "malloc": m, "throughput_fused_to_snntorch": ratio, "memory_fused_to_snntorch": mem})
    if args.json:
        from record import write_results

        meta = {"batch": args.batch, "iters": args.iters, "device": args.device, "neuron": args.neuron}
        print(f"figures written to {write_results(args.json, 'bench_train', {**meta, 'runs': runs, 'ratios': ratios})}")


def _malloc_env(kind: str) -> dict[str, str]:
    """This environment with glibc malloc's variables as ``qsnn-train`` sets them (``tuned``) or unset."""
    env = {k: v for k, v in os.environ.items() if k not in TUNED_MALLOC and k != "GLIBC_TUNABLES"}
    return {**env, **TUNED_MALLOC} if kind == "tuned" else env


if __name__ == "__main__":
    main()
