"""The SynSense Xylo target, one spoke: everything that knows about Xylo lives here.

* :mod:`.rockpool_compat` — the one module that imports Rockpool's ``XyloSim`` (xylosim): the samna
  import workaround and the synapse-lifetime rule.

The neuron kind itself (``"xylo"``: xylosim's integer neuron, bit for bit) is
:mod:`qsnn_deploy.neurons.xylo`. Rockpool and xylosim are optional: importing this package imports
neither.
"""
