"""Hyperparameter search like the paper's (Optuna, TPE sampler).

Each trial trains with :class:`~qsnn_deploy.train.Trainer` and reports the best validation accuracy
(a held-out tail of the training set, never the test set). The study lives in any Optuna storage:
``sqlite:///sweep.db`` locally, or a PostgreSQL URL shared by several machines (each runs
``qsnn-train sweep`` against the same ``--storage`` and ``--study``).
"""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..log import get_logger
from .trainer import TrainConfig, Trainer

if TYPE_CHECKING:
    import optuna

logger = get_logger(__name__)

#: Search space: (low, high, log-scale) per hyperparameter.
SPACE: dict[str, tuple[float, float, bool]] = {
    "beta": (0.3, 0.99, False),
    "threshold": (0.5, 3.0, False),
    "slope": (2.0, 25.0, True),
    "lr": (5e-4, 5e-3, True),
    "dropout": (0.0, 0.4, False),
}


def suggest(trial: optuna.Trial, base: TrainConfig) -> TrainConfig:
    """A config with the searched values drawn by ``trial``."""
    values = {name: trial.suggest_float(name, lo, hi, log=log) for name, (lo, hi, log) in SPACE.items()}
    return replace(base, **values, out_dir=str(Path(base.out_dir) / f"trial{trial.number:03d}"), name="model")


def run_sweep(base: TrainConfig, trials: int, storage: str | None, study_name: str, seed: int = 0,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run ``trials`` trials (adding to the study if it exists); return the best trial's summary.

    ``log`` receives the closing line (default: the ``qsnn_deploy.train.sweep`` logger, INFO); each
    trial's training lines go to the logger at DEBUG (``qsnn-train sweep --verbose``)."""
    import optuna

    if not base.val_size:
        base = replace(base, val_size=1000 if base.limit_train is None or base.limit_train > 4000 else max(1, base.limit_train // 5))
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=seed))

    def objective(trial) -> float:
        cfg = suggest(trial, base)
        metrics = Trainer(cfg, log=lambda m: logger.debug("trial %d: %s", trial.number, m)).fit()
        trial.set_user_attr("test_accuracy", metrics.get("test_accuracy"))
        trial.set_user_attr("config", {k: v for k, v in asdict(cfg).items() if isinstance(v, (int, float, str, bool)) or v is None})
        return float(metrics.get("best_val_accuracy", metrics.get("test_accuracy", 0.0)))

    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    summary = {"study": study_name, "storage": storage, "n_trials": len(study.trials), "best_value": best.value,
               "best_params": best.params, "best_trial": best.number}
    (log or logger.info)(f"best trial {best.number}: validation accuracy {100 * best.value:.2f}% with {best.params}")
    return summary
