"""Per-phase checkpoints: what lets an interrupted run continue at the right phase and epoch."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import keras

from imgcls.training.callbacks import EpochBackup

log = logging.getLogger(__name__)


def inference_view(model: keras.Model) -> keras.Model:
    """An uncompiled model sharing ``model``'s layers: saving it writes no optimizer state."""
    return keras.Model(model.inputs, model.outputs, name=model.name)


class PhaseCheckpoints:
    """``<run>/checkpoints/``: an epoch backup per phase, and each finished phase's result.

    ``state.json`` records, per finished phase, its first epoch and how many epochs it ran;
    ``<phase>.weights.h5`` holds the weights it ended with (its best, as EarlyStopping restores).
    """

    def __init__(self, directory: Path, *, resume: bool):
        self.directory = Path(directory)
        if not resume and self.directory.exists():
            shutil.rmtree(self.directory)
        if resume and not self.directory.exists():
            log.warning("resume=true but %s holds no checkpoints: starting from the beginning", self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._state_path = self.directory / "state.json"
        self.state: dict[str, dict[str, int]] = (
            json.loads(self._state_path.read_text()) if self._state_path.exists() else {}
        )

    def backup(self, phase: str) -> EpochBackup:
        """The callback that saves (and on resume restores) the phase's weights, optimizer and epoch."""
        return EpochBackup(str(self.directory / phase))

    def is_finished(self, phase: str) -> bool:
        return phase in self.state

    def finish_phase(self, phase: str, model: keras.Model, first_epoch: int, epochs: int) -> None:
        """Record that ``phase`` is done and keep the weights it ended with."""
        inference_view(model).save_weights(self.directory / f"{phase}.weights.h5")
        self.state[phase] = {"first_epoch": first_epoch, "epochs": epochs}
        self._state_path.write_text(json.dumps(self.state, indent=2) + "\n")
        shutil.rmtree(self.directory / phase, ignore_errors=True)

    def restore_phase(self, phase: str, model: keras.Model) -> None:
        """Load the weights a finished phase ended with."""
        inference_view(model).load_weights(self.directory / f"{phase}.weights.h5")
        log.info("Resumed: %s already finished (%d epochs); its weights are restored", phase, self.state[phase]["epochs"])

    def epochs_done(self) -> int:
        """Epochs of all finished phases."""
        return sum(entry["epochs"] for entry in self.state.values())

    def remove(self) -> None:
        """Delete the checkpoints once the run has finished and saved its model."""
        shutil.rmtree(self.directory, ignore_errors=True)
