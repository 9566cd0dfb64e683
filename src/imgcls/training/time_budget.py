"""A run's time budget (``train.budget_minutes``): the phases' lengths, and so their schedules, fitted to the clock.

Every phase but the last keeps its planned length unless that does not fit in its share of the time left (shares
in proportion to the phases' planned steps); the last phase takes whatever time is left, longer or shorter than
planned. A phase times its first steps after the first call, which traces, and fixes its length from them; when
not even its first epoch fits, it ends inside that epoch, at the step the clock allows, and validates there. At
each epoch's end it fixes again how many more epochs fit before its deadline, less the final evaluation's
estimated time. Each change re-aims the cosine schedule at the new end.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass

import keras

from imgcls.training.phase_length import PhaseLength

log = logging.getLogger(__name__)

# Saving model.keras and drawing the evaluation bundle's figures after the last epoch, beyond predicting
# the validation and test images (timed per batch while the run validates).
EVALUATION_FIXED_SECONDS = 6.0
PROBE_STEPS = 5  # timed steps, after the first (which traces), before the first epoch's length is fitted
VALIDATION_STEP_FRACTION = 0.5  # a validation batch's time in training steps, until a validation pass is timed


def process_started() -> float | None:
    """When this process started, on the ``time.monotonic()`` clock (Linux; None elsewhere): the Python and
    TensorFlow imports before any of imgcls's code runs count against a command's budget too."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, after the command's name
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return time.monotonic() - max(0.0, age)


@dataclass
class TimeBudget:
    """The deadline of a run started at ``started`` (``time.monotonic()``) with ``minutes`` to finish, evaluation
    included: ``val_batches`` and ``test_batches`` predicted ``evaluation_passes`` times (2 with test-time
    augmentation). The test images are read from their files in the first pass and from the cache after it,
    so that pass is estimated from the run's first validation pass, which read its images too."""

    minutes: float
    started: float
    val_batches: int
    test_batches: int
    evaluation_passes: int = 1
    seconds_per_eval_batch: float | None = None  # the fastest validation pass's (from the cache, after the first)
    seconds_per_read_batch: float | None = None  # the first validation pass's, which read and decoded its files
    evaluation_fixed_seconds: float = EVALUATION_FIXED_SECONDS
    seconds_per_step: float | None = None  # a training step's, for the batches' estimate until validation is timed

    @property
    def deadline(self) -> float:
        return self.started + 60.0 * self.minutes

    def evaluation_seconds(self) -> float:
        guess = (self.seconds_per_step or 0.0) * VALIDATION_STEP_FRACTION
        cached = self.seconds_per_eval_batch or guess
        read = max(self.seconds_per_read_batch or 0.0, cached)
        val = self.val_batches * cached * self.evaluation_passes
        test = self.test_batches * (read + cached * (self.evaluation_passes - 1))
        return self.evaluation_fixed_seconds + val + test

    def training_end(self) -> float:
        """When training must end so that the evaluation still fits."""
        return self.deadline - self.evaluation_seconds()

    def observe_validation(self, seconds: float, batches: int) -> None:
        """A validation pass over images took ``seconds`` for ``batches`` batches (the first one read its files)."""
        if batches > 0:
            per_batch = seconds / batches
            if self.seconds_per_read_batch is None:
                self.seconds_per_read_batch = per_batch
            if self.seconds_per_eval_batch is None or per_batch < self.seconds_per_eval_batch:
                self.seconds_per_eval_batch = per_batch

    def phase_end(self, planned_steps: list[int]) -> float:
        """The deadline of the phase whose planned steps come first in ``planned_steps`` (it and the later ones)."""
        now = time.monotonic()
        share = planned_steps[0] / max(1, sum(planned_steps))
        return now + max(0.0, self.training_end() - now) * share


