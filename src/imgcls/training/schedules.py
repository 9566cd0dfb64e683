"""Learning-rate schedules per phase. Each returns (learning_rate for the optimizer, extra callbacks)."""

from __future__ import annotations

import keras


def constant(base_lr: float, steps_per_epoch: int, epochs: int) -> tuple[float, list]:
    """The phase's base learning rate throughout."""
    return base_lr, []


def reduce_on_plateau(
    base_lr: float,
    steps_per_epoch: int,
    epochs: int,
    *,
    monitor: str = "val_loss",
    factor: float = 0.2,
    patience: int = 2,
    min_lr: float = 1e-7,
) -> tuple[float, list]:
    """Start at the base rate; divide it when ``monitor`` stops improving."""
    callback = keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=factor, patience=patience, min_lr=min_lr)
    return base_lr, [callback]


def cosine_with_warmup(
    base_lr: float, steps_per_epoch: int, epochs: int, *, warmup_fraction: float = 0.05, final_lr_fraction: float = 0.0
) -> tuple[keras.optimizers.schedules.LearningRateSchedule, list]:
    """Linear warmup from 0 over ``warmup_fraction`` of the phase's steps, then per-step cosine decay."""
    total_steps = max(1, steps_per_epoch * epochs)
    warmup_steps = int(round(warmup_fraction * total_steps))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else base_lr,
        decay_steps=max(1, total_steps - warmup_steps),
        alpha=final_lr_fraction,
        warmup_target=base_lr if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    return schedule, []
