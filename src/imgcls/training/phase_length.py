"""How long a phase trains: in epochs (passes over the training set) or in optimizer steps, with a floor in steps.

A length in epochs suits one size of data set only: ten epochs are sixty steps on 400 images and 9,000 on
60,000. ``steps`` fixes the number of updates whatever the size, and ``min_steps`` gives a small data set
enough of them. Keras's epoch, after which the run validates, logs, checkpoints and may stop early, is at
least ``min_epoch_steps`` steps: a small training set is passed over several times in one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class PhaseLength:
    """A phase's length: ``epochs`` Keras epochs of ``steps_per_epoch`` steps, each ``passes_per_epoch`` passes over
    the training set; ``reason`` says which setting decided it (a time budget may change it while the phase runs)."""

    epochs: int
    steps_per_pass: int
    passes_per_epoch: int
    reason: str
    cut_steps: int | None = None  # a time budget ended the phase inside its last epoch, after this many steps

    @property
    def steps_per_epoch(self) -> int:
        return self.steps_per_pass * self.passes_per_epoch

    @property
    def steps(self) -> int:
        planned = self.epochs * self.steps_per_epoch
        return planned if self.cut_steps is None else min(planned, self.cut_steps)

    @property
    def passes(self) -> int:
        return self.epochs * self.passes_per_epoch

    def describe(self) -> str:
        per_epoch = f"{self.steps_per_epoch} steps"
        if self.passes_per_epoch > 1:
            per_epoch += f", {self.passes_per_epoch} passes over the training set"
        epochs = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        cut = ", the last one cut short" if self.steps < self.epochs * self.steps_per_epoch else ""
        return f"{epochs} of {per_epoch}{cut} = {self.steps} steps ({self.reason})"

    def as_record(self) -> dict:
        return dict(
            epochs=self.epochs,
            steps=self.steps,
            steps_per_epoch=self.steps_per_epoch,
            passes_per_epoch=self.passes_per_epoch,
            reason=self.reason,
        )


def plan_length(
    name: str, *, epochs: int, steps: int | None, min_steps: int, steps_per_pass: int, min_epoch_steps: int
) -> PhaseLength:
    """The length of phase ``name``: ``steps`` when given, else ``epochs`` passes of ``steps_per_pass`` steps; at
    least ``min_steps`` steps; grouped into as many Keras epochs of at least ``min_epoch_steps`` steps as it holds
    (at least one), rounding the passes up to a whole number per epoch."""
    steps_per_pass = max(1, int(steps_per_pass))
    if steps is not None:
        wanted, reason = int(steps), f"train.phases.{name}.steps={int(steps)}"
    else:
        wanted, reason = int(epochs) * steps_per_pass, f"train.phases.{name}.epochs={int(epochs)}"
    if min_steps and wanted < min_steps:
        wanted, reason = int(min_steps), f"train.phases.{name}.min_steps={int(min_steps)}: {reason} is fewer steps"
    passes = max(1, math.ceil(wanted / steps_per_pass))
    epochs = max(1, passes // max(1, math.ceil(min_epoch_steps / steps_per_pass)))
    return PhaseLength(epochs, steps_per_pass, math.ceil(passes / epochs), reason)
