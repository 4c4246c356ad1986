"""The report as JSON: schema ``qsnn-report`` version 4 (``schema.json`` beside this module,
JSON Schema draft 2020-12; documented in docs/report.md).

The per-sample raster and per-neuron rates (plot data) are not part of the JSON; the
membrane-state histograms are.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..fileio import write_text_atomic
from .metrics import SCHEMA, SCHEMA_VERSION, Report


def to_dict(report: Report) -> dict[str, Any]:
    """Plain, JSON-serialisable dict of the report (schema ``qsnn-report`` v4)."""
    layers = []
    for lr in report.layers:
        entry = asdict(lr.static)
        entry["dense_macs"] = int(lr.dense_macs)
        entry["loihi"] = {"weight_shape": entry.pop("loihi_weight_shape"), "weights": entry.pop("loihi_weights"),
                          "weight_bits": entry.pop("loihi_weight_bits"), "weight_bytes": entry.pop("loihi_weight_bytes"),
                          "weight_max_abs": entry.pop("loihi_weight_max_abs")}
        entry["activity"] = asdict(lr.activity) if lr.activity is not None else None
        entry["fit"] = lr.fit
        layers.append(entry)
    e = report.energy
    energy = None
    if e is not None:
        energy = {"estimate": True, **asdict(e)}
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "generator": report.generator,
        "model": report.model,
        "num_steps": int(report.num_steps),
        "input": {**asdict(report.input), "activity": report.input_activity},
        "data": report.data,
        "layers": layers,
        "totals": report.totals,
        "energy": energy,
        "verify": report.verify,
        "target": report.target,
        "neurobench": report.neurobench,
        "verdicts": report.verdicts,
        "resources": report.resources,
        "workload": report.workload,
    }


def to_json(report: Report, indent: int | None = 2) -> str:
    """The report as a JSON string (schema ``qsnn-report``; NaN and infinity are refused, not written)."""
    return json.dumps(to_dict(report), indent=indent, allow_nan=False)


def write_json(report: Report, path: str | Path) -> Path:
    """Write the JSON report atomically."""
    write_text_atomic(path, to_json(report) + "\n")
    return Path(path)


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the report."""
    return json.loads(resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8"))


def validate(data: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``data`` follows the schema (needs ``jsonschema``)."""
    import jsonschema

    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(data)
