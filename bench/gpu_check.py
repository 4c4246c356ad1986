"""GPU check: the shipped int4 MNIST QSNN on CUDA, spike for spike, against the NumPy reference.

    python bench/gpu_check.py                          # full 10,000-digit test set, T = the model's (100)
    python bench/gpu_check.py --json out/gpu_check.json
    python bench/gpu_check.py --device cpu --limit 200 # the same checks on the CPU (CPU vs CPU)

What it does (issue 11, deliverable 5):

(a) **Inference, bit-exact.** Loads ``examples/mnist_int4_qsnn.pt``, freezes it, and runs the whole
    MNIST test set (``--limit`` to shorten) at T=``--steps`` through the PyTorch model on
    ``--device`` and the torch integer backend on ``--device``; both are compared with the NumPy
    reference (CPU) on every LIF layer's spike train, every sample, every step
    (:func:`qsnn_deploy.verify.verify`, called chunk by chunk so memory does not grow with N).
    Prints the accuracy of each and exact / NOT EXACT per layer. Required: all exact.
(b) **One deploy-faithful training step on ``--device`` and on the CPU** from the same seed and the
    same batch (the first ``--train-batch`` training digits): the trainer's own recipe
    (:class:`qsnn_deploy.train.Trainer` builds the model — ``mnist_arch(precision="int4")`` with the
    Table I presets, paper initialisation — and Adam at the preset LR; spike-count MSE loss,
    gradient-norm clip, Adam step, weight clip). The dropout layer draws its mask from one CPU
    generator on both sides (the CPU and CUDA random streams differ, so the two runs would otherwise
    drop different neurons); everything else runs as in training.
    Required: the forward spikes of the step (every layer, every step) are identical on both devices.
    Reported, not required: the weights (and BatchNorm statistics) after the step, max |difference|
    per tensor, because of the DOCUMENTED REASON below.
(c) **Throughput** (samples/s) of the PyTorch model's forward and of the torch integer backend on
    ``--device`` and of the NumPy reference on the CPU, on ``--bench-samples`` digits.
(d) ``--json FILE``: everything above as JSON (``"schema": "qsnn-gpu-check"``).
(e) Exit status 0 when every required comparison is exact, 1 otherwise, 2 on bad input or when
    ``--device cuda`` is asked on a machine without CUDA (one line on stderr, no traceback).

DOCUMENTED REASON for weights that differ after the training step: the forward pass is integer
arithmetic held in floats below their exact bound, so its spikes do not depend on the device; the
backward pass is not. It sums float32 (and float64) products — conv weight gradients, BatchNorm
statistics, the gradient norm — in an order chosen by the kernel (cuDNN/cuBLAS blocked and
parallel reductions on CUDA, oneDNN/OpenMP blocking on the CPU). Float addition is not associative,
so gradients may differ in their last bits (relative ~1e-7 for float32), and Adam's
``m / (sqrt(v) + eps)`` carries that into the new weights. ``torch.use_deterministic_algorithms``
makes each device repeat itself run after run; it cannot make two devices use the same order.
The difference is that rounding noise: orders of magnitude below the step's own update (printed
next to it), and it never changes a forward spike (checked in (b)).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

# cuBLAS is deterministic only with a fixed workspace; must be set before CUDA is initialised.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHIPPED = ROOT / "examples" / "mnist_int4_qsnn.pt"
DEFAULT_DATA = (ROOT / ".." / "shared" / "data" / "mnist").resolve()
SCHEMA, SCHEMA_VERSION = "qsnn-gpu-check", 1

from bench.gpu_train_step import check_training_step, sync  # noqa: E402  (part (b))
from bench.record import cpu_model  # noqa: E402
from qsnn_deploy.cli.common import run_cli  # noqa: E402
from qsnn_deploy.errors import QSNNError  # noqa: E402


class CheckError(QSNNError):
    """Bad input or environment: one line on stderr, exit status 2 (through ``run_cli``)."""


# ------------------------------------------------------------------------------ device
def check_device(device: str) -> torch.device:
    """The torch device for ``device``; :class:`CheckError` with one clear line when unusable."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise CheckError(f"--device {device!r} is not a torch device ({e})") from None
    if dev.type == "cuda":
        with warnings.catch_warnings():  # a CUDA build without a driver warns while probing
            warnings.simplefilter("ignore")
            available = torch.cuda.is_available()
            count = torch.cuda.device_count() if available else 0
        if not available:
            raise CheckError("gpu_check needs a CUDA GPU (torch.cuda.is_available() is False); "
                             "run it on a machine with an NVIDIA GPU, or pass --device cpu for the CPU-only checks")
        if dev.index is not None and dev.index >= count:
            raise CheckError(f"--device {device}: this machine has {count} CUDA device(s)")
    elif dev.type != "cpu":
        raise CheckError(f"--device {device!r}: use cuda, cuda:N or cpu")
    return dev


