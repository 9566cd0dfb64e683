"""End to end: a real two-phase run on a tiny image tree writes every artifact a user reads."""

from __future__ import annotations

import csv
import json
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import imgcls  # noqa: F401  (registers the layers load_model needs)
from helpers import tiny_run_overrides
from imgcls.errors import DataError
from imgcls.train import train

pytestmark = pytest.mark.slow


def scalar_steps(log_dir, tag):
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    if tag in events.Tags()["scalars"]:
        return [event.step for event in events.Scalars(tag)]
    return [event.step for event in events.Tensors(tag)]


def test_two_phase_run_writes_every_artifact(tiny_config, tmp_path):
    cfg = tiny_config(
        ["train.phases.phase1.epochs=2", "train.phases.phase2.epochs=2", "train.early_stopping.patience=5"]
    )
    metrics = train(cfg)
    run = tmp_path / "run"

    saved = json.loads((run / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    for key in ("val_accuracy", "test_accuracy", "test_loss", "test_precision", "test_recall"):
        assert 0.0 <= saved[key] <= (1.0 if key != "test_loss" else 100.0), key
    assert saved["class_names"] == ["cat", "dog", "zebra fish"]
    assert saved["num_test_images"] == 12 and saved["num_val_images"] == 9
    assert saved["epochs_per_phase"] == {"phase1": 2, "phase2": 2}

    report = (run / "classification_report.txt").read_text()
    assert all(name in report for name in saved["class_names"]) and "macro avg" in report
    for figure in ("confusion_matrix", "confusion_matrix_normalized", "training_curves", "misclassified"):
        with Image.open(run / f"{figure}.png") as image:
            assert image.format == "PNG" and min(image.size) >= 300, figure
    with open(run / "test_predictions.csv") as f:
        assert len(list(csv.DictReader(f))) == 12
    assert saved["hparams"]["backbone"] == "mobilenetv3small" and saved["hparams"]["image_size"] == 32
    assert saved["hparams"]["mixup"] == "mixup" and saved["hparams"]["mixup_alpha"] == 0.2

    with open(run / "history.csv") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [0, 1, 2, 3], "phase 2 continues the epoch count of phase 1"
    assert scalar_steps(run / "tensorboard" / "validation", "epoch_accuracy") == [0, 1, 2, 3]
    assert (run / "config.yaml").read_text().count("mobilenetv3small") >= 1

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["images"] == {"train": 27, "val": 9, "test": 12}
    assert json.loads((run / "data_report.json").read_text())["integrity_check"]["unusable"] == 0

    model = keras.models.load_model(run / "model.keras")
    assert model.get_layer("predictions").class_names == ["cat", "dog", "zebra fish"]
    probabilities = model.predict(np.full((2, 32, 32, 3), 100.0, "float32"), verbose=0)
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_a_phase_of_zero_epochs_is_skipped(tiny_config, tmp_path):
    metrics = train(tiny_config(["train.phases.phase2.epochs=0", "augmentation=none", "mixup=none"]))
    assert metrics["epochs_per_phase"] == {"phase1": 1}
    assert (tmp_path / "run" / "model.keras").is_file()


def test_scratch_runs_its_one_phase_and_records_the_init(tiny_config, tmp_path, caplog):
    cfg = tiny_config(["train.init=scratch", "train.phases.scratch.epochs=2", "augmentation=none", "mixup=none"])
    with caplog.at_level(logging.INFO, logger="imgcls"):
        metrics = train(cfg)
    assert metrics["epochs_per_phase"] == {"scratch": 2}
    assert metrics["hparams"]["init"] == "scratch" and metrics["hparams"]["weights"] is None
    assert "init=scratch" in caplog.text and "BatchNormalization trains" in caplog.text
    with open(tmp_path / "run" / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1]


# classes the warm-start test's earlier run never saw
NEW_COLOURS = {"lemon": (200, 200, 40), "teal": (40, 200, 200), "plum": (200, 40, 200)}


def first_epoch_val_accuracy(run):
    with open(run / "history.csv") as f:
        return float(next(csv.DictReader(f))["val_accuracy"])


def test_warm_start_from_an_earlier_run_beats_a_random_start(tiny_config, make_image_tree, tmp_path):
    earlier = tmp_path / "earlier"
    train(
        tiny_config(
            [
                "backbone=compact_resnet_s",
                "train.init=scratch",
                "train.phases.scratch.epochs=8",
                "augmentation=none",
                "mixup=none",
                f"paths.output_dir={earlier}",
            ]
        )
    )
    data = tmp_path / "new-classes"
    make_image_tree(data / "training_set", per_class=16, seed=5, colours=NEW_COLOURS)
    make_image_tree(data / "test_set", per_class=4, seed=6, colours=NEW_COLOURS)
    common = [
        "backbone=compact_resnet_s",
        "augmentation=none",
        "mixup=none",
        "data.batch_size=4",
        "train.phases.phase1.lr=1e-2",
        "train.phases.phase2.epochs=0",
        f"data.train_dir={data / 'training_set'}",
        f"data.test_dir={data / 'test_set'}",
    ]
    warm = train(tiny_config([*common, f"backbone.weights={earlier}", f"paths.output_dir={tmp_path / 'warm'}"]))
    train(
        tiny_config(
            [*common, "backbone.weights=null", "train.init=pretrained", f"paths.output_dir={tmp_path / 'cold'}"]
        )
    )
    assert warm["class_names"] == ["lemon", "plum", "teal"], "the new run has its own head for its own classes"
    assert warm["hparams"]["init"] == "pretrained" and warm["hparams"]["weights"] == str(earlier)
    assert first_epoch_val_accuracy(tmp_path / "warm") > first_epoch_val_accuracy(tmp_path / "cold")


def test_bad_data_fails_before_training(tiny_config, tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        train(tiny_config([f"data.train_dir={tmp_path / 'missing'}"]))
    assert not (tmp_path / "run" / "model.keras").exists()


def test_other_options_run_end_to_end(tiny_config, tmp_path, caplog):
    cfg = tiny_config(
        [
            "strategy=mirrored",
            "optimizer=adamw",
            "schedule=plateau",
            "precision=float32",
            "train.label_smoothing=0.0",
            "data.class_weights=balanced",
            "data.cache=disk",
            f"data.cache_dir={tmp_path / 'tfdata'}",
            "data.augment_on=device",
        ]
    )
    with caplog.at_level(logging.INFO, logger="imgcls"):
        metrics = train(cfg)
    assert "run in the training step (data.augment_on=device)" in caplog.text
    assert metrics["precision_policy"] == "float32"
    assert metrics["epochs_per_phase"] == {"phase1": 1, "phase2": 1}
    assert {p.name.split("-")[0] for p in (tmp_path / "tfdata").glob("*.index")} == {"train", "val", "test"}


def test_same_seed_same_result(tiny_config, tmp_path):
    first = train(tiny_config(["seed=3", f"paths.output_dir={tmp_path / 'a'}"]))
    second = train(tiny_config(["seed=3", f"paths.output_dir={tmp_path / 'b'}"]))
    assert first["val_loss"] == second["val_loss"] and first["val_accuracy"] == second["val_accuracy"]
    assert first["test_loss"] == second["test_loss"]


def test_runs_in_one_process_name_their_layers_alike(tiny_config, tmp_path, caplog):
    """A sweep's trials run in one process. A layer name that Keras made up (MobileNetV3Small's last
    ReLU, as model.summary() in a fresh process shows it) must name the same layer in every trial."""
    cfg = [
        "train.phases.phase1.epochs=0",
        "train.phases.phase2.unfreeze_from=re_lu_13",
        "augmentation=none",
        "mixup=none",
        "seed=3",
    ]
    with caplog.at_level(logging.INFO, logger="imgcls"):
        first = train(tiny_config([*cfg, f"paths.output_dir={tmp_path / 'a'}"]))
        second = train(tiny_config([*cfg, f"paths.output_dir={tmp_path / 'b'}"]))
    phases = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("phase2: ") and "trainable parameters" in r.getMessage()
    ]
    assert len(phases) == 2 and phases[0] == phases[1], "both runs train the same layers"
    assert first["val_loss"] == second["val_loss"] and first["test_loss"] == second["test_loss"]


def test_tensorboard_holds_the_runs_hparams_and_final_metrics(tiny_config, tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    metrics = train(tiny_config(["train.phases.phase2.epochs=0"]))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.hparams["backbone"].string_value == "mobilenetv3small"
    assert start.hparams["image_size"].number_value == 32
    evaluation = EventAccumulator(str(tmp_path / "run" / "tensorboard" / "evaluation"), size_guidance={"tensors": 0})
    evaluation.Reload()
    (value,) = evaluation.Tensors("val_accuracy")
    assert float(tf.make_ndarray(value.tensor_proto)) == pytest.approx(metrics["val_accuracy"])


def test_a_file_deleted_after_the_scan_ends_the_run_with_one_line(
    compose_config, make_image_tree, tmp_path, monkeypatch
):
    import imgcls.train

    data = tmp_path / "data"
    make_image_tree(data / "training_set", per_class=12, seed=1)
    make_image_tree(data / "test_set", per_class=4, seed=2)
    victim = data / "training_set" / "dog" / "img_003.png"
    train_phases = imgcls.train.train_phases

    def delete_then_train(*args, **kwargs):
        victim.unlink()  # e.g. a sync tool or another job removes it while the run starts
        return train_phases(*args, **kwargs)

    monkeypatch.setattr(imgcls.train, "train_phases", delete_then_train)
    cfg = compose_config(tiny_run_overrides(data, f"paths.output_dir={tmp_path / 'run'}", "data.cache=none"))
    with pytest.raises(
        DataError,
        match=r"1 image file\(s\) vanished or changed since the data scan, while training: "
        r".*img_003.png",
    ):
        train(cfg)
