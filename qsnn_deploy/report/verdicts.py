"""The report's first screen: four verdicts a hardware engineer reads before anything else.

* **bit-exact**: did every backend that must agree (the trained deploy-faithful model, the
  integer backends, the target's simulators) produce the reference's spike trains, every layer,
  step and sample — which backends, on how many samples × steps; on a mismatch, the first one
  (layer, sample, step, neuron);
* **fits the target**: does the net run exactly on the target's stock neurons (Loihi 2: Lava's
  LIF), or only through a custom route, and why;
* **latency**: T input steps plus the target's pipeline delay, in time steps;
* **accuracy**: of the deployed integer net, with a 95% Wilson score interval and the sample count.

Each verdict has a ``status``: ``"pass"``, ``"fail"`` or ``"unknown"`` (not checked, with the
reason); the page colours it and says it in words.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..frozen import FrozenNet
from .glossary import backend_label

if TYPE_CHECKING:
    from .metrics import Report

#: Per target: the chip whose stock neurons "fits" refers to.
TARGET_CHIPS = {"lava": "stock Loihi 2"}


def _pipeline_delay(net: FrozenNet, target: str | None) -> tuple[int, str]:
    """(steps, why) the target adds between a sample's input and its output."""
    layers = len(net.layers)
    if target == "lava":
        return layers, f"{layers} pipeline steps (each of the {layers} synapses adds one step in Lava / on Loihi)"
    return 0, "no pipeline delay (the reference simulator; --target gives a chip's)"


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (fractions; (0, 1) for n = 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def _bit_exact(report) -> dict[str, Any]:
    v = report.verify
    if v is None:
        why = ("no data: nothing was simulated" if report.data is None else
               "not checked: no trained model was given (a .qsnn file) or --no-verify")
        return {"status": "unknown", "headline": "bit-exact: not checked", "text": why, "backends": [],
                "n_samples": None, "num_steps": None, "first_mismatch": None}
    required = [b for b in v["backends"] if b["exact_required"]]
    measured = [b for b in v["backends"] if not b["exact_required"]]
    bad = [b for b in required if not b["bit_exact"]]
    first = None
    for b in bad:
        for layer in b["layers"]:
            if layer.get("first_mismatch"):
                first = {"backend": b["name"], **layer["first_mismatch"]}
                break
        if first:
            break
    n, steps = v["n_samples"], v["num_steps"]
    names = [backend_label(b["name"]) for b in required]
    if not required:
        status, head = "unknown", "bit-exact: nothing to compare"
        text = "no backend that must be bit-exact ran"
    elif not bad:
        status, head = "pass", "bit-exact"
        text = (f"all {len(required)} backends bit-exact with the {v['reference']} reference on {n:,} samples × "
                f"{steps:,} steps, every layer: {', '.join(names)}")
    else:
        status, head = "fail", "NOT bit-exact"
        text = (f"{len(bad)} of {len(required)} backends differ from the {v['reference']} reference on {n:,} samples × "
                f"{steps:,} steps: {', '.join(backend_label(b['name']) for b in bad)}")
        if first:
            text += (f"; first mismatch: {backend_label(first['backend'])}, layer {first['layer']}, sample {first['sample']}, "
                     f"step {first['step']}, neuron {tuple(first['neuron'])}")
    if measured:
        text += "; measured only (float model): " + ", ".join(
            f"{backend_label(b['name'])} {100 * b['prediction_agreement']:.1f} % predictions equal" for b in measured)
    if v.get("skipped"):
        text += "; not run here: " + ", ".join(f"{backend_label(s['name'])} ({s['reason']})" for s in v["skipped"])
    return {"status": status, "headline": head, "text": text, "backends": [b["name"] for b in required],
            "n_samples": int(n), "num_steps": int(steps), "first_mismatch": first}


def _fits(report) -> dict[str, Any]:
    tg = report.target
    if tg is None:
        return {"status": "unknown", "target": None, "route": None, "headline": "fit to a chip: not checked",
                "text": "no --target given (e.g. --target lava for Loihi 2)"}
    chip = TARGET_CHIPS.get(tg["name"], tg["name"])
    if not tg.get("available"):
        return {"status": "unknown", "target": tg["name"], "route": None, "headline": f"fit to {chip}: not checked",
                "text": tg["note"]}
    if tg.get("fits"):
        return {"status": "pass", "target": tg["name"], "route": "stock", "headline": f"fits {chip}",
                "text": tg["summary"]}
    r = report.resources
    route, text = None, tg["summary"]
    if r and r.get("target") == tg["name"]:
        blocked = [h for h in r["headroom"] if h["blocking"] and h["status"] == "over"]
        if not blocked and any(layer["route"] == "custom" for layer in r["layers"]):
            route = "custom"
            text = ("custom route: runs bit-exactly in Lava's CPU simulator with qsnn-deploy's QLIF process, not on "
                    f"stock Loihi 2 neurons. Why: {text}")
    return {"status": "fail", "target": tg["name"], "route": route, "headline": f"does NOT fit {chip}", "text": text}


def verdicts(net: FrozenNet, report: Report) -> dict[str, Any]:
    """The four verdicts of ``report`` (a :class:`~qsnn_deploy.report.metrics.Report`), as plain data
    (the JSON's ``verdicts`` object; the HTML's first screen)."""
    steps = int(report.num_steps)
    target = report.target["name"] if report.target else None
    delay, why = _pipeline_delay(net, target)
    latency = {"steps": steps + delay, "num_steps": steps, "pipeline_delay_steps": delay,
               "text": f"T = {steps:,} input steps + {why}"}
    acc = None
    d = report.data
    if d and d.get("accuracy") is not None:
        n = int(d["n_samples"])
        k = int(round(d["accuracy"] * n))
        lo, hi = wilson_interval(k, n)
        acc = {"value": float(d["accuracy"]), "low": lo, "high": hi, "n_samples": n, "correct": k,
               "text": f"{k:,} of {n:,} samples right; 95 % interval {100 * lo:.1f}–{100 * hi:.1f} % (Wilson score)"}
    return {"bit_exact": _bit_exact(report), "fits": _fits(report), "latency": latency, "accuracy": acc}


__all__ = ["verdicts", "wilson_interval", "TARGET_CHIPS"]
