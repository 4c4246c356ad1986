"""--quiet / --verbose on every command line, the package logger, and the progress-bar switch."""
from __future__ import annotations

import argparse
import logging

import pytest
import torch

from qsnn_deploy import freeze
from qsnn_deploy.cli import common
from qsnn_deploy.cli import export as export_cli
from qsnn_deploy.cli import report as report_cli
from qsnn_deploy.cli import train as train_cli
from qsnn_deploy.cli import verify as verify_cli
from qsnn_deploy.log import LOGGER_NAME, get_logger, progress_enabled
from qsnn_deploy.models import build_model, mnist_arch


@pytest.fixture(scope="module")
def qsnn_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("net") / "tiny.qsnn"
    freeze(build_model(mnist_arch(num_steps=4)).eval()).save(path)
    return path


def _verify(args, capsys):
    rc = verify_cli.main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_default_verify_shows_info_lines_on_stdout(qsnn_file, tmp_path, capsys):
    rc, out, err = _verify([str(qsnn_file), "--random", "-n", "2", "--steps", "3", "--json", str(tmp_path / "v.json")], capsys)
    assert rc == 0
    assert "inputs: random" in out and f"wrote {tmp_path / 'v.json'}" in out
    assert "BIT-EXACT" in out  # the verdict
    assert "debug:" not in err


@pytest.fixture
def progress_bars(monkeypatch):
    """Records the ``disable`` argument of every rich progress bar verify_cli opens."""
    from rich.progress import Progress

    seen: list[bool] = []

    def recording(*args, **kwargs):
        seen.append(kwargs.get("disable", False))
        return Progress(*args, **kwargs)

    monkeypatch.setattr(verify_cli, "Progress", recording)
    return seen


def test_quiet_keeps_results_and_drops_info_and_progress(qsnn_file, tmp_path, capsys, progress_bars):
    js = tmp_path / "v.json"
    rc, out, err = _verify([str(qsnn_file), "--random", "-n", "2", "--steps", "3", "--json", str(js), "--quiet"], capsys)
    assert rc == 0 and js.is_file()  # the work is done
    assert "BIT-EXACT" in out and "predictions" in out  # results stay on stdout
    assert "inputs:" not in out and "wrote" not in out  # informational lines are gone
    assert "debug:" not in err
    assert progress_bars == [True]  # the progress bar is disabled
    assert _verify([str(qsnn_file), "--random", "-n", "2", "--steps", "3"], capsys)[0] == 0
    assert progress_bars == [True, False]  # and shown again without --quiet


def test_verbose_adds_debug_on_stderr(qsnn_file, capsys):
    rc, out, err = _verify([str(qsnn_file), "--random", "-n", "2", "--steps", "3", "-v"], capsys)
    assert rc == 0 and "BIT-EXACT" in out
    assert f"debug: qsnn_deploy.cli.common: loading {qsnn_file}" in err
    assert "debug:" not in out


def test_quiet_and_verbose_exclude_each_other(qsnn_file, capsys):
    with pytest.raises(SystemExit) as info:
        verify_cli.main([str(qsnn_file), "--random", "-q", "-v"])
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_export_quiet_writes_without_saying_so(qsnn_file, tmp_path, capsys):
    assert export_cli.main([str(qsnn_file), "--target", "numpy", "-o", str(tmp_path / "o"), "-q"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "o" / "tiny.qsnn").is_file()
    assert "wrote" not in out and "tiny: frozen" in out  # the layer table is the command's result


@pytest.mark.parametrize("argv", [["--help"], ["sweep", "--help"]])
def test_every_command_has_quiet_and_verbose(argv, capsys):
    for parser in (export_cli.build_parser(), verify_cli.build_parser(), report_cli.build_parser()):
        text = parser.format_help()
        assert "--quiet" in text and "--verbose" in text, parser.prog
    with pytest.raises(SystemExit):
        train_cli.main(argv)
    text = capsys.readouterr().out
    assert "--quiet" in text and "--verbose" in text


def test_run_cli_sets_and_restores_level_handler_and_progress():
    package = logging.getLogger(LOGGER_NAME)
    before = (package.level, list(package.handlers), progress_enabled())
    seen = {}

    def body() -> int:
        seen["level"] = package.getEffectiveLevel()
        seen["progress"] = progress_enabled()
        seen["show"] = common.show_progress()
        return 0

    for flags, level, progress in (({"quiet": True}, logging.WARNING, False), ({}, logging.INFO, True),
                                   ({"verbose": True}, logging.DEBUG, True)):
        assert common.run_cli(body, argparse.Namespace(**flags)) == 0
        assert (seen["level"], seen["progress"], seen["show"]) == (level, progress, progress), flags
        assert (package.level, list(package.handlers), progress_enabled()) == before  # restored


def test_cli_handler_routes_levels(capsys):
    handler = common.CLIHandler()
    log = logging.getLogger("qsnn_deploy.test_cli_logging")
    for level, text in ((logging.INFO, "an info line"), (logging.WARNING, "careful\nnow"), (logging.DEBUG, "detail")):
        handler.handle(log.makeRecord(log.name, level, __file__, 1, text, None, None))
    out, err = capsys.readouterr()
    assert out == "an info line\n"
    assert err == "warning: careful now\ndebug: qsnn_deploy.test_cli_logging: detail\n"


def test_library_loggers_are_children_of_the_package_logger():
    assert get_logger("qsnn_deploy.train.trainer").name == "qsnn_deploy.train.trainer"
    assert get_logger("__main__").name == "qsnn_deploy.__main__"  # python -m qsnn_deploy.cli.train
    from qsnn_deploy.train.trainer import TrainConfig, Trainer

    trainer = Trainer(TrainConfig(dataset="mnist", epochs=1, device="cpu"))
    assert trainer.log.__self__ is logging.getLogger("qsnn_deploy.train.trainer")  # logger.info, not print
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger(LOGGER_NAME).handlers)


def test_train_quiet_prints_nothing_and_default_shows_progress(tmp_path, capsys):
    """qsnn-train: the progress lines are INFO (stdout), the tqdm bars go to stderr; --quiet drops both."""
    from qsnn_deploy.data import default_data_dir

    data = default_data_dir("mnist")
    if not data.exists():
        from conftest import missing_data
        missing_data("../shared/data/mnist not present")
    args = ["--dataset", "mnist", "--limit-train", "16", "--limit-test", "8", "--epochs", "1", "--steps", "2",
            "--batch-size", "8", "--data-dir", str(data)]
    assert train_cli.main(args + ["--out", str(tmp_path / "q"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert (tmp_path / "q" / "model.pt").is_file() and out == "" and err == ""
    assert train_cli.main(args + ["--out", str(tmp_path / "d")]) == 0
    out, err = capsys.readouterr()
    assert "epoch 1: loss" in out and "test accuracy" in out
    assert "epoch 1/1" in err  # tqdm's bar
