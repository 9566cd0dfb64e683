"""Optuna sweeps through the CLI: pruning, restarts, budgets, failures, signals, several workers on one study."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys

import optuna
import pytest
import sqlalchemy.exc
import yaml

from helpers import kill_when, tiny_run_overrides
from imgcls.resolvers import metric_direction
from imgcls.sweeps.sweeper import failures_allowed

State = optuna.trial.TrialState


def test_direction_follows_the_metric():
    assert metric_direction("val_loss") == "minimize"
    assert metric_direction("val_accuracy") == metric_direction("val_f1") == "maximize"


def test_the_failure_budget_never_ends_a_sweep_on_its_first_failure_unless_asked():
    assert failures_allowed(0.25, 3) == 1
    assert failures_allowed(0.25, 20) == 5
    assert failures_allowed(0.0, 20) == 0, "max_failure_rate=0: stop at the first failure"


# --- real sweeps through the CLI ---------------------------------------------------------------


def sweep_args(image_dataset, log_dir, *extra):
    return [
        "-m",
        "hparams_search=optuna",
        *tiny_run_overrides(
            image_dataset,
            "train.phases.phase1.epochs=2",
            "train.phases.phase2.epochs=0",
            "augmentation=none",
            "mixup=none",
            f"paths.log_dir={log_dir}",
            "hydra.sweeper.study_name=t",
            *extra,
        ),
    ]


def start_sweep(args, cwd, log_path):
    """The sweep as a background process whose output goes to ``log_path`` (a pipe could fill up and block it)."""
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "imgcls.train", *args], cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True
        )


def run_sweep(args, cwd, timeout=600, expect_rc=0):
    result = subprocess.run(
        [sys.executable, "-m", "imgcls.train", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    output = result.stdout + result.stderr
    assert result.returncode == expect_rc, output[-4000:]
    if expect_rc:
        assert "Traceback" not in output, "a stopped sweep says why in one line"
    return output


def summary_rows(sweep_dir):
    with open(sweep_dir / "sweep_summary.csv") as f:
        return list(csv.DictReader(f))


def load(sweep_dir):
    return optuna.load_study(study_name="t", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


@pytest.mark.slow
def test_pruned_trials_are_recorded_as_pruned_and_the_results_written(image_dataset, tmp_path):
    # This pruner stops every trial after its first epoch: pruning, deterministically.
    pruner = [
        "hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner",
        "~hydra.sweeper.pruner.n_startup_trials",
        "~hydra.sweeper.pruner.n_warmup_steps",
        "+hydra.sweeper.pruner.lower=1.01",
    ]
    run_sweep(
        sweep_args(image_dataset, tmp_path, "hydra.sweeper.n_trials=2", "hydra.sweeper.max_failure_rate=0", *pruner),
        tmp_path,
    )
    sweep_dir = tmp_path / "multirun" / "optuna" / "t"
    study = load(sweep_dir)
    assert [t.state for t in study.trials] == [State.PRUNED, State.PRUNED]
    assert all(list(t.intermediate_values) == [0] for t in study.trials), "pruned after the first epoch"
    rows = summary_rows(sweep_dir)
    assert [r["state"] for r in rows] == ["PRUNED", "PRUNED"]
    assert [r["epochs_trained"] for r in rows] == ["1", "1"]
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
def test_a_restarted_sweep_never_repeats_a_trial_and_keeps_to_its_question(image_dataset, tmp_path):
    args = sweep_args(image_dataset, tmp_path, "hydra.sweeper.n_trials=2", "hydra.sweeper.pruner=null")
    sweep_dir = tmp_path / "multirun" / "optuna" / "t"
    run_sweep(args, tmp_path)
    run_sweep(args, tmp_path)
    trials = load(sweep_dir).trials
    assert [t.state for t in trials] == [State.COMPLETE] * 4
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4, "the second start proposed new parameters"
    assert len({t.user_attrs["sampler_seed"] for t in trials}) == 2, "one recorded sampler seed per start"

    rows = summary_rows(sweep_dir)
    assert len(rows) == 4 and all(r["epochs_trained"] == "2" and float(r["duration_s"]) > 0 for r in rows)
    assert all(0 <= float(r["val_accuracy"]) <= 1 and float(r["val_loss"]) > 0 for r in rows)
    assert not [column for column in rows[0] if column.startswith("test")]
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["trials"]["COMPLETE"] == 4
    assert results["best_value"] == max(t.value for t in trials)
    assert "imgcls-train" in results["rerun_command"] and "hparams_search" not in results["rerun_command"]

    output = run_sweep([*args, "hydra.sweeper.total_trials=4"], tmp_path)
    assert "nothing more to run" in output and len(load(sweep_dir).trials) == 4, "the total budget is reached"

    # the exit-code path of a changed question; each kind of change is refused in-process in test_study_definition
    output = run_sweep([*args, "optimized_metric=val_loss"], tmp_path, expect_rc=2)
    assert "direction maximize -> minimize" in output and "hydra.sweeper.study_name=" in output
    assert len(load(sweep_dir).trials) == 4, "a refused start runs nothing"


@pytest.mark.slow
def test_a_sweep_stopped_by_failures_keeps_the_results_of_its_finished_trials(image_dataset, tmp_path):
    sweep_dir = tmp_path / "multirun" / "optuna" / "t"
    sweep_dir.mkdir(parents=True)
    study = optuna.create_study(study_name="t", storage=f"sqlite:///{sweep_dir / 'optuna.db'}", direction="maximize")
    for dropout in (0.2, 1.5, 1.4):  # a dropout rate over 1 makes the job fail at its config check
        study.enqueue_trial({"model.dropout": dropout})
    args = sweep_args(
        image_dataset,
        tmp_path,
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.pruner=null",
        "hydra.sweeper.max_failure_rate=0.34",
        "model.dropout=interval(0.0,1.5)",
    )
    output = run_sweep(args, tmp_path, expect_rc=1)
    assert "Sweep stopped: 2 trial(s) failed" in output, "the first failure was tolerated, the second stopped it"
    rows = summary_rows(sweep_dir)
    assert [r["state"] for r in rows] == ["COMPLETE", "FAIL", "FAIL"]
    assert "model.dropout=1.5 is not a number in [0, 1)" in rows[1]["note"]
    assert yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())["best_trial"] == 0


@pytest.mark.slow
def test_a_sweep_stopped_by_sigterm_keeps_its_results_and_fails_the_running_trial(image_dataset, tmp_path):
    args = sweep_args(image_dataset, tmp_path, "hydra.sweeper.n_trials=3", "hydra.sweeper.pruner=null")
    sweep_dir = tmp_path / "multirun" / "optuna" / "t"
    sweep = start_sweep(args, tmp_path, tmp_path / "sweep.log")
    kill_when(sweep, lambda: bool(completed_trials(sweep_dir)), poll=0.5, signal_number=signal.SIGTERM)
    output = (tmp_path / "sweep.log").read_text()
    assert sweep.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert "Sweep stopped by SIGTERM" in output and "Traceback" not in output
    trials = load(sweep_dir).trials
    assert trials[0].state == State.COMPLETE
    assert trials[1].state == State.FAIL and trials[1].user_attrs["fail_reason"] == "interrupted"
    assert [r["state"] for r in summary_rows(sweep_dir)] == [t.state.name for t in trials]
    assert yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())["best_trial"] == 0


@pytest.mark.slow
def test_jobs_in_other_processes_are_pruned_through_the_shared_storage(image_dataset, tmp_path):
    # Hydra's joblib launcher runs each job in a worker process: the job finds its trial in the study's storage.
    pruner = [
        "hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner",
        "~hydra.sweeper.pruner.n_startup_trials",
        "~hydra.sweeper.pruner.n_warmup_steps",
        "+hydra.sweeper.pruner.lower=1.01",
    ]
    output = run_sweep(
        sweep_args(
            image_dataset,
            tmp_path,
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "hydra.sweeper.n_trials=1",
            *pruner,
        ),
        tmp_path,
    )
    assert "backend=loky" in output, "the job ran in a joblib (loky) worker process"
    (trial,) = load(tmp_path / "multirun" / "optuna" / "t").trials
    assert trial.state == State.PRUNED and list(trial.intermediate_values) == [0]
