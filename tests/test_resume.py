"""Interrupted and diverged runs: a SIGKILLed run resumes where it stopped; a NaN run ends cleanly;
a resume that would mix runs, a fresh run in a used folder, a damaged backup and a full disk."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from helpers import kill_when, run_entrypoint, small_disk, tiny_run_overrides

pytestmark = pytest.mark.slow


# every run here: batches of 4, and no early stop before the last epoch
RESUMABLE = ("data.batch_size=4", "train.early_stopping.patience=10")
NO_AUGMENTATION = ("augmentation=none", "mixup=none")
# augmentation and MixUp inside the training step: the model trained is DeviceAugmentedModel
IN_THE_TRAINING_STEP = ("augmentation=basic", "mixup=mixup", "data.augment_on=device")
TWO_EPOCHS_A_PHASE = ("train.phases.phase1.epochs=2", "train.phases.phase2.epochs=2")


def overrides(image_dataset, run_dir, *extra, augmentation=NO_AUGMENTATION, phases=TWO_EPOCHS_A_PHASE):
    return tiny_run_overrides(image_dataset, *RESUMABLE, *phases, *augmentation, f"hydra.run.dir={run_dir}", *extra)


def history_epochs(run_dir):
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    with open(path) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f) if row.get("epoch", "").isdigit()]


def start(args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "imgcls.train", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize(
    ("kill_after_epochs", "phase", "augmentation"),
    [(1, "phase1", NO_AUGMENTATION), (3, "phase2", NO_AUGMENTATION), (3, "phase2", IN_THE_TRAINING_STEP)],
    ids=["phase1", "phase2", "phase2-augmented-on-device"],
)
def test_killed_run_resumes_without_repeating_an_epoch(image_dataset, tmp_path, kill_after_epochs, phase, augmentation):
    run_dir = tmp_path / "run"
    process = start(overrides(image_dataset, run_dir, augmentation=augmentation), tmp_path)
    kill_when(process, lambda: len(history_epochs(run_dir)) >= kill_after_epochs)
    done_before = history_epochs(run_dir)
    assert not (run_dir / "model.keras").exists()
    assert (run_dir / "checkpoints").is_dir()

    # phase2 cases resume from the folder alone (its saved overrides); phase1 retypes them with resume=true
    resume_args = (
        [f"resume={run_dir}"]
        if phase == "phase2"
        else overrides(image_dataset, run_dir, "resume=true", augmentation=augmentation)
    )
    resumed = subprocess.run(
        [sys.executable, "-m", "imgcls.train", *resume_args], cwd=tmp_path, capture_output=True, text=True, timeout=600
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
        [
            sys.executable,
            "-m",
            "imgcls.train",
            *overrides(image_dataset, run_dir, "train.phases.phase1.lr=1e35", "optimizer=sgd", "model.l2=0"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "The loss became NaN or infinite in phase1" in output and "Lower train.phases.phase1.lr" in output
    assert "Traceback" not in output
    assert (run_dir / "checkpoints").is_dir()
    assert not (run_dir / "model.keras").exists()


# phase1 of 3 epochs, killed after 2: its backup holds epoch 2 (latest) and epoch 1 (previous)
INTERRUPTED_PHASES = ("train.phases.phase1.epochs=3", "train.phases.phase2.epochs=1")


def interrupted_overrides(image_dataset, run_dir, *extra):
    return overrides(image_dataset, run_dir, *extra, phases=INTERRUPTED_PHASES)


@pytest.fixture(scope="module")
def interrupted_run(image_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupted")
    process = start(interrupted_overrides(image_dataset, root / "run"), root)
    kill_when(process, lambda: len(history_epochs(root / "run")) >= 2)
    return root / "run"


@pytest.fixture
def interrupted_copy(interrupted_run, tmp_path):
    """A fresh copy of a run SIGKILLed after 2 of phase1's 3 epochs."""
    shutil.copytree(interrupted_run, tmp_path / "run")
    return tmp_path / "run"


def refusal_in_process(image_dataset, run_dir, *extra) -> str:
    """The ConfigError message of the same run started in this process (train()), which must refuse it."""
    from helpers import compose_app
    from imgcls.errors import ConfigError
    from imgcls.train import train

    overrides = [o for o in interrupted_overrides(image_dataset, run_dir, *extra) if not o.startswith("hydra.")]
    with pytest.raises(ConfigError) as refused:
        train(compose_app("train", [*overrides, f"paths.output_dir={run_dir}"]))
    return str(refused.value)


