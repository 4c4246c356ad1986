"""``bench/accuracy_table.py --schedules`` (issue 28, item 3): one row per LR schedule, trained for real on a
few MNIST images; each row records the per-epoch LR its schedule gave, the table names every schedule with its
parameter, ``--plot`` draws the curves, and a rerun with the same ``--work-dir`` reuses the finished runs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "accuracy_table.py"


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    from conftest import missing_data
    from qsnn_deploy.data import default_data_dir

    if not (default_data_dir("mnist") / "train-images-idx3-ubyte.gz").is_file():
        missing_data("no MNIST training images")
    work = tmp_path_factory.mktemp("table2")
    args = ["--datasets", "mnist", "--precisions", "int4", "--schedules", "none", "lrstep", "--epochs", "2",
            "--step-epochs", "1", "--seeds", "0", "--steps", "3", "--eval-steps", "4", "--limit-train", "256",
            "--limit-test", "64", "--limit-deployed", "32", "--device", "cpu", "--work-dir", str(work / "runs"), "--json", str(work / "rows.json"),
            "--markdown", str(work / "table.md"), "--plot", str(work / "curves.png")]
    first = _run(args)
    assert first.returncode == 0, first.stderr[-3000:]
    return work, args, first


def test_each_schedule_is_a_row_with_the_lr_it_gave(table_run):
    work, _, first = table_run
    rows = {r["schedule"]: r for r in json.loads((work / "rows.json").read_text())}
    assert set(rows) == {"none", "lrstep"}
    for r in rows.values():
        assert r["epochs"] == 2 and r["n_train"] == 256 and r["n_test"] == 64 and r["T_eval"] == 4
        assert r["n_deployed"] == 32 and abs(r["deployed_acc"] * 32 / 100 - round(r["deployed_acc"] * 32 / 100)) < 1e-9  # measured on 32, not 64
        assert len(r["per_epoch_acc_T_train"]) == len(r["per_epoch_lr"]) == len(r["per_epoch_train_loss"]) == 2
        assert 0 <= r["deployed_acc"] <= 100 and r["deployed_by"] == "frozen integer net, NumPy reference"
    lr0 = rows["none"]["per_epoch_lr"][0]
    assert rows["none"]["per_epoch_lr"] == [lr0, lr0]                     # no schedule: the preset's rate throughout
    assert rows["lrstep"]["per_epoch_lr"] == pytest.approx([lr0 / 2, lr0 / 4])  # halved after every epoch (N = 1)
    md = (work / "table.md").read_text()
    assert "| none |" in md and "LRStep (halve every 1 ep)" in md and "256 training images" in md
    assert "64 test images (deployed column: 32 test images)" in md
    assert md in first.stdout
    png = (work / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_a_rerun_reuses_the_finished_runs_and_from_json_redraws(table_run):
    work, args, _ = table_run
    before = json.loads((work / "rows.json").read_text())
    again = _run(args)
    assert again.returncode == 0, again.stderr[-3000:]
    after = json.loads((work / "rows.json").read_text())
    for a, b in zip(before, after):  # nothing retrained: the same weights, so the same figures
        assert a["per_epoch_acc_T_train"] == b["per_epoch_acc_T_train"] and a["deployed_acc"] == b["deployed_acc"]
        assert a["train_seconds"] == b["train_seconds"]
    (work / "curves.png").unlink()
    redraw = _run(["--from-json", str(work / "rows.json"), "--plot", str(work / "curves.png")])
    assert redraw.returncode == 0, redraw.stderr[-3000:]
    assert "LRStep (halve every 1 ep)" in redraw.stdout and (work / "curves.png").is_file()
