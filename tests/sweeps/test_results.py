"""What a sweep leaves: the summary of every trial, the best trial that was really run, the re-run command."""

from __future__ import annotations

import csv

import optuna
from optuna.distributions import FloatDistribution

from imgcls.sweeps.results import best_trial, rerun_command, write_summary

State = optuna.trial.TrialState


def test_rerun_command_quotes_what_the_shell_needs():
    command = rerun_command(["experiment=demo", "data.train_dir=/my data/train"], {"model.dropout": 0.25})
    assert command == "imgcls-train experiment=demo 'data.train_dir=/my data/train' model.dropout=0.25"


def a_study(direction):
    study = optuna.create_study(direction=direction)
    space = {"model.dropout": FloatDistribution(0.0, 0.5)}
    for number, (value, state) in enumerate(
        [(0.4, State.COMPLETE), (0.9, State.COMPLETE), (None, State.PRUNED), (None, State.FAIL)]
    ):
        trial = study.ask(space)
        trial.set_user_attr("run_dir", f"/sweep/{number}")
        if state == State.COMPLETE:
            trial.set_user_attr("val_accuracy", value)
            trial.set_user_attr("epochs_trained", 3)
        if state == State.PRUNED:
            trial.report(0.2, step=0)
            trial.set_user_attr("pruned_because", "pruned after epoch 1")
        if state == State.FAIL:
            trial.set_user_attr("fail_reason", "ValueError: rate")
        study.tell(trial, value, state=state)
    return study


def test_the_summary_has_one_row_per_trial_with_epochs_duration_and_validation_metrics(tmp_path):
    with open(write_summary(a_study("maximize"), tmp_path)) as f:
        rows = list(csv.DictReader(f))
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE", "PRUNED", "FAIL"]
    assert [r["epochs_trained"] for r in rows] == ["3", "3", "1", ""]
    assert rows[1]["val_accuracy"] == "0.9" and float(rows[1]["duration_s"]) >= 0
    assert rows[2]["note"] == "pruned after epoch 1" and rows[3]["note"] == "ValueError: rate"
    assert not [column for column in rows[0] if column.startswith("test")], "sweeps never see test metrics"


def test_the_best_trial_follows_the_direction_and_skips_repeats():
    assert best_trial(a_study("maximize")).number == 1
    assert best_trial(a_study("minimize")).number == 0
    study = a_study("maximize")
    repeat = study.ask({"model.dropout": FloatDistribution(0.0, 0.5)})
    repeat.set_user_attr("duplicate_of", 1)
    study.tell(repeat, 0.95)
    assert best_trial(study).number == 1
    assert best_trial(optuna.create_study()) is None
