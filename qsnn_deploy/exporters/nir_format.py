"""The constants of our ``.nir`` format (``docs/nir.md``), shared by the writer (:mod:`.nir_export`) and the
reader (:mod:`.nir_read`): the metadata key that marks our files, the format version, the time step dt
[s] the float fields are written with, the options of the float-field conventions, and the integer
semantics every file states in its metadata.
"""
from __future__ import annotations

SUFFIX = ".nir"
#: Graph metadata key/value that marks a file written by this module.
FORMAT_KEY = "qsnn_format"
FORMAT_NAME = "qsnn-nir"
VERSION = 1
#: The time step (seconds) the float fields are written with: snnTorch's (export_nir / import_nir).
DT = 1e-4
#: τ of a non-leaking layer (d = 4096), in units of dt: finite, so that ``1 - dt/τ`` is exactly 1.0
#: in float64 and ``r·dt/τ`` exactly 1 (∞ would give NaN gains in consumers).
NONLEAKY_TAU_STEPS = 2.0 ** 60
POOL_MODES = ("avg", "sum", "fold")
THRESHOLD_LAYOUTS = ("auto", "integer", "unit")
#: How τ carries β = d/4096 (NIR leaves the discretization to the consumer): ``"euler"`` τ = dt/(1 − β)
#: (snnTorch and Norse: β = 1 − dt/τ); ``"exp"`` τ = −dt/ln β (Sinabs and Rockpool: β = exp(−dt/τ)).
TAU_RULES = ("euler", "exp")
#: How r is written: ``"gain"`` r = τ/dt (input gain r·dt/τ = 1; snnTorch's export); ``"one"`` r = 1
#: (NIR's unit resistance, input gain 1 − β: the NIR membrane is v·(1 − β)/κ, thresholds scaled by
#: 1 − β, exact in float64; Norse ignores r, so it reads a file correctly only with this rule).
R_RULES = ("gain", "one")

SEMANTICS = ("qsnn-deploy integer LIF (docs/integer-semantics.md): J = sumpool(W*x); r = [v_prev > theta]; "
             "subtract: v = decay(v_prev) + (J << F) + b - r*theta; zero: v = decay((1-r)*v_prev) + (J << F) + b; "
             "v clipped to +-(2^(B_v-1)-1); z = [v > theta]; decay(v) = sign(v*d)*(|v*d| >> 12). "
             "CubaLIF (qsnn_deploy/neurons/cuba.py): i = decay(i_prev, a) + (J << F) + bi, clipped to B_i bits; "
             "v = decay(v_prev, d) + i + b with the same resets (or zero_delayed: the new v zeroed). "
             "Recurrent layers: J += R*z_prev (nested graph: neuron -> w_rec -> neuron)")
