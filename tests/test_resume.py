"""``qsnn-train --resume`` (issue 28): a checkpoint of another run (dataset, profile, precision,
architecture, or any training setting) is refused naming the field that differs; an interrupted run
(mid-epoch in-process, and a killed ``qsnn-train`` process) resumes to exactly the weights of an
uninterrupted run from the same seed. Tiny runs: a few hundred MNIST digits, T of 3-4."""
from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from qsnn_deploy.checkpoint import load_checkpoint, model_from_checkpoint
from qsnn_deploy.cli.train import main as train_main
from qsnn_deploy.errors import CheckpointError
from qsnn_deploy.train import TrainConfig, Trainer
from qsnn_deploy.train import trainer as trainer_module
from qsnn_deploy.train.history import unpack_steps

REPO = Path(__file__).resolve().parents[1]
TINY = dict(dataset="mnist", epochs=1, num_steps=3, limit_train=128, limit_test=32, batch_size=64, device="cpu", seed=3)


def _quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def last_pt(tmp_path_factory) -> Path:
    """``last.pt`` of a finished 1-epoch tiny MNIST run (default profile, int4)."""
    out = tmp_path_factory.mktemp("tiny")
    Trainer(TrainConfig(**TINY, out_dir=str(out)), log=_quiet).fit()
    return out / "last.pt"


