"""NumPy-simulator throughput vs snnTorch's float forward of the same net, measured in one run.

    python bench/bench_numpy_sim.py [--checkpoint examples/mnist_int4_qsnn.pt] [--steps 100] [--batch 128] [--repeats 3]
                                    [--kinds [--cuba-checkpoint examples/mnist_int4_cuba_loihi.pt]]
                                    [--json bench/results/numpy_sim_<cpu>.json]
                                    (--kinds: also the CUBA and the recurrent model, with their spike rates;
                                     --json: also keep the figures with the machine they ran on, bench/record.py)

The snnTorch side is the canonical explicit time loop over the seeds' MNIST net (Brevitas int4
QuantConv2d -> avg-pool -> BatchNorm -> snntorch.Leaky, x3), float32, torch.no_grad, on the same
real MNIST digits. Prints samples/s (fastest of the repeats) and the ratio, and the dense floor: this
CPU's float32 GEMM rate, measured in the same run, applied to the synaptic MACs the net needs (the
static first layer once per sample, every other layer at every step, sum pools folded into the
convs) — the speed of a perfect dense simulator. The NumPy simulator may pass it: after the first
layer it accumulates only the inputs that spiked. Machines here are noisy (±25%): the contenders run
in turn in every round and the fastest round counts (:func:`timed`); compare ratios within one run,
never absolute times across runs.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qsnn_deploy import freeze  # noqa: E402
from qsnn_deploy.models import build_model, mnist_arch  # noqa: E402
from qsnn_deploy.simulators.numpy_sim import NumpySimulator  # noqa: E402
from qsnn_deploy.simulators.torch_sim import TorchSimulator  # noqa: E402


def mnist_digits(n: int) -> np.ndarray:
    from qsnn_deploy.data import default_data_dir, load_mnist

    x, _ = load_mnist(default_data_dir("mnist"), split="test", limit=n)
    return x


def snntorch_float_model(src):
    """The same weights in a plain snnTorch + Brevitas model (float Leaky neurons)."""
    arch = mnist_arch(deploy_faithful=False)
    model = build_model(arch)
    state = {k: v for k, v in src.state_dict().items()}
    model.load_state_dict(state, strict=False)
    for name in ("lif1", "lif2", "lif3"):
        getattr(model, name).beta = getattr(src, name).beta.clone()
        getattr(model, name).threshold = getattr(src, name).threshold.clone()
    return model.eval()


def snntorch_loop(m, x: torch.Tensor, steps: int) -> torch.Tensor:
    """The explicit per-step loop people write with snnTorch."""
    mem1 = m.lif1.init_leaky(); mem2 = m.lif2.init_leaky(); mem3 = m.lif3.init_leaky()
    out = []
    for _ in range(steps):
        cur1 = m.bn1(F.avg_pool2d(m.conv1(x), 2))
        spk1, mem1 = m.lif1(cur1, mem1)
        cur2 = m.bn2(F.avg_pool2d(m.conv2(spk1), 2))
        spk2, mem2 = m.lif2(cur2, mem2)
        cur3 = m.fc(spk2.flatten(1))
        spk3, mem3 = m.lif3(cur3, mem3)
        out.append(spk3)
    return torch.stack(out)


def dense_macs(net, steps: int) -> int:
    """Synaptic MACs per sample: first (static-input) layer once, every later layer at every step;
    a conv + sum pool counted as its folded conv (what the simulators run)."""
    from qsnn_deploy import intmath

    total = 0
    for i, (layer, (in_shape, out_shape)) in enumerate(zip(net.layers, net.layer_shapes())):
        w = layer.synapse.weight
        if layer.synapse.kind == "conv" and layer.synapse.pool is not None:
            w, _ = intmath.fold_sum_pool(w.astype(np.int64), layer.synapse.stride, layer.synapse.pool)
        outputs = int(np.prod(out_shape[1:])) if layer.synapse.kind == "conv" else 1
        macs = int(np.prod(w.shape)) * outputs
        total += macs * (1 if i == 0 else steps)
    return total


def gemm_flops(seconds: float = 1.0) -> float:
    """This CPU's float32 GEMM rate (FLOP/s) on an im2col-shaped product (rows x 576 @ 576 x 64)."""
    a = np.random.default_rng(0).random((32768, 576), dtype=np.float32)
    b = np.random.default_rng(1).random((576, 64), dtype=np.float32)
    a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2.0 * a.shape[0] * a.shape[1] * b.shape[1] * n / (time.perf_counter() - t0)


