"""The papers' QAT recipe as one trainer (its config: :mod:`.config`; what a resume may change: :mod:`.resume`).

Per minibatch: forward over T steps (raw input at every step), spike-count MSE loss, backward,
gradient-norm clip, Adam step, weight clip (synaptic weights into [-c, c]), learning-rate schedule
step, optional threshold-annealing step. Per epoch: test (and validation) accuracy at the
deployment T, metrics written, checkpoint written (resumable), early stopping (restores the best
weights). Runs on CUDA when available; under ``torchrun`` it trains with DistributedDataParallel
(gloo on CPU, NCCL on GPU), each process taking a disjoint shard of every epoch's permutation.
"""
from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm import tqdm

from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import CheckpointError
from ..fileio import write_text_atomic
from ..log import get_logger, progress_enabled
from ..models import build_model, init_uniform_fan_in, preset_arch
from ..profiles import (apply_profile, calibrate_initial_firing, fit_frac_bits, frac_bits_of_layers,
                        project_to_state_budget, set_arch_frac_bits, unproven_frac_bits_message)
from ..nn.blocks import is_synapse
from .annealing import ThresholdAnnealer
from .config import PRESET_OF, ROW_DATASETS, TrainConfig, keep_epoch_numbers
from .datasets import ArrayDataset, load_datasets
from .early_stopping import EarlyStopping
from .history import History, pack_steps, unpack_steps
from .losses import predict, spike_count_loss
from .resume import RESUME_KEYS, RESUME_MAY_CHANGE, arch_difference, resume_config_differences
from .schedules import LRSchedule

if TYPE_CHECKING:
    from ..nn import QSequential

logger = get_logger(__name__)


#: arch fields of a spiking layer that only name its neuron kind (``--init-from`` may change them)
_KIND_FIELDS = ("kind", "alpha")


def _stored_frac_bits(arch: dict[str, Any]) -> dict[str, int]:
    """``{spiking layer name: F}`` of a stored arch spec."""
    return {e["name"]: int(e["frac_bits"]) for e in arch.get("layers") or []
            if isinstance(e, dict) and e.get("type") == "lif" and "frac_bits" in e and "name" in e}


def _without_kind(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in _KIND_FIELDS}


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's random generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else CPU; any other name as ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def evaluate(model: nn.Module, data: ArrayDataset, num_steps: int, device: torch.device, batch_size: int = 250,
             progress: bool = False) -> float:
    """Accuracy (fraction) of ``model`` on ``data`` at ``num_steps`` steps."""
    was = model.training
    model.eval()
    correct = 0
    it = range(0, len(data), batch_size)
    for start in tqdm(it, desc="  eval", leave=False, disable=not (progress and progress_enabled())):
        idx = np.arange(start, min(start + batch_size, len(data)))
        xb, yb = data.batch(idx, device)
        correct += int((predict(model(xb, num_steps=num_steps)) == yb).sum())
    model.train(was)
    return correct / max(len(data), 1)


def _stopping_score(record: dict[str, Any]) -> float:
    """The score early stopping ranks an epoch by: validation accuracy, else test accuracy, else −loss."""
    return float(record.get("val_accuracy", record.get("test_accuracy", -record["train_loss"])))


