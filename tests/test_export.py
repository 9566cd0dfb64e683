"""imgcls-export: SavedModel and TFLite artifacts predict what the Keras model predicts, and name their classes."""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import compose_app, run_entrypoint, tiny_classifier

from imgcls.errors import ConfigError
from imgcls.export import export
from imgcls.models.classifier import find_backbone
from imgcls.models.loading import load_trained_model

CLASS_NAMES = ["cat", "dog", "zebra fish", "猫"]
TOLERANCE = 1e-4


def tiny_model(spread: bool = True) -> keras.Model:
    """The test classifier, with caffe preprocessing inside (see :func:`helpers.tiny_classifier`)."""
    return tiny_classifier(CLASS_NAMES, "caffe", spread=spread)


@pytest.fixture(scope="module")
def model_and_path(tmp_path_factory) -> tuple[keras.Model, Path]:
    model = tiny_model()
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def mixed_precision_path(model_and_path, tmp_path_factory) -> Path:
    """The same model built and saved under mixed_float16, as a GPU run with precision=auto saves it."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = tiny_model(spread=False)  # takes the float32 model's weights below
    finally:
        keras.mixed_precision.set_global_policy("float32")
    mixed.set_weights(model_and_path[0].get_weights())
    assert mixed.get_layer("head_dense").dtype_policy.name == "mixed_float16"
    path = tmp_path_factory.mktemp("mixed") / "model.keras"
    mixed.save(path)
    return path


@pytest.fixture(scope="module")
def images_and_expected(model_and_path) -> tuple[np.ndarray, np.ndarray]:
    """Raw 0-255 RGB float32 images and the Keras model's probabilities for them."""
    images = np.random.default_rng(7).integers(0, 256, (5, 32, 32, 3)).astype("float32")
    expected = model_and_path[0].predict(images, verbose=0)
    assert np.ptp(expected, axis=0).max() > 0.05, "the test model must tell images apart"
    return images, expected


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_entrypoint("imgcls.export", args, cwd, timeout=300)


def test_unknown_format_is_a_config_error_before_the_model_loads(tmp_path):
    cfg = compose_app("export", [f"model={tmp_path / 'not_read.keras'}", "format=onnx", f"paths.output_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="format must be one of savedmodel, tflite, got 'onnx'"):
        export(cfg)


def test_missing_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="model= is required"):
        export(compose_app("export", [f"paths.output_dir={tmp_path}"]))
    with pytest.raises(ConfigError, match="file not found"):
        export(compose_app("export", [f"model={tmp_path / 'nope.keras'}", f"paths.output_dir={tmp_path}"]))


def test_a_mixed_precision_model_loads_as_its_float32_twin(mixed_precision_path, images_and_expected):
    images, expected = images_and_expected
    model = load_trained_model(mixed_precision_path)
    policies = {layer.dtype_policy.name for layer in model.layers + find_backbone(model).layers}
    assert policies == {"float32"}
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-6)


@pytest.mark.slow
def test_savedmodel_predicts_like_the_keras_model(model_and_path, images_and_expected, tmp_path):
    images, expected = images_and_expected
    summary = export(compose_app("export", [f"model={model_and_path[1]}", f"paths.output_dir={tmp_path}"]))
    artifact = tmp_path / "model_savedmodel"
    assert summary["artifact"] == str(artifact) and (artifact / "saved_model.pb").is_file()
    assert json.loads((tmp_path / "class_names.json").read_text(encoding="utf-8")) == CLASS_NAMES

    loaded = tf.saved_model.load(str(artifact))
    signature = loaded.signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, 32, 32, 3]
    served = signature(image=tf.constant(images))["output_0"].numpy()
    np.testing.assert_allclose(served, expected, atol=TOLERANCE)
    np.testing.assert_allclose(loaded.serve(images).numpy(), expected, atol=TOLERANCE)


@pytest.mark.slow
def test_cli_writes_a_float32_tflite_that_predicts_like_the_keras_model(
    mixed_precision_path, images_and_expected, tmp_path
):
    # from a mixed-precision model: TFLite cannot convert float16 layers, so export makes them float32 first
    images, expected = images_and_expected
    artifact = tmp_path / "dist" / "classifier.tflite"
    args = [f"model={mixed_precision_path}", "format=tflite", f"output={artifact}", f"paths.log_dir={tmp_path}"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = tmp_path.glob("outputs/export/*/*")
    log = (run / "export.log").read_text(encoding="utf-8")
    assert f"Exported {mixed_precision_path} as tflite: {artifact}" in log
    assert "saved with mixed_float16 layers; running it in float32" in log
    assert (run / ".hydra" / "config.yaml").is_file()
    assert json.loads((artifact.parent / "class_names.json").read_text(encoding="utf-8")) == CLASS_NAMES

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tf.lite.Interpreter's deprecation in favour of ai_edge_litert
        interpreter = tf.lite.Interpreter(model_path=str(artifact))
    (inputs,) = interpreter.get_input_details()
    (outputs,) = interpreter.get_output_details()
    assert inputs["dtype"] == np.float32 and outputs["dtype"] == np.float32
    assert inputs["shape_signature"].tolist() == [-1, 32, 32, 3]
    assert not [t["name"] for t in interpreter.get_tensor_details() if t["dtype"] in (np.int8, np.uint8, np.float16)]
    served = interpreter.get_signature_runner("serving_default")(image=images)["output_0"]
    np.testing.assert_allclose(served, expected, atol=TOLERANCE)


@pytest.mark.slow
def test_cli_rejects_an_unknown_format_cleanly_and_has_help(model_and_path, tmp_path):
    bad = run_cli([f"model={model_and_path[1]}", "format=onnx", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert bad.returncode == 2
    assert "format must be one of savedmodel, tflite" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr

    help_text = run_cli(["--help"], cwd=tmp_path)
    assert help_text.returncode == 0, help_text.stderr[-2000:]
    assert "imgcls-export model=RUN/model.keras format=tflite" in help_text.stdout
    assert "format: savedmodel" in help_text.stdout
