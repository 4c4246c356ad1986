"""``qsnn_deploy.train.history``: the per-step training history stored as columns in a checkpoint, read back
to the identical Python values, the older list form still read, malformed columns refused by name."""
from __future__ import annotations

import io

import pytest
import torch

from qsnn_deploy.errors import CheckpointError
from qsnn_deploy.train.history import STEP_FIELDS, pack_steps, unpack_steps


def _steps(losses: list[float]) -> list[dict]:
    return [{"iteration": i + 1, "epoch": 1 + i // 3, "loss": loss, "lr": 2e-3 * (1 - i / 7) + 1e-17 * i}
            for i, loss in enumerate(losses)]


def _saved_size(obj) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return len(buf.getvalue())


def test_float32_losses_round_trip_exactly_in_a_float32_column():
    losses = [torch.tensor(v, dtype=torch.float32).item() for v in (9.6604919, 0.1993, 1e-30, 3.4e38, 0.0)]
    steps = _steps(losses)
    packed = pack_steps(steps)
    assert packed["loss"].dtype == torch.float32 and packed["lr"].dtype == torch.float64
    assert packed["iteration"].dtype == packed["epoch"].dtype == torch.int32
    back = unpack_steps(packed)
    assert back == steps and all(type(s["iteration"]) is int and type(s["loss"]) is float for s in back)


def test_a_loss_that_is_not_a_float32_value_keeps_float64():
    steps = _steps([0.1, 1 / 3])  # Python floats no float32 holds
    packed = pack_steps(steps)
    assert packed["loss"].dtype == torch.float64
    assert unpack_steps(packed) == steps


def test_columns_survive_a_weights_only_save_at_20_bytes_a_step():
    steps = _steps([torch.rand(()).item() for _ in range(3000)])
    buf = io.BytesIO()
    torch.save({"steps": pack_steps(steps)}, buf)
    buf.seek(0)
    assert unpack_steps(torch.load(buf, weights_only=True)["steps"]) == steps
    assert _saved_size(pack_steps(steps)) < 20 * len(steps) + 3000 < _saved_size(steps)  # the list: ≈ 40-50 B a step


def test_the_older_list_form_is_read_as_it_is():
    steps = _steps([1.5, 0.25])
    assert unpack_steps(steps) == steps and unpack_steps([]) == []
    assert unpack_steps(pack_steps([])) == []


@pytest.mark.parametrize("edit, match", [
    (lambda c: c.update(loss=c["loss"][:-1]), r"columns of different lengths \[2, 3\]"),
    (lambda c: c.pop("lr"), r"steps\.lr: expected a 1-D tensor"),
    (lambda c: c.update(epoch=[1, 1, 1]), r"steps\.epoch: expected a 1-D tensor"),
    (lambda c: c.update(iteration=c["iteration"].reshape(3, 1)), r"steps\.iteration: expected a 1-D tensor"),
], ids=["lengths", "missing", "not-a-tensor", "2-d"])
def test_malformed_columns_are_refused_naming_the_field(edit, match):
    packed = pack_steps(_steps([1.0, 0.5, 0.25]))
    edit(packed)
    with pytest.raises(CheckpointError, match=match):
        unpack_steps(packed)


def test_malformed_list_or_type_is_refused():
    with pytest.raises(CheckpointError, match="every step must hold " + ", ".join(STEP_FIELDS)):
        unpack_steps([{"iteration": 1, "epoch": 1, "loss": 0.5}])
    with pytest.raises(CheckpointError, match="expected columns or a list, got str"):
        unpack_steps("steps")


def test_an_iteration_outside_int32_is_refused_when_packing():
    with pytest.raises(ValueError, match="'iteration' is outside 0..2147483647"):
        pack_steps([{"iteration": 2**31, "epoch": 1, "loss": 0.5, "lr": 1e-3}])
