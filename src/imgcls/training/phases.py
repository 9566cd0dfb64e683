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
from imgcls.training.callbacks import AppendingCSVLogger, EpochSummary, LearningRateToLogs, StopOnNaN
from imgcls.training.checkpoints import PhaseCheckpoints
from imgcls.training.feature_cache import FeatureCache
from imgcls.training.freezing import set_trainable_backbone
from imgcls.training.optimizers import backbone_lr_optimizer, block_lr_multipliers

log = logging.getLogger(__name__)

HEAD_STEPS_PER_EXECUTION = 64  # training steps per call when only the head trains, on cached features


class TrainingDivergedError(ImgclsError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class PhasePlan:
    """One phase: epochs, base learning rate, which backbone layers train and at what share of the rate.

    ``unfreeze``: 0 trains no backbone block (only the head), N the last N blocks, -1 all of them;
    ``unfreeze_from`` (a block, or a layer inside one) trains that block and every one above it instead.
    ``layer_decay`` (BEiT's layer-wise decay) lowers the rate by that factor for each block below the top
    trained one.
    """

    name: str
    epochs: int
    lr: float
    unfreeze: int = 0
    unfreeze_from: str | None = None
    backbone_lr_mult: float = 1.0
    layer_decay: float | None = None


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
                float(phase.lr) * lr_scale,
                unfreeze=int(phase.get("unfreeze", 0)),
                unfreeze_from=phase.get("unfreeze_from"),
                backbone_lr_mult=float(phase.get("backbone_lr_mult", 1.0)),
                layer_decay=None if phase.get("layer_decay") is None else float(phase.layer_decay),
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
    log_dir: Path | None = None
    checkpoints: PhaseCheckpoints | None = None
    extra_callbacks: tuple[keras.callbacks.Callback, ...] = ()
    verbose: str | int = "auto"
    train_images: int | None = None  # images in one training epoch, for the images/s of the epoch log line
    blocks: str | None = None  # backbone.blocks: how the backbone divides into blocks (imgcls.models.blocks)
    feature_cache: FeatureCache | None = None  # set when frozen-backbone phases train the head on cached features


def keras_verbosity(verbose: str | int) -> int:
    """``auto``: Keras's live progress bar on a terminal, one line per epoch in logs and pipes."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)


def _phase_callbacks(settings: FitSettings, phase: str, extra: list) -> tuple[list, StopOnNaN]:
    nan_guard = StopOnNaN()
    callbacks = [
        nan_guard,
        keras.callbacks.EarlyStopping(
            monitor=settings.early_stopping_monitor,
            patience=settings.early_stopping_patience,
            restore_best_weights=True,
            verbose=1,
        ),
    ]
    if settings.log_dir is not None:  # TensorBoard records the rate itself: it comes before "lr" joins the logs
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(settings.log_dir / "tensorboard")))
    callbacks += [
        LearningRateToLogs(),  # before the schedule's callbacks change the rate, and before the logs are written
        *extra,
        *settings.extra_callbacks,
    ]
    if settings.checkpoints is not None:  # backed up before the CSV row is written: no row twice after a resume
        callbacks.append(settings.checkpoints.backup(phase))
    if settings.log_dir is not None:
        callbacks.append(AppendingCSVLogger(settings.log_dir / "history.csv"))
    callbacks.append(EpochSummary(phase, settings.train_images))
    return callbacks, nan_guard


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
) -> int:
    """Compile ``model`` with a fresh optimizer for ``plan``, fit it from ``initial_epoch``; return the end epoch.

    The weights of ``trained_blocks`` train at ``plan.backbone_lr_mult`` times the rate, and ``plan.layer_decay``
    times less for each block below the last. ``steps_per_execution`` runs that many steps per call into
    TensorFlow: for a head on cached features, whose steps take microseconds, Python's per-step work would
    otherwise dominate.
    """
    steps_per_epoch = int(train_ds.cardinality())
    learning_rate, schedule_callbacks = settings.schedule_factory(plan.lr, steps_per_epoch, plan.epochs)
    multipliers = block_lr_multipliers(trained_blocks, plan.backbone_lr_mult, plan.layer_decay)
    optimizer_factory = backbone_lr_optimizer(settings.optimizer_factory, multipliers)
    with strategy.scope():
        model.compile(
            optimizer=optimizer_factory(learning_rate=learning_rate),
            loss=settings.loss,
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
            jit_compile=settings.jit_compile if jit_compile is None else jit_compile,
            steps_per_execution=steps_per_execution,
        )
    trainable = sum(int(tf.size(w)) for w in model.trainable_weights)
    log.info(
        "%s: epochs %d-%d, base lr %g, %d trainable parameters",
        plan.name,
        initial_epoch + 1,
        initial_epoch + plan.epochs,
        plan.lr,
        trainable,
    )
    callbacks, nan_guard = _phase_callbacks(settings, plan.name, schedule_callbacks)
    set_restored_epoch(model, None)  # set by BackupAndRestore when it restores; must not leak into the next phase
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=initial_epoch + plan.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=keras_verbosity(settings.verbose),
        shuffle=False,  # the tf.data pipeline shuffles
    )
    if nan_guard.diverged_at is not None:
        kept = f" The last good epoch is kept in {settings.checkpoints.directory}." if settings.checkpoints else ""
        raise TrainingDivergedError(
            f"The loss became NaN or infinite in {plan.name}, {nan_guard.diverged_at}; training stopped. "
            f"Lower train.phases.{plan.name}.lr (now {plan.lr:g}), add optimizer.clipnorm=1.0, "
            "or use precision=float32." + kept
        )
    return history.epoch[-1] + 1 if history.epoch else (restored_epoch(model) or initial_epoch + plan.epochs)


def _run_or_restore(model: keras.Model, plan: PhasePlan, settings: FitSettings, first_epoch: int, **fit_kwargs) -> int:
    checkpoints = settings.checkpoints
    if checkpoints is not None and checkpoints.is_finished(plan.name):
        checkpoints.restore_phase(plan.name, model)
        return first_epoch + checkpoints.state[plan.name]["epochs"]
    end = fit_phase(model, plan, settings, initial_epoch=first_epoch, **fit_kwargs)
    if checkpoints is not None:
        checkpoints.finish_phase(plan.name, model, first_epoch, end - first_epoch)
    return end


def train_phases(
    model: keras.Model,
    backbone: keras.Model,
    plans: Sequence[PhasePlan],
    settings: FitSettings,
    *,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    strategy: tf.distribute.Strategy,
) -> dict[str, int]:
    """Run ``plans`` in order, each training the backbone layers it unfreezes and the head.

    Each phase ends on its best validation weights (EarlyStopping restores them), so the next one
    starts from there. Epochs count on across phases for logs, TensorBoard and pruning. With
    checkpoints, a finished phase is not run again and an interrupted one continues at its last
    finished epoch. A phase of 0 epochs is skipped. Returns the epochs each phase ran.
    """
    epochs: dict[str, int] = {}
    end = 0
    for plan in plans:
        if plan.epochs <= 0:
            log.info("%s skipped (train.phases.%s.epochs=%d)", plan.name, plan.name, plan.epochs)
            continue
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
        if not trained and settings.feature_cache is not None:
            log.info("%s: the head trains on the backbone's cached features (train.feature_cache)", plan.name)
            features_train, features_val = settings.feature_cache.datasets()
            end = _run_or_restore(
                settings.feature_cache.head(),
                plan,
                settings,
                first,
                train_ds=features_train,
                val_ds=features_val,
                strategy=strategy,
                steps_per_execution=HEAD_STEPS_PER_EXECUTION,
                # XLA's compile takes seconds and speeds up nothing as small as a head
                jit_compile=False if settings.jit_compile == "auto" else settings.jit_compile,
            )
        else:
            fit_kwargs = dict(train_ds=train_ds, val_ds=val_ds, strategy=strategy, trained_blocks=trained)
            end = _run_or_restore(model, plan, settings, first, **fit_kwargs)
        epochs[plan.name] = end - first
    return epochs
