"""``qsnn-train`` starts itself with glibc's malloc tuned for training (:mod:`qsnn_deploy.train.malloc_tuning`):
when it applies, that a user's own settings and ``QSNN_MALLOC_TUNING=0`` are respected, that the command
really runs with the settings, and that the trained weights are the same with and without them."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qsnn_deploy.checkpoint import load_checkpoint
from qsnn_deploy.train.malloc_tuning import TUNED_MALLOC, malloc_settings, tuned_environ

REPO = Path(__file__).resolve().parents[1]
GLIBC_LINUX = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.parametrize("environ, system, libc, tuned", [
    ({"PATH": "/bin"}, "linux", "glibc", True),
    ({"PATH": "/bin"}, "darwin", "", False),
    ({"PATH": "/bin"}, "linux", "musl", False),
    ({"QSNN_MALLOC_TUNING": "0"}, "linux", "glibc", False),
    ({"QSNN_MALLOC_TUNING": "1"}, "linux", "glibc", True),
    ({"MALLOC_TOP_PAD_": "5"}, "linux", "glibc", False),
    ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, "linux", "glibc", False),
    (dict(TUNED_MALLOC), "linux", "glibc", False),  # the re-executed process: no second re-execution
])
def test_tuned_environ_applies_only_where_nothing_was_chosen(environ, system, libc, tuned):
    env = tuned_environ(environ, system=system, libc=libc)
    if tuned:
        assert env == {**environ, **TUNED_MALLOC}
    else:
        assert env is None


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TUNED_MALLOC and k not in ("GLIBC_TUNABLES", "QSNN_MALLOC_TUNING")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **extra)
    return env


def _settings_line(env: dict[str, str]) -> str:
    """The allocator line of ``qsnn-train -v`` (run as a command, refused right after it: an impossible config)."""
    done = subprocess.run([sys.executable, "-X", "utf8", "-m", "qsnn_deploy.cli.train", "--dataset", "mnist-rows",
                           "--profile", "loihi", "-v"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "error: dataset mnist-rows" in done.stderr, done.stderr
    return next(line for line in done.stderr.splitlines() if "malloc" in line)


@pytest.mark.skipif(not GLIBC_LINUX, reason="the malloc tuning applies to Linux with glibc only")
def test_the_command_runs_with_the_tuned_settings_unless_the_user_chose():
    tuned = _settings_line(_clean_env())
    assert all(f"{k}={v}" in tuned for k, v in TUNED_MALLOC.items()), tuned
    assert "defaults (QSNN_MALLOC_TUNING=0)" in _settings_line(_clean_env(QSNN_MALLOC_TUNING="0"))
    own = _settings_line(_clean_env(MALLOC_TOP_PAD_="4096"))
    assert own.endswith("glibc malloc settings: MALLOC_TOP_PAD_=4096"), own
    assert malloc_settings({}).startswith("allocator defaults")


def _tiny_run(out: Path, env: dict[str, str]) -> dict:
    cmd = [sys.executable, "-m", "qsnn_deploy.cli.train", "--dataset", "mnist", "--epochs", "2", "--steps", "3",
           "--limit-train", "192", "--limit-test", "32", "--batch-size", "64", "--seed", "4", "--device", "cpu",
           "--out", str(out), "-q"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return load_checkpoint(out / "model.pt")


@pytest.mark.skipif(not GLIBC_LINUX, reason="the malloc tuning applies to Linux with glibc only")
def test_tuned_and_default_malloc_train_the_same_weights(tmp_path):
    """Only where freed memory goes differs: the same command, tuned and with QSNN_MALLOC_TUNING=0, ends with
    equal weights, BatchNorm statistics and per-epoch history."""
    a = _tiny_run(tmp_path / "tuned", _clean_env())
    b = _tiny_run(tmp_path / "default", _clean_env(QSNN_MALLOC_TUNING="0"))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    ha, hb = a["train_state"]["history"]["epochs"], b["train_state"]["history"]["epochs"]
    assert [(e["train_loss"], e["test_accuracy"]) for e in ha] == [(e["train_loss"], e["test_accuracy"]) for e in hb]
