"""Callbacks that stop a run cleanly on divergence and record each epoch (the epoch backup is in checkpoints.py)."""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import keras

log = logging.getLogger(__name__)
WATCHED = ("loss", "val_loss")
LEARNING_RATE = "lr"  # history.csv's column; Keras's ReduceLROnPlateau adds its own "learning_rate"


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


class LearningRateToLogs(keras.callbacks.Callback):
    """Puts the optimizer's current learning rate into each epoch's logs as ``lr``.

    Keras hands one logs dict to every callback in turn, so the callbacks after this one (the CSV
    log, the epoch line) see it. With a schedule, the rate is its value at the optimizer's step;
    with a backbone multiplier, the base rate (the head's).
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs[LEARNING_RATE] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def epoch_line(
    phase: str, epoch: int, epochs: int | None, logs: dict, seconds: float, images_per_second: float | None
) -> str:
    """One epoch's logs on one line, training then validation metrics, each with its loss first::

    phase2 epoch 7/10: loss 0.4123 accuracy 0.8871 | val_loss 0.3810 val_accuracy 0.9012 | lr 1e-05 | 12.3 s, 415 img/s
    """
    metrics = {
        key: value for key, value in logs.items() if key != LEARNING_RATE and not key.startswith("learning_rate")
    }
    train = sorted((key for key in metrics if not key.startswith("val_")), key=lambda key: (key != "loss", key))
    val = sorted((key for key in metrics if key.startswith("val_")), key=lambda key: (key != "val_loss", key))
    parts = [" ".join(f"{key} {float(metrics[key]):.4f}" for key in keys) for keys in (train, val) if keys]
    if LEARNING_RATE in logs:
        parts.append(f"lr {float(logs[LEARNING_RATE]):.3g}")
    speed = f", {images_per_second:.0f} img/s" if images_per_second is not None else ""
    parts.append(f"{seconds:.1f} s{speed}")
    return f"{phase} epoch {epoch}{f'/{epochs}' if epochs else ''}: " + " | ".join(parts)


class EpochSummary(keras.callbacks.Callback):
    """Logs :func:`epoch_line` at each epoch end (to ``train.log`` under Hydra).

    The seconds are the whole epoch's, validation included; images per second count the training
    images (``images_per_epoch``, omitted when None) over the training part only. The last epoch
    is the one ``fit`` plans to reach, or ``last_epoch()`` (a time budget changes it as the phase runs); epochs
    count on across phases.
    """

    def __init__(self, phase: str, images_per_epoch: int | None = None, last_epoch: Callable[[], int] | None = None):
        super().__init__()
        self.phase = phase
        self.images_per_epoch = images_per_epoch
        self.last_epoch = last_epoch
        self._started = 0.0
        self._validation_started: float | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started, self._validation_started = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        if self._validation_started is None:
            self._validation_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        training_seconds = (self._validation_started or now) - self._started
        speed = self.images_per_epoch / training_seconds if self.images_per_epoch and training_seconds > 0 else None
        last = self.params.get("epochs") if self.last_epoch is None else self.last_epoch()
        line = epoch_line(self.phase, epoch + 1, last, logs or {}, now - self._started, speed)
        log.info("%s", line)


class AppendingCSVLogger(keras.callbacks.CSVLogger):
    """Keras's CSVLogger appending to ``path``, keeping the columns of the header already there.

    A run resumed by a version that logs other keys still writes rows that match the header
    (a missing value reads ``NA``; a key the header lacks is left out).
    """

    def __init__(self, path: str | Path):
        super().__init__(str(path), append=True)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        header = _csv_header(Path(self.filename))
        if header:
            self.keys = header[1:]  # without "epoch", which CSVLogger writes first


def _csv_header(path: Path) -> list[str]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return next(csv.reader(f), [])
