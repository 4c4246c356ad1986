"""The SynSense Xylo target, one spoke: everything that knows about Xylo lives here (docs/xylo.md).

* :mod:`.chips` — what each chip version holds (sizes, synapses, widths, caps) and where each number comes from.
* :mod:`.check` — the mapping of a frozen net onto input → hidden (recurrent) → readout, and the per-layer
  fit (``qsnn-export --target xylo --check``).
* :mod:`.export` — ``qsnn-export --target xylo``: the ``.npz`` of ``XyloSim.from_specification`` keyword
  arguments; reading it back.
* :mod:`.backend` — backend ``xylo``: that spec run in xylosim through Rockpool's ``XyloSim``.
* :mod:`.rockpool_compat` — the one module that imports Rockpool's ``XyloSim`` (xylosim): the samna
  import workaround and the synapse-lifetime rule.

The neuron kind itself (``"xylo"``: xylosim's integer neuron, bit for bit) is
:mod:`qsnn_deploy.neurons.xylo`; its NumPy and torch kernels are :mod:`qsnn_deploy.simulators.xylo_scan`
and :mod:`qsnn_deploy.simulators.xylo_torch`. Rockpool and xylosim are optional: importing this package
imports neither.
"""
