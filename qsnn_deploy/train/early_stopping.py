"""Early stopping on a validation score (higher is better) that restores the best weights.

Its whole state (best score and epoch, epochs without improvement, the best epoch's weights) goes into
every ``last.pt`` (:meth:`EarlyStopping.state_dict`), so a run interrupted after its best epoch resumes
to the same decision and the same restored weights as an uninterrupted one (issue 28).
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import torch
import torch.nn as nn

from ..errors import TrainConfigError


class EarlyStopping:
    """Stop after ``patience`` epochs without improvement of ``score`` by more than ``min_delta``;
    :meth:`restore_best` loads the best epoch's weights back into the model."""

    def __init__(self, patience: int = 10, min_delta: float = 0.0):
        if patience < 1:
            raise TrainConfigError(f"field 'early_stopping': the patience must be >= 1 epoch, got {patience}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best_score = -math.inf
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0

    def update(self, score: float, model: nn.Module, epoch: int) -> bool:
        """Record an epoch's score; True when training should stop."""
        if self._count(score, epoch):
            self.best_state = _copy_weights(model)
        return self.bad_epochs >= self.patience

    def _count(self, score: float, epoch: int) -> bool:
        """Advance the counters by one epoch's score; True when it is a new best."""
        if score > self.best_score + self.min_delta:
            self.best_score, self.best_epoch, self.bad_epochs = float(score), int(epoch), 0
            return True
        self.bad_epochs += 1
        return False

    def restore_best(self, model: nn.Module) -> bool:
        """Load the best weights; False if no epoch was recorded (or its weights are not held)."""
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True

    # ------------------------------------------------------------------ persistence (resume)
    def state_dict(self) -> dict[str, Any]:
        """Plain data + tensors for a checkpoint's ``train_state``: what :meth:`load_state_dict` restores."""
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved. The patience is this stopper's own: a resume may change it
        (``--early-stopping``), and the epochs already counted without improvement count against it."""
        self.best_score = float(state["best_score"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
        best = state.get("best_state")
        self.best_state = None if best is None else dict(best)  # tensors read from the checkpoint: already a copy

    def replay(self, scores: Iterable[tuple[int, float]], model: nn.Module, last_epoch: int) -> bool:
        """Rebuild the counters from a run's per-epoch ``(epoch, score)`` history, for a checkpoint written
        before the stopper's state was stored. ``model`` holds the weights of ``last_epoch``: they are the
        best weights when that epoch is the best one; otherwise the best epoch's weights are not known and
        this returns False (:meth:`restore_best` will then refuse)."""
        for epoch, score in scores:
            self._count(score, epoch)
        if self.best_epoch == last_epoch:
            self.best_state = _copy_weights(model)
            return True
        self.best_state = None
        return self.best_epoch < 0


def _copy_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``model``'s state dict (weights and BatchNorm statistics), detached from training."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
