"""The papers' training recipe: spike-count loss, LR schedules, threshold annealing, early
stopping, clipping, resumable checkpoints, DDP, sweeps."""
from .annealing import ThresholdAnnealer
from .early_stopping import EarlyStopping
from .losses import predict, spike_count_loss
from .schedules import SCHEDULES, LRSchedule
from .trainer import TrainConfig, Trainer, evaluate

__all__ = ["TrainConfig", "Trainer", "evaluate", "LRSchedule", "SCHEDULES", "ThresholdAnnealer", "EarlyStopping",
           "spike_count_loss", "predict"]
