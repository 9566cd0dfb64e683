"""End to end: a real two-phase run on a tiny image tree writes every artifact a user reads."""

from __future__ import annotations

import csv
import json
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import imgcls  # noqa: F401  (registers the layers load_model needs)
from helpers import assert_png_figure, assert_test_metrics_match_predictions, compose_app, tiny_run_overrides
from imgcls.errors import DataError
from imgcls.train import train

pytestmark = pytest.mark.slow


def scalar_steps(log_dir, tag):
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    if tag in events.Tags()["scalars"]:
        return [event.step for event in events.Scalars(tag)]
    return [event.step for event in events.Tensors(tag)]


@pytest.fixture(scope="module")
def full_run(image_dataset, tmp_path_factory):
    """One two-phase run with every optional writer on (augmentation, MixUp, TensorBoard): (folder, metrics)."""
    run = tmp_path_factory.mktemp("full") / "run"
    overrides = [
        "train.phases.phase1.epochs=2",
        "train.phases.phase2.epochs=2",
        "train.early_stopping.patience=5",
        "augmentation=basic",
        "mixup=mixup",
        "train.tensorboard=true",
        f"paths.output_dir={run}",
    ]
    return run, train(compose_app("train", tiny_run_overrides(image_dataset, *overrides)))


def test_two_phase_run_writes_every_artifact(full_run):
    run, metrics = full_run
    saved = json.loads((run / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert saved["class_names"] == ["cat", "dog", "zebra fish"]
    assert saved["num_test_images"] == 12 and saved["num_val_images"] == 9
    assert saved["epochs_per_phase"] == {"phase1": 2, "phase2": 2}

    assert_test_metrics_match_predictions(run, saved)
    assert 0.0 <= saved["test_precision"] <= 1.0 and 0.0 <= saved["test_recall"] <= 1.0

    report = (run / "classification_report.txt").read_text()
    assert all(name in report for name in saved["class_names"]) and "macro avg" in report
    for figure in ("confusion_matrix", "confusion_matrix_normalized", "training_curves", "misclassified"):
        assert_png_figure(run / f"{figure}.png")
    assert saved["hparams"]["backbone"] == "test_resnet" and saved["hparams"]["image_size"] == 32
    assert saved["hparams"]["mixup"] == "mixup" and saved["hparams"]["mixup_alpha"] == 0.2
    assert saved["hparams"]["augmentation"] == "basic"

    with open(run / "history.csv") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [0, 1, 2, 3], "phase 2 continues the epoch count of phase 1"
    assert scalar_steps(run / "tensorboard" / "validation", "epoch_accuracy") == [0, 1, 2, 3]
    assert (run / "config.yaml").read_text().count("test_resnet") >= 1

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["images"] == {"train": 27, "val": 9, "test": 12}
    assert json.loads((run / "data_report.json").read_text())["integrity_check"]["unusable"] == 0

    model = keras.models.load_model(run / "model.keras")
    assert model.get_layer("predictions").class_names == ["cat", "dog", "zebra fish"]
    probabilities = model.predict(np.full((2, 32, 32, 3), 100.0, "float32"), verbose=0)
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_tensorboard_holds_the_runs_hparams_and_final_metrics(full_run):
    from tensorboard.plugins.hparams import plugin_data_pb2

    run, metrics = full_run
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.hparams["backbone"].string_value == "test_resnet"
    assert start.hparams["image_size"].number_value == 32
    evaluation = EventAccumulator(str(run / "tensorboard" / "evaluation"), size_guidance={"tensors": 0})
    evaluation.Reload()
    (value,) = evaluation.Tensors("val_accuracy")
    assert float(tf.make_ndarray(value.tensor_proto)) == pytest.approx(metrics["val_accuracy"])


def test_without_tensorboard_a_run_still_writes_its_history_and_curves(tiny_config, tmp_path):
    """debug=tiny turns TensorBoard off: the run's own records do not depend on it."""
    metrics = train(tiny_config())
    run = tmp_path / "run"
    assert not (run / "tensorboard").exists()
    with open(run / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1]
    assert_png_figure(run / "training_curves.png")
    assert metrics["epochs_per_phase"] == {"phase1": 1, "phase2": 1}


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


def test_other_options_run_end_to_end_and_each_takes_effect(
    compose_config, make_image_tree, tmp_path, caplog, monkeypatch
):
    import imgcls.train

    data = tmp_path / "data"
    make_image_tree(data / "training_set", per_class=12, seed=1)
    make_image_tree(data / "test_set", per_class=4, seed=2)
    for extra in sorted((data / "training_set" / "cat").iterdir())[4:]:
        extra.unlink()  # 4 cats, 12 dogs, 12 zebra fish: balanced class weights differ
    trained = {}
    train_phases = imgcls.train.train_phases

    def recording(model, *args, **kwargs):
        trained["model"] = model
        return train_phases(model, *args, **kwargs)

    monkeypatch.setattr(imgcls.train, "train_phases", recording)
    cfg = compose_config(
        tiny_run_overrides(
            data,
            f"paths.output_dir={tmp_path / 'run'}",
            "strategy=mirrored",
            "optimizer=adamw",
            "schedule=plateau",
            "precision=float32",
            "train.label_smoothing=0.0",
            "data.class_weights=balanced",
            "data.cache=disk",
            f"data.cache_dir={tmp_path / 'tfdata'}",
            "data.augment_on=device",
        )
    )
    with caplog.at_level(logging.INFO, logger="imgcls"):
        metrics = train(cfg)
    assert "MirroredStrategy with 1 replica(s)" in caplog.text
    model = trained["model"]
    assert type(model.optimizer).__name__ == "AdamW"
    assert model.loss.get_config()["label_smoothing"] == 0.0
    weights = model._batch_augmentation.class_weights  # in the training step (data.augment_on=device)
    assert weights[0] > weights[1] == pytest.approx(weights[2]), "the rare class weighs more"
    with open(tmp_path / "run" / "history.csv") as f:
        assert "learning_rate" in next(csv.reader(f)), "ReduceLROnPlateau (schedule=plateau) ran and logged its rate"
    assert "run in the training step (data.augment_on=device)" in caplog.text
    assert metrics["precision_policy"] == "float32"
    assert metrics["epochs_per_phase"] == {"phase1": 1, "phase2": 1}
    assert {p.name.split("-")[0] for p in (tmp_path / "tfdata").glob("*.index")} == {"train", "val", "test"}


def test_same_seed_same_result_and_same_layer_names_in_one_process(tiny_config, tmp_path, caplog):
    """A sweep's trials run in one process. Two runs of one seed there give the same result, and a layer name
    that Keras made up (MobileNetV3-Small's last ReLU, as model.summary() in a fresh process shows it) names
    the same layer in both."""
    cfg = [
        "backbone=mobilenetv3small",
        "backbone.weights=null",
        "train.phases.phase1.epochs=0",
        "train.phases.phase2.unfreeze_from=re_lu_13",
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
    assert first["epochs_per_phase"] == {"phase2": 1}
    for key in ("val_loss", "val_accuracy", "test_loss", "test_accuracy"):
        assert first[key] == second[key], key


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
