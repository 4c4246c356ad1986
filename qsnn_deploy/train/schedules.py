"""Learning-rate schedules, stepped once per minibatch (iteration ``t``), as in the paper.

* ``none``: ``lr_t = lr``
* ``lrstep``: halve every ``step_epochs`` epochs: ``lr_t = lr * 0.5 ** floor(t / (step_epochs * S))``
  (S = minibatches per epoch)
* ``lossstep``: halve whenever the epoch's mean training loss has not improved for ``patience``
  epochs (then the count starts again); decided at the end of each epoch
* ``cosine``: periodic cosine annealing (paper eq. 4), ``lr_t = eta_min + (lr - eta_min) *
  (1 + cos(pi * t / P)) / 2`` with P = ``period_epochs * S`` iterations (10 epochs in the paper).
  The cosine keeps going past P, so the rate falls to ``eta_min`` over P iterations, rises back to
  ``lr`` over the next P, and repeats (what ``torch.optim.lr_scheduler.CosineAnnealingLR`` with
  ``T_max = P`` does, which the authors used).
"""
from __future__ import annotations

import math

import torch

SCHEDULES = ("none", "lrstep", "lossstep", "cosine")


class LRSchedule:
    """Drives the optimizer's learning rate. Call :meth:`step_batch` after each optimizer step and
    :meth:`step_epoch` with the epoch's mean training loss at the end of each epoch."""

    def __init__(self, optimizer: torch.optim.Optimizer, kind: str, lr: float, steps_per_epoch: int,
                 period_epochs: float = 10, step_epochs: int = 10, patience: int = 3, eta_min: float = 0.0):
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
        if steps_per_epoch < 1:
            raise ValueError("steps_per_epoch must be >= 1")
        self.optimizer = optimizer
        self.kind = kind
        self.base_lr = float(lr)
        self.steps_per_epoch = int(steps_per_epoch)
        self.period = max(1, int(round(period_epochs * steps_per_epoch)))
        self.step_epochs = int(step_epochs)
        self.patience = int(patience)
        self.eta_min = float(eta_min)
        self.iteration = 0
        self.loss_factor = 1.0  # lossstep: product of the halvings so far
        self.best_loss = math.inf
        self.bad_epochs = 0
        self._apply()

    def lr_at(self, t: int) -> float:
        """The learning rate at iteration ``t`` (closed form; ``lossstep`` uses its current factor)."""
        if self.kind == "cosine":
            return self.eta_min + (self.base_lr - self.eta_min) * (1.0 + math.cos(math.pi * t / self.period)) / 2.0
        if self.kind == "lrstep":
            return self.base_lr * 0.5 ** (t // (self.step_epochs * self.steps_per_epoch))
        if self.kind == "lossstep":
            return self.base_lr * self.loss_factor
        return self.base_lr

    @property
    def lr(self) -> float:
        """The learning rate the optimizer uses now (its first parameter group's)."""
        return self.optimizer.param_groups[0]["lr"]

    def _apply(self) -> None:
        # a group's optional "lr_scale" multiplies the schedule's rate (e.g. the learned Xylo dashes)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.iteration) * float(group.get("lr_scale", 1.0))

    def step_batch(self) -> None:
        """Advance one iteration (call after each optimizer step) and set the new rate."""
        self.iteration += 1
        self._apply()

    def step_epoch(self, train_loss: float) -> None:
        """End of an epoch: ``lossstep`` halves the rate after ``patience`` epochs without a lower
        mean training loss; the other schedules ignore it.
        """
        if self.kind != "lossstep":
            return
        if train_loss < self.best_loss:
            self.best_loss, self.bad_epochs = train_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                self.loss_factor *= 0.5
                self.bad_epochs = 0
                self._apply()

    def state_dict(self) -> dict:
        """The schedule's progress (iteration, lossstep factor and patience count), for resuming."""
        return {"iteration": self.iteration, "loss_factor": self.loss_factor,
                "best_loss": self.best_loss if math.isfinite(self.best_loss) else None, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` and set the optimizer's rate accordingly."""
        self.iteration = int(state["iteration"])
        self.loss_factor = float(state["loss_factor"])
        self.best_loss = math.inf if state["best_loss"] is None else float(state["best_loss"])
        self.bad_epochs = int(state["bad_epochs"])
        self._apply()
