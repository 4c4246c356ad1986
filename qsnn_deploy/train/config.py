"""What a training run depends on: :class:`TrainConfig` (stored in every checkpoint) and how its
preset-dependent fields are filled in from the dataset's Table I preset (:func:`TrainConfig.resolved`).

Units: ``num_steps`` / ``eval_steps`` are time steps T; ``lr`` is Adam's learning rate; ``beta`` the
membrane decay per step (0..1), ``alpha`` the current decay of a cuba neuron (0..1); ``threshold`` θ in
units of the synaptic current; epochs count passes over the training set (``period_epochs`` may be
fractional).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import TrainConfigError
from ..models import PRESETS
from ..profiles import LOIHI_DEFAULT_BETA, LOIHI_DEFAULT_LR, check_profile_name

PRESET_OF = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "dvs128": "dvs128", "synthetic-dvs": "dvs128",
             "mnist-rows": "mnist-rows", "fashion-mnist-rows": "fashion-mnist-rows"}
#: the datasets read as rows over time (qsnn_deploy.data.rows): 16-channel nets, the xylo profile
ROW_DATASETS = ("mnist-rows", "fashion-mnist-rows")
#: hidden Xylo neurons when --hidden is not given (Xylo IMU: at most 128 take input and feed the readout)
XYLO_DEFAULT_HIDDEN = 128


#: neuron kinds qsnn-train builds (``--neuron``)
NEURON_CHOICES = ("lif", "cuba")
#: the current decay α of ``--neuron cuba`` when none is given (one step halves the current)
CUBA_DEFAULT_ALPHA = 0.5


def keep_epoch_numbers(spec: str) -> frozenset[int] | None:
    """The epochs (counted from 1) after which ``--keep-epochs spec`` keeps a copy of the checkpoint:
    ``""`` none, ``"all"`` every epoch (``None`` here), else a comma list of positive integers such as
    ``"10,30,50"`` (the ends of the paper's 10-epoch cosine descents). A malformed spec raises
    :class:`~qsnn_deploy.errors.TrainConfigError` naming the field and the offending item."""
    spec = (spec or "").strip()
    if spec == "all":
        return None
    numbers = set()
    for item in filter(None, (part.strip() for part in spec.split(","))):
        if not item.isdigit() or int(item) < 1:
            raise TrainConfigError(f"field 'keep_epochs': {item!r} is not an epoch number (a positive integer); "
                                   "give 'all' or a comma list such as 10,30,50")
        numbers.add(int(item))
    return frozenset(numbers)


@dataclass
class TrainConfig:
    """Everything a run depends on (stored in every checkpoint). ``None`` = the dataset's preset."""

    dataset: str = "mnist"
    precision: str = "int4"
    schedule: str = "cosine"
    epochs: int = 1
    num_steps: int | None = None          # T while training
    eval_steps: int | None = None         # T for test accuracy and the deployed model (default: num_steps)
    batch_size: int | None = None
    lr: float | None = None
    beta: float | None = None
    threshold: float | None = None
    slope: float | None = None
    dropout: float | None = None
    reset: str = "subtract"
    neuron: str = "lif"                   # neuron kind of every spiking layer: "lif" (Leaky) or "cuba" (Synaptic)
    alpha: float | None = None            # cuba: current decay α (default CUBA_DEFAULT_ALPHA)
    deploy_faithful: bool = True
    profile: str = "default"              # hardware profile (qsnn_deploy.profiles): "default", "loihi" or "xylo"
    xylo_chip: str = "syns63300"          # xylo profile: the chip version the net must fit (qsnn_deploy.xylo.chips)
    hidden: int | None = None             # rows datasets: hidden Xylo neurons per layer (default XYLO_DEFAULT_HIDDEN)
    hidden_layers: int = 1                # rows datasets: recurrent hidden Xylo layers
    steps_per_row: int = 1                # rows datasets: steps each image row is shown for
    blank_steps: int = 0                  # rows datasets: steps of silence after the last row
    period_epochs: float | None = None    # cosine period
    step_epochs: int = 10                 # lrstep
    loss_patience: int = 3                # lossstep
    eta_min: float = 0.0
    grad_clip: float | None = None        # max gradient norm; 0 = off
    weight_clip: float | None = None      # |w| bound for synaptic weights; 0 = off
    correct_rate: float = 0.8
    incorrect_rate: float = 0.2
    loss: str = "mse_count"               # "mse_count" (the papers') or "ce_count" (cross entropy of spike counts)
    anneal_alpha: float | None = None     # threshold annealing: fraction per step
    anneal_initial: float | None = None   # θ_0 (default: the preset threshold)
    anneal_final: float | None = None     # θ_final
    early_stopping: int | None = None     # patience in epochs (validation accuracy)
    keep_epochs: str = ""                 # also write epoch_<N>.pt after these epochs: "", "all" or "10,30,50"
    val_size: int = 0
    limit_train: int | None = None
    limit_test: int | None = None
    seed: int = 0
    init_from: str | None = None          # start from this checkpoint's weights (fine-tuning; same arch)
    fit_frac_bits: bool = True            # default profile: re-fit each layer's F after every epoch (no state can clip)
    data_dir: str | None = None
    device: str = "auto"
    out_dir: str = "runs/qsnn"
    name: str = "model"

    def resolved(self) -> "TrainConfig":
        """A copy with every preset-dependent ``None`` filled in."""
        p = PRESETS[PRESET_OF[self.dataset]]
        c = TrainConfig(**asdict(self))
        if c.dataset in ROW_DATASETS and c.profile == "default":
            c.profile = "xylo"  # the 16-channel rows datasets train Xylo nets
        check_profile_name(c.profile)
        if c.dataset in ROW_DATASETS:
            from ..data.rows import encoding_steps

            if c.profile != "xylo":
                raise TrainConfigError(f"dataset {c.dataset}: the rows datasets train SynSense Xylo nets (--profile xylo), "
                                       f"not --profile {c.profile}")
            c.hidden = XYLO_DEFAULT_HIDDEN if c.hidden is None else int(c.hidden)
            steps = encoding_steps(self.encoding())
            for key in ("num_steps", "eval_steps"):
                if getattr(c, key) not in (None, steps):
                    raise TrainConfigError(f"dataset {c.dataset}: T is set by the rows encoding (16 rows × {c.steps_per_row} "
                                           f"step(s) + {c.blank_steps} blank = {steps}); {key} = {getattr(c, key)} differs")
                setattr(c, key, steps)
        if c.profile == "loihi":
            c.reset, c.deploy_faithful = "zero", True
            if c.beta is None:
                c.beta = LOIHI_DEFAULT_BETA
            if c.lr is None:
                c.lr = LOIHI_DEFAULT_LR
        for key in ("batch_size", "lr", "beta", "threshold", "slope", "dropout", "grad_clip", "weight_clip", "period_epochs"):
            if getattr(c, key) is None:
                setattr(c, key, p[key])
        if c.neuron not in NEURON_CHOICES:
            raise TrainConfigError(f"field 'neuron': must be one of {NEURON_CHOICES}, got {c.neuron!r}")
        if c.neuron == "cuba" and c.alpha is None:
            c.alpha = CUBA_DEFAULT_ALPHA
        if c.period_epochs is None:  # a preset without a period (the rows datasets): one cosine over the run
            c.period_epochs = float(max(c.epochs, 1))
        c.num_steps = c.num_steps or p["num_steps"]
        c.eval_steps = c.eval_steps or c.num_steps
        keep_epoch_numbers(c.keep_epochs)  # refuse a malformed spec before any data is read
        if c.early_stopping is not None and c.early_stopping < 0:
            raise TrainConfigError(f"field 'early_stopping': the patience must be >= 1 epoch (0 = off), got {c.early_stopping}")
        if c.anneal_alpha is not None and not 0 <= c.anneal_alpha <= 1:
            raise TrainConfigError(f"field 'anneal_alpha': must be in (0, 1] (0 = off), got {c.anneal_alpha}")
        if c.early_stopping and not c.val_size:
            c.val_size = 5000 if c.dataset in ("mnist", "fashion-mnist") else 0
        return c

    def encoding(self) -> dict[str, Any]:
        """The rows encoding (:mod:`qsnn_deploy.data.rows`) of a rows dataset: 16×16, counts 0..15,
        ``steps_per_row`` steps a row, ``blank_steps`` blank steps."""
        from ..data.rows import rows_encoding

        return rows_encoding(steps_per_row=self.steps_per_row, blank_steps=self.blank_steps)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """The config stored in a checkpoint (unknown keys from other versions are ignored)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values.setdefault("fit_frac_bits", False)  # runs stored before F was fitted in training continue as started
        return cls(**values)