def environment(dev: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
        "platform": platform.platform(), "processor": cpu_model(),
        "cpu_threads": torch.get_num_threads(), "device": str(dev),
    }
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   compute_capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(),
                   tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)
    return env


# ------------------------------------------------------------------------------ (a) inference
def load_shipped(checkpoint: str | os.PathLike = SHIPPED):
    """(model, checkpoint dict, frozen net) of the shipped model."""
    from qsnn_deploy import freeze
    from qsnn_deploy.checkpoint import model_from_checkpoint

    model, ckpt = model_from_checkpoint(checkpoint)
    return model, ckpt, freeze(model)


def load_test_set(data_dir: str | os.PathLike, limit: int | None):
    from qsnn_deploy.data import load_mnist

    return load_mnist(data_dir, split="test", limit=limit)


def verify_streamed(model, net, x: np.ndarray, y: np.ndarray | None, steps: int, device: str = "cuda",
                    batch_size: int = 500, chunk: int = 1000, progress: bool = True) -> dict[str, Any]:
    """The PyTorch model and the torch integer backend on ``device`` vs the NumPy reference,
    every layer, every step; ``verify`` runs on ``chunk`` samples at a time and the results add up.

    Returns a dict: ``reference`` (accuracy, seconds), ``backends``: name -> {exact_required,
    bit_exact, accuracy, prediction_agreement, seconds, layers: name -> {bit_exact,
    mismatched_values, spikes, reference_spikes, saturations, first_mismatch}}, ``all_exact``.
    """
    from tqdm import tqdm

    from qsnn_deploy.verify import verify

    n = len(x)
    stages = ("numpy", "torch-model", "torch")
    bar = tqdm(total=n * len(stages), desc=f"verify {n} digits x T={steps}", unit="run", disable=not progress,
               dynamic_ncols=True)
    seen: dict[str, int] = {}

    def cb(stage: str, done: int, total: int) -> None:
        bar.update(done - seen.get(stage, 0))
        seen[stage] = done
        bar.set_postfix_str(stage)

    ref_correct, ref_seconds, ref_sats = 0, 0.0, 0
    agg: dict[str, dict[str, Any]] = {}
    try:
        for start in range(0, n, chunk):
            xs = x[start:start + chunk]
            ys = None if y is None else y[start:start + chunk]
            seen.clear()
            rep = verify(net, xs, ys, model=model, backends=["torch"], num_steps=steps, device=device,
                         batch_size=batch_size, model_name="mnist_int4_qsnn",
                         backend_options={"torch": {"batch_size": batch_size}}, progress=cb)
            m = len(xs)
            ref_seconds += rep.reference_seconds
            ref_sats += sum(rep.reference_saturations.values())
            if rep.reference_accuracy is not None:
                ref_correct += round(rep.reference_accuracy * m)
            for b in rep.backends:
                a = agg.setdefault(b.name, {"exact_required": b.exact_required, "note": b.note, "seconds": 0.0,
                                            "correct": 0, "agree": 0, "layers": {}})
                a["seconds"] += b.seconds
                a["agree"] += round(b.prediction_agreement * m)
                if b.accuracy is not None:
                    a["correct"] += round(b.accuracy * m)
                for layer in b.layers:
                    la = a["layers"].setdefault(layer.name, {"bit_exact": True, "mismatched_values": 0, "spikes": 0,
                                                             "reference_spikes": 0, "saturations": 0,
                                                             "first_mismatch": None})
                    la["bit_exact"] &= layer.bit_exact
                    la["mismatched_values"] += layer.mismatched_values
                    la["spikes"] += layer.spikes
                    la["reference_spikes"] += layer.reference_spikes
                    la["saturations"] += layer.saturations
                    if layer.first_mismatch is not None and la["first_mismatch"] is None:
                        mm = layer.first_mismatch
                        mm.sample += start  # index into the whole set
                        la["first_mismatch"] = mm.describe()
    finally:
        bar.close()
    backends = {}
    for name, a in agg.items():
        backends[name] = {
            "exact_required": a["exact_required"], "note": a["note"],
            "bit_exact": all(la["bit_exact"] for la in a["layers"].values()),
            "accuracy": a["correct"] / n if y is not None else None, "prediction_agreement": a["agree"] / n,
            "seconds": a["seconds"], "samples_per_s": n / a["seconds"] if a["seconds"] else None,
            "layers": a["layers"],
        }
    return {
        "n_samples": n, "num_steps": steps, "device": str(device),
        "reference": {"name": "numpy (CPU)", "accuracy": ref_correct / n if y is not None else None,
                      "seconds": ref_seconds, "samples_per_s": n / ref_seconds if ref_seconds else None,
                      "saturations": ref_sats},
        "backends": backends,
        "all_exact": all(b["bit_exact"] for b in backends.values() if b["exact_required"]),
    }


