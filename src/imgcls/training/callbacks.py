"""Callbacks that make a run stop cleanly on divergence (the epoch backup is in checkpoints.py)."""

from __future__ import annotations

import math

import keras

WATCHED = ("loss", "val_loss")


def non_finite(logs: dict | None) -> bool:
    return any(key in (logs or {}) and not math.isfinite(float(logs[key])) for key in WATCHED)


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras's TerminateOnNaN, also watching the validation loss, and remembering where it happened."""

    def __init__(self):
        super().__init__()
        self.epoch = 0
        self.diverged_at: str | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if self.diverged_at is None and non_finite(logs):
            self.diverged_at = f"epoch {self.epoch + 1}, batch {batch + 1}"
        super().on_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged_at is None and non_finite(logs):
            self.diverged_at = f"epoch {epoch + 1}, validation"
            self.model.stop_training = True