def timed(*fns, repeats: int) -> list[float]:
    """Fastest wall time of each of ``fns`` over ``repeats`` rounds, after one warm-up call each. Every
    round runs all of them in turn, and the fastest round counts: load from others on this shared
    machine only ever slows a run down, in bursts that would otherwise land on one contender."""
    for fn in fns:
        fn()  # warm-up
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [min(ts) for ts in times]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "examples" / "mnist_int4_qsnn.pt"))
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--kinds", action="store_true", help="also the CUBA (Synaptic) and the recurrent (RLeaky) model")
    p.add_argument("--cuba-checkpoint", default=str(ROOT / "examples" / "mnist_int4_cuba_loihi.pt"),
                   help="the trained CUBA model for --kinds (if absent: the seeds' net with Synaptic neurons)")
    p.add_argument("--json", help="also write the figures, with the machine they ran on, to this file (bench/record.py)")
    args = p.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    if Path(args.checkpoint).exists():
        from qsnn_deploy.checkpoint import model_from_checkpoint

        model, _ = model_from_checkpoint(args.checkpoint)
        source, model_name = args.checkpoint, Path(args.checkpoint).name
    else:
        torch.manual_seed(0)
        model = build_model(mnist_arch(num_steps=args.steps)).eval()
        source = model_name = "random int4 weights (no checkpoint found)"
    net = freeze(model, num_steps=args.steps)
    x = mnist_digits(args.batch)
    xf = torch.as_tensor(x, dtype=torch.float32) / 255.0
    float_model = snntorch_float_model(model)

    sim = NumpySimulator(net, batch_size=args.batch)
    tsim = TorchSimulator(net, batch_size=args.batch)
    with torch.no_grad():
        t_snn, t_faithful, t_np, t_torch = timed(lambda: snntorch_loop(float_model, xf, args.steps),
                                                 lambda: model(xf, num_steps=args.steps), lambda: sim.run(x, args.steps),
                                                 lambda: tsim.run(x, args.steps), repeats=args.repeats)
    res = sim.run(x, args.steps)

    n = args.batch
    print(f"model: {source}")
    print(f"seeds' MNIST net, T={args.steps}, batch {n}, torch threads {torch.get_num_threads()}; spike rates {spike_rates(res)}")
    rows = [("snnTorch float forward (explicit loop)", t_snn), ("QSequential deploy-faithful forward", t_faithful),
            ("torch integer simulator (CPU)", t_torch), ("NumPy integer simulator", t_np)]
    for name, t in rows:
        print(f"  {name:42s} {n / t:9.1f} samples/s   ratio to snnTorch {t_snn / t:5.2f}x")
    macs = dense_macs(net, args.steps)
    flops = gemm_flops()
    floor = flops / (2.0 * macs)
    print(f"dense floor: {macs:,} synaptic MACs per sample at T={args.steps}, float32 GEMM {flops / 1e9:.0f} GFLOP/s "
          f"-> {floor:.0f} samples/s; NumPy simulator at {n / t_np / floor:.2f}x the floor")
    print(f"NumPy simulator / snnTorch float forward = {t_snn / t_np:.2f}x (target >= 5x)")
    kinds = bench_kinds(model, x, args) if args.kinds else []
    if args.json:
        from record import write_results

        figures = {"model": model_name, "steps": args.steps, "batch": n, "repeats": args.repeats,
                   "spike_rates": spike_rate_of_layers(res),
                   "rows": [{"name": name, "samples_per_s": n / t, "ratio_to_snntorch": t_snn / t} for name, t in rows],
                   "dense_floor": {"macs_per_sample": macs, "gemm_gflops": flops / 1e9, "samples_per_s": floor,
                                   "numpy_sim_to_floor": n / t_np / floor},
                   "kinds": kinds}
        print(f"figures written to {write_results(args.json, 'bench_numpy_sim', figures)}")


