"""Two-phase fine-tuning: the head on a frozen backbone, then the top of the backbone at a lower rate."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from imgcls.training.freezing import freeze, unfreeze_top

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhasePlan:
    """One phase: its epochs, base learning rate and backbone layers to unfreeze (phase 2)."""

    name: str
    epochs: int
    lr: float
    unfreeze: int = 0


@dataclass
class TrainingHistory:
    """Per-epoch logs of both phases on one continuous epoch axis."""

    epochs: list[int] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    logs: dict[str, list[float]] = field(default_factory=dict)

    def extend(self, phase: str, history: keras.callbacks.History) -> None:
        for offset, epoch in enumerate(history.epoch):
            self.epochs.append(epoch + 1)
            self.phases.append(phase)
            for key, values in history.history.items():
                self.logs.setdefault(key, []).append(float(values[offset]))


@dataclass(frozen=True)
class FitSettings:
    """What every phase shares: loss, optimizer and schedule factories, callbacks and logging."""

    loss: keras.losses.Loss
    optimizer_factory: Callable[..., keras.optimizers.Optimizer]
    schedule_factory: Callable[..., tuple]
    early_stopping_monitor: str = "val_loss"
    early_stopping_patience: int = 3
    freeze_batchnorm: bool = True
    log_dir: Path | None = None
    verbose: str | int = "auto"


def keras_verbosity(verbose: str | int) -> int:
    """``auto``: Keras's live progress bar on a terminal, one line per epoch in logs and pipes."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)


def _phase_callbacks(settings: FitSettings, extra: list) -> list:
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor=settings.early_stopping_monitor,
            patience=settings.early_stopping_patience,
            restore_best_weights=True,
            verbose=1,
        ),
        *extra,
    ]
    if settings.log_dir is not None:
        callbacks.append(keras.callbacks.CSVLogger(str(settings.log_dir / "history.csv"), append=True))
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(settings.log_dir / "tensorboard")))
    return callbacks


def fit_phase(
    model: keras.Model,
    plan: PhasePlan,
    settings: FitSettings,
    *,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    initial_epoch: int,
    strategy: tf.distribute.Strategy,
) -> keras.callbacks.History:
    """Compile ``model`` with a fresh optimizer for ``plan`` and fit it from ``initial_epoch``."""
    steps_per_epoch = int(train_ds.cardinality())
    learning_rate, schedule_callbacks = settings.schedule_factory(plan.lr, steps_per_epoch, plan.epochs)
    with strategy.scope():
        model.compile(
            optimizer=settings.optimizer_factory(learning_rate=learning_rate),
            loss=settings.loss,
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
    trainable = sum(int(tf.size(w)) for w in model.trainable_weights)
    log.info(
        "%s: epochs %d-%d, base lr %g, %d trainable parameters",
        plan.name, initial_epoch + 1, initial_epoch + plan.epochs, plan.lr, trainable,
    )
    return model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=initial_epoch + plan.epochs,
        initial_epoch=initial_epoch,
        callbacks=_phase_callbacks(settings, schedule_callbacks),
        verbose=keras_verbosity(settings.verbose),
        shuffle=False,  # the tf.data pipeline shuffles
    )


def train_two_phases(
    model: keras.Model,
    backbone: keras.Model,
    phase1: PhasePlan,
    phase2: PhasePlan,
    settings: FitSettings,
    *,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    strategy: tf.distribute.Strategy,
) -> TrainingHistory:
    """Phase 1 trains the head on a frozen backbone; phase 2 (if ``phase2.unfreeze`` and epochs) fine-tunes.

    Each phase ends on its best validation weights (EarlyStopping restores them), so phase 2
    starts from phase 1's best. Epochs continue across phases for logs and TensorBoard.
    """
    history = TrainingHistory()
    freeze(backbone)
    if phase1.epochs > 0:
        history.extend(phase1.name, fit_phase(
            model, phase1, settings, train_ds=train_ds, val_ds=val_ds, initial_epoch=0, strategy=strategy
        ))
    if phase2.unfreeze == 0 or phase2.epochs <= 0:
        log.info("phase 2 skipped (train.phase2.unfreeze=%d, epochs=%d)", phase2.unfreeze, phase2.epochs)
        return history
    trained = unfreeze_top(backbone, phase2.unfreeze, freeze_batchnorm=settings.freeze_batchnorm)
    log.info("phase 2: %d backbone layers with weights unfrozen (from %s)", len(trained), trained[0] if trained else "-")
    history.extend(phase2.name, fit_phase(
        model, phase2, settings, train_ds=train_ds, val_ds=val_ds,
        initial_epoch=len(history.epochs), strategy=strategy,
    ))
    return history
