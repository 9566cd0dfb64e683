"""Per-phase checkpoints: what lets an interrupted run continue at the right phase and epoch.

Every file here is written atomically (a temporary file, flushed to disk, then renamed), so a kill
at any moment leaves the previous good copy, never part of a new one.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import keras

from imgcls.atomic_files import write_atomically
from imgcls.compat.keras_private import set_restored_epoch
from imgcls.errors import ConfigError
from imgcls.training.callbacks import non_finite
from imgcls.training.run_folder import differences, refuse_different_run

log = logging.getLogger(__name__)


def inference_view(model: keras.Model) -> keras.Model:
    """An uncompiled model sharing ``model``'s layers: saving it writes no optimizer state."""
    return keras.Model(model.inputs, model.outputs, name=model.name)


def write_json_atomically(path: Path, data: Any) -> None:
    write_atomically(path, lambda partial: partial.write_text(json.dumps(data, indent=2) + "\n"))


class EpochBackup(keras.callbacks.Callback):
    """Backs up the weights, optimizer state and epoch at each epoch end, restores them when fit() starts.

    ``<dir>/training_metadata.json`` names the latest backup (``epoch-NNNN.weights.h5``) and the one
    before it; the weights file is complete before the metadata names it, and the previous one is
    deleted only after. A latest backup that cannot be read falls back to the previous one, with a
    warning. An epoch whose loss is NaN or infinite is never backed up (the last good one stays).
    """

    def __init__(self, backup_dir: str | Path):
        super().__init__()
        self.directory = Path(backup_dir)
        self.metadata_path = self.directory / "training_metadata.json"

    def on_train_begin(self, logs=None):
        if not self.metadata_path.exists():
            return
        metadata = json.loads(self.metadata_path.read_text())
        candidates = [entry for entry in (metadata, metadata.get("previous")) if entry]
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        failures = []
        for entry in candidates:
            path = self.directory / entry["weights"]
            try:
                self.model.load_weights(path)
            except (OSError, ValueError) as error:
                failures.append(f"{path.name}: {error}")
                log.warning("Backup %s cannot be read (%s); trying the one before it", path, error)
                continue
            if failures:
                log.warning("Resumed from the previous backup %s (epoch %d)", path, entry["epoch"])
            set_restored_epoch(self.model, entry["epoch"])  # what keras.callbacks.BackupAndRestore sets
            return
        raise ConfigError(
            f"resume=true: no backup in {self.directory} can be read ({'; '.join(failures)}). Start a fresh run "
            f"without resume=true in a new folder (hydra.run.dir=<new folder>)."
        )

    def on_epoch_end(self, epoch, logs=None):
        if non_finite(logs):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        previous = json.loads(self.metadata_path.read_text()) if self.metadata_path.exists() else None
        name = f"epoch-{epoch + 1:04d}.weights.h5"
        write_atomically(self.directory / name, lambda partial: self.model.save_weights(partial))
        if previous is not None:
            previous.pop("previous", None)
        write_json_atomically(self.metadata_path, {"epoch": epoch + 1, "weights": name, "previous": previous})
        keep = {name, previous["weights"] if previous else None}
        for old in self.directory.glob("epoch-*.weights.h5"):
            if old.name not in keep:
                old.unlink(missing_ok=True)


class PhaseCheckpoints:
    """``<run>/checkpoints/``: an epoch backup per phase, and each finished phase's result.

    ``state.json`` records the run's fingerprint (see :mod:`imgcls.training.run_folder`) and, per
    finished phase, its first epoch and how many epochs it ran; ``<phase>.weights.h5`` holds the
    weights it ended with (its best, as EarlyStopping restores). With ``resume`` and a
    ``fingerprint``, a run whose fingerprint differs from the saved one is refused before any load.
    """

    def __init__(self, directory: Path, *, resume: bool, fingerprint: dict[str, Any] | None = None):
        self.directory = Path(directory)
        self._state_path = self.directory / "state.json"
        if not resume:
            if self.directory.exists():
                shutil.rmtree(self.directory)
            self.directory.mkdir(parents=True)
            self.fingerprint = fingerprint
            self.state: dict[str, dict[str, int]] = {}
            self._save_state()
            return
        if not self._state_path.exists():
            raise ConfigError(
                f"resume=true refused: {self.directory} holds no checkpoints to continue. Run without resume=true "
                f"to train from the beginning, in a fresh folder (hydra.run.dir=<new folder>)."
            )
        saved = json.loads(self._state_path.read_text())
        if "phases" not in saved:  # written before fingerprints were recorded
            saved = {"fingerprint": None, "phases": saved}
        self.fingerprint, self.state = saved["fingerprint"], saved["phases"]
        if fingerprint is not None and self.fingerprint is not None:
            changed = differences(self.fingerprint, fingerprint)
            if changed:
                refuse_different_run(self.directory.parent, changed)
        elif fingerprint is not None:
            log.warning(
                "%s records no fingerprint: cannot check that the run's settings are unchanged", self._state_path
            )

    def _save_state(self) -> None:
        write_json_atomically(self._state_path, {"fingerprint": self.fingerprint, "phases": self.state})

    def backup(self, phase: str) -> EpochBackup:
        """The callback that saves (and on resume restores) the phase's weights, optimizer and epoch."""
        return EpochBackup(self.directory / phase)

    def is_finished(self, phase: str) -> bool:
        return phase in self.state

    def finish_phase(
        self,
        phase: str,
        model: keras.Model,
        first_epoch: int,
        epochs: int,
        *,
        best: float | None = None,
        best_epoch: int | None = None,
    ) -> None:
        """Record that ``phase`` is done, with its best monitored value, and keep the weights it ended with."""
        view = inference_view(model)
        write_atomically(self.directory / f"{phase}.weights.h5", lambda partial: view.save_weights(partial))
        self.state[phase] = {"first_epoch": first_epoch, "epochs": epochs, "best": best, "best_epoch": best_epoch}
        self._save_state()
        shutil.rmtree(self.directory / phase, ignore_errors=True)

    def restore_phase(self, phase: str, model: keras.Model) -> None:
        """Load the weights a finished phase ended with."""
        inference_view(model).load_weights(self.directory / f"{phase}.weights.h5")
        log.info(
            "Resumed: %s already finished (%d epochs); its weights are restored", phase, self.state[phase]["epochs"]
        )

    def epochs_done(self) -> int:
        """Epochs of all finished phases."""
        return sum(entry["epochs"] for entry in self.state.values())

    def remove(self) -> None:
        """Delete the checkpoints once the run has finished and saved its model."""
        shutil.rmtree(self.directory, ignore_errors=True)
