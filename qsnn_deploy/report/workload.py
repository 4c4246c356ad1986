"""Workload figures under NeuroBench's names, computed by our code from the integer spikes.

NeuroBench (Yik et al., "The neurobench framework for benchmarking neuromorphic computing
algorithms and systems", Nature Communications 16, 2025; ``neurobench`` 2.3) names the figures a
neuromorphic paper reports. The report shows them by default, counted from the NumPy reference's
spikes and the deployed (pool-folded) integer kernels; ``qsnn-report --neurobench`` runs
NeuroBench's own code on the same net and inputs and shows both side by side
(:mod:`qsnn_deploy.report.neurobench`). Definitions (per sample = mean over the samples, over T):

* **connection sparsity**: zero weights / all weights of the deployed kernels (NeuroBench's
  ``ConnectionSparsity`` on the deployed net);
* **activation sparsity**: 1 − spikes / (neurons × T), all layers (``ActivationSparsity``);
* **effective ACs** (accumulates): per sample, Σ over the spikes of every layer (and the input,
  when it is spikes) of the synapses with a *nonzero* weight they reach (``SynapticOperations``
  ``Effective_ACs``);
* **effective MACs** (multiply-accumulates): the same for a graded (non-spike) input, e.g. the
  8-bit pixels into the first layer (``Effective_MACs``);
* **dense synaptic ops**: every synapse once per step, synapses × T (``Dense``);
* **membrane updates**: neurons × T: every neuron's state is updated every step on a
  time-stepped chip such as Loihi. (NeuroBench's ``MembraneUpdates`` instead counts the steps at
  which an snnTorch neuron's membrane changed; it is not cross-checked.)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..frozen import FrozenNet

if TYPE_CHECKING:
    from .activity import Activity
    from .metrics import Report


def workload(net: FrozenNet, report: Report, activity: Activity) -> dict[str, Any]:
    """NeuroBench-named figures of ``report`` (a :class:`~qsnn_deploy.report.metrics.Report` with data),
    from ``activity`` (its :class:`~qsnn_deploy.report.metrics.Activity`). Counts are per sample (means)."""
    from .metrics import input_is_spikes
    from .neurobench import connection_sparsity, nonzero_fan_out

    n = int(activity.n_samples)
    shapes = net.layer_shapes()
    names = [layer.name for layer in net.layers]
    eff_acs = eff_macs = 0.0
    pos = activity.input_nonzero_per_position
    if pos is not None:
        first = float(np.dot(pos.astype(np.float64), nonzero_fan_out(net.layers[0], shapes[0][0]).astype(np.float64)))
        if input_is_spikes(net):
            eff_acs += first
        else:
            eff_macs += first
    for li in range(len(names) - 1):
        spikes = activity.layers[names[li]].neuron_spikes.astype(np.float64)
        eff_acs += float(np.dot(spikes, nonzero_fan_out(net.layers[li + 1], shapes[li + 1][0]).astype(np.float64)))
    t = report.totals
    steps = int(report.num_steps)
    return {
        "definition": "NeuroBench 2.3 names, counted by qsnn-deploy from the reference's integer spikes",
        "connection_sparsity": float(connection_sparsity(net, deployed=True)),
        "activation_sparsity": float(1.0 - t["firing_rate"]),
        "effective_acs": eff_acs / n,
        "effective_macs": eff_macs / n,
        "dense_ops": float(t["dense_macs"]),
        "membrane_updates": float(t["neurons"] * steps),
    }


__all__ = ["workload"]
