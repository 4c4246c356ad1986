"""Per-layer memory, spike and synaptic-operation reports (docs/design.md §5; docs/report.md).

* :mod:`.metrics` — the figures, as a pure-data :class:`Report` (from a FrozenNet, simulated
  activity and optionally a :class:`~qsnn_deploy.verify.VerifyReport`).
* :mod:`.energy` — the energy model: Loihi 1 (2018) per-operation energies by default
  (:data:`LOIHI_2018`), or the user's own costs, validated (:func:`energy_model_from_costs`).
* :mod:`.agreement` — which backends the agreement check runs (:func:`resolve_backends`).
* :mod:`.render_table` — rich terminal tables; :func:`report_short` is the one-table static form
  that ``qsnn-export`` prints.
* :mod:`.verdicts` — the first screen: bit-exact, fits the target, latency, accuracy with its 95 % interval.
* :mod:`.resources` — the target chip's resources per layer and core, and the headroom of every fitted field.
* :mod:`.workload` — NeuroBench-named figures (sparsities, effective ACs / MACs, membrane updates) from our spikes.
* :mod:`.render_json` — JSON, schema ``qsnn-report`` v4 (``schema.json``).
* :mod:`.render_html` — one self-contained HTML page (verdicts first; :mod:`.render_sections`,
  :mod:`.render_util`, :mod:`.figures` with inline SVG plots, :mod:`.glossary`).

Typical use::

    from qsnn_deploy.report import collect_activity, compute_report, write_html
    act = collect_activity(net, x_test, y_test)
    rep = compute_report(net, act, model_name="mnist")
    write_html(rep, "report.html")
"""
from .agreement import resolve_backends
from .energy import (LOIHI1_2018, EnergyCostError, add_energy_arguments, energy_model_from_args, energy_model_from_costs,
                     load_energy_costs)
from .metrics import (FIT_CHECKS, LOIHI_2018, SCHEMA, SCHEMA_VERSION, Activity, ActivityAccumulator, EnergyModel,
                      LayerReport, Report, activity_from_result, collect_activity, compute_report, register_fit_check,
                      static_figures, synapse_geometry)
from .render_html import render_html, write_html
from .resources import chip_resources
from .verdicts import verdicts, wilson_interval
from .workload import workload
from .render_json import load_schema, to_dict, to_json, validate, write_json
from .render_table import activity_table, memory_table, print_report, report_short

__all__ = ["SCHEMA", "SCHEMA_VERSION", "LOIHI_2018", "LOIHI1_2018", "EnergyModel", "EnergyCostError",
           "energy_model_from_costs", "load_energy_costs", "add_energy_arguments", "energy_model_from_args",
           "resolve_backends", "Activity", "ActivityAccumulator", "LayerReport",
           "Report", "activity_from_result", "collect_activity", "compute_report", "static_figures", "synapse_geometry",
           "FIT_CHECKS", "register_fit_check", "render_html", "write_html", "to_dict", "to_json", "write_json",
           "load_schema", "validate", "verdicts", "wilson_interval", "chip_resources", "workload", "memory_table", "activity_table", "print_report", "report_short"]
