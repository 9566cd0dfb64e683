"""Finding run folders and reading what they hold: finished and unfinished runs, nothing else."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import yaml

from imgcls.runs.collect import collect_runs, read_run


def test_finished_and_unfinished_runs_count_but_sweep_files_and_other_apps_do_not(log_dir):
    runs = collect_runs([log_dir / "outputs", log_dir / "multirun"])
    found = {run.folder.relative_to(log_dir).as_posix(): run.finished for run in runs}
    assert found == {
        "outputs/2026-11-29/10-00-00": True,
        "outputs/2026-11-29/11-00-00": True,
        "outputs/2026-11-29/12-00-00": False,  # config.yaml, no metrics.json yet
        "multirun/2026-11-29/14-00-00/0": True,
        "multirun/2026-11-29/14-00-00/1": True,
    }  # not outputs/evaluate/..., the sweep folder itself, nor any run's checkpoints/


def test_a_run_holds_its_hparams_every_scalar_metric_and_its_environment(log_dir):
    run = read_run(log_dir / "outputs" / "2026-11-29" / "11-00-00")
    assert run.hparams["backbone"] == "mobilenetv3small" and run.hparams["weights"] is None
    assert run.results["val_accuracy"] == 0.9 and run.results["test_ece"] == 0.05 and run.results["temperature"] == 1.3
    assert "class_names" not in run.results and "test_per_class" not in run.results
    assert run.epochs_per_phase == {"phase1": 1, "phase2": 1}
    assert run.git_commit == "abc1234" and run.git_dirty is False
    assert run.started == datetime(2026, 11, 29, 11, tzinfo=timezone.utc)
    assert run.overrides == ("model.dropout=0.3", "debug=tiny")


def test_an_unfinished_run_takes_its_hparams_from_config_yaml(log_dir):
    run = read_run(log_dir / "outputs" / "2026-11-29" / "12-00-00")
    assert not run.finished and run.results == {}
    assert run.hparams["dropout"] == 0.3
    hydra_config = log_dir / "outputs" / "2026-11-29" / "12-00-00" / ".hydra" / "config.yaml"
    assert run.started == datetime.fromtimestamp(hydra_config.stat().st_mtime).astimezone()


def test_a_run_that_failed_before_config_yaml_resolves_hparams_from_hydras_config(tmp_path):
    (tmp_path / ".hydra").mkdir()
    config = {"backbone": {"name": "resnet50"}, "train": {}, "hparams": {"backbone": "${backbone.name}", "lr": 0.1}}
    (tmp_path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    run = read_run(tmp_path)
    assert not run.finished and run.hparams == {"backbone": "resnet50", "lr": 0.1}


def test_a_partly_written_metrics_json_reads_as_unfinished(make_run, tmp_path):
    folder = make_run(tmp_path / "run")
    text = (folder / "metrics.json").read_text()
    (folder / "metrics.json").write_text(text[: len(text) // 2])
    run = read_run(folder)
    assert not run.finished and run.hparams["backbone"] == "mobilenetv3small"


def test_a_single_run_folder_can_be_a_root(make_run, tmp_path):
    folder = make_run(tmp_path / "run")
    assert [run.folder for run in collect_runs([folder])] == [Path(folder)]