# ------------------------------------------------------------------------------ (c) throughput
def _timed(fn: Callable[[], Any], dev: torch.device) -> float:
    sync(dev)
    t0 = time.perf_counter()
    fn()
    sync(dev)
    return time.perf_counter() - t0


def throughput(model, net, x: np.ndarray, steps: int, device: str = "cuda", batch_size: int = 500) -> dict[str, Any]:
    """samples/s of the PyTorch model's forward and the torch integer backend on ``device``, and of
    the NumPy reference on the CPU, on ``x`` at T=``steps`` (after one warm-up batch each)."""
    from qsnn_deploy.simulators import create_backend

    dev = torch.device(device)
    cpu = torch.device("cpu")
    n = len(x)
    scale = float(net.input.scale)
    model = model.to(dev).eval()

    def model_forward(xs):
        with torch.no_grad():
            for s in range(0, len(xs), batch_size):
                model(torch.as_tensor(xs[s:s + batch_size], device=dev).to(torch.float32) * scale, num_steps=steps)

    warm = x[:min(len(x), batch_size)]  # device paths: one full batch (cuDNN picks its kernels there)
    out = {"n_samples": n, "num_steps": steps, "batch_size": batch_size}
    model_forward(warm)
    secs = _timed(lambda: model_forward(x), dev)
    out["torch_model"] = {"device": str(dev), "seconds": secs, "samples_per_s": n / secs}
    tb = create_backend("torch", net, device=str(dev), batch_size=batch_size)
    tb.run(warm, steps)
    secs = _timed(lambda: tb.run(x, steps), dev)
    out["torch_backend"] = {"device": str(dev), "seconds": secs, "samples_per_s": n / secs}
    nb = create_backend("numpy", net, batch_size=batch_size)
    nb.run(x[:min(len(x), 16)], steps)
    secs = _timed(lambda: nb.run(x, steps), cpu)
    out["numpy_reference"] = {"device": "cpu", "seconds": secs, "samples_per_s": n / secs}
    return out


