"""The real command line: --help, overrides reaching the run, run folders, multirun, clean errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import assert_test_metrics_match_predictions, run_entrypoint, tiny_run_overrides
from imgcls.quiet_tensorflow import is_noise

pytestmark = pytest.mark.slow

CONSOLE_SCRIPT = Path(sys.executable).parent / "imgcls-train"


def run_cli(args, cwd, env=None, timeout=600):
    return run_entrypoint("imgcls.train", args, cwd, env=env, timeout=timeout)


def tiny_overrides(image_dataset, log_dir):
    return tiny_run_overrides(image_dataset, f"paths.log_dir={log_dir}")


def test_help_lists_groups_and_examples(tmp_path):
    result = subprocess.run([str(CONSOLE_SCRIPT), "--help"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert "experiment=demo" in result.stdout and "hparams_search: (optional; none by default)" in lines
    assert "backbone:" in lines and any(line.startswith("  * resnet50 ") for line in lines)
    assert any(line.startswith("    efficientnetb0 ") for line in lines)


def test_overrides_reach_the_run_and_land_in_outputs(image_dataset, tmp_path):
    result = run_cli([*tiny_overrides(image_dataset, tmp_path), "model.dense_units=24", "seed=7"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = tmp_path.glob("outputs/*/*")
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["dense_units"] == 24 and config["seed"] == 7
    assert config["paths"]["output_dir"] == str(run)

    import keras

    import imgcls  # noqa: F401

    model = keras.models.load_model(run / "model.keras")
    assert model.get_layer("head_dense").units == 24
    assert_test_metrics_match_predictions(run)
    log = (run / "train.log").read_text()
    assert "phase1 epoch 1/1: loss " in log and "phase2 epoch 2/2: loss " in log
    assert (run / "environment.json").is_file()


def test_multirun_puts_each_job_in_its_own_folder(image_dataset, tmp_path):
    args = [*tiny_overrides(image_dataset, tmp_path), "train.phases.phase2.epochs=0", "-m", "model.dropout=0.1,0.5"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(tmp_path.glob("multirun/*/*/*/metrics.json"))
    assert [p.parent.name for p in jobs] == ["0", "1"]
    dropouts = [yaml.safe_load((p.parent / "config.yaml").read_text())["model"]["dropout"] for p in jobs]
    assert dropouts == [0.1, 0.5]
    import csv  # runs.csv, from the callback in conf/train.yaml (imgcls.runs.callback)

    with open(jobs[0].parents[1] / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["dropout"] for row in rows) == ["0.1", "0.5"] and {row["status"] for row in rows} == {"finished"}
    assert all(row["val_accuracy"] and row["test_accuracy"] for row in rows)


def test_offline_imagenet_ends_with_a_clear_message_not_a_traceback(image_dataset, tmp_path):
    # A proxy on a closed loopback port makes the download fail at once, as offline, without leaving this machine.
    offline = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "KERAS_HOME": str(tmp_path)}
    args = [*tiny_overrides(image_dataset, tmp_path), "backbone=mobilenetv3small", "backbone.weights=imagenet"]
    result = run_cli(args, cwd=tmp_path, env=offline)
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "Could not download the ImageNet weights of mobilenetv3small" in output
    assert "backbone.weights=null" in output
    assert "Traceback" not in output


def test_optuna_sweep_optimizes_the_validation_metric(image_dataset, tmp_path):
    args = [
        *tiny_overrides(image_dataset, tmp_path),
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "train.phases.phase2.epochs=0",
    ]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = tmp_path.glob("multirun/*/*")
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    val_accuracies = [json.loads(p.read_text())["val_accuracy"] for p in sweep.glob("*/metrics.json")]
    assert len(val_accuracies) == 2
    assert best["best_value"] == pytest.approx(max(val_accuracies))
    assert set(best["best_params"]) == {
        "model.dropout",
        "train.phases.phase1.lr",
        "train.phases.phase2.lr",
        "train.phases.phase2.unfreeze",
    }


def clean_env(**extra):
    """This environment without TensorFlow's log settings (importing imgcls here set one), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "IMGCLS_TF_LOGS")}
    return {**env, **extra}


def test_a_failing_job_still_records_its_environment_and_prints_no_tensorflow_noise(tmp_path):
    run = tmp_path / "run"
    args = ["model=missing.keras", "format=bogus", f"hydra.run.dir={run}"]
    result = subprocess.run(
        [sys.executable, "-m", "imgcls.export", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(GIT_CEILING_DIRECTORIES=str(tmp_path.parent)),
    )
    assert result.returncode == 2, result.stderr[-3000:]
    environment = json.loads((run / "environment.json").read_text())
    assert environment["command"][1:] == args and environment["cwd"] == str(tmp_path)
    assert environment["git"] is None and environment["versions"]["imgcls"]
    assert not [line for line in result.stderr.splitlines() if is_noise(line)], result.stderr


def test_tensorflow_start_up_logs_are_off_unless_imgcls_tf_logs_asks(tmp_path):
    script = "import os, imgcls, tensorflow; print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"

    def run(**env):
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env=clean_env(**env),
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    quiet = run()
    assert not [line for line in quiet.stderr.splitlines() if is_noise(line)], quiet.stderr
    assert quiet.stdout.strip() in ("2", "3")
    assert run(TF_CPP_MIN_LOG_LEVEL="1").stdout.strip() == "1", "the user's own level is kept"
    assert run(IMGCLS_TF_LOGS="1").stdout.strip() == "None", "with the switch, TensorFlow logs as it would alone"
