"""Backend ``xylo``: the exported spec run in xylosim through Rockpool's ``XyloSim`` (vendor code, not ours).

Built once per net: :func:`~.export.build_spec` (the same arguments ``qsnn-export --target xylo`` writes),
then ``XyloSim.from_specification(**spec)`` (:mod:`.rockpool_compat`). Each sample runs on its own:
``reset_state()``, then ``evolve`` on its counts ``[T + L, N_in]`` (``L`` zero steps appended, ``L`` = the
number of hidden layers) with recording on. The recorded spikes are realigned to the reference's time
(:mod:`.check`: hidden layer ``l`` is ``l`` steps behind, the readout ``L``), so the result compares with
the NumPy reference in every neuron and step, every layer.

Saturation events are not reported by xylosim (0 per layer here); the reference counts them.
"""
from __future__ import annotations

import numpy as np

from ..frozen import FrozenNet
from ..simulators.base import NeuronKernels, SimResult, prepare_input
from .check import check_net, plan_layers
from .chips import CHIPS, DEFAULT_VERSION
from .export import build_spec
from .rockpool_compat import build_xylosim, check_version

_NOT_XYLO = ("{} is not Xylo's neuron (int16 saturating state, decay x − max(x >> dash, sign x), spikes while "
             "v ≥ θ): xylosim cannot run it; train with qsnn-train --profile xylo, or use backends numpy, torch")
#: Neuron kinds xylosim runs: only the Xylo neuron (:mod:`qsnn_deploy.neurons.xylo`), recurrent synapses included.
XYLO_KERNELS = NeuronKernels("xylo", {"xylo": "XyloSim (xylosim)"}, recurrent=True,
                             reasons={"lif": _NOT_XYLO.format("a LIF neuron (multiplicative decay)"),
                                      "cuba": _NOT_XYLO.format("a CUBA neuron (multiplicative decays)")})


class XyloSimBackend:
    """Rockpool's XyloSim (xylosim 0.1.3) running the net's Xylo spec.

    Args:
        net: a frozen net of xylo layers that fits the chip (:func:`~.check.check_net`).
        version: chip version (``"syns63300"`` Xylo IMU, ``"syns61201"`` Xylo Audio 2); default: the net's
            ``metadata["xylo_version"]``, else the first chip the net fits, else syns63300 (refused, naming
            the layer, field and limit).
        batch_size: accepted for the backend contract; xylosim runs one sample at a time.
    """

    name = "xylo"
    preferred_batch_size = 256

    def __init__(self, net: FrozenNet, version: str | None = None, batch_size: int | None = None, **_ignored):
        self.net = net.validate()
        XYLO_KERNELS.check(self.net)  # a net of other kinds is refused by name before anything is built
        if version is None:
            version = net.metadata.get("xylo_version")
        if version is None:
            version = next((v for v in CHIPS if check_net(net, v).fits), DEFAULT_VERSION)
        self.version = check_version(version)
        self.spec = build_spec(net, self.version)
        self.hidden, self.readout, self.offsets = plan_layers(net)
        self.latency = len(self.hidden)
        self.module = build_xylosim(self.version, self.spec)  # holds xylosim's synapses: keep it alive

    def run(self, x: np.ndarray, num_steps: int | None = None, record_states: bool = False) -> SimResult:
        """Every sample through xylosim; spikes [T, N, C] per layer in the reference's time (module docstring)."""
        arr, static, steps = prepare_input(self.net, x, num_steps)
        n = arr.shape[0] if static else arr.shape[1]
        lat = self.latency
        names = [l.name for l in self.net.layers]
        sizes = [l.out_channels for l in self.net.layers]
        spikes = {nm: np.zeros((steps, n, c), np.uint8) for nm, c in zip(names, sizes)}
        states = {nm: np.zeros((steps, n, c), np.int64) for nm, c in zip(names, sizes)} if record_states else None
        n_in = self.spec["weights_in"].shape[0]
        for i in range(n):
            counts = np.zeros((steps + lat, n_in), np.int64)
            counts[:steps] = np.broadcast_to(arr[i], (steps, n_in)) if static else arr[:, i]
            self.module.reset_state()
            out, _, rec = self.module.evolve(counts, record=True)
            hid = np.asarray(rec["Spikes"])
            for l, (layer, off) in enumerate(zip(self.hidden, self.offsets)):
                sl = slice(off, off + layer.out_channels)
                spikes[layer.name][:, i] = hid[l:l + steps, sl]
                if record_states:
                    states[layer.name][:, i] = np.asarray(rec["Vmem"])[l:l + steps, sl]
            spikes[self.readout.name][:, i] = np.asarray(out)[lat:lat + steps]
            if record_states:
                states[self.readout.name][:, i] = np.asarray(rec["Vmem_out"])[lat:lat + steps]
        return SimResult(spikes, {nm: 0 for nm in names}, states, backend=f"xylo ({self.version})",
                         info={"timing": "xylo-latency", "latency": {nm: (k if k < lat else lat) for k, nm in enumerate(names)},
                               "version": self.version})
