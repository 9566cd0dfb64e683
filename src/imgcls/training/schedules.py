"""Learning-rate schedules per phase. Each takes the phase's base rate and its length in optimizer steps, and
returns (learning_rate for the optimizer, extra callbacks).

A schedule that depends on the length (cosine) can be re-aimed at another length while the phase runs
(:meth:`WarmupCosine.retarget`): a time budget fixes the length only once it has timed some steps.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


def constant(base_lr: float, total_steps: int) -> tuple[float, list]:
    """The phase's base learning rate throughout."""
    return base_lr, []


def reduce_on_plateau(
    base_lr: float,
    total_steps: int,
    *,
    monitor: str = "val_loss",
    factor: float = 0.2,
    patience: int = 2,
    min_lr: float = 1e-7,
) -> tuple[float, list]:
    """Start at the base rate; divide it when ``monitor`` stops improving."""
    callback = keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=factor, patience=patience, min_lr=min_lr)
    return base_lr, [callback]


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 over ``warmup_steps``, then cosine decay to ``final_lr_fraction`` of the base rate at
    ``total_steps`` (Keras's ``CosineDecay`` with warmup), whose end can be moved while training runs."""

    def __init__(self, base_lr: float, total_steps: int, warmup_steps: int, final_lr_fraction: float = 0.0):
        self.base_lr = float(base_lr)
        self.final_lr_fraction = float(final_lr_fraction)
        self._planned_warmup = int(warmup_steps)
        self._warmup_fraction = int(warmup_steps) / max(1, int(total_steps))
        self._total_steps = tf.Variable(float(max(1, total_steps)), trainable=False, dtype=tf.float32)
        self._warmup_steps = tf.Variable(float(warmup_steps), trainable=False, dtype=tf.float32)

    @property
    def total_steps(self) -> int:
        return int(self._total_steps.numpy())

    @property
    def warmup_steps(self) -> int:
        return int(self._warmup_steps.numpy())

    def retarget(self, total_steps: int) -> None:
        """End the decay at ``total_steps`` instead. The warmup keeps its length, or its share of a shorter phase."""
        total_steps = max(1, int(total_steps))
        self._total_steps.assign(float(total_steps))
        self._warmup_steps.assign(float(min(self._planned_warmup, round(self._warmup_fraction * total_steps))))

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = self._warmup_steps
        decay_steps = tf.maximum(1.0, self._total_steps - warmup)
        progress = tf.clip_by_value((step - warmup) / decay_steps, 0.0, 1.0)
        cosine = 0.5 * (1.0 + tf.cos(math.pi * progress))
        decayed = self.base_lr * (self.final_lr_fraction + (1.0 - self.final_lr_fraction) * cosine)
        return tf.where(step < warmup, self.base_lr * step / tf.maximum(1.0, warmup), decayed)

    def get_config(self):
        return dict(
            base_lr=self.base_lr,
            total_steps=self.total_steps,
            warmup_steps=self.warmup_steps,
            final_lr_fraction=self.final_lr_fraction,
        )


def cosine_with_warmup(
    base_lr: float, total_steps: int, *, warmup_fraction: float = 0.05, final_lr_fraction: float = 0.0
) -> tuple[WarmupCosine, list]:
    """Linear warmup from 0 over ``warmup_fraction`` of the phase's steps, then per-step cosine decay."""
    total_steps = max(1, int(total_steps))
    return WarmupCosine(base_lr, total_steps, int(round(warmup_fraction * total_steps)), final_lr_fraction), []