class BudgetCallback(keras.callbacks.Callback):
    """Fits ``length.epochs`` to the time before the phase's deadline, measured each epoch; stops the phase there.

    ``last``: the last phase of the run, which ends at the budget's training end (re-estimated as validation is
    timed) and may train longer than planned; an earlier one ends at ``phase_end`` and at most at its plan.
    ``on_images``: validation runs on images (not cached features), so it times the final evaluation's batches.
    """

    def __init__(
        self,
        budget: TimeBudget,
        length: PhaseLength,
        *,
        phase: str,
        first_epoch: int,
        last: bool,
        phase_end: float,
        schedule: object,
        val_batches: int,
        on_images: bool,
    ):
        super().__init__()
        self.budget, self.length, self.phase = budget, length, phase
        self.first_epoch, self.last, self.phase_end = first_epoch, last, phase_end
        self.schedule, self.val_batches, self.on_images = schedule, val_batches, on_images
        self.planned_epochs = length.epochs
        self._epoch_seconds: list[float] = []
        self._marks: list[tuple[int, float]] = []
        self._epoch, self._epoch_started, self._validation_started = first_epoch, 0.0, 0.0
        self._validation_seconds: float | None = None
        self._validation_marks: list[tuple[int, float]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._epoch_started, self._marks = epoch, time.monotonic(), []

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        self._marks.append((batch, now))
        if self.length.cut_steps is not None:
            if self._steps_done(batch) >= self.length.cut_steps:
                self.model.stop_training = True
        elif not self._epoch_seconds and len(self._marks) == PROBE_STEPS + 1:
            self._fit_from_steps(batch, now)

    def on_test_begin(self, logs=None):
        self._validation_started, self._validation_marks = time.monotonic(), []

    def on_test_batch_end(self, batch, logs=None):
        self._validation_marks.append((batch, time.monotonic()))

    def on_test_end(self, logs=None):
        seconds = time.monotonic() - self._validation_started
        self._validation_seconds = (
            seconds if self._validation_seconds is None else min(seconds, self._validation_seconds)
        )
        if self.on_images and len(self._validation_marks) >= 2:  # batches after the first, which traced
            (first_batch, first_time), (last_batch, last_time) = self._validation_marks[0], self._validation_marks[-1]
            self.budget.observe_validation(last_time - first_time, last_batch - first_batch)

    def _steps_done(self, batch: int) -> int:
        return (self._epoch - self.first_epoch) * self.length.steps_per_epoch + batch + 1

    def _end(self) -> float:
        return self.budget.training_end() if self.last else self.phase_end

    def _validation_estimate(self, seconds_per_step: float) -> float:
        if self._validation_seconds is not None:
            return self._validation_seconds
        per_batch = self.budget.seconds_per_eval_batch or seconds_per_step * VALIDATION_STEP_FRACTION
        return per_batch * self.val_batches

    def _fit_from_steps(self, batch: int, now: float) -> None:
        """The first epoch's length fitted from its first timed steps: its remaining epochs, or, when even this
        epoch does not fit, the step inside it where the phase ends (it still validates there)."""
        first_batch, first_time = self._marks[1]
        per_step = (now - first_time) / max(1, batch - first_batch)
        self.budget.seconds_per_step = per_step
        validation = self._validation_estimate(per_step)
        end = self._end()
        this_epoch_left = (self.length.steps_per_epoch - batch - 1) * per_step + validation
        done = self._epoch - self.first_epoch
        if now + this_epoch_left <= end:
            per_epoch = per_step * self.length.steps_per_epoch + validation
            self._fit_epochs(done + 1 + math.floor((end - now - this_epoch_left) / per_epoch), per_epoch, end - now)
            return
        steps = done * self.length.steps_per_epoch + batch + 1 + max(0, math.floor((end - now - validation) / per_step))
        log.info(
            "%s: %d step(s) instead of %d to finish within train.budget_minutes=%g (%.3f s a step, %.0f s left for "
            "training, %.0f s kept for the evaluation)",
            self.phase,
            steps,
            self.length.steps,
            self.budget.minutes,
            per_step,
            max(0.0, end - now),
            self.budget.evaluation_seconds(),
        )
        self.length.epochs, self.length.cut_steps = done + 1, steps
        self._retarget()
        if self._steps_done(batch) >= steps:
            self.model.stop_training = True

    def _fit_epochs(self, epochs: int, per_epoch: float, seconds_left: float) -> None:
        if not self.last:
            epochs = min(epochs, self.planned_epochs)
        if epochs == self.length.epochs:
            return
        log.info(
            "%s: %d epoch(s) instead of %d to finish within train.budget_minutes=%g (%.1f s an epoch, %.0f s left "
            "for training, %.0f s kept for the evaluation)",
            self.phase,
            epochs,
            self.length.epochs,
            self.budget.minutes,
            per_epoch,
            max(0.0, seconds_left),
            self.budget.evaluation_seconds(),
        )
        self.length.epochs = epochs
        self._retarget()

    def _retarget(self) -> None:
        self.length.reason = f"train.budget_minutes={self.budget.minutes:g}"
        if hasattr(self.schedule, "retarget"):
            self.schedule.retarget(self.length.steps)

    def _seconds_per_epoch(self) -> float:
        if len(self._epoch_seconds) > 1:  # whole epochs after the first, which traced
            later = self._epoch_seconds[1:]
            return sum(later) / len(later)
        if len(self._marks) >= 3:  # the first epoch's steps after its first call, plus its validation
            (first_batch, first_time), (last_batch, last_time) = self._marks[1], self._marks[-1]
            per_step = (last_time - first_time) / max(1, last_batch - first_batch)
            return per_step * self.length.steps_per_epoch + (self._validation_seconds or 0.0)
        return self._epoch_seconds[0]

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()
        self._epoch_seconds.append(now - self._epoch_started)
        done = epoch + 1 - self.first_epoch
        if self.length.cut_steps is None:
            end = self._end()
            per_epoch = self._seconds_per_epoch()
            self._fit_epochs(done + max(0, math.floor((end - now) / per_epoch)), per_epoch, end - now)
        self.length.reason = f"train.budget_minutes={self.budget.minutes:g}"
        if done >= self.length.epochs:
            self.model.stop_training = True
