"""Callbacks that make a run stop cleanly on divergence and resumable after an interruption."""

from __future__ import annotations

import math

import keras


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras's TerminateOnNaN, remembering where the loss became NaN or infinite."""

    def __init__(self):
        super().__init__()
        self.epoch = 0
        self.diverged_at: tuple[int, int] | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and self.diverged_at is None:
            self.diverged_at = (self.epoch, batch)
        super().on_batch_end(batch, logs)


class EpochBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore at epoch ends that never overwrites a good backup with a diverged model,
    and keeps its files when training ends (the run removes them once it has finished)."""

    def __init__(self, backup_dir: str):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return
        super().on_epoch_end(epoch, logs)
