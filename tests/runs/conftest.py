"""Fake but realistic run folders, shaped like those imgcls-train writes (train.py, evaluation/bundle.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

HPARAMS = {
    "backbone": "mobilenetv3small",
    "image_size": 32,
    "batch_size": 8,
    "dropout": 0.3,
    "dense_units": 256,
    "weights": None,
    "init": "pretrained",
    "phase1_lr": 0.001,
    "phase2_lr": 1e-05,
    "unfreeze": 10,
    "scratch_lr": 0.002,
    "augmentation": "basic",
    "mixup": "mixup",
    "mixup_alpha": 0.2,
    "optimizer": "keras.optimizers.Adam",
    "schedule": "imgcls.training.schedules.constant",
    "label_smoothing": 0.1,
    "tta": False,
}


def split_metrics(prefix: str, accuracy: float, loss: float) -> dict[str, float]:
    names = ("precision", "recall", "f1", "precision_weighted", "recall_weighted", "f1_weighted")
    return {f"{prefix}_accuracy": accuracy, f"{prefix}_loss": loss, **{f"{prefix}_{n}": accuracy for n in names}}


def write_run(
    folder: Path,
    *,
    finished: bool = True,
    val_accuracy: float = 0.5,
    val_loss: float = 1.0,
    extra_metrics: dict | None = None,
    environment: dict | None = None,
    **hparams,
) -> Path:
    """A run folder as imgcls-train leaves it: .hydra/, config.yaml, train.log and, once finished, metrics.json."""
    hp = {**HPARAMS, **hparams}
    (folder / ".hydra").mkdir(parents=True)
    config = {
        "seed": 42,
        "hparams": hp,
        "train": {"init": hp["init"]},
        "model": {"dropout": hp["dropout"]},
        "paths": {"output_dir": str(folder)},
    }
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"model.dropout={hp['dropout']}", "debug=tiny"]))
    (folder / ".hydra" / "hydra.yaml").write_text("hydra:\n  job:\n    name: train\n")
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "train.log").write_text("[INFO] Resolved config: ...\n")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "config.yaml").write_text("not: a run\n")  # inside a run: never a run of its own
    if environment is not None:
        (folder / "environment.json").write_text(json.dumps(environment))
    if finished:
        metrics = {
            **split_metrics("val", val_accuracy, val_loss),
            "num_val_images": 9,
            **split_metrics("test", val_accuracy - 0.1, val_loss + 0.2),
            "num_test_images": 12,
            "class_names": ["cat", "dog", "zebra fish"],
            "test_per_class": {"cat": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 4}},
            "hparams": hp,
            "epochs_trained": 2,
            "epochs_per_phase": {"phase1": 1, "phase2": 1},
            "precision_policy": "float32",
            "train_seconds": 75.3,
            **(extra_metrics or {}),
        }
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (folder / "history.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.0,0.5,1.0\n")
    return folder


def write_sweep(sweep_dir: Path, accuracies: dict[str, float]) -> Path:
    """A multirun folder: Optuna's own files beside one job folder per entry of ``accuracies``."""
    sweep_dir.mkdir(parents=True)
    (sweep_dir / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    (sweep_dir / "optimization_results.yaml").write_text("name: optuna\nbest_params: {}\nbest_value: 0.9\n")
    (sweep_dir / "sweep_summary.csv").write_text("trial,state,value\n0,COMPLETE,0.9\n")
    (sweep_dir / "optuna.db").write_bytes(b"SQLite format 3\x00")
    for job, (dropout, accuracy) in enumerate(accuracies.items()):
        write_run(sweep_dir / str(job), val_accuracy=accuracy, dropout=float(dropout))
    return sweep_dir


@pytest.fixture
def make_run():
    return write_run


@pytest.fixture
def make_sweep():
    return write_sweep


def write_log_dir(root: Path) -> Path:
    """outputs/ with two finished runs, one unfinished and an evaluate folder; multirun/ with a 2-job sweep."""
    outputs = root / "outputs"
    write_run(outputs / "2026-11-29" / "10-00-00", val_accuracy=0.7, val_loss=0.8, backbone="resnet50")
    write_run(
        outputs / "2026-11-29" / "11-00-00",
        val_accuracy=0.9,
        val_loss=0.9,
        extra_metrics={"temperature": 1.3, "test_ece": 0.05, "val_ece": 0.04},
        environment={"time": "2026-11-29T11:00:00+00:00", "git": {"commit": "abc1234", "dirty": False}},
    )
    write_run(outputs / "2026-11-29" / "12-00-00", finished=False)
    evaluate = outputs / "evaluate" / "2026-11-29" / "13-00-00"
    (evaluate / ".hydra").mkdir(parents=True)
    (evaluate / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"model": "m.keras", "data": {"test_dir": "t"}}))
    (evaluate / "metrics.json").write_text(json.dumps(split_metrics("test", 0.8, 0.5)))
    write_sweep(root / "multirun" / "2026-11-29" / "14-00-00", {"0.1": 0.6, "0.5": 0.8})
    return root


@pytest.fixture
def log_dir(tmp_path) -> Path:
    return write_log_dir(tmp_path)
