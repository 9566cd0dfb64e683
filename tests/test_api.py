"""The Python API: train and predict from a notebook, without Hydra."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra

import imgcls
from helpers import tiny_run_overrides
from imgcls.errors import ConfigError

pytestmark = pytest.mark.slow


def tiny_overrides(image_dataset, tmp_path, *extra):
    return tiny_run_overrides(image_dataset, f"paths.log_dir={tmp_path}", *extra)


def test_train_model_then_predict_images_like_the_commands(image_dataset, tmp_path):
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="imgcls.conf"):  # the notebook's own Hydra
        run = imgcls.train_model(tiny_overrides(image_dataset, tmp_path, "name=api check"))
        assert GlobalHydra.instance().is_initialized(), "the caller's Hydra state is put back"
    GlobalHydra.instance().clear()

    assert run.run_dir.parent.parent == tmp_path / "outputs" and "_api-check_" in run.run_dir.name
    assert run.metrics == json.loads((run.run_dir / "metrics.json").read_text())
    assert run.model_path.is_file() and (run.run_dir / ".hydra" / "overrides.yaml").is_file()
    assert "val_accuracy" in (run.run_dir / "train.log").read_text()

    photos = tmp_path / "photos"
    shutil.copytree(image_dataset / "test_set" / "cat", photos / "cats")
    (photos / "broken.png").write_bytes(b"not a png")
    records = imgcls.predict_images(
        run.run_dir, [photos, image_dataset / "test_set" / "dog" / "img_000.png"], top_k=2, progress=False
    )
    assert len(records) == 4 + 1 + 1
    broken = next(r for r in records if r["file"].endswith("broken.png"))
    assert broken["error"] and broken["top1_class"] is None
    good = [r for r in records if r["error"] is None]
    assert all(
        r["top1_class"] in run.metrics["class_names"] and r["top1_probability"] >= r["top2_probability"] for r in good
    )
    # the same files through the command's CSV writer give the same classes
    with open(run.run_dir / "test_predictions.csv", newline="", encoding="utf-8") as f:
        evaluated = {row["file"]: row["predicted_label"] for row in csv.DictReader(f)}
    dog = str(image_dataset / "test_set" / "dog" / "img_000.png")
    assert next(r for r in records if r["file"] == dog)["top1_class"] == evaluated[dog]


def test_a_bad_setting_raises_instead_of_exiting(image_dataset, tmp_path):
    with pytest.raises(ConfigError, match="train.lr_scaling"):
        imgcls.train_model(tiny_overrides(image_dataset, tmp_path, "train.lr_scaling=lineer"))


def test_load_images_decodes_like_the_evaluation_pipeline(image_dataset):
    import numpy as np
    import tensorflow as tf

    from imgcls.data.pipeline import load_image

    files = sorted((image_dataset / "test_set" / "cat").glob("*.png"))[:3]
    images = imgcls.load_images(files, 24)
    assert images.shape == (3, 24, 24, 3) and images.dtype == np.float32
    expected = tf.round(load_image(tf.constant(str(files[1])), 24)).numpy()
    np.testing.assert_array_equal(images[1], expected)


def test_train_model_returns_the_folder_it_wrote_when_paths_output_dir_is_set(image_dataset, tmp_path):
    chosen = tmp_path / "chosen run"
    run = imgcls.train_model(
        tiny_overrides(image_dataset, tmp_path, f"paths.output_dir={chosen}", "train.phases.phase2.epochs=0")
    )
    assert run.run_dir == chosen and run.model_path.is_file()