def float_twin(model, arch: dict):
    """snnTorch's own float model of a checkpoint's net (``arch``: its spec): the same layers with every
    deploy-faithful neuron replaced by plain ``snn.Leaky`` / ``snn.Synaptic`` (same weights, β, α, θ, reset)."""
    import copy

    from qsnn_deploy.models.spec import build_model as build

    arch = copy.deepcopy(arch)
    for entry in arch["layers"]:
        if entry["type"] == "lif":
            entry["deploy_faithful"] = False
    twin = build(arch)
    twin.load_state_dict(model.state_dict(), strict=False)
    for (_, src), (_, dst) in zip(model.named_modules(), twin.named_modules()):
        for attr in ("alpha", "beta", "threshold"):
            if hasattr(src, attr) and hasattr(dst, attr) and torch.is_tensor(getattr(src, attr)):
                setattr(dst, attr, getattr(src, attr).detach().clone())
    return twin.eval()


def explicit_loop(modules, x: torch.Tensor, steps: int) -> torch.Tensor:
    """The explicit per-step loop people write with snnTorch, for any stack of modules with
    ``Leaky`` / ``Synaptic`` / ``RLeaky`` neurons (states passed by hand)."""
    import snntorch as snn

    mods = list(modules)
    state = {}
    for i, m in enumerate(mods):
        if isinstance(m, snn.Synaptic):
            state[i] = m.init_synaptic()
        elif isinstance(m, snn.RLeaky):
            state[i] = m.init_rleaky()
        elif isinstance(m, snn.Leaky):
            state[i] = (m.init_leaky(),)
    out = []
    for _ in range(steps):
        h = x
        for i, m in enumerate(mods):
            if i in state:
                res = m(h, *state[i])  # Leaky: (spk, mem); Synaptic: (spk, syn, mem); RLeaky: (spk, mem), spk fed back
                h, state[i] = res[0], (tuple(res) if isinstance(m, snn.RLeaky) else tuple(res[1:]))
            else:
                h = m(h)
        out.append(h)
    return torch.stack(out)


def spike_rate_of_layers(res) -> dict[str, float]:
    """Fraction of neuron-steps that spiked, per layer, of a simulator result."""
    return {name: float(spikes.mean()) for name, spikes in res.spikes.items()}


def spike_rates(res) -> str:
    return ", ".join(f"{name} {rate:.1%}" for name, rate in spike_rate_of_layers(res).items())


def synaptic_from_lif(model, realistic: bool = True):
    """The seeds' net with ``snn.Synaptic`` (α = 0.5) in place of every ``Leaky`` (the LIF model's weights,
    β and BatchNorm). ``realistic``: θ × 1/(1 - α) = 2, so that the current's steady state (J/(1 - α)) drives
    the membrane as J drives the LIF's and the layers fire at about the LIF model's rates (θ as the LIF's
    fires at 17% / 19% / 91%)."""
    import snntorch as snn
    import torch.nn as nn

    k = 2.0 if realistic else 1.0

    def syn(lif, **kw):
        return snn.Synaptic(alpha=0.5, beta=lif.beta.clone(), threshold=float(lif.threshold) * k, **kw)

    return nn.Sequential(model.conv1, nn.AvgPool2d((2, 2)), model.bn1, syn(model.lif1), model.conv2, nn.AvgPool2d((2, 2)),
                         model.bn2, syn(model.lif2), nn.Flatten(), model.fc, syn(model.lif3)).eval()


