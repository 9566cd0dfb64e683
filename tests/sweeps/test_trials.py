"""The sweeper's bookkeeping of single trials: outcomes, seeds, interrupted and repeated trials, job results."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import optuna
from hydra.core.utils import JobReturn, JobStatus
from optuna.distributions import CategoricalDistribution

from imgcls.sweeps.trials import (
    close_as_duplicate,
    derive_sampler_seed,
    earlier_trial_with_same_params,
    fail_interrupted_trials,
    record_job_results,
    trial_outcome,
)

State = optuna.trial.TrialState


def job_return(value=None, error=None):
    ret = JobReturn()
    ret.status = JobStatus.FAILED if error else JobStatus.COMPLETED
    ret._return_value = error if error else value
    return ret


def test_trial_outcomes():
    assert trial_outcome(job_return(0.8)) == (State.COMPLETE, 0.8, "")
    assert trial_outcome(job_return(error=optuna.TrialPruned("after epoch 2")))[0] == State.PRUNED
    state, value, why = trial_outcome(job_return(error=RuntimeError("NaN loss")))
    assert state == State.FAIL and value is None and "NaN loss" in why
    assert trial_outcome(job_return(float("nan")))[0] == State.FAIL


def test_each_start_and_each_process_gets_its_own_sampler_seed():
    seeds = {derive_sampler_seed(42, host, pid, count) for host in ("a", "b") for pid in (1, 2) for count in (0, 3)}
    assert len(seeds) == 8
    assert derive_sampler_seed(42, "a", 1, 3) == derive_sampler_seed(42, "a", 1, 3), "recorded seeds reproduce"
    assert all(0 <= seed < 2**32 for seed in seeds)


def test_trials_of_a_dead_sweep_process_are_marked_failed(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'db.sqlite'}", study_name="s")
    orphan, live = study.ask(), study.ask()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for trial, pid in ((orphan, int(dead.stdout)), (live, os.getpid())):
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", pid)
    assert fail_interrupted_trials(study) == 1
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {orphan.number: State.FAIL, live.number: State.RUNNING}


def test_a_proposal_that_repeats_a_trial_takes_its_result_without_running():
    study = optuna.create_study(direction="maximize")
    space = {"unfreeze": CategoricalDistribution([10])}
    first = study.ask(space)
    study.tell(first, 0.7)
    again = study.ask(space)
    earlier = earlier_trial_with_same_params(study, again)
    assert earlier.number == first.number
    close_as_duplicate(study, again, earlier)
    repeat = study.trials[again.number]
    assert repeat.state == State.COMPLETE and repeat.value == 0.7 and repeat.user_attrs["duplicate_of"] == 0


def test_a_proposal_that_repeats_a_running_trial_is_not_run():
    study = optuna.create_study()
    space = {"unfreeze": CategoricalDistribution([10])}
    running = study.ask(space)
    again = study.ask(space)
    close_as_duplicate(study, again, earlier_trial_with_same_params(study, again))
    assert [t.state for t in study.trials] == [State.RUNNING, State.PRUNED]
    assert earlier_trial_with_same_params(study, running) is None, "the repeat is not an earlier trial"


def test_job_results_recorded_are_validation_metrics_only(tmp_path):
    (tmp_path / "metrics.json").write_text(
        json.dumps(
            {
                "val_accuracy": 0.9,
                "val_loss": 0.3,
                "test_accuracy": 0.8,
                "epochs_trained": 4,
                "train_seconds": 12.5,
                "class_names": ["a", "b"],
            }
        )
    )
    study = optuna.create_study()
    trial = study.ask()
    record_job_results(trial, tmp_path)
    record_job_results(trial, tmp_path / "missing")  # a job that wrote nothing records nothing
    assert study.trials[0].user_attrs == {
        "val_accuracy": 0.9,
        "val_loss": 0.3,
        "epochs_trained": 4,
        "train_seconds": 12.5,
    }
