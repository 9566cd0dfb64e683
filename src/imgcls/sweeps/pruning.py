"""The job side of pruning: report each epoch's validation metric to the job's Optuna trial."""

from __future__ import annotations

import logging
import math
from typing import Any

import keras
import optuna

from imgcls.compat.optuna_private import trial_by_number

log = logging.getLogger(__name__)

# Metrics Keras logs at every epoch, so they can be reported while a trial trains.
PRUNABLE_METRICS = ("val_accuracy", "val_loss")


def load_trial(study_name: str, storage: str, number: int, pruner: optuna.pruners.BasePruner) -> optuna.trial.Trial:
    """The running trial ``number`` of a study in shared storage, as the objective would see it."""
    return trial_by_number(optuna.load_study(study_name=study_name, storage=storage, pruner=pruner), number)


class ReportToTrial(keras.callbacks.Callback):
    """After each epoch, report ``monitor`` to the trial; raise ``optuna.TrialPruned`` if the pruner says so.

    Epochs count on across both phases, so the pruner compares trials at the same point of training.
    """

    def __init__(self, trial: optuna.trial.Trial, monitor: str):
        super().__init__()
        self.trial = trial
        self.monitor = monitor

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            log.info("Trial %d pruned after epoch %d (%s=%.4f)", self.trial.number, epoch + 1, self.monitor, value)
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1} with {self.monitor}={value:.4f}")


def pruning_callbacks(trial_cfg: Any, monitor: str, pruner_cfg: Any) -> list[keras.callbacks.Callback]:
    """The pruning callback for a sweep job (``trial_cfg.number`` set by the sweeper), else nothing."""
    from imgcls.targets import build

    if trial_cfg is None or trial_cfg.get("number") is None or pruner_cfg is None:
        return []
    if monitor not in PRUNABLE_METRICS:
        log.warning("optimized_metric=%s is only known after training: trials are not pruned", monitor)
        return []
    trial = load_trial(trial_cfg.study_name, trial_cfg.storage, int(trial_cfg.number), build(pruner_cfg))
    return [ReportToTrial(trial, monitor)]
