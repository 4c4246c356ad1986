"""Neuron kinds (qsnn_deploy.neurons): every backend's kernel against the kind's reference step, the
manifest written from the dataclass fields, validation naming layer and field, proven bounds, and
backends refusing a kind they do not run by name."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from qsnn_deploy import FrozenNet, FrozenNetError, InputSpec, Layer, Synapse
from qsnn_deploy.errors import UnsupportedNeuronError
from qsnn_deploy.neurons import NEURON_KINDS, CubaLIF, LIF, neuron_class
from qsnn_deploy.simulators.base import NeuronKernels
from qsnn_deploy.simulators.cuba_scan import cuba_scan
from qsnn_deploy.simulators.lif_scan import HAVE_NUMBA, scan_lif
from qsnn_deploy.simulators.numpy_sim import NumpySimulator
from qsnn_deploy.simulators.torch_sim import TorchSimulator
from qsnn_deploy.statebound import current_extremes

SCANS = {"lif": scan_lif, "cuba": cuba_scan}


def random_neuron(kind: str, reset: str, rng: np.random.Generator, c: int, state_bits: int = 16) -> LIF | CubaLIF:
    """Adversarial parameters: thresholds near the state limit, decays at 0, 4096 and in between, biases both ways."""
    vmax = (1 << (state_bits - 1)) - 1
    th = rng.integers(0, vmax // 2, c)
    th[0] = vmax  # a threshold at the limit
    decay = rng.choice([0, 1, 2048, 4095, 4096, 3000], c)
    decay[0] = 4096  # channel 0 never fires and never leaks: it must saturate under a steady drive
    bias = rng.integers(-vmax // 8, vmax // 8, c)
    if kind == "lif":
        return LIF(th, bias, decay, reset, frac_bits=3, state_bits=state_bits)
    current_decay = rng.choice([0, 1, 2048, 4095, 4096, 3500], c)
    current_decay[0] = 4096
    return CubaLIF(th, bias, current_decay, decay, rng.integers(-vmax // 16, vmax // 16, c),
                   reset=reset, frac_bits=3, state_bits=state_bits, current_bits=state_bits - rng.integers(0, 3))


def reference_run(neuron, j: np.ndarray, static: bool, steps: int):
    state = neuron.initial_state(j.shape if static else j.shape[1:])
    spikes, states, sats = [], [], []
    for t in range(steps):
        state, z, n = neuron.reference_step(state, j if static else j[t])
        spikes.append(z)
        states.append(state[-1])
        sats.append(n)
    return np.stack(spikes), np.stack(states), np.array(sats)


KIND_RESETS = [("lif", r) for r in ("subtract", "zero")] + [("cuba", r) for r in ("subtract", "zero", "zero_delayed")]


@pytest.mark.parametrize("kind,reset", KIND_RESETS)
@pytest.mark.parametrize("use_numba", [False, True] if HAVE_NUMBA else [False])
def test_numpy_kernel_equals_reference_step(kind, reset, use_numba):
    rng = np.random.default_rng(hash((kind, reset)) % 2**32)
    for static in (True, False):
        c, steps = 7, 40
        neuron = random_neuron(kind, reset, rng, c)
        shape = (3, 5, c)  # [N, P, C] channels-last
        j = rng.integers(-900, 900, ((steps,) if not static else ()) + shape)
        j[..., 0] = 1000  # a steady drive into channel 0
        want = reference_run(neuron, j, static, steps)
        got = SCANS[kind](neuron, j, static, steps, record=True, use_numba=use_numba)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), (kind, reset, static)
        assert np.array_equal(got[2], want[2])
        assert want[2].sum() > 0 and want[0].any() and not want[0].all()  # the operands do saturate and spike


def _dense_net(neuron, w, rec=None) -> FrozenNet:
    syn = Synapse("dense", w.astype(np.int8), 8, recurrent=None if rec is None else rec.astype(np.int8),
                  recurrent_bits=None if rec is None else 8)
    return FrozenNet(InputSpec((w.shape[1],), bits=4, scale=1.0), [Layer("fc", syn, neuron)], num_steps=30).validate()


@pytest.mark.parametrize("kind,reset", KIND_RESETS)
@pytest.mark.parametrize("recurrent", [False, True])
def test_backends_equal_reference_step_per_kind(kind, reset, recurrent):
    """NumPy (fused and whole-array), torch (in place, and fused on the CPU) equal the kind's reference step,
    recurrent synapses included (J_t = W·x_t + R·z_{t-1})."""
    rng = np.random.default_rng(hash((kind, reset, recurrent)) % 2**32)
    c, n_in, steps = 6, 9, 30
    neuron = random_neuron(kind, reset, rng, c, state_bits=20)
    neuron.threshold[1:] //= 8  # most channels fire
    w = rng.integers(-60, 128, (c, n_in))
    rec = rng.integers(-127, 128, (c, c)) if recurrent else None
    net = _dense_net(neuron, w, rec)
    x = rng.integers(0, 16, (steps, 4, n_in))
    # the reference: the kind's step with J computed here in int64
    state = neuron.initial_state((4, c))
    z = np.zeros((4, c), np.uint8)
    want = []
    for t in range(steps):
        j = x[t] @ w.T + (z.astype(np.int64) @ rec.T if recurrent else 0)
        state, z, _ = neuron.reference_step(state, j)
        want.append(z)
    want = np.stack(want)
    results = [NumpySimulator(net, use_numba=u).run(x) for u in ([False, True] if HAVE_NUMBA else [False])]
    results += [TorchSimulator(net, scan=s).run(x) for s in (["torch", "fused"] if HAVE_NUMBA else ["torch"])]
    for res in results:
        assert np.array_equal(res.spikes["fc"], want), res.backend
    assert want.any()


def test_manifest_round_trip_from_fields(tmp_path):
    rng = np.random.default_rng(3)
    neuron = random_neuron("cuba", "zero", rng, 6)
    neuron.sigma = rng.random(6) + 0.5
    net = _dense_net(neuron, rng.integers(-7, 8, (6, 9)), rng.integers(-3, 4, (6, 6)))
    back = FrozenNet.load(net.save(tmp_path / "cuba.qsnn"))
    from qsnn_deploy.frozen import frozen_differences

    assert frozen_differences(net, back) == []
    entry = net.to_manifest()[0]["layers"][0]
    assert entry["neuron"]["kind"] == "cuba" and set(entry["neuron"]["arrays"]) == {
        "threshold", "bias", "current_decay", "decay", "current_bias", "sigma"}
    assert set(entry["neuron"]) - {"kind", "arrays"} == set(CubaLIF.scalar_fields())
    assert set(entry["synapse"]["arrays"]) == {"weight", "recurrent"}


@pytest.mark.parametrize("edit,field", [
    (lambda e, a: e["neuron"].__setitem__("kind", "izhikevich"), "neuron.kind"),
    (lambda e, a: e["neuron"].__setitem__("reset", "none"), "reset"),
    (lambda e, a: e["neuron"].__setitem__("current_bits", 60), "current_bits"),
    (lambda e, a: e["neuron"].__setitem__("frac_bits", 2.5), "frac_bits"),
    (lambda e, a: e["neuron"].__setitem__("surprise", 1), "surprise"),
    (lambda e, a: a.__setitem__("layer0.current_decay", np.full(6, 5000)), "current_decay"),
    (lambda e, a: a.__setitem__("layer0.recurrent", np.ones((5, 6), np.int8)), "recurrent"),
    (lambda e, a: e["neuron"]["arrays"].pop("decay"), "decay"),
])
def test_bad_neuron_fields_name_layer_and_field(edit, field):
    rng = np.random.default_rng(4)
    net = _dense_net(random_neuron("cuba", "subtract", rng, 6), rng.integers(-7, 8, (6, 9)), rng.integers(-3, 4, (6, 6)))
    manifest, arrays = net.to_manifest()
    edit(manifest["layers"][0], arrays)
    with pytest.raises(FrozenNetError) as info:
        FrozenNet.from_manifest(manifest, arrays)
    assert info.value.layer == "fc" and info.value.field == field


def test_cuba_bound_is_a_proof_and_catches_runaway():
    rng = np.random.default_rng(5)
    w = rng.integers(-7, 8, (6, 9))
    neuron = CubaLIF(np.full(6, 3000), np.zeros(6, np.int64), np.full(6, 3500), np.full(6, 3900), reset="subtract",
                     frac_bits=2, state_bits=24)
    jp, jn = current_extremes(w, 0, 15)
    bound = neuron.state_bound(jp, jn)
    assert bound.saturation_free
    # the worst input (all at 15 where w > 0) never exceeds the proven peak
    x = np.where(w > 0, 15, 0)
    state = neuron.initial_state((6, 6))
    peak_i = peak_v = 0
    for _ in range(400):
        state, _, n = neuron.reference_step(state, x @ w.T)
        assert n == 0
        peak_i, peak_v = max(peak_i, np.abs(state[0]).max()), max(peak_v, np.abs(state[1]).max())
    assert peak_i <= bound.current_peak and peak_v <= bound.peak
    assert peak_v > bound.peak / 4  # and the bound is not absurdly loose
    # no leak on the current with a constant drive: no proof
    runaway = dataclasses.replace(neuron, current_decay=np.full(6, 4096))
    assert not runaway.state_bound(jp, jn).saturation_free


def test_backends_refuse_a_kind_they_do_not_run_by_name():
    table = NeuronKernels("tinychip", {"lif": object()}, recurrent="its crossbar has no feedback path",
                          reasons={"cuba": "it has no current state"})
    rng = np.random.default_rng(6)
    net = _dense_net(random_neuron("cuba", "zero", rng, 6), rng.integers(-7, 8, (6, 9)))
    with pytest.raises(UnsupportedNeuronError) as info:
        table.check(net)
    assert (info.value.layer, info.value.kind, info.value.target) == ("fc", "cuba", "tinychip")
    assert "no current state" in str(info.value)
    rec = _dense_net(random_neuron("lif", "zero", rng, 6), rng.integers(-7, 8, (6, 9)), rng.integers(-3, 4, (6, 6)))
    with pytest.raises(UnsupportedNeuronError, match="no feedback path"):
        table.check(rec)


def test_every_kind_is_registered_and_documented():
    for kind, cls in NEURON_KINDS.items():
        assert neuron_class(kind) is cls and cls.kind == kind
        doc = __import__(cls.__module__, fromlist=["x"]).__doc__
        assert "per time step" in doc.lower() or "per step" in doc.lower()
        assert cls.reference_step is not LIF.__mro__[1].reference_step
    with pytest.raises(FrozenNetError, match="known: cuba, lif"):
        neuron_class("hodgkin")


@pytest.mark.parametrize("profile", ["default", "loihi"])
def test_deploy_faithful_qsynaptic_model_equals_frozen_net(profile):
    """qsnn-train --neuron cuba's model (QSynaptic in every spiking layer): its own forward IS the frozen
    integer net (promise 1): verify requires the PyTorch model bit-exact, and every backend equals it."""
    import torch

    from qsnn_deploy import freeze
    from qsnn_deploy.models import build_model, init_uniform_fan_in, preset_arch
    from qsnn_deploy.profiles import apply_profile, calibrate_initial_firing
    from qsnn_deploy.verify import verify

    torch.manual_seed(1)
    arch = preset_arch("mnist", num_steps=6)
    for entry in arch["layers"]:
        if entry["type"] == "lif":
            entry.update(kind="cuba", alpha=0.6, reset="zero" if profile == "loihi" else "subtract")
    if profile == "loihi":  # the profile's β; a lower θ so that the BatchNorm-free first layer fires at once
        for entry in arch["layers"]:
            if entry["type"] == "lif":
                entry.update(beta=0.5, threshold=0.1)
    model = init_uniform_fan_in(build_model(apply_profile(arch, profile))).eval()
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (4, 1, 28, 28))
    if profile == "loihi":  # no BatchNorm: wake the deeper layers up as the trainer does
        calibrate_initial_firing(model, torch.as_tensor(x / 255.0, dtype=torch.float32), 6, max_rounds=12)
    net = freeze(model)
    assert [layer.kind for layer in net.layers] == ["cuba"] * 3 and net.metadata["deploy_faithful"]
    report = verify(net, x, model=model, backends=("torch", "onnx", "loihi"), num_steps=6)
    assert report.all_exact and all(b.exact_required for b in report.backends), [
        (b.name, [(la.name, la.first_mismatch) for la in b.layers if not la.bit_exact]) for b in report.backends]
    assert report.backends[0].layers[0].reference_spikes > 0  # the first layer spikes: the equality is not vacuous
