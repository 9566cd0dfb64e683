"""imgcls-export: SavedModel, TFLite and ONNX artifacts predict what the Keras model predicts, and name their classes;
quantized TFLite files are smaller and report their test accuracy next to the Keras model's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from sklearn.datasets import load_digits

from helpers import compose_app, data_config, run_entrypoint, tiny_classifier
from imgcls.data.prepare import prepare_data
from imgcls.errors import ConfigError
from imgcls.export import export
from imgcls.exporting.evaluation import REPORT_FILE
from imgcls.exporting.run_images import test_images as run_test_images
from imgcls.exporting.run_images import training_images
from imgcls.exporting.tflite import tflite_predictor
from imgcls.models.classifier import find_backbone
from imgcls.models.loading import load_trained_model
from imgcls.predict import image_batches, predict_files

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


@pytest.fixture(scope="module")
def run_folder(model_and_path, tmp_path_factory) -> Path:
    """A training run's folder as imgcls-train leaves it: model.keras beside manifest.json, over real image trees.

    The trees hold scikit-learn's handwritten digits 0-3 as PNGs, one class folder per name of CLASS_NAMES.
    """
    root = tmp_path_factory.mktemp("data")
    digits = load_digits()
    counts = {"training_set": 12, "test_set": 5}
    for digit, name in enumerate(CLASS_NAMES):
        indices = np.flatnonzero(digits.target == digit)
        for split, start in (("training_set", 0), ("test_set", counts["training_set"])):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in indices[start : start + counts[split]]:
                pixels = np.round(digits.images[i] * (255 / 16)).astype(np.uint8)
                Image.fromarray(np.stack([pixels, 255 - pixels, pixels // 2], axis=-1)).save(folder / f"{i}.png")
    run = tmp_path_factory.mktemp("run")
    prepare_data(data_config(root, run, val_split=0.25), seed=3, output_dir=run)
    shutil.copy(model_and_path[1], run / "model.keras")
    return run


def export_config(model: Path, output_dir: Path, *overrides: str):
    """The export config for ``model``, writing into ``output_dir``, its integrity cache there too."""
    return compose_app(
        "export",
        [
            f"model={model}",
            f"paths.output_dir={output_dir}",
            f"data.integrity_cache={output_dir / 'integrity.sqlite'}",
            *overrides,
        ],
    )


def keras_test_accuracy(model: keras.Model, run: Path) -> float:
    """The Keras model's accuracy on the run's test tree, computed here without imgcls.exporting."""
    test_root = Path(json.loads((run / "manifest.json").read_text())["roots"]["test"])
    paths = sorted(str(p) for p in test_root.rglob("*.png"))
    labels = np.array([CLASS_NAMES.index(Path(p).parent.name) for p in paths])
    return float(np.mean(predict_files(model, paths, progress=False).argmax(1) == labels))


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_entrypoint("imgcls.export", args, cwd, timeout=300)


def test_unknown_format_is_a_config_error_before_the_model_loads(tmp_path):
    cfg = export_config(tmp_path / "not_read.keras", tmp_path, "format=coreml")
    with pytest.raises(ConfigError, match="format must be one of savedmodel, tflite, onnx, got 'coreml'"):
        export(cfg)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["format=onnx", "quantize=int8"], "quantize=int8 is not available for format=onnx: only format=tflite"),
        (["format=tflite", "quantize=int4"], "choose one of none, float16, int8"),
        (["format=tflite", "quantize=int8"], "calibrates on training images, .* Give data.train_dir="),
        (["format=tflite", "evaluate=true"], "evaluate=true needs test images, .* Give data.test_dir="),
    ],
)
def test_settings_that_cannot_work_are_config_errors_before_the_model_loads(tmp_path, overrides, message):
    # no manifest.json beside the model: neither training nor test images are known
    with pytest.raises(ConfigError, match=message):
        export(export_config(tmp_path / "not_read.keras", tmp_path, *overrides))


def test_onnx_without_the_export_extra_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx now raises ImportError
    with pytest.raises(ConfigError, match=r"format=onnx needs .*'tf2onnx'.*pip install 'imgcls\[export\]'"):
        export(export_config(tmp_path / "not_read.keras", tmp_path, "format=onnx"))


def test_the_run_splits_are_found_again_from_the_manifest(run_folder, tmp_path, caplog):
    cfg = export_config(run_folder / "model.keras", tmp_path)
    train = training_images(cfg.model, tuple(CLASS_NAMES), cfg.data)
    test = run_test_images(cfg.model, tuple(CLASS_NAMES), cfg.data)
    manifest = json.loads((run_folder / "manifest.json").read_text())
    assert (len(train), len(test)) == (manifest["images"]["train"], manifest["images"]["test"]) == (36, 20)
    assert "differs from the one" not in caplog.text  # the file lists hash as the manifest says
    train_dir = manifest["roots"]["train"]
    elsewhere = export_config(tmp_path / "no_run" / "model.keras", tmp_path, f"data.train_dir={train_dir}")
    given = training_images(elsewhere.model, tuple(CLASS_NAMES), elsewhere.data)
    assert len(given) == 48  # the whole tree named, validation images included


@pytest.mark.slow
def test_onnx_predicts_like_the_keras_model_on_real_images(model_and_path, run_folder, tmp_path):
    import onnx
    import onnxruntime

    summary = export(export_config(run_folder / "model.keras", tmp_path, "format=onnx"))
    artifact = tmp_path / "model.onnx"
    assert summary["artifact"] == str(artifact)
    assert json.loads((tmp_path / "class_names.json").read_text(encoding="utf-8")) == CLASS_NAMES

    test_root = Path(json.loads((run_folder / "manifest.json").read_text())["roots"]["test"])
    paths = sorted(str(p) for p in test_root.rglob("*.png"))
    (images,) = list(image_batches(paths, 32, len(paths)).as_numpy_iterator())
    expected = model_and_path[0].predict(images, verbose=0)
    assert np.ptp(expected, axis=0).max() > 0.05, "the test model must tell images apart"
    session = onnxruntime.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    (image,), (output,) = session.get_inputs(), session.get_outputs()
    assert (image.name, image.type, image.shape) == ("image", "tensor(float)", ["batch", 32, 32, 3])
    assert (output.name, output.shape) == ("output_0", ["batch", 4])
    np.testing.assert_allclose(session.run(["output_0"], {"image": images})[0], expected, atol=TOLERANCE)
    np.testing.assert_allclose(session.run(["output_0"], {"image": images[:1]})[0], expected[:1], atol=TOLERANCE)
    transposes = [node for node in onnx.load(str(artifact)).graph.node if node.op_type == "Transpose"]
    assert len(transposes) <= 1, "tf2onnx's transpose optimizer did not run through (see compat/tf2onnx_transpose)"

    report = json.loads((tmp_path / REPORT_FILE).read_text())
    assert report["evaluation"]["test_images"] == 20 and report["evaluation"]["agreement"] == 1.0
    assert report["evaluation"]["test_accuracy"] == report["evaluation"]["keras_test_accuracy"]


@pytest.mark.slow
def test_quantized_tflite_files_are_smaller_run_and_report_both_accuracies(model_and_path, run_folder, tmp_path):
    model = run_folder / "model.keras"
    sizes, reports = {}, {}
    for quantize in ("none", "float16", "int8"):
        folder = tmp_path / quantize
        cfg = export_config(model, folder, "format=tflite", f"quantize={quantize}", "representative_images=16")
        summary = export(cfg)
        sizes[quantize] = Path(summary["artifact"]).stat().st_size
        reports[quantize] = json.loads((folder / REPORT_FILE).read_text())
        assert reports[quantize]["bytes"] == sizes[quantize]
    assert (tmp_path / "int8" / "model_int8.tflite").is_file() and (tmp_path / "none" / "model.tflite").is_file()
    assert sizes["float16"] < 0.6 * sizes["none"]
    assert sizes["int8"] < 0.35 * sizes["none"]  # ~1/4: int8 weights, plus the graph and quantization parameters

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tf.lite.Interpreter's deprecation in favour of ai_edge_litert
        interpreter = tf.lite.Interpreter(model_path=str(tmp_path / "int8" / "model_int8.tflite"))
    (inputs,), (outputs,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inputs["dtype"] == np.float32 and outputs["dtype"] == np.float32  # quantized inside
    assert inputs["shape_signature"].tolist() == [-1, 32, 32, 3]
    assert sum(t["dtype"] == np.int8 for t in interpreter.get_tensor_details()) > 50
    images = np.random.default_rng(3).integers(0, 256, (3, 32, 32, 3)).astype("float32")
    probabilities = tflite_predictor(tmp_path / "float16" / "model_float16.tflite")(images)
    assert probabilities.shape == (3, 4) and np.allclose(probabilities.sum(1), 1, atol=1e-3)

    keras_accuracy = keras_test_accuracy(model_and_path[0], run_folder)
    for quantize, report in reports.items():
        evaluation = report["evaluation"]
        assert evaluation["test_images"] == 20 and report["quantize"] == quantize
        assert evaluation["keras_test_accuracy"] == pytest.approx(keras_accuracy)
        assert 0 <= evaluation["test_accuracy"] <= 1 and 0 <= evaluation["agreement"] <= 1
    assert reports["none"]["evaluation"]["agreement"] == 1.0


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
def test_savedmodel_predicts_like_the_keras_model(model_and_path, images_and_expected, run_folder, tmp_path):
    images, expected = images_and_expected
    # a model without manifest.json: the test images are named
    test_dir = json.loads((run_folder / "manifest.json").read_text())["roots"]["test"]
    summary = export(export_config(model_and_path[1], tmp_path, f"data.test_dir={test_dir}"))
    artifact = tmp_path / "model_savedmodel"
    assert summary["artifact"] == str(artifact) and (artifact / "saved_model.pb").is_file()
    assert json.loads((tmp_path / "class_names.json").read_text(encoding="utf-8")) == CLASS_NAMES
    evaluation = json.loads((tmp_path / REPORT_FILE).read_text())["evaluation"]
    assert evaluation["test_images"] == 20 and evaluation["agreement"] == 1.0
    accuracy = keras_test_accuracy(model_and_path[0], run_folder)
    assert evaluation["test_accuracy"] == evaluation["keras_test_accuracy"] == pytest.approx(accuracy)

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
    bad = run_cli([f"model={model_and_path[1]}", "format=coreml", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert bad.returncode == 2
    assert "format must be one of savedmodel, tflite, onnx" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr

    help_text = run_cli(["--help"], cwd=tmp_path)
    assert help_text.returncode == 0, help_text.stderr[-2000:]
    assert "imgcls-export model=RUN/model.keras format=tflite" in help_text.stdout
    assert "format: savedmodel" in help_text.stdout