# ------------------------------------------------------------------------------ printing
def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def print_verify(res: dict[str, Any], recorded_accuracy: float | None) -> None:
    n, steps = res["n_samples"], res["num_steps"]
    print(f"\n(a) inference: {n} MNIST test digits x T={steps}, vs the NumPy reference, every layer, every step")
    ref = res["reference"]
    print(f"  numpy reference (CPU): accuracy {_pct(ref['accuracy'])}"
          + (f" (checkpoint records {_pct(recorded_accuracy)} on the full test set)" if recorded_accuracy is not None else "")
          + (f"; saturation events {ref['saturations']}" if ref["saturations"] else ""))
    print(f"  {'backend':<22} {'layer':<6} {'spike trains':<13} {'mismatched':>10} {'spikes':>12}")
    for name, b in res["backends"].items():
        for i, (lname, la) in enumerate(b["layers"].items()):
            verdict = "exact" if la["bit_exact"] else ("NOT EXACT" if b["exact_required"] else "differ")
            print(f"  {name if i == 0 else '':<22} {lname:<6} {verdict:<13} {la['mismatched_values']:>10} {la['spikes']:>12}")
    for name, b in res["backends"].items():
        print(f"  {name}: accuracy {_pct(b['accuracy'])}, predictions = reference {_pct(b['prediction_agreement'])}, "
              f"{'EXACT' if b['bit_exact'] else 'NOT EXACT'}" + ("" if b["exact_required"] else " (not required)"))
        for lname, la in b["layers"].items():
            if la["first_mismatch"]:
                print(f"    first mismatch: {la['first_mismatch']}")


def print_train(res: dict[str, Any]) -> None:
    dev, ref = res["device"], res["reference_device"]
    print(f"\n(b) one deploy-faithful training step, {dev} vs {ref}: batch {res['batch']} (first training digits), "
          f"T={res['num_steps']}, Adam lr {res['lr']:g}, same seed")
    print(f"  same initial weights: {'yes' if res['same_initial_weights'] else 'NO'}; dropout masks shared "
          f"({', '.join(res['dropout_shared_mask']) or 'no dropout'})")
    for name, s in res["spikes"].items():
        print(f"  forward spikes {name:<6} {'identical' if s['equal'] else 'DIFFER'} "
              f"({s['mismatched_values']} mismatched values, {s['spikes']} spikes)")
    print(f"  loss {res['loss_reference']!r} ({ref}) vs {res['loss_device']!r} ({dev}); "
          f"grad norm {res['grad_norm_reference']!r} vs {res['grad_norm_device']!r}")
    print(f"  {'tensor after the step':<34} {'equal':<6} {'max |diff|':>11} {'max |update|':>13} {'max |grad diff|':>16}")
    for k, w in res["weights"].items():
        g = res["grads"].get(k)
        upd = "-" if w["max_abs_update"] is None else f"{w['max_abs_update']:.3e}"
        gd = "-" if g is None else f"{g['max_abs_diff']:.3e}"
        print(f"  {k:<34} {'yes' if w['equal'] else 'no':<6} {w['max_abs_diff']:>11.3e} {upd:>13} {gd:>16}")
    if res["weights_equal"]:
        print("  weights after the step: EQUAL")
    else:
        print("  weights after the step: not equal (reported, not required). Reason: " + res["weight_difference_reason"])
    if res["nondeterministic_ops"]:
        print("  ops without a deterministic implementation: " + "; ".join(res["nondeterministic_ops"]))
    print(f"  forward spikes of the step identical on both devices: {'yes' if res['forward_spikes_equal'] else 'NO'} (required)")


def print_throughput(res: dict[str, Any], verify_res: dict[str, Any] | None) -> None:
    print(f"\n(c) throughput, {res['n_samples']} digits x T={res['num_steps']}, batch {res['batch_size']}")
    for key, label in (("torch_model", "PyTorch model forward"), ("torch_backend", "torch integer backend"),
                       ("numpy_reference", "NumPy reference")):
        r = res[key]
        print(f"  {label:<24} ({r['device']:<6}) {r['samples_per_s']:10.1f} samples/s")
    if verify_res:
        parts = [f"numpy {verify_res['reference']['samples_per_s']:.1f}"]
        parts += [f"{k} {b['samples_per_s']:.1f}" for k, b in verify_res["backends"].items() if b["samples_per_s"]]
        print("  during (a), with every layer's spikes copied to the CPU: " + ", ".join(parts) + " samples/s")


