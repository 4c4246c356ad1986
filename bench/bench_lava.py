"""Intel Lava end to end (start-up included) vs the Loihi-style simulator, on the same net, one run.

    python bench/bench_lava.py [--checkpoint A.pt [B.pt ...]] [--steps 100] [--lava-samples 200]
                               [--build lanes|netx] [--lanes 12] [--batch 128] [--profile]
                               [--json bench/results/lava_<cpu>.json]   (bench/record.py)

For each checkpoint (default: both shipped int4 MNIST models, examples/mnist_int4_qsnn.pt = custom
QLIF route in every layer, examples/mnist_int4_loihi.pt = stock Lava LIF in every layer) the
frozen net runs on the first ``--lava-samples`` real MNIST test digits with Lava's pipeline timing
(T + L steps per sample):

* Lava (lava-nc 0.10.0, ``Loihi2SimCfg`` fixed_pt, CPU) through ``LavaSimulator``: the network is
  built, compiled and started once and the samples are streamed through it (``--build lanes``:
  ``--lanes`` samples side by side on Lava Sparse synapses; ``--build netx``: netx's own Conv/Dense
  network, one sample per step). "End to end" is the wall time from constructing the simulator
  (netx export included) to stopping Lava; "run only" excludes build, compile and start
  (``info["startup_seconds"]``, printed separately).
* the Loihi-style simulator (NumPy) on ``--batch`` samples at once, median of ``--repeats``.

Every layer's raw spike trains of Lava and the Loihi-style simulator are checked bit-equal on all
``--lava-samples`` samples before any number is printed. ``--profile`` also times, per Lava
process, the compute inside ``run_spk`` against the time spent in its ports (waiting for the other
processes' messages) and the wall time per step. Machines here are noisy (±25%): compare figures
within one run.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qsnn_deploy import freeze  # noqa: E402
from qsnn_deploy.checkpoint import model_from_checkpoint  # noqa: E402
from qsnn_deploy.data import default_data_dir, load_mnist  # noqa: E402
from qsnn_deploy.lava.backend import DEFAULT_LANES, LavaSimulator, import_lava  # noqa: E402
from qsnn_deploy.lava.loihi_sim import LoihiSimulator  # noqa: E402

SHIPPED = [ROOT / "examples" / "mnist_int4_qsnn.pt", ROOT / "examples" / "mnist_int4_loihi.pt"]


def install_profiler(out_dir: str) -> None:
    """Wrap the run_spk of every ProcessModel the Lava networks use, and the ports' recv/send, in
    the parent (Lava's forked processes inherit the wrappers). Each process writes its totals to
    ``out_dir`` every 100 steps: run_spk seconds, seconds inside port recv/send, wall seconds."""
    import_lava()
    from lava.magma.core.model.py.ports import PyInPortVectorDense, PyOutPortVectorDense
    from lava.proc.conv.models import PyConvModelFixed
    from lava.proc.dense.models import PyDenseModelBitAcc
    from lava.proc.lif.models import PyLifModelBitAcc, PyLifResetModelBitAcc
    from lava.proc.sparse.models import PySparseModelBitAcc

    from qsnn_deploy.lava.models.models import PyQLifModelFixed, PyStreamRecorderModel, PyStreamSourceModel

    port_s = [0.0]

    def timed_port(fn):
        def wrapper(*args):
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                port_s[0] += time.perf_counter() - t0
        return wrapper

    PyInPortVectorDense.recv = timed_port(PyInPortVectorDense.recv)
    PyOutPortVectorDense.send = timed_port(PyOutPortVectorDense.send)

    def timed_model(cls):
        orig = cls.run_spk

        def run_spk(self):
            t0 = time.perf_counter()
            orig(self)
            st = self.__dict__.setdefault("_bench", {"spk": 0.0, "steps": 0, "start": t0, "port0": port_s[0]})
            st["spk"] += time.perf_counter() - t0
            st["steps"] += 1
            if st["steps"] % 100 == 0:
                with open(os.path.join(out_dir, f"{os.getpid()}.json"), "w") as f:
                    json.dump({"model": cls.__name__, "spk": st["spk"], "port": port_s[0] - st["port0"],
                               "steps": st["steps"], "wall": time.perf_counter() - st["start"]}, f)
        cls.run_spk = run_spk

    for cls in (PySparseModelBitAcc, PyConvModelFixed, PyDenseModelBitAcc, PyLifModelBitAcc, PyLifResetModelBitAcc,
                PyQLifModelFixed, PyStreamSourceModel, PyStreamRecorderModel):
        timed_model(cls)


def print_profile(out_dir: str) -> None:
    rows = [json.load(open(f)) for f in glob.glob(os.path.join(out_dir, "*.json"))]
    if not rows:
        return
    print(f"  {'Lava process model':<26}{'compute':>10}{'in ports':>10}{'wall':>9}   [ms per Lava step]")
    compute = 0.0
    for r in sorted(rows, key=lambda r: -(r["spk"] - r["port"])):
        c = 1e3 * (r["spk"] - r["port"]) / r["steps"]
        compute += c
        print(f"  {r['model']:<26}{c:>10.2f}{1e3 * r['port'] / r['steps']:>10.2f}{1e3 * r['wall'] / r['steps']:>9.2f}")
    wall = statistics.median(1e3 * r["wall"] / r["steps"] for r in rows)
    print(f"  {len(rows)} processes: compute {compute:.2f} ms per step in all (2 cores), wall {wall:.2f} ms per step; the "
          f"rest of the wall is Lava's per-step synchronisation (runtime service + channels) and waiting")


def lava_step_overhead(steps: int = 500) -> tuple[float, int]:
    """Wall ms per Lava step of the same process structure (stream source, 3 Sparse synapses, 3 QLIF,
    3 recorders) with one neuron per layer: Lava's fixed per-step cost, next to no compute."""
    from qsnn_deploy.frozen import FrozenNet, InputSpec, Layer

    one = lambda name: Layer(name, "dense", np.array([[1]]), 4, np.array([64]), np.array([0]),  # noqa: E731
                                np.array([4096]), reset="subtract", frac_bits=6)
    net = FrozenNet(InputSpec((1,), bits=8, scale=1.0), [one("a"), one("b"), one("c")], num_steps=steps).validate()
    with LavaSimulator(net, lanes=1) as lava:
        res = lava.run(np.ones((1, 1), np.int64), steps)
    return 1e3 * res.info["run_seconds"] / res.info["period_steps"], 10


def bench_one(checkpoint: Path, args, images: np.ndarray, profile_dir: str | None) -> dict:
    """Time one model in Lava (end to end and run only) and the Loihi-style simulator; check them bit-exact
    (a difference stops the bench: no timing is reported). Returns the figures."""
    model, _ = model_from_checkpoint(checkpoint)
    net = freeze(model)
    steps, L, n = args.steps, len(net.layers), args.lava_samples

    loihi = LoihiSimulator(net)
    times = []
    for _ in range(args.repeats + 1):
        t0 = time.perf_counter()
        loihi.run(images[:args.batch], steps)
        times.append(time.perf_counter() - t0)
    loihi_rate = args.batch / statistics.median(times[1:])
    res_loihi = loihi.run(images[:n], steps)

    for f in glob.glob(os.path.join(profile_dir or "", "*.json")):
        os.remove(f)
    t0 = time.perf_counter()
    lava = LavaSimulator(net, build=args.build, lanes=args.lanes)
    res_lava = lava.run(images[:n], steps)
    lava.close()
    wall = time.perf_counter() - t0
    for name, raw in res_lava.info["raw_spikes"].items():
        if not np.array_equal(raw, res_loihi.info["raw_spikes"][name]):
            raise SystemExit(f"{checkpoint.name}: layer {name}: Lava and the Loihi-style simulator differ; no timing reported")
    custom = [l.name for l, route in zip(net.layers, lava.routes) if route == "custom"]  # stock Lava LIF counts none
    if any(res_lava.saturations[k] != res_loihi.saturations[k] for k in custom):
        raise SystemExit(f"{checkpoint.name}: saturation counts differ: Lava {res_lava.saturations}, "
                         f"Loihi-style {res_loihi.saturations}; no timing reported")
    run_s, start_s = res_lava.info["run_seconds"], res_lava.info["startup_seconds"]
    e2e_rate, run_rate = n / wall, n / run_s
    info = res_lava.info
    print(f"{checkpoint.name}: T={steps} (+{L} pipeline steps), routes {lava.routes}, Lava build {info['build']!r}, "
          f"{info['lanes']} lane(s), period {info['period_steps']} steps{'; ' + info['build_note'] if info['build_note'] else ''}")
    print(f"Lava end to end (start-up included) over {n} samples: {e2e_rate:.2f} samples/s ({wall:.1f} s); "
          f"run only: {run_rate:.2f} samples/s ({run_s:.1f} s); start-up (netx build + compile + spawn): {start_s:.2f} s")
    print(f"Loihi-style simulator (NumPy, batch {args.batch}): {loihi_rate:.1f} samples/s = "
          f"{loihi_rate / e2e_rate:.0f}× Lava end to end, {loihi_rate / run_rate:.0f}× Lava run only")
    print(f"bit-exact: Lava == Loihi-style simulator on {n} samples × {steps + L} steps, every layer "
          f"(saturations {res_lava.saturations}); target ≥ 5 samples/s end to end: "
          f"{'met' if e2e_rate >= 5 else 'NOT met'}")
    if profile_dir:
        print_profile(profile_dir)
    print()
    return {"model": checkpoint.name, "steps": steps, "routes": list(lava.routes), "build": info["build"],
            "lanes": info["lanes"], "lava_samples": n, "lava_end_to_end_samples_per_s": e2e_rate,
            "lava_end_to_end_seconds": wall, "lava_run_only_samples_per_s": run_rate, "lava_startup_seconds": start_s,
            "loihi_sim_samples_per_s": loihi_rate, "loihi_sim_batch": args.batch, "bit_exact": True,
            "saturations": {k: int(v) for k, v in res_lava.saturations.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", nargs="+", default=[str(c) for c in SHIPPED])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--lava-samples", type=int, default=200, help="samples streamed through Lava (and checked)")
    p.add_argument("--build", choices=("lanes", "netx"), default="lanes")
    p.add_argument("--lanes", type=int, default=DEFAULT_LANES, help="samples side by side (build lanes)")
    p.add_argument("--batch", type=int, default=128, help="samples the Loihi-style simulator runs at once")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--profile", action="store_true", help="time compute vs port waiting per Lava process")
    p.add_argument("--json", help="also write the figures, with the machine they ran on, to this file (bench/record.py)")
    args = p.parse_args()

    images, _ = load_mnist(default_data_dir("mnist"), split="test", limit=max(args.batch, args.lava_samples))
    with tempfile.TemporaryDirectory(prefix="qsnn-bench-lava-") as profile_dir:
        if args.profile:
            ms, procs = lava_step_overhead()  # before the profiler's wrappers
            install_profiler(profile_dir)
        figures = [bench_one(Path(checkpoint), args, images, profile_dir if args.profile else None)
                   for checkpoint in args.checkpoint]
        if args.profile:
            print(f"Lava's fixed cost per step (the same {procs} processes, one neuron per layer): {ms:.2f} ms")
    if args.json:
        from record import write_results

        extra = {"lava_ms_per_step_fixed": ms} if args.profile else {}
        print(f"figures written to {write_results(args.json, 'bench_lava', {'rows': figures, **extra})}")


if __name__ == "__main__":
    main()
