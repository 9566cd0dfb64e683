"""The classifier takes raw 0-255 RGB, carries its preprocessing, and saves/loads with only `import imgcls`."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest

from helpers import tiny_classifier
from imgcls.models.classifier import class_names_of, find_backbone
from imgcls.models.layers import BackbonePreprocessing

CLASS_NAMES = ["ant", "bee", "cat", "dog"]


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_preprocessing_matches_keras_applications(mode):
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = keras.applications.imagenet_utils.preprocess_input(images.copy(), mode=mode)
    np.testing.assert_allclose(BackbonePreprocessing(mode)(images), expected, rtol=1e-5, atol=1e-4)


def test_head_is_gap_bn_dense_bn_dropout_softmax_in_float32():
    model = tiny_classifier(CLASS_NAMES)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[kinds.index("Functional") + 1 :] == [
        "GlobalAveragePooling2D",
        "BatchNormalization",
        "Dense",
        "BatchNormalization",
        "Dropout",
        "ClassProbabilities",
    ]
    output = model.layers[-1]
    assert isinstance(output, keras.layers.Dense) and output.get_config()["activation"] == "softmax"
    assert model.layers[1].__class__ is BackbonePreprocessing
    backbone = find_backbone(model)
    assert backbone is model.layers[2] and backbone.name.lower().startswith("mobilenetv3small")
    out = model.predict(np.full((3, 32, 32, 3), 128.0, "float32"), verbose=0)
    assert out.dtype == np.float32 and out.shape == (3, 4)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_softmax_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_classifier(CLASS_NAMES, spread=False)
        assert model.layers[-1].compute_dtype == "float32"
        assert model.layers[-3].compute_dtype == "float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
def test_saved_model_loads_and_predicts_with_only_import_imgcls(tmp_path):
    model = tiny_classifier(CLASS_NAMES, "caffe")
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "expected.npy", model.predict(images, verbose=0))
    model.save(tmp_path / "model.keras")
    script = (
        "import imgcls, keras, numpy as np; "
        f"m = keras.models.load_model(r'{tmp_path / 'model.keras'}'); "
        "assert m.get_layer('predictions').class_names == ['ant', 'bee', 'cat', 'dog']; "
        f"np.testing.assert_allclose(m.predict(np.load(r'{tmp_path / 'images.npy'}'), verbose=0), "
        f"np.load(r'{tmp_path / 'expected.npy'}'), rtol=1e-5, atol=1e-6); print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_class_names_travel_with_the_model(tmp_path):
    model = tiny_classifier(["zebra fish", "猫", "dog"], spread=False)
    assert class_names_of(model) == ["zebra fish", "猫", "dog"]
    assert model.output_shape == (None, 3)
    model.save(tmp_path / "m.keras")
    assert class_names_of(keras.models.load_model(tmp_path / "m.keras")) == ["zebra fish", "猫", "dog"]