# ------------------------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("DOCUMENTED REASON")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="device under test: cuda (default), cuda:N, or cpu")
    p.add_argument("--checkpoint", default=str(SHIPPED), help="qsnn checkpoint (default: the shipped int4 MNIST model)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="MNIST idx folder (default: ../shared/data/mnist from the repo root)")
    p.add_argument("--steps", type=int, help="time steps T (default: the model's own; 100 for the shipped MNIST model)")
    p.add_argument("--limit", type=int, help="only the first N test digits (default: all 10,000)")
    p.add_argument("--batch-size", type=int, default=500, help="inference batch (default 500)")
    p.add_argument("--chunk", type=int, default=1000, help="digits per verify call; memory is bounded by this (default 1000)")
    p.add_argument("--train-batch", type=int, default=128, help="training-step batch (default 128, the preset)")
    p.add_argument("--train-steps", type=int, help="T of the training step (default: --steps)")
    p.add_argument("--bench-samples", type=int, default=1000, help="digits for (c) (default 1000; 0 skips)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-train", action="store_true", help="skip (b)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", help="write the full report here")
    return p


def run(args: argparse.Namespace) -> int:
    dev = check_device(args.device)  # first: fail fast, before any loading
    for opt in ("batch_size", "chunk", "train_batch"):
        if getattr(args, opt) < 1:
            raise CheckError(f"--{opt.replace('_', '-')} must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise CheckError("--limit must be at least 1")
    if args.bench_samples < 0:
        raise CheckError("--bench-samples must be 0 or more")
    data = Path(args.data)
    if not data.is_dir():
        raise CheckError(f"{data}: MNIST folder not found (pass --data)")

    t_start = time.perf_counter()
    env = environment(dev)
    print(f"gpu_check: device {dev}" + (f" ({env['gpu']}, CUDA {env['cuda']}, cuDNN {env['cudnn']})" if "gpu" in env else "")
          + f"; torch {env['torch']}; CPU {env['processor']}, {env['cpu_threads']} threads")
    model, ckpt, net = load_shipped(args.checkpoint)
    steps = args.steps or model.num_steps
    x, y = load_test_set(data, args.limit)
    full = args.limit is None or args.limit >= 10000
    recorded = ckpt.get("metrics", {}).get("test_accuracy") if (full and steps == model.num_steps) else None
    print(f"model {args.checkpoint} (T={model.num_steps}), {len(x)} test digits from {data}")

    report: dict[str, Any] = {"schema": SCHEMA, "version": SCHEMA_VERSION, "environment": env,
                              "checkpoint": str(args.checkpoint), "data": str(data)}
    required: dict[str, bool] = {}

    ver = verify_streamed(model, net, x, y, steps, device=str(dev), batch_size=args.batch_size, chunk=args.chunk,
                          progress=not args.no_progress)
    print_verify(ver, recorded)
    report["inference"] = ver
    report["inference"]["checkpoint_test_accuracy"] = recorded
    for name, b in ver["backends"].items():
        if b["exact_required"]:
            required[f"inference: {name} == numpy"] = b["bit_exact"]

    if not args.skip_train:
        from qsnn_deploy.data import load_mnist

        xt, yt = load_mnist(data, split="train", limit=args.train_batch)
        tr = check_training_step(str(dev), xt, yt, args.train_steps or steps, args.seed)
        print_train(tr)
        report["training_step"] = tr
        required[f"training step: forward spikes {tr['device']} == cpu"] = tr["forward_spikes_equal"]

    if args.bench_samples:
        nb = min(args.bench_samples, len(x))
        th = throughput(model, net, x[:nb], steps, device=str(dev), batch_size=args.batch_size)
        print_throughput(th, ver)
        report["throughput"] = th

    ok = all(required.values())
    report["required"] = required
    report["all_required_exact"] = ok
    report["seconds"] = time.perf_counter() - t_start
    print("\nrequired comparisons:")
    for k, v in required.items():
        print(f"  {'EXACT    ' if v else 'NOT EXACT'}  {k}")
    print(f"gpu_check: {'PASS' if ok else 'FAIL'} ({report['seconds']:.0f} s)")
    if args.json:
        from qsnn_deploy.fileio import write_text_atomic

        write_text_atomic(args.json, json.dumps(report, indent=2, default=_json_default))
        print(f"wrote {args.json}")
    return 0 if ok else 1


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (torch.Tensor, np.ndarray)):
        return None  # tensors stay out of the report
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: run(args))  # bad input (CheckError, qsnn errors, OSError): one line, exit 2


if __name__ == "__main__":
    raise SystemExit(main())