def recurrent_net(hidden_gain: float = 1.5, out_gain: float = 4.0):
    """784 → 256 ``RLeaky`` (all_to_all, β = 0.9) → 10 ``Leaky`` (β = 0.9), dense, seeded random weights (not
    trained) scaled so that it fires like a trained net: the first layer's weights × ``hidden_gain``
    (hidden layer ≈ 8% on MNIST digits), the output layer's × ``out_gain``."""
    import snntorch as snn
    import torch.nn as nn

    torch.manual_seed(0)
    rec = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), snn.RLeaky(beta=0.9, linear_features=256),
                        nn.Linear(256, 10), snn.Leaky(beta=0.9)).eval()
    with torch.no_grad():
        rec[1].weight.mul_(hidden_gain)
        rec[3].weight.mul_(out_gain)
    return rec


def bench_kinds(model, x: np.ndarray, args) -> list[dict]:
    """The other neuron kinds, each against snnTorch's own float forward of the same net in this run (the
    explicit per-step loop): the CUBA model (the shipped ``mnist_int4_cuba_loihi.pt`` when present, else the
    seeds' net with ``snn.Synaptic`` neurons, θ set for realistic rates) and a recurrent 784 → 256 ``RLeaky``
    (all_to_all) → 10 ``Leaky`` dense net (random weights scaled to realistic rates). Returns one dict of
    figures per net (samples/s of both, the ratio, the deployed spike rates)."""
    from qsnn_deploy.checkpoint import model_from_checkpoint

    n, steps = args.batch, args.steps
    xf = torch.as_tensor(x, dtype=torch.float32) / 255.0
    cases = []
    if Path(args.cuba_checkpoint).exists():
        cmodel, ckpt = model_from_checkpoint(args.cuba_checkpoint)
        cases.append((f"CUBA model {Path(args.cuba_checkpoint).name} (trained)", freeze(cmodel, num_steps=steps),
                      list(float_twin(cmodel, ckpt["arch"]).children())))
    else:
        cuba = synaptic_from_lif(model)
        with warnings.catch_warnings():  # a possible clip is counted identically everywhere; speed is measured here
            warnings.simplefilter("ignore")
            cnet = freeze(cuba, input_shape=(1, 28, 28), num_steps=steps)
        cases.append(("CUBA (snn.Synaptic, α = 0.5) seeds' net, LIF model's weights, θ × 2 for realistic rates "
                      f"(no {Path(args.cuba_checkpoint).name})", cnet, list(cuba.children())))
    rec = recurrent_net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rnet = freeze(rec, input_shape=(1, 28, 28), num_steps=steps)
    cases.append(("recurrent 784-256(RLeaky all_to_all)-10 dense net, random weights scaled to realistic rates",
                  rnet, list(rec.children())))
    figures = []
    for label, net, modules in cases:
        sim = NumpySimulator(net, batch_size=n)
        with torch.no_grad():
            t_snn, t_np = timed(lambda: explicit_loop(modules, xf, steps), lambda: sim.run(x, steps), repeats=args.repeats)
        kinds = ", ".join(f"{layer.name}: {layer.kind}{' recurrent' if layer.synapse.is_recurrent else ''}" for layer in net.layers)
        res = sim.run(x, steps)
        print(f"{label}\n  ({kinds}), T={steps}, batch {n}; deployed spike rates {spike_rates(res)}")
        print(f"  snnTorch float forward (explicit loop)     {n / t_snn:9.1f} samples/s")
        print(f"  NumPy integer simulator                    {n / t_np:9.1f} samples/s   ratio to snnTorch {t_snn / t_np:5.2f}x "
              "(target >= 5x)")
        figures.append({"net": label, "layers": kinds, "snntorch_samples_per_s": n / t_snn,
                        "numpy_sim_samples_per_s": n / t_np, "ratio_to_snntorch": t_snn / t_np,
                        "spike_rates": spike_rate_of_layers(res)})
    return figures


if __name__ == "__main__":
    main()
