"""runs.csv's columns and rows, the sort direction, and what the terminal shows."""

from __future__ import annotations

import csv
import json

import pytest

from imgcls.runs.collect import collect_runs
from imgcls.runs.table import build_table, render_text, sort_table, terminal_columns, write_csv


@pytest.fixture
def table(log_dir):
    return build_table(collect_runs([log_dir / "outputs", log_dir / "multirun"]))


def test_runs_csv_has_every_hparam_and_every_val_and_test_metric(table, log_dir, tmp_path):
    path = write_csv(table, tmp_path / "runs.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    assert header[:5] == ["run_dir", "status", "time", "train_seconds", "epochs_trained"]
    hparams = json.loads((log_dir / "outputs" / "2026-11-29" / "10-00-00" / "metrics.json").read_text())["hparams"]
    assert len(hparams) == 18 and set(hparams) <= set(header)
    metrics = {
        f"{split}_{name}"
        for split in ("val", "test")
        for name in (
            "accuracy",
            "loss",
            "precision",
            "recall",
            "f1",
            "precision_weighted",
            "recall_weighted",
            "f1_weighted",
        )
    }
    assert metrics | {"val_ece", "test_ece", "temperature", "git_commit", "overrides"} <= set(header)
    assert "class_names" not in header and "test_per_class" not in header
    assert len(rows) == 5
    finished = next(row for row in rows if row["run_dir"].endswith("outputs/2026-11-29/11-00-00"))
    assert finished["status"] == "finished" and float(finished["val_accuracy"]) == 0.9
    assert finished["git_commit"] == "abc1234" and finished["git_dirty"] == "false"
    assert finished["weights"] == "" and finished["tta"] == "false"
    assert finished["epochs_per_phase"] == "phase1=1 phase2=1"
    unfinished = next(row for row in rows if row["run_dir"].endswith("12-00-00"))
    assert unfinished["status"] == "unfinished" and unfinished["val_accuracy"] == "" and unfinished["backbone"]


def test_accuracy_sorts_best_first_loss_smallest_first_and_unfinished_runs_last(table):
    def order(column, descending=None):
        return [row.get(column) for row in sort_table(table, column, descending).rows]

    assert order("val_accuracy") == [0.9, 0.8, 0.7, 0.6, None]
    assert order("val_loss") == [0.8, 0.9, 1.0, 1.0, None]
    assert order("val_accuracy", descending=False) == [0.6, 0.7, 0.8, 0.9, None]
    assert order("backbone")[-1] == "resnet50"  # text ascends


def test_the_terminal_shows_hparams_that_differ_and_key_metrics(table):
    columns = terminal_columns(table, "val_f1")
    assert columns[:5] == ["run_dir", "status", "time", "train_seconds", "epochs_trained"]
    assert {"backbone", "dropout"} <= set(columns) and "batch_size" not in columns
    assert columns[-4:] == ["val_accuracy", "val_loss", "test_accuracy", "val_f1"]
    lines = render_text(sort_table(table, "val_accuracy"), columns).splitlines()
    assert lines[0].split()[:5] == ["run", "status", "time", "duration", "epochs"]
    assert "outputs/2026-11-29/11-00-00" in lines[2] and "1m15s" in lines[2] and "0.9000" in lines[2]
    assert "unfinished" in lines[-1]
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule line up