# ------------------------------------------------------------------ refusals, naming the field
@pytest.mark.parametrize("option, field, stored, asked", [
    (["--dataset", "fashion-mnist"], "dataset", "mnist", "fashion-mnist"),
    (["--profile", "loihi"], "profile", "default", "loihi"),
    (["--precision", "int8"], "precision", "int4", "int8"),
    (["--reset", "zero"], "reset", "subtract", "zero"),
    (["--float-neurons"], "deploy_faithful", "True", "False"),
    (["--steps", "5"], "num_steps", "3", "5"),
    (["--lr", "0.1"], "lr", "0.0019", "0.1"),
    (["--schedule", "none"], "schedule", "cosine", "none"),
    (["--seed", "4"], "seed", "3", "4"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_cli_resume_of_another_run_is_refused_naming_the_field(last_pt, tmp_path, capsys, option, field, stored, asked):
    rc = train_main(["--resume", str(last_pt), "--epochs", "2", "--out", str(tmp_path / "run"), *option])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert str(last_pt) in err and f"field {field!r}" in err, err
    assert repr(stored) in err or stored in err, err
    assert asked in err, err
    assert "--init-from" in err  # what to use instead
    assert not (tmp_path / "run").exists()  # refused before anything was trained or written


def test_cli_resume_refusal_names_dataset_first(last_pt, tmp_path, capsys):
    rc = train_main(["--resume", str(last_pt), "--out", str(tmp_path / "run"), "--lr", "0.5",
                     "--dataset", "fashion-mnist", "--profile", "loihi"])
    err = capsys.readouterr().err
    assert rc == 2
    names = [err.index(f"field {n!r}") for n in ("dataset", "profile", "lr")]
    assert names == sorted(names), err


def test_api_resume_of_another_run_is_refused(last_pt, tmp_path):
    base = TrainConfig(**TINY, out_dir=str(tmp_path))
    with pytest.raises(CheckpointError, match=r"field 'dataset': the checkpoint's run has 'mnist', this run asks for 'fashion-mnist'"):
        Trainer(replace(base, dataset="fashion-mnist"), resume=last_pt)
    with pytest.raises(CheckpointError, match=r"field 'profile'.*'default'.*'loihi'"):
        Trainer(replace(base, profile="loihi"), resume=last_pt)
    # None means the preset on both sides: the preset's value given explicitly is the same run
    stored_lr = load_checkpoint(last_pt)["config"]["lr"]
    Trainer(replace(base, lr=stored_lr, epochs=3, eval_steps=2, out_dir=str(tmp_path / "x")), resume=last_pt)


def _edited(last_pt: Path, tmp_path: Path, edit) -> Path:
    ck = load_checkpoint(last_pt)
    ck = copy.deepcopy(ck)
    edit(ck)
    path = tmp_path / "edited.pt"
    torch.save(ck, path)
    return path


@pytest.mark.parametrize("edit, expected", [
    (lambda ck: ck["arch"]["layers"][3].update(beta=0.5), "layer 'lif1' (layers[3]), field 'beta': 0.5 vs 0.921"),
    (lambda ck: ck["arch"]["layers"][0].update(out_channels=8), "layer 'conv1' (layers[0]), field 'out_channels': 8 vs 16"),
    (lambda ck: (ck["config"].update(fit_frac_bits=False),  # a run with F fixed at 6, one layer's F edited
                 [e.update(frac_bits=6) for e in ck["arch"]["layers"] if e["type"] == "lif"],
                 ck["arch"]["layers"][7].update(frac_bits=3)),
     "layer 'lif2' (layers[7]), field 'frac_bits': 3 vs 6"),
    (lambda ck: ck["arch"]["input"].update(scale=1.0), "field 'input.scale': 1.0 vs"),
    (lambda ck: ck["arch"]["layers"].pop(10), "field 'layers': 11 layers vs 12"),
], ids=["beta", "channels", "frac_bits", "input-scale", "layer-count"])
def test_resume_from_a_checkpoint_of_another_architecture_is_refused(last_pt, tmp_path, capsys, edit, expected):
    """The config matches but the stored arch is not the one it builds (an edited or re-fitted file, another
    version's preset): refused, naming the layer and field, before a weight is loaded."""
    path = _edited(last_pt, tmp_path, edit)
    rc = train_main(["--resume", str(path), "--epochs", "2", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "architecture" in err and expected in err, err


def test_a_run_that_fits_f_resumes_at_its_fitted_f(last_pt, tmp_path):
    """F re-fitted after every epoch (the default profile) is state of the run, like the weights: a resume builds
    the model at the stored F and goes on fitting it."""
    stored = load_checkpoint(last_pt)
    fs = {e["name"]: e["frac_bits"] for e in stored["arch"]["layers"] if e["type"] == "lif"}
    assert stored["config"]["fit_frac_bits"] and any(f != 6 for f in fs.values()), fs  # the tiny run re-fitted F
    assert stored["metrics"]["epochs"][-1]["frac_bits"] == {"lif1": fs["lif1"], "lif2": fs["lif2"], "lif3": fs["lif3"]} \
        or set(stored["metrics"]["epochs"][-1]["frac_bits"].values()) == set(fs.values())
    out = tmp_path / "run"
    assert train_main(["--resume", str(last_pt), "--epochs", "1", "--out", str(out), "-q"]) == 0
    again = load_checkpoint(out / "model.pt")
    assert {e["name"]: e["frac_bits"] for e in again["arch"]["layers"] if e["type"] == "lif"} == fs


def test_resume_may_change_epochs_eval_steps_out_device_and_name(last_pt, tmp_path):
    """The options a resume may change, given on the command line with the same values for the others."""
    out = tmp_path / "run"
    rc = train_main(["--resume", str(last_pt), "--epochs", "1", "--eval-steps", "2", "--out", str(out), "--device", "cpu",
                     "--name", "again", "--dataset", "mnist", "--precision", "int4", "--steps", "3", "-q"])
    assert rc == 0
    ck = load_checkpoint(out / "again.pt")
    assert ck["arch"]["num_steps"] == 2 and ck["config"]["eval_steps"] == 2 and ck["config"]["name"] == "again"
    assert torch.equal(ck["state_dict"]["fc.weight"], load_checkpoint(last_pt)["state_dict"]["fc.weight"])  # trained nothing


def test_resume_without_epochs_continues_to_the_planned_epochs(tmp_path):
    """``--resume last.pt`` alone goes on to the epoch count the run was started with."""
    cfg = TrainConfig(**dict(TINY, epochs=2, limit_train=64), out_dir=str(tmp_path / "a"))

    class Stop(Exception):
        pass

    def stop_after_first(msg: str) -> None:
        if msg.startswith("epoch 2:"):
            raise Stop

    with pytest.raises(Stop):
        Trainer(cfg, log=stop_after_first).fit()
    assert load_checkpoint(tmp_path / "a" / "last.pt")["train_state"]["epoch"] == 1
    assert train_main(["--resume", str(tmp_path / "a" / "last.pt"), "--out", str(tmp_path / "b"), "-q"]) == 0
    assert load_checkpoint(tmp_path / "b" / "model.pt")["train_state"]["epoch"] == 2


# ------------------------------------------------------------------ interrupted == uninterrupted
class _Interrupted(Exception):
    pass


def _schedule_crashing_at(iteration: int):
    """An LRSchedule that raises :class:`_Interrupted` right after optimizer step ``iteration`` (an
    interruption mid-epoch: last.pt then holds the epoch before)."""
    real = trainer_module.LRSchedule

    class Crashing(real):
        def step_batch(self):
            super().step_batch()
            if self.iteration == iteration:
                raise _Interrupted

    return Crashing


@pytest.mark.parametrize("schedule, legacy_history", [("cosine", False), ("lossstep", False), ("cosine", True)],
                         ids=["cosine", "lossstep", "cosine-list-history"])
def test_run_interrupted_mid_epoch_resumes_to_the_same_weights(tmp_path, monkeypatch, schedule, legacy_history):
    """Three epochs straight vs the same run stopped in the middle of epoch 2 (its last.pt holds epoch 1)
    and resumed: every weight, BatchNorm statistic, Adam moment, the LR and the per-epoch and per-step
    history equal. ``legacy_history``: the last.pt holds its per-step history as the list of dicts older
    checkpoints hold (before the column form of ``qsnn_deploy.train.history``)."""
    torch.set_num_threads(1)
    try:
        cfg = TrainConfig(**dict(TINY, epochs=3, limit_train=192), schedule=schedule, loss_patience=1,
                          period_epochs=2, out_dir=str(tmp_path / "straight"))
        Trainer(cfg, log=_quiet).fit()
        straight = load_checkpoint(tmp_path / "straight" / "model.pt")

        per_epoch = 3  # 192 samples / batch 64
        real = trainer_module.LRSchedule
        monkeypatch.setattr(trainer_module, "LRSchedule", _schedule_crashing_at(per_epoch + 2))  # two batches into epoch 2
        part = replace(cfg, out_dir=str(tmp_path / "part"))
        with pytest.raises(_Interrupted):
            Trainer(part, log=_quiet).fit()
        monkeypatch.setattr(trainer_module, "LRSchedule", real)
        last = tmp_path / "part" / "last.pt"
        assert load_checkpoint(last)["train_state"]["epoch"] == 1
        if legacy_history:
            last = _edited(last, tmp_path, lambda ck: ck["train_state"]["history"].update(
                steps=unpack_steps(ck["train_state"]["history"]["steps"])))
            assert isinstance(load_checkpoint(last)["train_state"]["history"]["steps"], list)
        Trainer(part, resume=last, log=_quiet).fit()
        resumed = load_checkpoint(tmp_path / "part" / "model.pt")
    finally:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    _assert_same_run(straight, resumed)


def _assert_same_run(a: dict, b: dict) -> None:
    sa, sb = a["state_dict"], b["state_dict"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    oa, ob = a["train_state"]["optimizer"]["state"], b["train_state"]["optimizer"]["state"]
    assert oa.keys() == ob.keys()
    for i in oa:
        for k in oa[i]:
            assert torch.equal(torch.as_tensor(oa[i][k]), torch.as_tensor(ob[i][k])), (i, k)
    assert a["train_state"]["schedule"] == b["train_state"]["schedule"]
    ea, eb = a["train_state"]["history"]["epochs"], b["train_state"]["history"]["epochs"]
    assert [(e["epoch"], e["train_loss"], e["lr"], e["test_accuracy"]) for e in ea] == \
           [(e["epoch"], e["train_loss"], e["lr"], e["test_accuracy"]) for e in eb]
    steps_a, steps_b = (unpack_steps(ck["train_state"]["history"]["steps"]) for ck in (a, b))
    assert steps_a == steps_b and steps_a[-1]["epoch"] == ea[-1]["epoch"]


def _train_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "qsnn_deploy.cli.train", "--dataset", "mnist", "--epochs", "4", "--steps", "3",
            "--limit-train", "128", "--limit-test", "32", "--batch-size", "64", "--seed", "5", "--device", "cpu",
            "--out", str(out), "-q", *extra]


def test_killed_qsnn_train_process_resumes_to_the_same_weights(tmp_path):
    """A ``qsnn-train`` process killed (SIGKILL) as soon as its first last.pt exists, resumed with
    ``--resume last.pt``, ends with the weights of the same command run without interruption."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    straight = subprocess.run(_train_cmd(tmp_path / "straight"), env=env, capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr
    proc = subprocess.Popen(_train_cmd(tmp_path / "killed"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = tmp_path / "killed" / "last.pt"
    deadline = time.monotonic() + 600
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done = load_checkpoint(last)["train_state"]["epoch"]
    assert done < 4 and not (tmp_path / "killed" / "model.pt").exists()
    resumed = subprocess.run([sys.executable, "-m", "qsnn_deploy.cli.train", "--resume", str(last),
                              "--out", str(tmp_path / "killed"), "-q"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_run(load_checkpoint(tmp_path / "straight" / "model.pt"), load_checkpoint(tmp_path / "killed" / "model.pt"))


def test_resume_of_a_fine_tuning_run_does_not_need_its_init_from_file(last_pt, tmp_path):
    """A resume loads its own weights: the --init-from checkpoint of a fine-tuning run may be gone (another
    machine), and the resume still works."""
    import shutil

    init = tmp_path / "init.pt"
    shutil.copy(last_pt, init)
    cfg = TrainConfig(**dict(TINY, limit_train=64), init_from=str(init), out_dir=str(tmp_path / "ft"))
    Trainer(cfg, log=_quiet).fit()
    init.unlink()
    assert train_main(["--resume", str(tmp_path / "ft" / "last.pt"), "--epochs", "2", "--out", str(tmp_path / "ft2"), "-q"]) == 0
    assert load_checkpoint(tmp_path / "ft2" / "model.pt")["train_state"]["epoch"] == 2


# ------------------------------------------------------------------ early stopping across a resume
#: validation accuracy per epoch, scripted so that the best epoch (2) comes before the interruption
#: (in epoch 4) and patience 2 stops the run after epoch 4; the training and test evaluations are real.
_VAL_SCRIPT = (0.50, 0.90, 0.60, 0.70, 0.80)
_VAL_SIZE = 48


def _script_validation(monkeypatch, first_epoch: int) -> None:
    real = trainer_module.evaluate
    epoch = [first_epoch]

    def scripted(model, data, num_steps, device, **kw):
        if len(data) != _VAL_SIZE:
            return real(model, data, num_steps, device, **kw)
        epoch[0] += 1
        return _VAL_SCRIPT[epoch[0] - 2]

    monkeypatch.setattr(trainer_module, "evaluate", scripted)


def _early_stopping_cfg(out: Path) -> TrainConfig:
    return TrainConfig(**dict(TINY, epochs=5, limit_train=128), val_size=_VAL_SIZE, early_stopping=2,
                       out_dir=str(out))


def test_early_stopping_survives_a_resume_after_its_best_epoch(tmp_path, monkeypatch):
    """Best validation epoch 2, interrupted in epoch 4 (last.pt holds epoch 3, one epoch without
    improvement), resumed: the run stops after epoch 4 as the uninterrupted one does (patience 2 counted
    across the resume) and restores epoch 2's weights, which only last.pt could carry over."""
    torch.set_num_threads(1)
    try:
        _script_validation(monkeypatch, 1)
        Trainer(_early_stopping_cfg(tmp_path / "straight"), log=_quiet).fit()
        straight = load_checkpoint(tmp_path / "straight" / "model.pt")

        real = trainer_module.LRSchedule
        per_epoch = 2  # 128 samples / batch 64
        _script_validation(monkeypatch, 1)
        monkeypatch.setattr(trainer_module, "LRSchedule", _schedule_crashing_at(3 * per_epoch + 1))  # one batch into epoch 4
        part = _early_stopping_cfg(tmp_path / "part")
        with pytest.raises(_Interrupted):
            Trainer(part, log=_quiet).fit()
        monkeypatch.setattr(trainer_module, "LRSchedule", real)
        last = tmp_path / "part" / "last.pt"
        stored = load_checkpoint(last)["train_state"]
        assert stored["epoch"] == 3
        assert (stored["early_stopping"]["best_epoch"], stored["early_stopping"]["bad_epochs"]) == (2, 1)
        # the best epoch so far as a model, training nothing (--resume last.pt --epochs <done>)
        Trainer(replace(part, epochs=3, out_dir=str(tmp_path / "best_so_far")), resume=last, log=_quiet).fit()
        best_so_far = load_checkpoint(tmp_path / "best_so_far" / "model.pt")
        _script_validation(monkeypatch, 4)
        Trainer(part, resume=last, log=_quiet).fit()
        resumed = load_checkpoint(tmp_path / "part" / "model.pt")
    finally:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    for ck in (straight, resumed):
        m = ck["metrics"]
        assert (m["early_stopped"], m["epochs_run"], m["best_epoch"], m["weights_epoch"]) == (True, 4, 2, 2), m
    _assert_same_run(straight, resumed)
    assert best_so_far["metrics"]["weights_epoch"] == 2
    assert all(torch.equal(v, straight["state_dict"][k]) for k, v in best_so_far["state_dict"].items())
    # the restored weights are epoch 2's, not the last epoch's
    epoch4 = load_checkpoint(tmp_path / "straight" / "last.pt")["state_dict"]
    assert any(not torch.equal(epoch4[k], straight["state_dict"][k]) for k in epoch4)


@pytest.mark.parametrize("interrupt_after, best_kept", [(2, True), (3, False)], ids=["best-is-last", "best-earlier"])
def test_resume_from_a_checkpoint_without_early_stopping_state(tmp_path, monkeypatch, interrupt_after, best_kept):
    """A last.pt written before the stopper's state was stored: the counters are rebuilt from the history
    (so patience still stops after epoch 4). When the best epoch is the checkpoint's own epoch its weights
    are restored; when it came earlier they are gone: a warning says so and ``weights_epoch`` names the
    epoch whose weights the file holds, never claiming epoch 2's."""
    torch.set_num_threads(1)
    try:
        real = trainer_module.LRSchedule
        per_epoch = 2
        _script_validation(monkeypatch, 1)
        monkeypatch.setattr(trainer_module, "LRSchedule", _schedule_crashing_at(interrupt_after * per_epoch + 1))
        cfg = _early_stopping_cfg(tmp_path / "part")
        with pytest.raises(_Interrupted):
            Trainer(cfg, log=_quiet).fit()
        monkeypatch.setattr(trainer_module, "LRSchedule", real)
        legacy = _edited(tmp_path / "part" / "last.pt", tmp_path, lambda ck: ck["train_state"].pop("early_stopping"))
        _script_validation(monkeypatch, interrupt_after + 1)
        lines: list[str] = []
        Trainer(cfg, resume=legacy, log=lines.append).fit()
        m = load_checkpoint(tmp_path / "part" / "model.pt")["metrics"]
    finally:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    assert (m["early_stopped"], m["epochs_run"], m["best_epoch"]) == (True, 4, 2), m
    warned = [line for line in lines if line.startswith("warning:")]
    if best_kept:
        assert m["weights_epoch"] == 2 and not warned, (m, warned)
    else:
        assert m["weights_epoch"] == 4, m
        assert len(warned) == 2 and "best epoch 2" in warned[0] and "(2)" in warned[1], warned


def test_a_resume_may_change_the_patience_and_keeps_the_counters(tmp_path, monkeypatch):
    """Patience 2, best epoch 2, interrupted in epoch 4 (one epoch without improvement stored): resumed
    with patience 5 the run goes on to its last epoch instead of stopping after epoch 4, and still
    restores epoch 2's weights (the counters and best weights carried over). Turning early stopping on in
    a run without a validation split is refused by val_size."""
    torch.set_num_threads(1)
    try:
        _script_validation(monkeypatch, 1)
        monkeypatch.setattr(trainer_module, "LRSchedule", _schedule_crashing_at(3 * 2 + 1))
        part = _early_stopping_cfg(tmp_path / "part")
        with pytest.raises(_Interrupted):
            Trainer(part, log=_quiet).fit()
        monkeypatch.undo()
        _script_validation(monkeypatch, 4)
        last = tmp_path / "part" / "last.pt"
        assert train_main(["--resume", str(last), "--early-stopping", "5", "--out", str(tmp_path / "longer"), "-q"]) == 0
        ck = load_checkpoint(tmp_path / "longer" / "model.pt")
    finally:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    m = ck["metrics"]
    assert (m["early_stopped"], m["epochs_run"], m["best_epoch"], m["weights_epoch"]) == (False, 5, 2, 2), m
    assert ck["config"]["early_stopping"] == 5 and ck["train_state"]["early_stopping"]["bad_epochs"] == 3


def test_turning_early_stopping_on_without_a_validation_split_is_refused(last_pt, tmp_path, capsys):
    rc = train_main(["--resume", str(last_pt), "--epochs", "2", "--early-stopping", "3", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "field 'val_size'" in err and "0" in err and "5000" in err, err


# ------------------------------------------------------------------ --keep-epochs: a resumable copy of chosen epochs
def test_keep_epochs_keeps_the_named_epochs_and_each_resumes_to_the_straight_run(tmp_path):
    """``--keep-epochs 1,3`` over 3 epochs writes epoch_1.pt and epoch_3.pt (not epoch_2.pt): epoch_3.pt is
    the final last.pt, and resuming epoch_1.pt to 3 epochs gives exactly the straight run's weights."""
    torch.set_num_threads(1)
    try:
        out = tmp_path / "straight"
        assert train_main(["--dataset", "mnist", "--epochs", "3", "--steps", "3", "--limit-train", "128",
                           "--limit-test", "32", "--batch-size", "64", "--seed", "3", "--device", "cpu",
                           "--keep-epochs", "1,3", "--out", str(out), "-q"]) == 0
        assert sorted(p.name for p in out.glob("epoch_*.pt")) == ["epoch_1.pt", "epoch_3.pt"]
        first, third = load_checkpoint(out / "epoch_1.pt"), load_checkpoint(out / "epoch_3.pt")
        assert first["train_state"]["epoch"] == 1 and third["train_state"]["epoch"] == 3
        _assert_same_run(third, load_checkpoint(out / "last.pt"))
        model, _ = model_from_checkpoint(out / "epoch_1.pt")  # a model of its own epoch, as qsnn-verify reads it
        assert torch.equal(model.state_dict()["fc.weight"], first["state_dict"]["fc.weight"])
        assert not torch.equal(first["state_dict"]["fc.weight"], third["state_dict"]["fc.weight"])
        again = tmp_path / "from_epoch_1"
        assert train_main(["--resume", str(out / "epoch_1.pt"), "--epochs", "3", "--out", str(again), "-q"]) == 0
        _assert_same_run(load_checkpoint(out / "model.pt"), load_checkpoint(again / "model.pt"))
        assert sorted(p.name for p in again.glob("epoch_*.pt")) == ["epoch_3.pt"]  # the spec is stored with the run
    finally:
        torch.set_num_threads(max(1, os.cpu_count() or 1))


def test_a_resume_may_turn_keep_epochs_on(last_pt, tmp_path):
    out = tmp_path / "run"
    assert train_main(["--resume", str(last_pt), "--epochs", "2", "--keep-epochs", "all", "--out", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.glob("epoch_*.pt")) == ["epoch_2.pt"]  # epoch 1 was trained before the resume
    assert load_checkpoint(out / "epoch_2.pt")["config"]["keep_epochs"] == "all"


@pytest.mark.parametrize("spec, item", [("0", "'0'"), ("10,ten", "'ten'"), ("-3", "'-3'"), ("1.5", "'1.5'")])
def test_a_malformed_keep_epochs_is_refused_before_training(tmp_path, capsys, spec, item):
    out = tmp_path / "run"
    rc = train_main(["--dataset", "mnist", "--epochs", "1", "--steps", "3", "--limit-train", "64", "--limit-test", "32",
                     "--device", "cpu", f"--keep-epochs={spec}", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "field 'keep_epochs'" in err and item in err, err
    assert not list(out.glob("*.pt")) if out.exists() else True
