"""The multirun callback that conf/train.yaml registers: runs.csv in the sweep folder at the multirun's end."""

from __future__ import annotations

import csv

import pytest
from hydra.utils import instantiate

from helpers import compose_app, run_entrypoint
from imgcls.runs.callback import RunsTableCallback
from imgcls.targets import TRUSTED_TARGETS


def test_the_registered_callback_writes_runs_csv_for_the_multiruns_jobs(make_sweep, tmp_path):
    sweep_dir = make_sweep(tmp_path / "multirun" / "d" / "t", {"0.1": 0.6, "0.5": 0.8, "0.3": 0.7})
    config = compose_app("train", [f"hydra.sweep.dir={sweep_dir}"], return_hydra_config=True)
    callback = instantiate(config.hydra.callbacks.runs_table, _execution_whitelist_=TRUSTED_TARGETS)
    assert isinstance(callback, RunsTableCallback)
    callback.on_multirun_end(config=config)
    with open(sweep_dir / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["run_dir"] for row in rows] == [str(sweep_dir / job) for job in ("1", "2", "0")]  # optimized_metric
    assert [row["val_accuracy"] for row in rows] == ["0.8", "0.7", "0.6"]
    assert {row["status"] for row in rows} == {"finished"}


def test_a_multirun_without_run_folders_gets_no_runs_csv(tmp_path):
    config = compose_app("train", [f"hydra.sweep.dir={tmp_path}"], return_hydra_config=True)
    RunsTableCallback().on_multirun_end(config=config)
    assert not (tmp_path / "runs.csv").exists()


@pytest.mark.slow
def test_a_real_multirun_writes_runs_csv_even_when_its_jobs_fail_at_start(tmp_path):
    # Jobs that stop at the config check (seconds, no training): Hydra itself builds the callback, through
    # imgcls's execution whitelist, and calls it at the end; each job folder holds only .hydra/ and train.log.
    sweep_dir = tmp_path / "multirun" / "s"
    result = run_entrypoint(
        "imgcls.train",
        [
            "-m",
            "optimized_metric=test_accuracy",
            f"paths.log_dir={tmp_path}",
            f"hydra.sweep.dir={sweep_dir}",
            "seed=1,2",
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert "optimized_metric=test_accuracy is not one of val_accuracy" in result.stderr + result.stdout
    with open(sweep_dir / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(row["run_dir"], row["status"]) for row in rows] == [
        (str(sweep_dir / "0"), "unfinished"),
        (str(sweep_dir / "1"), "unfinished"),
    ]
    assert rows[0]["backbone"] == "resnet50" and rows[1]["overrides"].endswith("seed=2")
