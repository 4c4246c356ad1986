"""What each Xylo chip version holds: sizes, synapses, bit widths, caps (read in rockpool 3.1.0 and xylosim 0.1.3).

Where each number comes from (``tests/test_xylo.py`` re-reads the installed rockpool and checks them):

* hidden and readout neurons: the defaults ``max_hidden_neurons`` / ``max_output_neurons`` of
  ``rockpool.devices.xylo.<version>.xylo_mapper.mapper`` (syns63300: 496 / 16; syns61201: 1000 / 8);
* 16 input channels: ``le_16_input_channels`` in ``syns61201/xylo_mapper.py`` (both chips' rule lists);
* synapses per hidden neuron: ``max_synapses_per_neuron(max_syns=1)`` in ``syns63300/xylo_mapper.py``;
  two on syns61201 (``weights_in`` ``(Nin, Nhidden, 2)``, ``dash_syn_2``);
* Xylo IMU's input and output expansion neurons: ``syns63300/xylo_samna.py`` keeps only the FIRST 128
  hidden neurons' input weights and the LAST 128 hidden neurons' readout weights ("Only the first 128
  will be used"); the mapper's ``le_128_input_expansion_neurons`` rules are empty in 3.1.0, and XyloSim
  simulates all of them, so a spec past 128 runs in xylosim and differs on the chip: we refuse it;
* int8 weights, int16 thresholds: the mapper's documented ``weight_dtype`` / ``threshold_dtype`` (its
  defaults are "float" for training), and xylosim's ``XyloSynapse::weight`` (int8_t), ``v_th`` (int16_t);
* caps 15 / 31 / 1 and the int16 states: xylosim's ``XyloIAFNeuron.h`` (``MAX_NUM_INP_SPIKES``,
  ``MAX_NUM_SPIKES``, ``MAX_NUM_OUT_SPIKES``, ``BITS_STATE``);
* dash 0..15: 4-bit registers (xylosim: "should be 4 bits"; rockpool's own checks live in samna);
* weight shift 0..8: xylosim adds ``(int16)(w << shift)``: any int8 ``w`` shifted by ≤ 8 fits int16
  exactly. The chip's register width is checked by samna, which is out of reach here (docs/xylo.md).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..neurons.xylo import DASH_MAX, MAX_HIDDEN_SPIKES, MAX_INPUT_SPIKES, MAX_READOUT_SPIKES

#: the weight shift range whose ``int8 << shift`` always fits xylosim's int16 cast
MAX_WEIGHT_SHIFT = 8
WEIGHT_BITS = 8


@dataclass(frozen=True)
class Chip:
    """One Xylo chip version's limits.

    Attributes:
        version: rockpool's subpackage name (``"syns63300"``).
        name: product name.
        inputs: input channels.
        hidden: hidden neurons (all hidden layers together).
        readouts: readout neurons.
        synapses: synaptic currents per hidden neuron (we use the first).
        input_expansion: hidden neurons that may receive input weights (the first ones), or None (all).
        output_expansion: hidden neurons that may feed the readout (the last ones), or None (all).
    """

    version: str
    name: str
    inputs: int
    hidden: int
    readouts: int
    synapses: int
    input_expansion: int | None = None
    output_expansion: int | None = None

    weight_bits: int = WEIGHT_BITS
    max_weight_shift: int = MAX_WEIGHT_SHIFT
    dash_max: int = DASH_MAX
    input_spikes: int = MAX_INPUT_SPIKES
    hidden_spikes: int = MAX_HIDDEN_SPIKES
    readout_spikes: int = MAX_READOUT_SPIKES
    state_bits: int = 16


CHIPS: dict[str, Chip] = {
    "syns63300": Chip("syns63300", "Xylo IMU", inputs=16, hidden=496, readouts=16, synapses=1,
                      input_expansion=128, output_expansion=128),
    "syns61201": Chip("syns61201", "Xylo Audio 2", inputs=16, hidden=1000, readouts=8, synapses=2),
}
DEFAULT_VERSION = "syns63300"


def chip(version: str) -> Chip:
    """The :class:`Chip` of ``version``; ValueError naming the known and the refused versions."""
    from .rockpool_compat import REFUSED
    if version in CHIPS:
        return CHIPS[version]
    if version in REFUSED:
        raise ValueError(f"chip version {version!r} refused: {REFUSED[version]}")
    raise ValueError(f"unknown Xylo chip version {version!r}; known: {', '.join(sorted(CHIPS))}")
