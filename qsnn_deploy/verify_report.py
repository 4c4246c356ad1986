"""What ``qsnn-verify`` reports (schema ``qsnn-verify`` v1): the first mismatch of a layer, each layer's
comparison with the reference, each backend's, and the whole :class:`VerifyReport` with its JSON form.

A comparison counts spikes (0/1 per neuron per time step) of every LIF layer's spike tensor [T, N, ...];
membrane states in a :class:`Mismatch` are in state units (the layer's B_v-bit integers).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "qsnn-verify"
SCHEMA_VERSION = 1
REFERENCE = "numpy"


@dataclass
class Mismatch:
    """The earliest disagreement of one layer: smallest step, then sample, then neuron."""

    layer: str
    sample: int
    step: int
    neuron: list[int]
    reference_spike: int
    other_spike: int
    reference_state: float | None = None
    other_state: float | None = None
    threshold: int | None = None

    def describe(self) -> str:
        """One sentence: where (layer, sample, step, neuron), both spikes, and both membrane states when known."""
        s = (f"layer {self.layer}, sample {self.sample}, step {self.step}, neuron {tuple(self.neuron)}: "
             f"reference spike {self.reference_spike}, other {self.other_spike}")
        if self.reference_state is not None:
            other = "n/a" if self.other_state is None else f"{self.other_state:.12g}"
            s += f"; states v = {self.reference_state:.12g} (reference) vs {other}"
        if self.threshold is not None:
            s += f", threshold {self.threshold}"
        return s


@dataclass
class LayerComparison:
    """One layer of one backend, compared with the reference over every sample.

    Attributes:
        name: the layer.
        bit_exact: every spike of every neuron at every step equals the reference's.
        mismatched_values: (step, sample, neuron) entries whose spike differs.
        reference_spikes, spikes: total spikes of the reference and of this backend.
        spike_count_agreement: fraction of (sample, neuron) pairs whose spike count over T is equal.
        saturations: (neuron, step) events where this backend clipped the state to B_v bits.
        first_mismatch: the earliest difference (smallest step, then sample, then neuron), or None.
    """
    name: str
    bit_exact: bool
    mismatched_values: int
    reference_spikes: int
    spikes: int
    spike_count_agreement: float
    saturations: int = 0
    first_mismatch: Mismatch | None = None


@dataclass
class BackendComparison:
    """One backend (or the PyTorch model) compared with the reference.

    Attributes:
        name: the backend, e.g. ``"torch-cpu"``, ``"onnx"``, ``"torch-model (cpu)"``, ``"lava vs loihi"``.
        exact_required: it must be bit-exact (integer backends, a deploy-faithful model); False for a
            float model, whose agreement is only measured.
        layers: one :class:`LayerComparison` per LIF layer.
        seconds: its run time (wall clock).
        prediction_agreement: fraction of samples whose predicted class equals the reference's.
        accuracy: fraction of samples predicted right (None without labels).
        note: what is required of it, or how it was aligned (e.g. Lava's documented pipeline shift).
    """
    name: str
    exact_required: bool
    layers: list[LayerComparison]
    seconds: float
    prediction_agreement: float
    accuracy: float | None = None
    note: str = ""

    @property
    def bit_exact(self) -> bool:
        """True when every layer is bit-exact."""
        return all(layer.bit_exact for layer in self.layers)


@dataclass
class VerifyReport:
    """The result of :func:`verify`: every backend's comparison with the NumPy reference.

    Attributes:
        model: name of the model that was verified.
        n_samples, num_steps: the inputs compared (samples × T steps).
        reference: the reference backend (``"numpy"``); reference_seconds its run time; reference_accuracy
            its accuracy (fraction; None without labels).
        backends: one :class:`BackendComparison` per backend (and the PyTorch model when given).
        reference_saturations: per layer, (neuron, step) events clipped to B_v bits in the reference run.
        warnings: why equal spike trains may prove little on these inputs (a layer that never spiked, an
            output that does not depend on the input, accuracy at chance), shown beside the verdict.
        saturation_warnings: one sentence per layer whose state clipped.

    :attr:`all_exact` is the verdict; :meth:`to_dict` / :meth:`to_json` follow docs/verify-json.md.
    """
    model: str
    n_samples: int
    num_steps: int
    reference: str
    reference_seconds: float
    reference_accuracy: float | None
    backends: list[BackendComparison] = field(default_factory=list)
    reference_saturations: dict[str, int] = field(default_factory=dict)
    #: what makes the equality verdict weak on these inputs (:func:`evidence_warnings`); shown beside it
    warnings: list[str] = field(default_factory=list)
    #: one sentence per layer whose state clipped in the reference run (:func:`saturation_warnings`)
    saturation_warnings: list[str] = field(default_factory=list)

    @property
    def all_exact(self) -> bool:
        """True when every backend that must be bit-exact is."""
        return all(b.bit_exact for b in self.backends if b.exact_required)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict, schema ``qsnn-verify`` (docs/verify-json.md), ``bit_exact`` per backend."""
        d = {
            "schema": SCHEMA, "version": SCHEMA_VERSION, "model": self.model, "n_samples": self.n_samples,
            "num_steps": self.num_steps, "reference": self.reference, "reference_seconds": self.reference_seconds,
            "reference_accuracy": self.reference_accuracy, "reference_saturations": self.reference_saturations,
            "all_exact": self.all_exact, "warnings": list(self.warnings),
            "saturation_warnings": list(self.saturation_warnings), "backends": [],
        }
        for b in self.backends:
            entry = asdict(b)
            entry["bit_exact"] = b.bit_exact
            d["backends"].append(entry)
        return d

    def to_json(self) -> str:
        """The report as indented JSON (:meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=2)
