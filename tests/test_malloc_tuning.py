"""Every ``qsnn-*`` command starts itself with glibc's malloc tuned for tensor work (:mod:`qsnn_deploy.malloc_tuning`):
when it applies, which processes are commands (console script or ``python -m``; a notebook, pytest or a user's
script importing the package are not), that a user's own settings and ``QSNN_MALLOC_TUNING=0`` are respected,
that the commands really run with the settings, and that trained weights and verify reports are the same with
and without them."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qsnn_deploy.checkpoint import load_checkpoint
from qsnn_deploy.malloc_tuning import COMMANDS, TUNED_MALLOC, command_of, malloc_settings, tuned_environ

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


PY = "/usr/bin/python3"


@pytest.mark.parametrize("orig_argv, command", [
    ([PY, "-m", "qsnn_deploy.cli.train", "--epochs", "2"], "qsnn-train"),
    ([PY, "-X", "utf8", "-u", "-m", "qsnn_deploy.cli.verify", "m.pt"], "qsnn-verify"),
    ([PY, "-W", "ignore", "-mqsnn_deploy.cli.report"], "qsnn-report"),
    ([PY, "/venv/bin/qsnn-export", "m.pt", "--target", "nir"], "qsnn-export"),
    ([PY, "-s", "/usr/local/bin/qsnn-train", "--resume", "last.pt"], "qsnn-train"),
    ([PY, "-m", "qsnn_deploy.cli.common"], None),
    ([PY, "-m", "pytest", "-m", "qsnn_deploy.cli.train"], None),  # pytest's -m is a marker, not the module
    ([PY, "-c", "import qsnn_deploy", "-m", "qsnn_deploy.cli.train"], None),
    ([PY, "-", "qsnn-train"], None),
    ([PY, "my_script.py", "qsnn-verify"], None),
    ([PY, "/tmp/qsnn-verify.py"], None),
    ([PY], None),  # interactive
])
def test_command_of_recognises_only_the_commands(orig_argv, command):
    assert command_of(orig_argv) == command


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


def _console_script(tmp_path: Path, command: str) -> Path:
    """The file pip writes for a ``[project.scripts]`` entry (``qsnn-verify = "qsnn_deploy.cli.verify:main"``)."""
    module, func = next(line.split(" = ")[1].strip('"').split(":") for line in
                        (REPO / "pyproject.toml").read_text().splitlines() if line.startswith(f"{command} = "))
    script = tmp_path / command
    script.write_text(f"import sys\nfrom {module} import {func}\nif __name__ == '__main__':\n    sys.exit({func}())\n")
    return script


@pytest.mark.skipif(not GLIBC_LINUX, reason="the malloc tuning applies to Linux with glibc only")
def test_the_command_runs_with_the_tuned_settings_unless_the_user_chose():
    tuned = _settings_line(_clean_env())
    assert all(f"{k}={v}" in tuned for k, v in TUNED_MALLOC.items()), tuned
    assert "defaults (QSNN_MALLOC_TUNING=0)" in _settings_line(_clean_env(QSNN_MALLOC_TUNING="0"))
    own = _settings_line(_clean_env(MALLOC_TOP_PAD_="4096"))
    assert own.endswith("glibc malloc settings: MALLOC_TOP_PAD_=4096"), own
    assert malloc_settings({}).startswith("allocator defaults")


@pytest.mark.skipif(not GLIBC_LINUX, reason="the malloc tuning applies to Linux with glibc only")
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_console_script_runs_with_the_tuned_settings(tmp_path, command):
    """Each command's console script (as pip writes it) restarts with the settings: its ``-v`` names them
    (each is refused right after the line: a model file that does not exist / a config it cannot train)."""
    args = ["--dataset", "mnist-rows", "--profile", "loihi"] if command == "qsnn-train" else [str(tmp_path / "none.pt")]
    if command == "qsnn-export":
        args += ["--target", "numpy", "-o", str(tmp_path / "out")]
    done = subprocess.run([sys.executable, str(_console_script(tmp_path, command)), *args, "-v"], env=_clean_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "error:" in done.stderr, done.stderr
    line = next(line for line in done.stderr.splitlines() if "malloc" in line)
    assert all(f"{k}={v}" in line for k, v in TUNED_MALLOC.items()), line


def test_importing_the_package_elsewhere_does_not_restart_the_process():
    """A notebook, pytest or a user's script that imports qsnn_deploy (and a command's module) keeps its
    process and its allocator: nothing is re-executed (the pid is the same, the variables are unset)."""
    code = ("import os; pid = os.getpid(); import qsnn_deploy; from qsnn_deploy.cli.verify import main; "
            "print(pid == os.getpid(), 'MALLOC_TOP_PAD_' in os.environ)")
    done = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
    assert "MALLOC_TOP_PAD_" not in os.environ  # this pytest process imported the package too


def _without_timings(value):
    """A verify report without its wall-clock fields (``seconds``, ``reference_seconds``)."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if not k.endswith("seconds")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


@pytest.mark.skipif(not GLIBC_LINUX, reason="the malloc tuning applies to Linux with glibc only")
def test_tuned_and_default_malloc_verify_the_same(tmp_path):
    """qsnn-verify on the shipped FashionMNIST model reports the same spikes and predictions both ways."""
    reports = []
    for name, env in (("tuned", _clean_env()), ("default", _clean_env(QSNN_MALLOC_TUNING="0"))):
        out = tmp_path / f"{name}.json"
        done = subprocess.run([sys.executable, "-m", "qsnn_deploy.cli.verify", str(REPO / "examples" / "fmnist_int4_qsnn.pt"),
                               "--random", "-n", "8", "--steps", "20", "--json", str(out), "-v"],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        assert ("MALLOC_TOP_PAD_" in done.stderr) == (name == "tuned"), done.stderr
        report = json.loads(out.read_text())
        reports.append(_without_timings(report))
    assert reports[0] == reports[1]
    assert reports[0]["all_exact"] and sum(layer["spikes"] for layer in reports[0]["backends"][0]["layers"]) > 0


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
