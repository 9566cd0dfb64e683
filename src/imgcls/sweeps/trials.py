"""The sweeper's bookkeeping of single trials: outcomes, interrupted and repeated trials, what a job reported."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
from pathlib import Path

import optuna
from hydra.core.utils import JobReturn

log = logging.getLogger(__name__)

State = optuna.trial.TrialState
# Trials whose parameters are not proposed again: known results, or being computed right now.
TAKEN_STATES = (State.COMPLETE, State.PRUNED, State.RUNNING)
# What a trial's metrics.json may add to its row in sweep_summary.csv: validation only, never test.
RECORDED_KEYS = ("epochs_trained", "train_seconds")


def trial_outcome(ret: JobReturn) -> tuple[State, float | None, str]:
    """How a finished job ends its trial: COMPLETE with a finite value, PRUNED, or FAIL (with why)."""
    try:
        value = float(ret.return_value)
    except optuna.TrialPruned as pruned:
        return State.PRUNED, None, str(pruned)
    except Exception as error:  # whatever the job raised, the trial failed; the sweep goes on
        return State.FAIL, None, f"{type(error).__name__}: {error}"
    if not math.isfinite(value):
        return State.FAIL, None, f"the objective is {value}"
    return State.COMPLETE, value, ""


def derive_sampler_seed(base_seed: int | None, host: str, pid: int, trials_in_study: int) -> int:
    """A sampler seed of its own for each start and each process: the same base seed never proposes the same
    trials twice, and the derived seed is logged and recorded so that a start can be reproduced."""
    text = f"{base_seed}:{host}:{pid}:{trials_in_study}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def mark_as_this_process(trial: optuna.trial.Trial, sampler_seed: int) -> None:
    """Record which machine and process run ``trial``, and the seed of the sampler that proposed it."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("sampler_seed", sampler_seed)


def fail_interrupted_trials(study: optuna.Study) -> int:
    """Mark RUNNING trials whose sweeping process on this machine is gone as FAIL (an interrupted sweep)."""
    host, failed = socket.gethostname(), 0
    for trial in study.get_trials(deepcopy=False, states=(State.RUNNING,)):
        pid = trial.user_attrs.get("pid")
        if trial.user_attrs.get("host") != host or pid is None or _alive(int(pid)):
            continue
        study.tell(trial.number, state=State.FAIL)
        failed += 1
    if failed:
        log.warning("Marked %d trial(s) of an interrupted sweep as failed", failed)
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def earlier_trial_with_same_params(study: optuna.Study, trial: optuna.trial.Trial) -> optuna.trial.FrozenTrial | None:
    """A trial with exactly ``trial``'s parameters that has a result or is running, if there is one."""
    for other in study.get_trials(deepcopy=False, states=TAKEN_STATES):
        if other.number != trial.number and other.params == trial.params and "duplicate_of" not in other.user_attrs:
            return other
    return None


def close_as_duplicate(study: optuna.Study, trial: optuna.trial.Trial, earlier: optuna.trial.FrozenTrial) -> None:
    """End a proposed trial that repeats ``earlier`` without running it: it takes the earlier value, or is PRUNED."""
    trial.set_user_attr("duplicate_of", earlier.number)
    if earlier.state == State.COMPLETE:
        study.tell(trial, values=earlier.values)
    else:
        study.tell(trial, state=State.PRUNED)
    log.info(
        "Trial %d repeats the parameters of trial %d (%s): not run", trial.number, earlier.number, earlier.state.name
    )


def record_job_results(trial: optuna.trial.Trial, run_dir: Path) -> None:
    """Copy the validation metrics, epochs and duration of the job's metrics.json to the trial's user attributes."""
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return
    for key, value in metrics.items():
        if (key.startswith("val_") or key in RECORDED_KEYS) and isinstance(value, (int, float)):
            trial.set_user_attr(key, value)


def counts_toward_total(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether ``trial`` counts for ``total_trials``: finished (COMPLETE or PRUNED) or running, and not a repeat."""
    return trial.state in TAKEN_STATES and "duplicate_of" not in trial.user_attrs
