"""Training in phases: one loop runs the phases a recipe lists (see conf/train.yaml, ``train.recipes``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from imgcls.compat.keras_private import restored_epoch, set_restored_epoch
from imgcls.errors import ConfigError, ImgclsError
from imgcls.models.blocks import Block
from imgcls.training.best_of_run import BestOfRun
from imgcls.training.callbacks import AppendingCSVLogger, EpochSummary, LearningRateToLogs, StopOnNaN
from imgcls.training.checkpoints import PhaseCheckpoints, write_json_atomically
from imgcls.training.feature_cache import FeatureCache
from imgcls.training.freezing import set_trainable_backbone
from imgcls.training.optimizers import backbone_lr_optimizer, block_lr_multipliers, compile_for_fit
from imgcls.training.phase_length import PhaseLength, plan_length
from imgcls.training.time_budget import BudgetCallback, TimeBudget

log = logging.getLogger(__name__)

HEAD_STEPS_PER_EXECUTION = 64  # training steps per call when only the head trains, on cached features
BUDGET_EPOCHS_CAP = 100_000  # fit()'s last epoch for a phase whose length a time budget fixes as it runs
AUTO = "auto"  # train.phases.<phase>.lr: the learning-rate finder's suggestion (imgcls.training.lr_finder)


class TrainingDivergedError(ImgclsError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class PhasePlan:
    """One phase: its length, base learning rate, which backbone layers train and at what share of the rate.

    The length is ``epochs`` passes over the training set, or ``steps`` optimizer steps when given, and at
    least ``min_steps`` (see :mod:`imgcls.training.phase_length`). ``lr`` may be ``"auto"``: the learning-rate
    finder's suggestion for the phase's own model and data.
    ``unfreeze``: 0 trains no backbone block (only the head), N the last N blocks, -1 all of them;
    ``unfreeze_from`` (a block, or a layer inside one) trains that block and every one above it instead.
    ``layer_decay`` (BEiT's layer-wise decay) lowers the rate by that factor for each block below the top
    trained one.
    """

    name: str
    epochs: int
    lr: float | str
    unfreeze: int = 0
    unfreeze_from: str | None = None
    backbone_lr_mult: float = 1.0
    layer_decay: float | None = None
    steps: int | None = None
    min_steps: int = 0

    @property
    def skipped(self) -> bool:
        return self.steps is None and self.epochs <= 0 or self.steps is not None and self.steps <= 0


def phase_plans(phases_cfg: Any, names: Sequence[str], lr_scale: float = 1.0) -> list[PhasePlan]:
    """The plans of the phases ``names`` (entries of ``train.phases``), their rates times ``lr_scale``."""
    plans = []
    for name in names:
        if name not in phases_cfg:
            raise ConfigError(f"train.recipes names a phase {name!r} that train.phases lacks ({sorted(phases_cfg)}).")
        phase = phases_cfg[name]
        plans.append(
            PhasePlan(
                name,
                int(phase.epochs),
                AUTO if phase.lr == AUTO else float(phase.lr) * lr_scale,
                unfreeze=int(phase.get("unfreeze", 0)),
                unfreeze_from=phase.get("unfreeze_from"),
                backbone_lr_mult=float(phase.get("backbone_lr_mult", 1.0)),
                layer_decay=None if phase.get("layer_decay") is None else float(phase.layer_decay),
                steps=None if phase.get("steps") is None else int(phase.steps),
                min_steps=int(phase.get("min_steps") or 0),
            )
        )
    return plans


@dataclass(frozen=True)
class FitSettings:
    """What every phase shares: loss, optimizer and schedule factories, callbacks and logging."""

    loss: keras.losses.Loss
    optimizer_factory: Callable[..., keras.optimizers.Optimizer]
    schedule_factory: Callable[..., tuple]
    early_stopping_monitor: str = "val_loss"
    early_stopping_patience: int = 3
    freeze_batchnorm: bool = True
    jit_compile: bool | str = "auto"
    tensorboard: bool = False  # train.tensorboard: TensorBoard logs in run_dir/tensorboard
    checkpoints: PhaseCheckpoints | None = None
    extra_callbacks: tuple[keras.callbacks.Callback, ...] = ()
    verbose: str | int = "auto"
    train_images: int | None = None  # images in one training epoch, for the images/s of the epoch log line
    blocks: str | None = None  # backbone.blocks: how the backbone divides into blocks (imgcls.models.blocks)
    feature_cache: FeatureCache | None = None  # set when frozen-backbone phases train the head on cached features
    min_epoch_steps: int = 1  # train.min_epoch_steps: a Keras epoch is at least this many steps (phase_length)
    budget: TimeBudget | None = None  # train.budget_minutes (imgcls.training.time_budget)
    run_dir: Path | None = None  # the run folder: history.csv, lr_find_<phase>.png/.json, tensorboard/
    lr_finder_rule: str = "minimum"  # train.lr_finder_rule: how lr: auto reads a rate off the finder's curve


@dataclass(frozen=True)
class PhaseResult:
    """How a phase ended: the epoch after its last (counted across phases), and its best monitored value."""

    end: int
    best: float | None = None
    best_epoch: int | None = None


@dataclass
class TrainingOutcome:
    """What :func:`train_phases` did: each phase's epochs and length, and the best phase of the run."""

    epochs: dict[str, int]
    lengths: dict[str, PhaseLength]
    best: BestOfRun

    def phase_records(self) -> dict[str, dict]:
        """Per phase (metrics.json's ``phases``): the epochs and steps it trained, its length's setting and reason,
        its best monitored value and epoch, and whether its weights were kept."""
        records = {}
        for name, epochs in self.epochs.items():
            outcome = self.best.outcomes[name]
            records[name] = {
                **self.lengths[name].as_record(),
                "epochs": epochs,
                "steps": min(self.lengths[name].steps_per_epoch * epochs, self.lengths[name].steps),
                "best": outcome.best,
                "best_epoch": outcome.best_epoch,
                "kept": outcome.kept,
            }
        return records


def keras_verbosity(verbose: str | int) -> int:
    """``auto``: Keras's live progress bar on a terminal, one line per epoch in logs and pipes."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)


def _phase_callbacks(
    settings: FitSettings, phase: str, extra: list, length: PhaseLength, first_epoch: int
) -> tuple[list, StopOnNaN, keras.callbacks.EarlyStopping]:
    nan_guard = StopOnNaN()
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=settings.early_stopping_monitor,
        patience=settings.early_stopping_patience,
        restore_best_weights=True,
        verbose=1,
    )
    callbacks = [nan_guard, early_stopping]
    if settings.tensorboard and settings.run_dir is not None:  # before "lr" joins the logs: it records the rate itself
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(settings.run_dir / "tensorboard")))
    callbacks += [
        LearningRateToLogs(),  # before the schedule's callbacks change the rate, and before the logs are written
        *extra,
        *settings.extra_callbacks,
    ]
    if settings.checkpoints is not None:  # backed up before the CSV row is written: no row twice after a resume
        callbacks.append(settings.checkpoints.backup(phase))
    if settings.run_dir is not None:
        callbacks.append(AppendingCSVLogger(settings.run_dir / "history.csv"))
    images = settings.train_images * length.passes_per_epoch if settings.train_images else None
    callbacks.append(EpochSummary(phase, images, last_epoch=lambda: first_epoch + length.epochs))
    return callbacks, nan_guard, early_stopping


def _learning_rate(model: keras.Model, plan: PhasePlan, settings: FitSettings, optimizer_factory, train_ds) -> float:
    """``plan.lr``, or with ``lr: auto`` the finder's suggestion on this phase's model and data (plot in the run)."""
    if plan.lr != AUTO:
        return float(plan.lr)
    from imgcls.training.lr_finder import find_learning_rate, plot_lr_find

    result = find_learning_rate(
        model,
        train_ds,
        loss=settings.loss,
        optimizer_factory=optimizer_factory,
        jit_compile=settings.jit_compile,
        rule=settings.lr_finder_rule,
    )
    if settings.run_dir is not None:
        plot_lr_find(result, settings.run_dir / f"lr_find_{plan.name}.png")
        write_json_atomically(settings.run_dir / f"lr_find_{plan.name}.json", result.to_json())
    log.info(
        "%s: lr auto: the learning-rate finder suggests %.3g (rule %s; %d steps from %.0e to %.0e in %.1f s%s)",
        plan.name,
        result.suggestion,
        result.rule,
        len(result.lrs),
        result.lrs[0],
        result.lrs[-1],
        result.seconds,
        f"; see lr_find_{plan.name}.png" if settings.run_dir is not None else "",
    )
    return float(result.suggestion)


def fit_phase(
    model: keras.Model,
    plan: PhasePlan,
    settings: FitSettings,
    *,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    initial_epoch: int,
    strategy: tf.distribute.Strategy,
    trained_blocks: Sequence[Block] = (),
    steps_per_execution: int = 1,
    jit_compile: bool | str | None = None,
    length: PhaseLength | None = None,
    budget_slot: tuple[bool, float] | None = None,
) -> PhaseResult:
    """Compile ``model`` with a fresh optimizer for ``plan``, fit it from ``initial_epoch`` for ``length`` (by default
    :func:`phase_length.plan_length` of ``plan``); return where it ended and its best monitored value.

    The weights of ``trained_blocks`` train at ``plan.backbone_lr_mult`` times the rate, and ``plan.layer_decay``
    times less for each block below the last. ``steps_per_execution`` runs that many steps per call into
    TensorFlow: for a head on cached features, whose steps take microseconds, Python's per-step work would
    otherwise dominate. ``budget_slot`` (last phase?, this phase's deadline) lets ``settings.budget`` fix the
    length as the phase runs.
    """
    steps_per_pass = int(train_ds.cardinality())
    if length is None:
        length = phase_length_of(plan, steps_per_pass, settings.min_epoch_steps)
    if length.passes_per_epoch > 1:
        train_ds = train_ds.repeat(length.passes_per_epoch)
    multipliers = block_lr_multipliers(trained_blocks, plan.backbone_lr_mult, plan.layer_decay)
    optimizer_factory = backbone_lr_optimizer(settings.optimizer_factory, multipliers)
    base_lr = _learning_rate(model, plan, settings, optimizer_factory, train_ds)
    learning_rate, schedule_callbacks = settings.schedule_factory(base_lr, length.steps)
    with strategy.scope():
        compile_for_fit(
            model,
            optimizer=optimizer_factory(learning_rate=learning_rate),
            loss=settings.loss,
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
            jit_compile=settings.jit_compile if jit_compile is None else jit_compile,
            steps_per_execution=steps_per_execution,
        )
    trainable = sum(int(tf.size(w)) for w in model.trainable_weights)
    log.info("%s: %s; base lr %g, %d trainable parameters", plan.name, length.describe(), base_lr, trainable)
    callbacks, nan_guard, early_stopping = _phase_callbacks(
        settings, plan.name, schedule_callbacks, length, initial_epoch
    )
    last_epoch = initial_epoch + length.epochs
    if settings.budget is not None and budget_slot is not None:
        last, phase_end = budget_slot
        callbacks.insert(
            2,  # after early stopping, before the logs: the epoch line shows the epochs it decides
            BudgetCallback(
                settings.budget,
                length,
                phase=plan.name,
                first_epoch=initial_epoch,
                last=last,
                phase_end=phase_end,
                schedule=learning_rate,
                val_batches=int(val_ds.cardinality()),
                on_images=steps_per_execution == 1,
            ),
        )
        if last:
            last_epoch = initial_epoch + BUDGET_EPOCHS_CAP
    set_restored_epoch(model, None)  # set by BackupAndRestore when it restores; must not leak into the next phase
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=last_epoch,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=keras_verbosity(settings.verbose),
        shuffle=False,  # the tf.data pipeline shuffles
    )
    if nan_guard.diverged_at is not None:
        kept = f" The last good epoch is kept in {settings.checkpoints.directory}." if settings.checkpoints else ""
        raise TrainingDivergedError(
            f"The loss became NaN or infinite in {plan.name}, {nan_guard.diverged_at}; training stopped. "
            f"Lower train.phases.{plan.name}.lr (now {base_lr:g}), add optimizer.clipnorm=1.0, "
            "or use precision=float32." + kept
        )
    end = history.epoch[-1] + 1 if history.epoch else (restored_epoch(model) or initial_epoch + length.epochs)
    best = None if early_stopping.best is None else float(early_stopping.best)
    return PhaseResult(end, best, early_stopping.best_epoch + 1 if best is not None else None)


def phase_length_of(plan: PhasePlan, steps_per_pass: int, min_epoch_steps: int) -> PhaseLength:
    """``plan``'s length over a training set of ``steps_per_pass`` batches (see :func:`phase_length.plan_length`)."""
    return plan_length(
        plan.name,
        epochs=plan.epochs,
        steps=plan.steps,
        min_steps=plan.min_steps,
        steps_per_pass=steps_per_pass,
        min_epoch_steps=min_epoch_steps,
    )


def _run_or_restore(
    model: keras.Model, plan: PhasePlan, settings: FitSettings, first_epoch: int, **fit_kwargs
) -> PhaseResult:
    checkpoints = settings.checkpoints
    if checkpoints is not None and checkpoints.is_finished(plan.name):
        checkpoints.restore_phase(plan.name, model)
        entry = checkpoints.state[plan.name]
        return PhaseResult(first_epoch + entry["epochs"], entry.get("best"), entry.get("best_epoch"))
    result = fit_phase(model, plan, settings, initial_epoch=first_epoch, **fit_kwargs)
    if checkpoints is not None:
        checkpoints.finish_phase(
            plan.name, model, first_epoch, result.end - first_epoch, best=result.best, best_epoch=result.best_epoch
        )
    return result


def train_phases(
    model: keras.Model,
    backbone: keras.Model,
    plans: Sequence[PhasePlan],
    settings: FitSettings,
    *,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    strategy: tf.distribute.Strategy,
) -> TrainingOutcome:
    """Run ``plans`` in order, each training the backbone layers it unfreezes and the head.

    Each phase ends on its best validation weights (EarlyStopping restores them). A phase whose best is worse
    than an earlier phase's, by ``settings.early_stopping_monitor``, is logged and its weights are not kept: the
    next phase, and the run's model, start from the best so far (:class:`BestOfRun`). Epochs count on across
    phases for logs, TensorBoard and pruning. With checkpoints, a finished phase is not run again and an
    interrupted one continues at its last finished epoch. A phase of 0 epochs (and no steps) is skipped.
    """
    epochs: dict[str, int] = {}
    lengths: dict[str, PhaseLength] = {}
    best = BestOfRun(settings.early_stopping_monitor)
    end = 0
    active = [plan for plan in plans if not plan.skipped]
    for plan in plans:
        if plan.skipped:
            log.info("%s skipped (train.phases.%s.epochs=%d, steps=%s)", plan.name, plan.name, plan.epochs, plan.steps)
    planned_steps = {}
    for index, plan in enumerate(active):
        trained = set_trainable_backbone(
            backbone,
            plan.unfreeze,
            from_layer=plan.unfreeze_from,
            freeze_batchnorm=settings.freeze_batchnorm,
            blocks=settings.blocks,
        )
        log.info(
            "%s: %d backbone blocks with weights train%s",
            plan.name,
            len(trained),
            f" (from {trained[0].name})" if trained else ": the head only",
        )
        first = end
        cached = not trained and settings.feature_cache is not None
        if cached:
            log.info("%s: the head trains on the backbone's cached features (train.feature_cache)", plan.name)
            phase_train, phase_val = settings.feature_cache.datasets()
            fit_kwargs = dict(
                steps_per_execution=HEAD_STEPS_PER_EXECUTION,
                # XLA's compile takes seconds and speeds up nothing as small as a head
                jit_compile=False if settings.jit_compile == "auto" else settings.jit_compile,
            )
        else:
            phase_train, phase_val, fit_kwargs = train_ds, val_ds, dict(trained_blocks=trained)
        steps_per_pass = int(phase_train.cardinality())
        lengths[plan.name] = phase_length_of(plan, steps_per_pass, settings.min_epoch_steps)
        for later in active[index:]:  # planned steps of this and later phases, for the budget's shares
            planned_steps.setdefault(later.name, phase_length_of(later, steps_per_pass, 1).steps)
        budget_slot = None
        if settings.budget is not None:
            remaining = [planned_steps[later.name] for later in active[index:]]
            budget_slot = (index == len(active) - 1, settings.budget.phase_end(remaining))
        result = _run_or_restore(
            settings.feature_cache.head() if cached else model,
            plan,
            settings,
            first,
            train_ds=phase_train,
            val_ds=phase_val,
            strategy=strategy,
            length=lengths[plan.name],
            budget_slot=budget_slot,
            **fit_kwargs,
        )
        end = result.end
        epochs[plan.name] = end - first
        best.offer(plan.name, model, result.best, result.best_epoch)
    return TrainingOutcome(epochs, lengths, best)
