"""Early stopping on a validation score (higher is better) that restores the best weights."""
from __future__ import annotations

import copy
import math

import torch.nn as nn


class EarlyStopping:
    """Stop after ``patience`` epochs without improvement of ``score`` by more than ``min_delta``;
    :meth:`restore_best` loads the best epoch's weights back into the model."""

    def __init__(self, patience: int = 10, min_delta: float = 0.0):
        if patience < 1:
            raise ValueError("patience must be >= 1")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best_score = -math.inf
        self.best_epoch = -1
        self.best_state: dict | None = None
        self.bad_epochs = 0

    def update(self, score: float, model: nn.Module, epoch: int) -> bool:
        """Record an epoch's score; True when training should stop."""
        if score > self.best_score + self.min_delta:
            self.best_score, self.best_epoch, self.bad_epochs = float(score), int(epoch), 0
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore_best(self, model: nn.Module) -> bool:
        """Load the best weights; False if no epoch was recorded."""
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True
