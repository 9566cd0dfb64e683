"""Optuna sweeps: pruning, persistence across restarts, several workers on one study, result files."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import optuna
import pytest
import sqlalchemy.exc
import yaml
from helpers import kill_when
from hydra.core.utils import JobReturn, JobStatus

from imgcls.resolvers import metric_direction
from imgcls.sweeps.results import rerun_command
from imgcls.sweeps.sweeper import fail_interrupted_trials, trial_outcome

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


def test_direction_follows_the_metric():
    assert metric_direction("val_loss") == "minimize"
    assert metric_direction("val_accuracy") == metric_direction("val_f1") == "maximize"


def test_trials_of_a_dead_sweep_process_are_marked_failed(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'db.sqlite'}", study_name="s")
    orphan, live = study.ask(), study.ask()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    for trial, pid in ((orphan, int(dead.stdout)), (live, os.getpid())):
        study._storage.set_trial_system_attr(trial._trial_id, "imgcls_host", socket.gethostname())
        study._storage.set_trial_system_attr(trial._trial_id, "imgcls_pid", pid)
    assert fail_interrupted_trials(study) == 1
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {orphan.number: State.FAIL, live.number: State.RUNNING}


def test_rerun_command_quotes_what_the_shell_needs():
    command = rerun_command(["experiment=demo", "data.train_dir=/my data/train"], {"model.dropout": 0.25})
    assert command == "imgcls-train experiment=demo 'data.train_dir=/my data/train' model.dropout=0.25"


# --- real sweeps through the CLI ---------------------------------------------------------------


def sweep_args(image_dataset, log_dir, *extra):
    return [
        "-m", "hparams_search=optuna", "debug=tiny", "train.phases.phase1.epochs=2", "train.phases.phase2.epochs=0",
        "augmentation=none", "mixup=none", f"data.train_dir={image_dataset / 'training_set'}",
        f"data.test_dir={image_dataset / 'test_set'}", f"paths.log_dir={log_dir}", "hydra.sweeper.study_name=t",
        *extra,
    ]


def start_sweep(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "imgcls.train", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def run_sweep(args, cwd, timeout=600):
    result = subprocess.run([sys.executable, "-m", "imgcls.train", *args], cwd=cwd, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


def load(sweep_dir):
    return optuna.load_study(study_name="t", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


@pytest.mark.slow
def test_pruned_trials_are_recorded_as_pruned_and_the_results_written(image_dataset, tmp_path):
    # This pruner stops every trial after its first epoch: pruning, deterministically.
    pruner = ["hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner", "~hydra.sweeper.pruner.n_startup_trials",
              "~hydra.sweeper.pruner.n_warmup_steps", "+hydra.sweeper.pruner.lower=1.01"]
    run_sweep(sweep_args(image_dataset, tmp_path, "hydra.sweeper.n_trials=2", "hydra.sweeper.max_failure_rate=0",
                         *pruner), tmp_path)
    sweep_dir = tmp_path / "multirun" / "optuna" / "t"
    study = load(sweep_dir)
    assert [t.state for t in study.trials] == [State.PRUNED, State.PRUNED]
    assert all(list(t.intermediate_values) == [0] for t in study.trials), "pruned after the first epoch"
    with open(sweep_dir / "sweep_summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["state"] for r in rows] == ["PRUNED", "PRUNED"]
    assert rows[0]["run_dir"].endswith("multirun/optuna/t/0")
    assert not (sweep_dir / "optimization_results.yaml").exists(), "no trial completed: no best to report"


def completed_trials(sweep_dir):
    if not (sweep_dir / "optuna.db").exists():
        return []
    try:
        return [t for t in load(sweep_dir).trials if t.state == State.COMPLETE]
    except (KeyError, sqlalchemy.exc.SQLAlchemyError):  # the sweeper is still creating the study
        return []


@pytest.mark.slow
def test_a_stopped_sweep_continues_its_study(image_dataset, tmp_path):
    args = sweep_args(image_dataset, tmp_path, "hydra.sweeper.n_trials=3", "hydra.sweeper.pruner=null")
    sweep_dir = tmp_path / "multirun" / "optuna" / "t"
    kill_when(start_sweep(args, tmp_path), lambda: bool(completed_trials(sweep_dir)), poll=0.5)
    before = load(sweep_dir).trials
    finished_before = [t for t in before if t.state == State.COMPLETE]
    assert finished_before, "the first trial completed before the interruption"

    run_sweep([*args[:-2], "hydra.sweeper.n_trials=2", "hydra.sweeper.pruner=null"], tmp_path)
    after = load(sweep_dir).trials
    assert len([t for t in after if t.state == State.COMPLETE]) == len(finished_before) + 2
    assert not [t for t in after if t.state == State.RUNNING], "the interrupted trial is marked failed"
    assert sorted(t.number for t in after) == list(range(len(after)))
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["trials"]["COMPLETE"] == len(finished_before) + 2
    assert results["best_value"] == max(t.value for t in after if t.state == State.COMPLETE)
    assert "imgcls-train" in results["rerun_command"] and "hparams_search" not in results["rerun_command"]


@pytest.mark.slow
def test_two_workers_share_one_study(image_dataset, tmp_path):
    args = sweep_args(image_dataset, tmp_path, "hydra.sweeper.n_trials=2", "hydra.sweeper.pruner=null")
    # each worker gets its own sampler seed, as docs/sweeps.md says (the same seed proposes the same trials)
    workers = [start_sweep([*args, f"hydra.sweeper.sampler.seed={seed}"], tmp_path) for seed in (1, 2)]
    try:
        outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [w.returncode for w in workers] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    sweep_dir = tmp_path / "multirun" / "optuna" / "t"
    trials = load(sweep_dir).trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state == State.COMPLETE for t in trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4, "every trial tried its own parameters"
    for trial in trials:
        assert (sweep_dir / str(trial.number) / "metrics.json").is_file()


@pytest.mark.slow
def test_jobs_in_other_processes_are_pruned_through_the_shared_storage(image_dataset, tmp_path):
    # Hydra's joblib launcher runs each job in a worker process: the job finds its trial in the study's storage.
    pruner = ["hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner", "~hydra.sweeper.pruner.n_startup_trials",
              "~hydra.sweeper.pruner.n_warmup_steps", "+hydra.sweeper.pruner.lower=1.01"]
    result = run_sweep(sweep_args(image_dataset, tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                                  "hydra.sweeper.n_trials=1", *pruner), tmp_path)
    assert "backend=loky" in result.stdout + result.stderr, "the job ran in a joblib (loky) worker process"
    (trial,) = load(tmp_path / "multirun" / "optuna" / "t").trials
    assert trial.state == State.PRUNED and list(trial.intermediate_values) == [0]
