"""The energy estimate of ``qsnn-report``: per-operation energies of a chip, the user's own costs, and
the estimate per inference (docs/report.md, "Energy per inference").

``E = SOPs × E_sop + neuron updates × E_neuron + spikes × E_spike`` (per sample; neuron updates =
neurons × T). The built-in figures (:data:`LOIHI_2018`) are those of the **first** Loihi chip
(Loihi 1, 2018), Davies et al., IEEE Micro 2018, Table 2, pre-silicon; no Loihi 2 table is used.
Users price another chip (or a measured Loihi 2) with their own costs:

* Python: ``compute_report(..., energy_model={"synaptic_op": 5.0, "spike": 1.0})`` or
  :func:`energy_model_from_costs` / :meth:`EnergyModel.with_costs`;
* CLI: ``qsnn-report --energy-costs FILE.json`` and/or ``--energy-pj-per-sop X``,
  ``--energy-pj-per-neuron-update Y``, ``--energy-pj-per-neuron-update-low Y0``,
  ``--energy-pj-per-spike Z`` (:func:`add_energy_arguments`, :func:`energy_model_from_args`).

Costs are validated (:class:`EnergyCostError`, naming the field): unknown keys, non-numbers,
NaN/inf and negative values are refused; costs not given keep the base model's figures, and every
figure's source is recorded (``per_op_source`` in the JSON).
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import QSNNError

if TYPE_CHECKING:
    import argparse

#: Per-operation cost keys (picojoules), as in the report JSON's ``energy.per_op_pj``.
COST_KEYS = ("synaptic_op", "neuron_update", "neuron_update_low", "spike")
#: Descriptive keys a costs file may hold besides the costs.
TEXT_KEYS = ("name", "chip", "citation", "note")
#: Limits for a costs file: its size and the length of a descriptive text.
MAX_COSTS_FILE_BYTES = 64 * 1024
MAX_TEXT_CHARS = 1000
_FIELD = {"synaptic_op": "sop_pj", "neuron_update": "neuron_update_pj", "neuron_update_low": "neuron_update_low_pj",
          "spike": "spike_pj"}
#: CLI option per cost key.
COST_OPTIONS = {"synaptic_op": "--energy-pj-per-sop", "neuron_update": "--energy-pj-per-neuron-update",
                "neuron_update_low": "--energy-pj-per-neuron-update-low", "spike": "--energy-pj-per-spike"}


class EnergyCostError(QSNNError, ValueError):
    """Per-operation energy costs that cannot be used (unknown key, not a number, NaN, negative...)."""


def _check_cost(key: str, value: Any, where: str = "") -> float:
    """A cost must be a finite number ≥ 0 (picojoules); bools and strings are refused."""
    at = f" in {where}" if where else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise EnergyCostError(f"energy cost {key!r}{at} must be a number of picojoules, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise EnergyCostError(f"energy cost {key!r}{at} must be a finite number of picojoules, got {value!r}")
    if v < 0:
        raise EnergyCostError(f"energy cost {key!r}{at} must be ≥ 0 pJ, got {v:g}")
    return v


@dataclass(frozen=True)
class EnergyModel:
    """Per-operation energies of one chip (picojoules) and where they come from.

    Attributes:
        name: short identifier, e.g. ``"loihi1-2018"``.
        sop_pj: one synaptic operation (one spike delivered over one synapse).
        neuron_update_pj: one neuron update (one neuron, one time step), the higher figure.
        neuron_update_low_pj: the lower neuron-update figure (the range's low end).
        spike_pj: sending one spike (within a tile; routing hops are placement-dependent, unpriced).
        citation: the source of the figures.
        note: what kind of figures they are and what the estimate leaves out.
        chip: the chip and its generation, e.g. ``"Intel Loihi 1 (first generation, 2018)"``.
        sources: per cost key, the source of that figure when it is not ``citation`` (user costs).
    """

    name: str
    sop_pj: float
    neuron_update_pj: float
    neuron_update_low_pj: float
    spike_pj: float
    citation: str
    note: str
    chip: str = ""
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self):
        for key, attr in _FIELD.items():
            _check_cost(key, getattr(self, attr))
        if self.neuron_update_low_pj > self.neuron_update_pj:
            raise EnergyCostError(f"energy cost 'neuron_update_low' ({self.neuron_update_low_pj:g} pJ) exceeds "
                                  f"'neuron_update' ({self.neuron_update_pj:g} pJ): the low end of the range must not "
                                  "be above its high end")
        unknown = sorted(set(self.sources) - set(COST_KEYS))
        if unknown:
            raise EnergyCostError(f"energy model sources: unknown cost key {unknown[0]!r} (known: {', '.join(COST_KEYS)})")

    @property
    def per_op_pj(self) -> dict[str, float]:
        """The costs by JSON key (``synaptic_op``, ``neuron_update``, ``neuron_update_low``, ``spike``)."""
        return {key: float(getattr(self, attr)) for key, attr in _FIELD.items()}

    @property
    def per_op_source(self) -> dict[str, str]:
        """Where each cost comes from: its entry in ``sources``, else ``citation``."""
        return {key: str(self.sources.get(key, self.citation)) for key in COST_KEYS}

    @property
    def user_costs(self) -> bool:
        """True when any cost was given by the user rather than taken from the built-in table."""
        return bool(self.sources)

    def with_costs(self, costs: Mapping[str, Any], source: str = "user-supplied") -> "EnergyModel":
        """A copy with some or all costs replaced (see :func:`energy_model_from_costs`)."""
        return energy_model_from_costs(costs, base=self, source=source)


#: Loihi 1 (the first generation, 2018): Davies et al. 2018, Table 2 (pre-silicon, SDF/SPICE
#: simulation at 0.75 V): synaptic spike op 23.6 pJ (minimum), neuron update 81 pJ active / 52 pJ
#: inactive, within-tile spike 1.7 pJ.
LOIHI_2018 = EnergyModel(
    name="loihi1-2018",
    sop_pj=23.6,
    neuron_update_pj=81.0,
    neuron_update_low_pj=52.0,
    spike_pj=1.7,
    citation=("M. Davies et al., \"Loihi: A Neuromorphic Manycore Processor with On-Chip Learning\", "
              "IEEE Micro 38(1):82-99, 2018, doi:10.1109/MM.2018.112130359, Table 2"),
    note=("estimate: Loihi 1 (first generation, 2018) pre-silicon per-operation energies (SDF and SPICE "
          "simulation, 0.75 V), not figures of Loihi 2 or any later chip; the synaptic op figure is the table's "
          "minimum"),
    chip="Intel Loihi 1 (first generation, 14 nm, 2018)",
)
#: The same model under the name of its chip generation.
LOIHI1_2018 = LOIHI_2018


def energy_model_from_costs(costs: Mapping[str, Any], base: EnergyModel = LOIHI_2018,
                            source: str = "user-supplied") -> EnergyModel:
    """An :class:`EnergyModel` from the user's per-operation costs.

    Args:
        costs: any of ``synaptic_op``, ``neuron_update``, ``neuron_update_low``, ``spike`` (pJ, finite,
            ≥ 0) and the texts ``name``, ``chip``, ``citation``, ``note``. Costs not given keep
            ``base``'s figures; ``neuron_update`` without ``neuron_update_low`` sets both (no range).
        base: the model whose figures fill the costs not given (default: Loihi 1, 2018).
        source: recorded as the source of every given cost (e.g. the costs file's path); ``citation``
            in ``costs`` replaces it.

    Raises:
        EnergyCostError: an unknown key, a cost that is not a finite number ≥ 0, a text that is not a
            string, ``neuron_update_low`` above ``neuron_update``, or no cost at all; the message
            names the field.
    """
    if not isinstance(costs, Mapping):
        raise EnergyCostError(f"energy costs must be a mapping of cost name to picojoules, got {type(costs).__name__}")
    where = source if source != "user-supplied" else ""
    for key in costs:
        if key not in COST_KEYS and key not in TEXT_KEYS:
            raise EnergyCostError(f"unknown energy cost key {key!r}{f' in {where}' if where else ''} (known: "
                                  f"{', '.join(COST_KEYS)} in pJ; {', '.join(TEXT_KEYS)} as text)")
    texts: dict[str, str] = {}
    for key in TEXT_KEYS:
        if key in costs:
            val = costs[key]
            if not isinstance(val, str) or not val.strip():
                raise EnergyCostError(f"energy model field {key!r}{f' in {where}' if where else ''} must be a "
                                      f"non-empty string, got {val!r}")
            if len(val) > MAX_TEXT_CHARS:
                raise EnergyCostError(f"energy model field {key!r}{f' in {where}' if where else ''} is "
                                      f"{len(val)} characters long (limit {MAX_TEXT_CHARS})")
            texts[key] = val.strip()
    given = {key: _check_cost(key, costs[key], where) for key in COST_KEYS if key in costs}
    if not given:
        raise EnergyCostError(f"energy costs{f' in {where}' if where else ''} give no cost: name at least one of "
                              f"{', '.join(COST_KEYS)} (picojoules)")
    if "neuron_update" in given and "neuron_update_low" not in given:
        # one neuron-update figure: no range, unless the base's low end is the user's too and still fits
        keep = "neuron_update_low" in base.sources and base.neuron_update_low_pj <= given["neuron_update"]
        given["neuron_update_low"] = base.neuron_update_low_pj if keep else given["neuron_update"]
    src = texts.get("citation", source)
    sources = {**dict(base.sources), **{key: src for key in given}}
    if set(sources) == set(COST_KEYS):  # nothing left from the base's table
        distinct = sorted(set(sources.values()))
        was_user = set(base.sources) == set(COST_KEYS)
        name = texts.get("name", base.name if was_user else "user")
        chip = texts.get("chip", base.chip if was_user else "user-supplied per-operation costs")
        citation = distinct[0] if len(distinct) == 1 else "user-supplied (per cost: see per_op_source)"
        note = texts.get("note", "estimate from user-supplied per-operation energies")
    else:
        kept = [key for key in COST_KEYS if key not in sources]
        name = texts.get("name", base.name if base.user_costs else f"{base.name}+user")
        chip = texts.get("chip", f"{base.chip or base.name}; user-supplied: {', '.join(k for k in COST_KEYS if k in given)}")
        citation = base.citation
        note = texts.get("note", f"{base.note}. User-supplied: {', '.join(k for k in COST_KEYS if k in sources)}; "
                                 f"from {base.name}: {', '.join(kept)}")
    fields = {_FIELD[key]: value for key, value in given.items()}
    try:
        return replace(base, name=name, chip=chip, citation=citation, note=note, sources=sources, **fields)
    except EnergyCostError as exc:
        raise EnergyCostError(f"{exc}{f' ({where})' if where else ''}") from None


def load_energy_costs(path: str | Path) -> dict[str, Any]:
    """Read a costs file: one JSON object (``{"synaptic_op": 5.0, "chip": "...", ...}``, pJ)."""
    path = Path(path)
    if path.is_dir():
        raise EnergyCostError(f"{path}: is a directory; expected a JSON file of per-operation energy costs")
    try:
        size = path.stat().st_size
        if size > MAX_COSTS_FILE_BYTES:
            raise EnergyCostError(f"{path}: {size} bytes; an energy-costs file holds at most {MAX_COSTS_FILE_BYTES} bytes")
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda c: float(c))
    except FileNotFoundError:
        raise EnergyCostError(f"{path}: no such file (--energy-costs)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnergyCostError(f"{path}: not a JSON file of energy costs: {exc}") from None
    if not isinstance(data, dict):
        raise EnergyCostError(f"{path}: holds a JSON {type(data).__name__}, expected an object such as "
                              '{"synaptic_op": 23.6, "neuron_update": 81, "spike": 1.7}')
    return data


def as_energy_model(model: EnergyModel | Mapping[str, Any] | None) -> EnergyModel:
    """``None`` → :data:`LOIHI_2018`; a mapping of costs → :func:`energy_model_from_costs`."""
    if model is None:
        return LOIHI_2018
    if isinstance(model, EnergyModel):
        return model
    return energy_model_from_costs(model)


# ------------------------------------------------------------------------------ CLI
def add_energy_arguments(parser: argparse.ArgumentParser) -> None:
    """The energy options of ``qsnn-report``."""
    g = parser.add_argument_group("energy estimate (default: Loihi 1, 2018, Davies et al. Table 2; docs/report.md)")
    g.add_argument("--energy-costs", metavar="FILE.json",
                   help="your own per-operation energies: a JSON object with any of synaptic_op, neuron_update, "
                        "neuron_update_low, spike (pJ) and optional name, chip, citation, note")
    for key, opt in COST_OPTIONS.items():
        g.add_argument(opt, type=float, metavar="PJ", dest=f"energy_{key}",
                       help=f"energy of one {key.replace('_', ' ')} in pJ (overrides --energy-costs)")


def energy_model_from_args(args: argparse.Namespace) -> EnergyModel:
    """The model the options ask for: the built-in one unless costs were given (validated here).
    ``--energy-costs FILE`` replaces the built-in figures it names; the ``--energy-pj-per-*`` options
    then replace the figures they name."""
    model = LOIHI_2018
    path = getattr(args, "energy_costs", None)
    if path:
        model = energy_model_from_costs(load_energy_costs(path), base=model, source=str(path))
    flags = {key: getattr(args, f"energy_{key}", None) for key in COST_KEYS}
    flags = {key: _check_cost(key, v, COST_OPTIONS[key]) for key, v in flags.items() if v is not None}
    if flags:
        model = energy_model_from_costs(flags, base=model,
                                        source=" ".join(f"{COST_OPTIONS[k]} {v:g}" for k, v in flags.items()))
    return model


__all__ = ["COST_KEYS", "TEXT_KEYS", "COST_OPTIONS", "EnergyCostError", "EnergyModel", "LOIHI_2018", "LOIHI1_2018",
           "energy_model_from_costs", "load_energy_costs", "as_energy_model", "add_energy_arguments",
           "energy_model_from_args"]