def folder_contents(run_dir):
    return {
        str(p.relative_to(run_dir)): p.stat().st_size
        for p in run_dir.rglob("*")
        if ".hydra" not in p.parts and p.name != "train.log"
    }


def test_resume_with_other_settings_is_refused_before_anything_is_loaded(interrupted_copy, image_dataset):
    """Through the command line (exit code 2, one message), then in-process for another kind of change."""
    before = folder_contents(interrupted_copy)
    changes = ("data.image_size=48", "model.dropout=0.2", "train.phases.phase2.lr=1e-4")
    result = run_entrypoint(
        "imgcls.train",
        interrupted_overrides(image_dataset, interrupted_copy, "resume=true", *changes),
        interrupted_copy.parent,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    expected = "data.image_size 32 -> 48; model.dropout 0.3 -> 0.2; train.phases.phase2.lr 1e-05 -> 0.0001"
    assert expected in output and "hydra.run.dir=<new folder>" in output, output[-3000:]
    assert "Traceback" not in output
    assert folder_contents(interrupted_copy) == before, "the refused run writes nothing into the folder"

    message = refusal_in_process(image_dataset, interrupted_copy, "resume=true", "backbone=compact_resnet_s")
    assert "backbone.name test_resnet -> compact_resnet_s" in message and "hydra.run.dir=<new folder>" in message
    assert folder_contents(interrupted_copy) == before


def test_a_truncated_backup_falls_back_and_a_finished_folder_is_not_trained_again(interrupted_copy, image_dataset):
    run_dir = interrupted_copy
    backup = run_dir / "checkpoints" / "phase1"
    metadata = json.loads((backup / "training_metadata.json").read_text())
    assert (metadata["epoch"], metadata["previous"]["epoch"]) == (2, 1)
    latest = backup / metadata["weights"]
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])  # as a kill during the write would

    resumed = run_entrypoint(
        "imgcls.train", interrupted_overrides(image_dataset, run_dir, "resume=true"), run_dir.parent
    )
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-3000:]
    assert "cannot be read" in output and "Resumed from the previous backup" in output
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_per_phase"] == {"phase1": 3, "phase2": 1}

    finished = folder_contents(run_dir)
    for again, expected in ((), "already holds a run"), (("resume=true",), "has finished"):
        message = refusal_in_process(image_dataset, run_dir, *again)
        assert expected in message and "hydra.run.dir" in message and str(run_dir) in message
        assert folder_contents(run_dir) == finished, "no second history or TensorBoard log in the folder"


def test_resume_of_a_folder_without_checkpoints_is_refused(image_dataset, tmp_path):
    run_dir = tmp_path / "run"
    result = run_entrypoint("imgcls.train", overrides(image_dataset, run_dir, "resume=true"), tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "holds no checkpoints to continue" in output and "without resume=true" in output
    assert not (run_dir / "history.csv").exists() and not (run_dir / "checkpoints").exists()


def test_a_full_disk_ends_with_one_line_and_the_run_resumes_after_freeing_space(image_dataset, tmp_path):
    with small_disk(tmp_path / "disk", "96m") as disk:
        run_dir = disk / "run"
        process = start(overrides(image_dataset, run_dir), tmp_path)
        filler = disk / "filler"

        def fill_after_the_first_epoch():
            if len(history_epochs(run_dir)) < 1:
                return False
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * (1 << 20))
                        f.flush()
                except OSError:
                    pass
            return True

        output = ""
        try:
            while not fill_after_the_first_epoch():
                assert process.poll() is None, process.stdout.read()[-3000:]
                time.sleep(0.05)
            output = process.communicate(timeout=300)[0]
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 2, output[-3000:]
        assert f"No space left on the device of the run folder {run_dir}" in output
        assert f"resume={run_dir}" in output
        filler.unlink()

        resumed = run_entrypoint("imgcls.train", overrides(image_dataset, run_dir, "resume=true"), tmp_path)
        assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
        assert history_epochs(run_dir) == list(range(4))
        assert (run_dir / "model.keras").is_file()
