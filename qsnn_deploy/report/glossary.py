"""Plain-words explanations of every abbreviation and symbol the HTML report uses.

Each term appears on the page as a link to its glossary entry with the explanation as a tooltip
(``<abbr title>``), and the glossary section at the end of the page lists them all, so a reader
on a phone (no hover) or offline needs nothing else.
"""
from __future__ import annotations

import html

#: term → explanation (units included). Keys are what the page shows.
GLOSSARY: dict[str, str] = {
    "SOP": "synaptic operation: one spike reaching one synapse (all synapses of the deployed kernel, zero weights "
           "included); SOPs per sample = Σ over the spikes of the layer before of their fan-out",
    "AC": "accumulate: a synaptic operation driven by a binary spike (add the weight); NeuroBench's effective ACs "
          "count only synapses with a nonzero weight",
    "MAC": "multiply-accumulate: a synaptic operation driven by a graded value (e.g. an 8-bit pixel); dense MACs = "
           "every synapse once per time step (synapses × T)",
    "T": "time steps per sample: how long each input is presented",
    "θ": "threshold of a neuron, in state units (a neuron spikes when v > θ)",
    "b": "bias added to the membrane state every step, in state units",
    "d": "decay of the membrane state per step, as d/4096 (v ← v·d/4096, rounded toward zero)",
    "v": "membrane state (potential) of a neuron, a signed integer in state units",
    "B_v": "bits of the membrane state v (signed): |v| ≤ 2^(B_v−1) − 1",
    "F": "fractional bits: the synaptic current is shifted left by F bits into state units",
    "max |J|": "worst-case synaptic current of a neuron in one step (Σ|w| × largest input), before the shift by F",
    "fan-in": "synapses into one neuron (of the deployed, pool-folded kernel)",
    "fan-out": "synapses one neuron drives in the next layer",
    "firing rate": "spikes per neuron per time step (0 … 1)",
    "saturation": "a (neuron, step) where v reached ±(2^(B_v−1) − 1) and was clipped",
    "QLIF": "qsnn-deploy's custom Lava neuron process: subtract reset and a threshold per neuron, bit-exact in Lava's "
            "simulator, but not a stock Loihi 2 neuron",
    "QCUBA": "qsnn-deploy's custom Lava process for a current-based (cuba) layer off the stock route: a decaying "
             "current i feeds the membrane v, subtract or zero reset, a threshold per neuron; bit-exact in Lava's "
             "simulator, not a stock Loihi 2 neuron",
    "LIF": "leaky integrate-and-fire neuron; Lava's stock LIF is the neuron Loihi 2 runs natively",
    "vThMant": "Loihi threshold mantissa: θ = vThMant × 2^6 (17 bits unsigned)",
    "bias_mant": "Loihi bias mantissa: b = bias_mant × 2^6 (13 bits signed)",
    "dv": "Loihi voltage decay, 4096 − d (12 bits)",
    "u": "Loihi's synaptic current state (24 bits); stock LIF holds u and v per neuron",
    "weight mantissa": "bits of a Loihi synaptic weight (8 bits incl. sign); weight = mantissa × 2^exponent",
    "weight exponent": "Loihi per-layer weight exponent (−8 … 7)",
    "core": "one Loihi 2 neuro-core: up to 8,192 neurons, ≈ 937,500 synapses and 192 KiB of memory shared by "
            "synapses and neuron states",
    "latency": "time steps from a sample's first input to its last output: T plus the target's pipeline delay "
               "(one step per synapse in Lava/Loihi)",
    "95 % interval": "Wilson score interval: the true accuracy lies in this range with 95 % confidence, given the "
                     "number of samples",
    "connection sparsity": "zero weights / all weights of the deployed kernels (NeuroBench)",
    "activation sparsity": "1 − spikes / (neurons × T), all layers (NeuroBench)",
    "membrane updates": "neurons × T per sample: every neuron's state is updated every step",
    "headroom": "how far a value is from its hardware limit (bits or % of the limit); 'near limit' at ≥ 90 %",
    ">>": "arithmetic shift right: x >> 6 = x / 64 rounded down; << shifts left (× 2^k)",
    "2^k": "2 to the power k; 2^23 − 1 = 8,388,607 is the largest 24-bit signed value",
    "pJ": "picojoule, 10^−12 J; nJ = 10^−9 J; µJ = 10^−6 J",
    "KiB": "kibibyte, 1,024 bytes; B = byte (8 bits)",
    "NeuroBench": "a community benchmark framework for neuromorphic computing (neurobench 2.3); its metric names "
                  "are used here",
    "bit-exact": "identical spike trains (every layer, neuron, step and sample) to the reference simulator",
}

#: What each backend name in the agreement check is, in words.
BACKENDS: dict[str, str] = {
    "numpy": "NumPy integer reference simulator",
    "torch-cpu": "integer PyTorch backend (CPU)",
    "torch-cuda": "integer PyTorch backend (GPU)",
    "onnx": "ONNX Runtime",
    "nir": "NIR graph round trip",
    "loihi": "Loihi-style fixed-point simulator (ours)",
    "lava": "Intel Lava CPU simulator",
    "lava vs loihi": "Intel Lava vs our Loihi-style simulator",
}


def backend_label(name: str) -> str:
    """``name`` in words: ``"onnx"`` → ``"ONNX Runtime"``, ``"torch-model (cpu)"`` → ``"trained PyTorch model (cpu)"``."""
    if name.startswith("torch-model"):
        return "trained PyTorch model" + name[len("torch-model"):]
    return BACKENDS.get(name, name)


def anchor(term: str) -> str:
    """The glossary entry's ``id`` for ``term``."""
    return "g-" + "".join(c if c.isalnum() else "-" for c in term.encode("ascii", "xmlcharrefreplace").decode()).strip("-")


def term(key: str, shown: str | None = None) -> str:
    """HTML for ``shown`` (default ``key``): a link to the glossary entry, the explanation as its tooltip."""
    text = GLOSSARY[key]
    return (f'<a class="g" href="#{anchor(key)}"><abbr title="{html.escape(text)}">'
            f'{html.escape(shown if shown is not None else key)}</abbr></a>')


def glossary_html(used: set[str] | None = None) -> str:
    """The glossary section: every term (or those in ``used``) with its explanation, and the backends."""
    keys = [k for k in GLOSSARY if used is None or k in used]
    rows = "".join(f'<dt id="{anchor(k)}">{html.escape(k)}</dt><dd>{html.escape(GLOSSARY[k])}</dd>' for k in keys)
    back = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in BACKENDS.items())
    return (f'<section id="glossary"><h2>Glossary</h2><dl>{rows}</dl><h3>Backends in the agreement check</h3>'
            f"<dl>{back}<dt>torch-model</dt><dd>the trained PyTorch model itself (deploy-faithful: integer "
            f"arithmetic inside; a float model is only measured)</dd></dl></section>")


__all__ = ["GLOSSARY", "BACKENDS", "backend_label", "anchor", "term", "glossary_html"]
