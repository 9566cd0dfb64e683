"""Interrupted and diverged runs: a SIGKILLed run resumes where it stopped; a NaN run ends cleanly."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from helpers import kill_when

pytestmark = pytest.mark.slow


NO_AUGMENTATION = ("augmentation=none", "mixup=none")
# augmentation and MixUp inside the training step: the model trained is DeviceAugmentedModel
IN_THE_TRAINING_STEP = ("augmentation=basic", "mixup=mixup", "data.augment_on=device")


def overrides(image_dataset, run_dir, *extra, augmentation=NO_AUGMENTATION):
    return [
        "debug=tiny", "data.batch_size=4", "train.phases.phase1.epochs=2", "train.phases.phase2.epochs=2",
        "train.phases.phase2.unfreeze=5", "train.early_stopping.patience=10", *augmentation,
        f"data.train_dir={image_dataset / 'training_set'}", f"data.test_dir={image_dataset / 'test_set'}",
        f"hydra.run.dir={run_dir}", *extra,
    ]


def history_epochs(run_dir):
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    with open(path) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f) if row.get("epoch", "").isdigit()]


def start(args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "imgcls.train", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize(("kill_after_epochs", "phase", "augmentation"), [
    (1, "phase1", NO_AUGMENTATION), (3, "phase2", NO_AUGMENTATION), (3, "phase2", IN_THE_TRAINING_STEP),
], ids=["phase1", "phase2", "phase2-augmented-on-device"])
def test_killed_run_resumes_without_repeating_an_epoch(image_dataset, tmp_path, kill_after_epochs, phase,
                                                       augmentation):
    run_dir = tmp_path / "run"
    process = start(overrides(image_dataset, run_dir, augmentation=augmentation), tmp_path)
    kill_when(process, lambda: len(history_epochs(run_dir)) >= kill_after_epochs)
    done_before = history_epochs(run_dir)
    assert not (run_dir / "model.keras").exists()
    assert (run_dir / "checkpoints").is_dir()

    resumed = subprocess.run(
        [sys.executable, "-m", "imgcls.train", *overrides(image_dataset, run_dir, "resume=true",
                                                          augmentation=augmentation)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    epochs = history_epochs(run_dir)
    assert epochs == list(range(4)), f"before the kill {done_before}, after resuming {epochs}"
    assert (run_dir / "model.keras").is_file()
    assert not (run_dir / "checkpoints").exists(), "checkpoints are removed once the run has finished"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_per_phase"] == {"phase1": 2, "phase2": 2}
    log = (run_dir / "train.log").read_text()
    if phase == "phase2":
        assert "Resumed: phase1 already finished" in log
    if augmentation == IN_THE_TRAINING_STEP:
        assert "run in the training step (data.augment_on=device)" in log


def test_diverging_run_ends_with_a_clear_error_and_keeps_checkpoints(image_dataset, tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "imgcls.train",
         *overrides(image_dataset, run_dir, "train.phases.phase1.lr=1e35", "optimizer=sgd", "model.l2=0")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "The loss became NaN or infinite in phase1" in output and "Lower train.phases.phase1.lr" in output
    assert "Traceback" not in output
    assert (run_dir / "checkpoints").is_dir()
    assert not (run_dir / "model.keras").exists()