class Trainer:
    """Train one model from a :class:`TrainConfig`; :meth:`fit` returns the metrics dict."""

    def __init__(self, config: TrainConfig, resume: str | os.PathLike | None = None,
                 log: Callable[[str], None] | None = None, explicit: set[str] | frozenset[str] | None = None):
        """``resume``: a ``last.pt`` (or final checkpoint) of a qsnn-train run to continue. The run continues
        with the stored config; ``config`` may change only :data:`RESUME_MAY_CHANGE` (epochs, early_stopping,
        eval_steps, out_dir, device, data_dir, name), and a resume whose ``config`` differs in any other field (dataset,
        profile, precision, lr, ...; ``None`` = the preset on both sides), or whose checkpoint holds another
        architecture than the stored config builds, is refused with a :class:`CheckpointError` naming the
        field. ``explicit``: the config fields the user actually gave (the CLI passes the options on its
        command line); only those are compared, the others are taken from the checkpoint. ``None``: all.
        """
        self.resume_ckpt = load_checkpoint(resume) if resume else None
        resume_arch = None
        if self.resume_ckpt is not None:
            ts = self.resume_ckpt.get("train_state")
            missing = [k for k in RESUME_KEYS if not isinstance(ts, dict) or k not in ts]
            if missing:
                raise CheckpointError(f"{resume}: cannot resume training from it: field 'train_state' "
                                      f"{'is missing' if not isinstance(ts, dict) else 'lacks ' + ', '.join(missing)} "
                                      "(only last.pt / checkpoints written by qsnn-train hold it)")
            stored = TrainConfig.from_dict(self.resume_ckpt["config"])
            requested = config if explicit is None else replace(stored, **{k: getattr(config, k) for k in explicit})
            try:
                diffs = resume_config_differences(stored, requested)
            except (KeyError, ValueError) as exc:  # an unknown dataset / profile in the stored config
                raise CheckpointError(f"{resume}: cannot resume training from it: its config does not resolve: {exc}") from exc
            if diffs:
                what = "; ".join(f"field {n!r}: the checkpoint's run has {a!r}, this run asks for {b!r}" for n, a, b in diffs)
                raise CheckpointError(
                    f"{resume}: refusing to resume: it is another run ({what}). A resume continues the stored run "
                    f"and may change only {', '.join(RESUME_MAY_CHANGE)}; to start from these weights with other "
                    "settings use --init-from")
            if explicit is None or "epochs" in explicit:  # what a resume may change: how far to go (default: as planned),
                stored.epochs = config.epochs
            if explicit is None or "early_stopping" in explicit:  # and when to stop (the counters carry over)
                stored.early_stopping = config.early_stopping
            if config.eval_steps is not None:  # and the T the model is evaluated and saved at
                stored.eval_steps = config.eval_steps
            stored.out_dir, stored.device = config.out_dir, config.device
            if explicit is None or "data_dir" in explicit:  # the data may live elsewhere on another machine
                stored.data_dir = config.data_dir
            if explicit is None or "name" in explicit:
                stored.name = config.name
            if explicit is None or "keep_epochs" in explicit:
                stored.keep_epochs = config.keep_epochs
            config = stored
            resume_arch = self.resume_ckpt.get("arch")
        self.cfg = config.resolved()
        self.log = log if log is not None else logger.info  # progress lines: logger 'qsnn_deploy.train.trainer'
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.distributed and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and self.cfg.device != "cpu" else "gloo"
            dist.init_process_group(backend=backend)
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.device = pick_device(self.cfg.device)
        if self.device.type == "cuda" and self.distributed:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        self.out = Path(self.cfg.out_dir)
        self.is_main = self.rank == 0
        self.fitted_frac_bits: dict[str, int] = {}
        if resume_arch is not None and (self.cfg.fit_frac_bits or self.cfg.init_from):
            self.fitted_frac_bits = _stored_frac_bits(resume_arch)  # F is fitted state, like the weights
        if resume_arch is not None:
            diff = arch_difference(resume_arch, self.arch())
            if diff is not None:
                raise CheckpointError(f"{resume}: refusing to resume: its architecture is not the one its config "
                                      f"builds ({diff}; the checkpoint's value first)")

    # ------------------------------------------------------------------ setup
    def arch(self) -> dict[str, Any]:
        """The architecture spec (plain data) of this run: the dataset's preset arch with the config's
        values and hardware profile applied.
        """
        c = self.cfg
        if c.dataset in ROW_DATASETS:
            from ..models.zoo import xylo_arch

            arch = xylo_arch(hidden=c.hidden, precision=c.precision, threshold=c.threshold, slope=c.slope,
                             encoding=c.encoding(), dataset=c.dataset, hidden_layers=c.hidden_layers)
            return apply_profile(arch, c.profile, chip=c.xylo_chip)
        arch = preset_arch(PRESET_OF[c.dataset], precision=c.precision, num_steps=c.eval_steps,
                           deploy_faithful=c.deploy_faithful, reset=c.reset, beta=c.beta, threshold=c.threshold,
                           slope=c.slope, dropout=c.dropout)
        if c.neuron == "cuba":  # every spiking layer a current-based LIF (QSynaptic / snntorch.Synaptic)
            for entry in arch["layers"]:
                if entry.get("type") == "lif":
                    entry.update(kind="cuba", alpha=c.alpha)
            arch["name"] = f"{arch.get('name', 'net')}-cuba"
        arch = apply_profile(arch, c.profile, chip=c.xylo_chip)
        set_arch_frac_bits(arch, getattr(self, "fitted_frac_bits", {}))
        return arch

    def build(self) -> tuple[dict[str, Any], QSequential, torch.optim.Adam]:
        """Seed, build and initialise the model (U(±√(1/fan-in)), paper eq. 7-8) and its Adam optimizer:
        ``(arch, model, optimizer)``.
        """
        c = self.cfg
        seed_everything(c.seed)
        if c.init_from and self.resume_ckpt is None:  # the F the weights were fitted at come with them
            self.fitted_frac_bits = _stored_frac_bits(load_checkpoint(c.init_from).get("arch") or {})
        arch = self.arch()
        model = init_uniform_fan_in(build_model(arch)).to(self.device)
        if c.profile == "xylo":
            from ..xylo.profile import init_xylo

            init_xylo(model)
        if c.init_from and self.resume_ckpt is None:  # a resume loads its own weights (init_from may be gone)
            self._load_initial_weights(model, arch)
        self._project(model)  # start inside the profile's limits
        params: Any = model.parameters()
        if c.profile == "xylo":
            from ..xylo.profile import xylo_param_groups

            params = xylo_param_groups(model, c.lr)
        opt = torch.optim.Adam(params, lr=c.lr, betas=(0.9, 0.999))
        return arch, model, opt

    def _project(self, model: nn.Module) -> None:
        """The profile's projection after every optimizer step: loihi, the proven state budget
        (:func:`~qsnn_deploy.profiles.project_to_state_budget`); xylo, the dash ranges."""
        if self.cfg.profile == "loihi":
            project_to_state_budget(model)
        elif self.cfg.profile == "xylo":
            from ..xylo.profile import project_xylo

            project_xylo(model)

    def _load_initial_weights(self, model: nn.Module, arch: dict[str, Any]) -> None:
        """Weights (and BatchNorm statistics) of ``config.init_from``, whose arch must be this run's, or
        differ from it only in the neuron kind (a LIF model's synapses, biases, θ and β start a CUBA
        one: the neuron parameters the checkpoint lacks, α, come from this run's config)."""
        path = self.cfg.init_from
        ck = load_checkpoint(path)
        theirs, ours = ck["arch"].get("layers") or [], arch.get("layers") or []
        kind_only = (len(theirs) == len(ours) and theirs != ours
                     and all(_without_kind(a) == _without_kind(b) for a, b in zip(theirs, ours)))
        if (theirs != ours and not kind_only) or ck["arch"].get("input") != arch.get("input"):
            raise CheckpointError(f"{path}: --init-from needs a checkpoint of the same architecture; its arch "
                                  f"{ck['arch'].get('name')!r} differs from this run's {arch.get('name')!r} "
                                  "(same dataset, precision, profile and neuron settings are needed)")
        try:
            missing, unexpected = model.load_state_dict(ck["state_dict"], strict=not kind_only)
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{path}: --init-from: its weights do not fit this run's model: {exc}") from exc
        if kind_only:
            neuron_only = {f"{e.get('name')}.{k}" for e in ours if e.get("type") == "lif" for k in _KIND_FIELDS}
            if unexpected or not set(missing) <= neuron_only:
                raise CheckpointError(f"{path}: --init-from: its weights do not fit this run's model "
                                      f"(missing {sorted(set(missing) - neuron_only)}, unexpected {sorted(unexpected)})")
            if self.cfg.neuron == "cuba":
                # a constant input J drives a CUBA membrane with J/(1 − α) in the long run: scaling the
                # synapses by (1 − α) starts the CUBA net where the LIF one was (the projection then
                # fits the larger proven state bound of the current)
                with torch.no_grad():
                    for m in model.modules():
                        if is_synapse(m):
                            m.weight.mul_(1.0 - float(self.cfg.alpha))
            self.log(f"initial weights from {path} (its neurons become {self.cfg.neuron}: synapses, biases, θ "
                     f"and β taken; {', '.join(sorted(missing)) or 'nothing'} from this run"
                     + (f"; synapses scaled by 1 − α = {1.0 - float(self.cfg.alpha):g})" if self.cfg.neuron == "cuba" else ")"))
            return
        self.log(f"initial weights from {path}")

    # ------------------------------------------------------------------ training
    def fit(self) -> dict[str, Any]:
        """Train for ``config.epochs`` epochs (or resume), evaluate, and write the outputs into ``out_dir``.

        Writes ``<name>.pt`` (qsnn checkpoint), ``last.pt`` after every epoch (and ``epoch_<N>.pt``, the
        same checkpoint, after the epochs ``keep_epochs`` names), ``steps.csv``,
        ``metrics.json`` and ``training.png`` (rank 0 only under DDP). Returns the final metrics
        (test accuracy, sample count, T, throughput...).
        """
        c = self.cfg
        train, val, test = load_datasets(c.dataset, c.data_dir, c.limit_train, c.limit_test, c.val_size, c.seed,
                                         num_steps=c.num_steps,
                                         encoding=c.encoding() if c.dataset in ROW_DATASETS else None)
        arch, model, opt = self.build()
        steps_per_epoch = math.ceil(len(train) / (c.batch_size * self.world))
        sched = LRSchedule(opt, c.schedule, c.lr, steps_per_epoch, period_epochs=c.period_epochs,
                           step_epochs=c.step_epochs, patience=c.loss_patience, eta_min=c.eta_min)
        annealer = None
        if c.anneal_alpha:
            annealer = ThresholdAnnealer(model, final=c.anneal_final if c.anneal_final is not None else c.threshold,
                                         alpha=c.anneal_alpha, initial=c.anneal_initial)
        stopper = EarlyStopping(c.early_stopping) if c.early_stopping else None
        hist = History()
        start_epoch = 0
        if self.resume_ckpt is not None:
            start_epoch = self._restore(model, opt, sched, hist, stopper)
        elif not c.init_from and c.profile == "xylo":
            from ..xylo.profile import calibrate_xylo

            probe = train.batch(np.arange(min(len(train), 256)), self.device)[0]
            rates = calibrate_xylo(model, probe)
            if self.is_main:
                self.log("initial Xylo firing rates after calibration (spikes/neuron/step): " + ", ".join(f"{r:.3f}" for r in rates))
        elif not c.init_from and all(b.batchnorm is None for b in model.blocks):
            # Without BatchNorm (the loihi profile, the DVS128 preset) the fan-in init leaves the deeper
            # layers silent and the loss flat: scale the initial weights to a 5% firing rate first.
            probe = train.batch(np.arange(min(len(train), 256 if train.static else 32)), self.device)[0]
            rates = calibrate_initial_firing(model, probe, c.num_steps, project=c.profile != "default")
            if self.is_main:
                self.log("initial firing rates after calibration (no BatchNorm): " + ", ".join(f"{r:.3f}" for r in rates))
        net: nn.Module = model
        if self.distributed:
            net = nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        loss_fn = spike_count_loss(c.correct_rate, c.incorrect_rate, c.loss)
        synapses = [m for m in model.modules() if is_synapse(m)]
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.log(f"training {arch['name']} ({c.precision}, {'deploy-faithful' if c.deploy_faithful else 'float neurons'}) "
                     f"on {c.dataset}: {len(train)} samples, T={c.num_steps}, batch {c.batch_size}×{self.world}, "
                     f"{c.schedule} schedule, lr {c.lr:g}, device {self.device}")
        # the loihi profile pins F = 6 (Lava's shifts) and projects the weights into the bound instead
        fits_frac_bits = c.fit_frac_bits and c.deploy_faithful and c.profile == "default"
        best_acc, stopped = -1.0, False
        keep = keep_epoch_numbers(c.keep_epochs)  # None: every epoch
        for epoch in range(start_epoch, c.epochs):
            model.train()
            gen = torch.Generator().manual_seed(c.seed * 1000 + epoch)
            perm = torch.randperm(len(train), generator=gen).numpy()
            shard = perm[self.rank::self.world]
            n_batches = math.ceil(len(shard) / c.batch_size)
            losses, t0, seen = [], time.perf_counter(), 0
            bar = tqdm(range(n_batches), desc=f"epoch {epoch + 1}/{c.epochs}", unit="batch",
                       disable=not (self.is_main and progress_enabled()))
            for b in bar:
                idx = shard[b * c.batch_size:(b + 1) * c.batch_size]
                xb, yb = train.batch(idx, self.device)
                spikes = net(xb, num_steps=c.num_steps) if train.static else net(xb)
                loss = loss_fn(spikes, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if c.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
                opt.step()
                if c.weight_clip:
                    with torch.no_grad():
                        for m in synapses:
                            m.weight.clamp_(-c.weight_clip, c.weight_clip)
                self._project(model)
                if annealer is not None:
                    annealer.step()
                lr = sched.lr
                sched.step_batch()
                losses.append(loss.item())
                seen += len(idx)
                hist.steps.append({"iteration": sched.iteration, "epoch": epoch + 1, "loss": losses[-1], "lr": lr})
                if b % 10 == 0:
                    bar.set_postfix(loss=f"{np.mean(losses[-10:]):.4f}", lr=f"{lr:.2e}")
            seconds = time.perf_counter() - t0
            mean_loss = float(np.mean(losses)) if losses else math.nan
            sched.step_epoch(mean_loss)
            record = {"epoch": epoch + 1, "train_loss": mean_loss, "lr": sched.lr, "seconds": seconds,
                      "samples_per_s": seen * self.world / seconds if seconds else math.nan}
            if fits_frac_bits:
                record["frac_bits"] = self._fit_frac_bits(model, arch)
            if self.is_main:
                record["test_accuracy"] = evaluate(model, test, c.eval_steps, self.device, progress=True)
                if val is not None:
                    record["val_accuracy"] = evaluate(model, val, c.eval_steps, self.device)
                if annealer is not None:
                    record["thresholds"] = annealer.thresholds()
                hist.epochs.append(record)
                self.log(f"epoch {epoch + 1}: loss {mean_loss:.4f}, test acc {100 * record['test_accuracy']:.2f}%"
                         + (f", val acc {100 * record['val_accuracy']:.2f}%" if val is not None else "")
                         + f", {record['samples_per_s']:.0f} samples/s")
                best_acc = max(best_acc, record["test_accuracy"])
            if stopper is not None:
                score = _stopping_score(record) if self.is_main else 0.0
                stop = stopper.update(score, model, epoch + 1)
                if self.distributed:
                    flag = torch.tensor([int(stop)])
                    dist.broadcast(flag, 0)
                    stop = bool(flag.item())
            if self.is_main:  # after the stopper's update: last.pt holds its state for this epoch
                self._save(self.out / "last.pt", arch, model, opt, sched, hist, epoch + 1, stopper=stopper)
                if keep is None or epoch + 1 in keep:  # the same checkpoint, kept: resumable and deployable
                    self._save(self.out / f"epoch_{epoch + 1}.pt", arch, model, opt, sched, hist, epoch + 1, stopper=stopper)
            if stopper is not None:
                if stop:
                    stopped = True
                    if self.is_main:
                        self.log(f"early stopping after epoch {epoch + 1} (best epoch {stopper.best_epoch})")
                    break
        metrics: dict[str, Any] = {}
        if self.is_main:
            wants_best = stopper is not None and stopper.best_epoch not in (-1, len(hist.epochs))
            restored = wants_best and stopper.restore_best(model)
            if restored:
                self.log(f"restored the weights of epoch {stopper.best_epoch}")
                if fits_frac_bits:  # F was fitted to the last epoch's weights
                    self._fit_frac_bits(model, arch)
            elif wants_best:
                self.log(f"warning: the best epoch ({stopper.best_epoch}) came before a resume from a checkpoint "
                         "that did not store its weights (no early stopping state in it): the last epoch's "
                         "weights are kept (see 'weights_epoch' in metrics.json)")
            if hist.epochs and not restored and start_epoch < c.epochs:
                final_acc = hist.epochs[-1]["test_accuracy"]  # these weights were just evaluated
            else:
                final_acc = evaluate(model, test, c.eval_steps, self.device, progress=True)
            metrics = {"test_accuracy": final_acc, "n_test": len(test), "eval_steps": c.eval_steps,
                       "epochs_run": len(hist.epochs), "early_stopped": stopped,
                       "best_epoch": stopper.best_epoch if stopper else None,
                       "weights_epoch": stopper.best_epoch if restored else len(hist.epochs),
                       "samples_per_s": float(np.mean([e["samples_per_s"] for e in hist.epochs])) if hist.epochs else None}
            if val is not None:
                metrics["best_val_accuracy"] = max(e["val_accuracy"] for e in hist.epochs) if hist.epochs else None
            self._save(self.out / f"{c.name}.pt", arch, model, opt, sched, hist, len(hist.epochs), metrics=metrics,
                       stopper=stopper)
            self._write_logs(hist, metrics)
            self.log(f"test accuracy {100 * final_acc:.2f}% on {len(test)} samples at T={c.eval_steps}; "
                     f"wrote {self.out / (c.name + '.pt')}")
        if self.distributed:
            dist.barrier()
        self.model = model
        return metrics

    def _fit_frac_bits(self, model, arch: dict[str, Any]) -> dict[str, int]:
        """Give every layer the largest F whose proven state bound cannot clip (at this epoch's weights and
        BatchNorm statistics), write it into ``arch`` (so checkpoints rebuild it) and say what changed."""
        changes = fit_frac_bits(model)
        fitted = frac_bits_of_layers(model)
        set_arch_frac_bits(arch, fitted)
        self.fitted_frac_bits = fitted
        moved = [f"{name} F {fit.old}→{fit.new}" for name, fit in changes.items() if fit.old != fit.new]
        unproven = {name: fit for name, fit in changes.items() if not fit.proof}
        if self.is_main and moved:
            self.log("fractional bits re-fitted (no state can clip): " + ", ".join(moved))
        if self.is_main and unproven:
            self.log(unproven_frac_bits_message(unproven))
        return {name: int(fit.new) for name, fit in changes.items()}

    # ------------------------------------------------------------------ persistence
    def _save(self, path: Path, arch, model, opt, sched, hist: History, epoch: int, metrics: dict | None = None,
              stopper: EarlyStopping | None = None) -> None:
        train_state = {"epoch": epoch, "optimizer": opt.state_dict(), "schedule": sched.state_dict(),
                       "rng": torch.get_rng_state(), "history": {"steps": pack_steps(hist.steps), "epochs": hist.epochs}}
        if stopper is not None:  # best score/epoch, patience count and the best epoch's weights
            train_state["early_stopping"] = stopper.state_dict()
        config = asdict(self.cfg)
        save_checkpoint(path, model, arch, config=config, metrics=metrics or {"epochs": hist.epochs[-1:] or []},
                        train_state=train_state)

    def _restore(self, model, opt, sched, hist: History, stopper: EarlyStopping | None = None) -> int:
        ck = self.resume_ckpt
        model.load_state_dict(ck["state_dict"])
        ts = ck.get("train_state")
        if not ts:
            raise ValueError("this checkpoint has no train_state; it cannot resume training")
        opt.load_state_dict(ts["optimizer"])
        sched.load_state_dict(ts["schedule"])
        torch.set_rng_state(ts["rng"])
        hist.steps = unpack_steps(ts["history"]["steps"])
        hist.epochs = list(ts["history"]["epochs"])
        if stopper is not None:
            if isinstance(ts.get("early_stopping"), dict):
                stopper.load_state_dict(ts["early_stopping"])
            elif not stopper.replay(((e["epoch"], _stopping_score(e)) for e in hist.epochs), model, int(ts["epoch"])):
                self.log("warning: this checkpoint holds no early stopping state (written by an older qsnn-train, "
                         f"or by a run without --early-stopping): its counters are rebuilt from the history (best epoch "
                         f"{stopper.best_epoch}), but that epoch's weights are not in the checkpoint, so only a "
                         "later, better epoch can be restored at the end")
        self.log(f"resumed after epoch {ts['epoch']}")
        return int(ts["epoch"])

    def _write_logs(self, hist: History, metrics: dict) -> None:
        steps_csv = self.out / "steps.csv"
        with open(steps_csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["iteration", "epoch", "loss", "lr"])
            w.writeheader()
            w.writerows(hist.steps)
        write_text_atomic(self.out / "metrics.json", json.dumps(
            {"config": asdict(self.cfg), "epochs": hist.epochs, "final": metrics}, indent=2))
        from .plots import plot_training

        loss_label = {"ce_count": "spike-count cross entropy"}.get(self.cfg.loss, "spike-count MSE loss")
        plot_training(hist.steps, hist.epochs, self.out / "training.png", loss_label=loss_label,
                      title=f"{self.cfg.dataset} {self.cfg.precision} {self.cfg.schedule}")
