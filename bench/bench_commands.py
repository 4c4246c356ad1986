"""The ``qsnn-*`` commands with glibc's default malloc and with the settings they start with
(:mod:`qsnn_deploy.malloc_tuning`), measured in one run.

    python bench/bench_commands.py [--model examples/fmnist_int4_qsnn.pt] [--data ../shared/data/fashion-mnist]
                                   [-n 1000] [--steps 100] [--rounds 3] [--threads 2] [--markdown FILE]
                                   [--json FILE]   (the figures with the machine they ran on: bench/record.py)

Runs, as real commands (``python -m qsnn_deploy.cli.<command>``, so the restart with the tuned settings
happens as a user's would):

* ``qsnn-verify MODEL --data DATA -n N --steps T`` (NumPy reference, PyTorch model, torch backend),
* ``qsnn-report MODEL --data DATA -n N --steps T --json`` (NumPy reference with states, then verify),
* ``qsnn-export --help`` (no work: what the restart itself costs),

each with ``QSNN_MALLOC_TUNING=0`` (glibc's defaults) and without (tuned), alternating within every round;
the fastest round of each counts (machines here are noisy: compare the ratios of one run, never absolute
times across runs). Prints wall time, system (kernel) time and peak resident memory per command and mode,
the ratio default / tuned, and whether the two modes wrote the same JSON (timings aside).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qsnn_deploy.malloc_tuning import OPT_OUT, TUNED_MALLOC, tuned_environ  # noqa: E402

MODES = ("default", "tuned")


def environment(mode: str, threads: int) -> dict[str, str]:
    """This process's environment without any allocator setting, with ``QSNN_MALLOC_TUNING=0`` for ``default``."""
    env = {k: v for k, v in os.environ.items() if k not in (*TUNED_MALLOC, "GLIBC_TUNABLES", OPT_OUT)}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    if mode == "default":
        env[OPT_OUT] = "0"
    return env


def run(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall seconds, system seconds and peak RSS (GiB) of one command (its whole process, restart included)."""
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty command cannot block on a full pipe
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *argv], env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{err.read().decode(errors='replace')}")
    return {"wall": wall, "sys": usage.ru_stime, "rss_gib": usage.ru_maxrss / 2**20}


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not k.endswith("seconds") and k != "generated"}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "examples" / "fmnist_int4_qsnn.pt"))
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fashion-mnist"))
    p.add_argument("-n", "--num-samples", type=int, default=1000)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--markdown", help="also write the table to this file")
    p.add_argument("--json", help="also write the figures, with the machine they ran on, to this file (bench/record.py)")
    args = p.parse_args()
    if tuned_environ({}) is None:
        raise SystemExit("the malloc settings apply to Linux with glibc only: nothing to compare here")
    tmp = Path(tempfile.mkdtemp(prefix="bench_commands_"))
    work = ["--data", args.data, "-n", str(args.num_samples), "--steps", str(args.steps), "-q"]
    commands = {
        "qsnn-verify": lambda m: ["-m", "qsnn_deploy.cli.verify", args.model, *work, "--json", str(tmp / f"verify_{m}.json")],
        "qsnn-report": lambda m: ["-m", "qsnn_deploy.cli.report", args.model, *work, "--json", str(tmp / f"report_{m}.json")],
        "qsnn-export --help": lambda m: ["-m", "qsnn_deploy.cli.export", "--help"],
    }
    best: dict[tuple[str, str], dict[str, float]] = {}
    for r in range(args.rounds):
        for name, argv in commands.items():
            for mode in (MODES if r % 2 == 0 else MODES[::-1]):
                m = run(argv(mode), environment(mode, args.threads))
                key = (name, mode)
                if key not in best or m["wall"] < best[key]["wall"]:
                    best[key] = m
                print(f"round {r + 1}/{args.rounds} {name:20s} {mode:8s} {m['wall']:7.2f} s", file=sys.stderr)
    same = {}
    for stem in ("verify", "report"):
        a, b = (without_timings(json.loads((tmp / f"{stem}_{m}.json").read_text())) for m in MODES)
        same[f"qsnn-{stem}"] = a == b
    from record import cpu_model, write_results

    cpu = cpu_model()
    lines = [f"`python bench/bench_commands.py -n {args.num_samples} --steps {args.steps} --rounds {args.rounds} "
             f"--threads {args.threads}` on {cpu}, {Path(args.model).name}; fastest of {args.rounds} rounds",
             "", "| command | default malloc: wall s / sys s / peak RSS GiB | tuned: wall s / sys s / peak RSS GiB "
             "| default / tuned (wall) | same JSON |", "|---|---|---|---|---|"]
    for name in commands:
        d, t = best[(name, "default")], best[(name, "tuned")]
        lines.append(f"| {name} | {d['wall']:.2f} / {d['sys']:.2f} / {d['rss_gib']:.2f} | {t['wall']:.2f} / {t['sys']:.2f} / "
                     f"{t['rss_gib']:.2f} | {d['wall'] / t['wall']:.2f}× | {same.get(name, '–')} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    if args.json:
        rows = [{"command": name, "malloc": mode, **best[(name, mode)]} for name in commands for mode in MODES]
        figures = {"model": Path(args.model).name, "num_samples": args.num_samples, "steps": args.steps,
                   "rounds": args.rounds, "threads": args.threads, "rows": rows, "same_json": same}
        print(f"figures written to {write_results(args.json, 'bench_commands', figures)}")
    if not all(same.values()):
        raise SystemExit("the two modes wrote different results")


if __name__ == "__main__":
    main()
