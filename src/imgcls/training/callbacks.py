"""Callbacks that make a run stop cleanly on divergence and resumable after an interruption."""

from __future__ import annotations

import math

import keras

WATCHED = ("loss", "val_loss")


def _non_finite(logs: dict | None) -> bool:
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
        if self.diverged_at is None and _non_finite(logs):
            self.diverged_at = f"epoch {self.epoch + 1}, batch {batch + 1}"
        super().on_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged_at is None and _non_finite(logs):
            self.diverged_at = f"epoch {epoch + 1}, validation"
            self.model.stop_training = True


class EpochBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore at epoch ends that never overwrites a good backup with a diverged model,
    and keeps its files when training ends (the run removes them once it has finished)."""

    def __init__(self, backup_dir: str):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)

    def on_epoch_end(self, epoch, logs=None):
        if not _non_finite(logs):
            super().on_epoch_end(epoch, logs)
