"""Our exported .nir run by simulators we did not write (snnTorch, Norse, Sinabs, Rockpool).

For each shipped model: export the frozen net to NIR (the default file, and the file with the
options each peer reads as we mean them, ``qsnn_deploy.interop.nir_peers.EXPORT_OPTIONS``),
check that our own reader gets the identical frozen net back from every file, load each file with
the peer's own importer, run it on the same test images (MNIST unless ``--data`` says otherwise) and
compare every layer's spikes (every step, every neuron) and the predictions with our NumPy reference.
Prints the markdown table of docs/nir.md §3a.

    python bench/nir_peers.py --data ../shared/data/mnist -n 1000 --steps 100 [--models examples/x.pt,...]
                              [--json bench/results/nir_peers_<data>.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = ["examples/mnist_int4_qsnn.pt", "examples/mnist_int4_loihi.pt"]
#: Extra rows: a peer reading a file written WITHOUT one of the options it needs, to show what the option fixes.
VARIANTS = {"norse": [dict(pool="fold", threshold_layout="integer")]}   # r = τ/dt, which Norse ignores


def _opts(options: dict) -> str:
    if not options or options == {"pool": "avg", "threshold_layout": "auto"}:
        return "default"
    return ", ".join(f"{k}={v}" for k, v in options.items() if (k, v) not in (("pool", "avg"), ("threshold_layout", "auto")))


def run(models, data, n, steps, peers, variants=True):
    import numpy as np

    from qsnn_deploy import freeze
    from qsnn_deploy.checkpoint import model_from_checkpoint
    from qsnn_deploy.data import load_mnist
    from qsnn_deploy.exporters import nir_export
    from qsnn_deploy.interop import nir_peers
    from qsnn_deploy.simulators import create_backend

    x, y = load_mnist(data, limit=n)
    rows = []
    for model_path in models:
        net = freeze(model_from_checkpoint(REPO / model_path)[0])
        t0 = time.perf_counter()
        ref = create_backend("numpy", net).run(x, num_steps=steps)
        ref_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory(prefix="qsnn-peers-") as tmp:
            default = nir_export.export(net, Path(tmp) / "default.nir")[0]
            jobs = [(p, nir_peers.EXPORT_OPTIONS[p]) for p in peers]
            jobs += [(p, v) for p in peers for v in VARIANTS.get(p, []) if variants]
            for peer, options in jobs:
                row = {"model": Path(model_path).name, "peer": peer, "version": nir_peers.peer_versions().get(peer),
                       "n": n, "steps": steps, "reference_s": round(ref_s, 2)}
                try:  # the file as `qsnn-export --target nir` writes it
                    nir_peers.load_peer(peer, nir_export.read_graph(default), batch_size=1, num_steps=steps)
                    row["default_loads"] = "yes"
                except nir_peers.PeerLoadError as exc:
                    row["default_loads"] = str(exc)
                path = nir_export.export(net, Path(tmp) / f"{peer}-{len(rows)}.nir", **options)[0]
                back = nir_export.read_nir(path)
                row["options"] = _opts(options)
                row["roundtrip_differences"] = nir_export.frozen_differences(net, back)
                graph = nir_export.read_graph(path)
                try:  # the peer's own importer on exactly this file (Sinabs without the 1-D v_leak view)
                    nir_peers.load_peer(peer, nir_export.read_graph(path), batch_size=1, num_steps=steps, as_is=True)
                    row["options_load_as_is"] = "yes"
                except nir_peers.PeerLoadError as exc:
                    row["options_load_as_is"] = str(exc)
                t0 = time.perf_counter()
                try:
                    res = nir_peers.run_peer(peer, graph, x, num_steps=steps, net=net)
                except nir_peers.PeerLoadError as exc:
                    row["loads"] = str(exc)
                    rows.append(row)
                    print(f"{row['model']} {peer}: {exc}", file=sys.stderr)
                    continue
                row["loads"] = "yes"
                row["peer_s"] = round(time.perf_counter() - t0, 2)
                cmp = nir_peers.compare(peer, ref, res, y)
                row.update(layer_agreement=cmp.layer_agreement, identical_samples=cmp.identical_samples,
                           spikes_peer=cmp.spikes_peer, spikes_ref=cmp.spikes_ref,
                           prediction_agreement=cmp.prediction_agreement, accuracy_peer=cmp.accuracy_peer,
                           accuracy_ref=cmp.accuracy_ref, multi_spike_events=cmp.multi_spike_events, exact=cmp.exact)
                rows.append(row)
                print(f"{row['model']} {peer}: {row['peer_s']} s, agreement {cmp.layer_agreement}, "
                      f"predictions {cmp.prediction_agreement:.4f}", file=sys.stderr)
    return rows


def _pct(v: float) -> str:
    return "100%" if v == 1.0 else (f"{100 * v:.4f}%" if v > 0.9999 else f"{100 * v:.2f}%")


def table(rows) -> str:
    head = ("| model | peer | file options | loads | spikes equal per layer | samples with identical trains | "
            "spikes peer / ours | prediction agreement | accuracy peer / ours |")
    out = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["loads"] != "yes":
            loads = "**no**: " + r["loads"].split(": ", 1)[-1]
        elif r.get("options_load_as_is", "yes") != "yes":   # Sinabs: only with the 1-D v_leak view
            loads = "with the 1-D `v_leak` view (as is: " + r["options_load_as_is"].split(": ", 1)[-1].split(":", 1)[0] + ")"
        else:
            loads = "yes"
        if "r_rule" not in r["options"] and r["peer"] == "norse":
            r = dict(r, options=r["options"] + " (r = τ/dt)")
        if "layer_agreement" not in r:
            out.append(f"| {r['model']} | {r['peer']} {r['version']} | {r['options']} | {loads} | – | – | – | – | – |")
            continue
        la = " / ".join(f"{k} {_pct(v)}" for k, v in r["layer_agreement"].items())
        ids = " / ".join(_pct(v) for v in r["identical_samples"].values())
        sp = " / ".join(f"{r['spikes_peer'][k] / max(r['spikes_ref'][k], 1):.3f}" for k in r["spikes_ref"])
        out.append(f"| {r['model']} | {r['peer']} {r['version']} | {r['options']} | {loads} | {la} | {ids} | {sp} | "
                   f"{_pct(r['prediction_agreement'])} | {100 * r['accuracy_peer']:.1f}% / {100 * r['accuracy_ref']:.1f}% |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "mnist"))
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--peers", default="snntorch,norse,sinabs,rockpool")
    ap.add_argument("--json", default=None, help="also write the rows, with the machine they ran on, as JSON (bench/record.py)")
    ap.add_argument("--from-json", default=None, help="print the table of rows written by --json (no run)")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.from_json:
        stored = json.loads(Path(args.from_json).read_text(encoding="utf-8"))["results"]  # bench/record.py's file
        rows, args.data = stored["rows"], stored["data"]
        args.n, args.steps = rows[0]["n"], rows[0]["steps"]
    else:
        rows = run(args.models.split(","), args.data, args.n, args.steps, args.peers.split(","))
    print(f"{args.n} {Path(args.data).name} test images, T = {args.steps}; spikes compared every layer, step and neuron "
          "with the NumPy reference.\n")
    print(table(rows))
    print("\nDefault file (`qsnn-export --target nir`) in each peer:")
    seen = set()
    for r in rows:
        if (r["peer"], r["default_loads"]) not in seen:
            seen.add((r["peer"], r["default_loads"]))
            print(f"* {r['model']}, {r['peer']}: {r['default_loads']}")
    print("\nThe file with the peer's options, as is:")
    seen = set()
    for r in rows:
        if (r["peer"], r["options_load_as_is"]) not in seen:
            seen.add((r["peer"], r["options_load_as_is"]))
            print(f"* {r['model']}, {r['peer']} ({r['options']}): {r['options_load_as_is']}")
    bad = [f"{r['model']} {r['peer']}: {r['roundtrip_differences']}" for r in rows if r["roundtrip_differences"]]
    print("\nour own reader, every file above: " + ("identical frozen net" if not bad else "DIFFERS: " + "; ".join(bad)))
    if args.json and not args.from_json:
        from record import write_results
        write_results(args.json, "nir_peers", {"data": Path(args.data).name, "rows": rows})
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
