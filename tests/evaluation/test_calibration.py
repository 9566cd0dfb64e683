"""Calibration: expected calibration error, temperature scaling, the reliability diagram and the calibrated model."""

from __future__ import annotations

import io
import json

import keras
import numpy as np
import pytest
from PIL import Image

from helpers import assert_png_figure, tiny_classifier
from imgcls.evaluation.bundle import SplitPredictions, write_evaluation
from imgcls.evaluation.calibration import (
    CONFIDENCE_BINS,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    reliability,
    reliability_diagram_png,
    scale_probabilities,
    with_temperature,
)
from imgcls.models.loading import load_trained_model, model_class_names, model_image_size


def binary(confidences, correct):
    """Two-class predictions of class 0 with these confidences; the label is 0 where ``correct``."""
    confidences = np.asarray(confidences, dtype=float)
    return np.stack([confidences, 1 - confidences], axis=1), np.where(correct, 0, 1)


def miscalibrated(temperature, n=20000, classes=5, seed=0):
    """Labels drawn from true probabilities, and those probabilities scaled by ``1 / temperature``:
    fitting should find ``temperature`` again (``> 1``: overconfident predictions)."""
    rng = np.random.default_rng(seed)
    true = rng.dirichlet(np.full(classes, 0.5), n)
    labels = np.array([rng.choice(classes, p=row) for row in true])
    return labels, scale_probabilities(true, 1 / temperature)


def test_accuracy_matching_confidence_in_every_bin_has_no_calibration_error():
    probabilities, labels = binary([0.75] * 8 + [0.55] * 20, [True] * 6 + [False] * 2 + [True] * 11 + [False] * 9)
    assert expected_calibration_error(labels, probabilities) == pytest.approx(0.0, abs=1e-12)


def test_calibration_error_is_the_count_weighted_gap_per_bin():
    probabilities, labels = binary([0.9, 0.9, 0.7, 0.7], [True, False, True, True])
    bins = reliability(labels, probabilities)
    assert len(bins.counts) == CONFIDENCE_BINS and bins.counts.sum() == 4
    assert bins.counts[13] == 2 and bins.accuracy[13] == 0.5 and bins.confidence[13] == pytest.approx(0.9)
    assert bins.counts[10] == 2 and bins.accuracy[10] == 1.0 and bins.confidence[10] == pytest.approx(0.7)
    # half the predictions 0.4 off, half 0.3 off
    assert bins.ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.3)


def test_scaling_divides_the_log_probabilities_and_keeps_the_predicted_class():
    probabilities = np.array([[0.8, 0.2], [0.1, 0.9]])
    np.testing.assert_allclose(scale_probabilities(probabilities, 2.0), [[2 / 3, 1 / 3], [0.25, 0.75]])
    np.testing.assert_allclose(scale_probabilities(probabilities, 1.0), probabilities)
    np.testing.assert_allclose(scale_probabilities(np.array([[1.0, 0.0]]), 1.0), [[1.0, 0.0]], atol=1e-12)


@pytest.mark.parametrize("temperature", [2.0, 0.5])
def test_the_fitted_temperature_undoes_over_and_underconfidence(temperature):
    labels, probabilities = miscalibrated(temperature)
    fitted = fit_temperature(labels, probabilities)
    assert fitted == pytest.approx(temperature, rel=0.05)
    before = expected_calibration_error(labels, probabilities)
    after = expected_calibration_error(labels, scale_probabilities(probabilities, fitted))
    assert after < before / 2


def test_without_a_validation_split_only_the_test_error_is_reported():
    labels, probabilities = miscalibrated(2.0, n=500)
    test = SplitPredictions(tuple(f"{i}.png" for i in range(500)), labels, probabilities)
    assert set(calibrate(test).metrics) == {"test_ece"}
    metrics = calibrate(test, test).metrics
    assert set(metrics) == {"test_ece", "temperature", "test_ece_calibrated", "val_ece"}
    assert metrics["temperature"] > 1 and metrics["test_ece_calibrated"] < metrics["test_ece"] == metrics["val_ece"]


def test_the_reliability_diagram_has_a_panel_before_and_one_after_scaling():
    labels, probabilities = miscalibrated(2.0, n=300)
    test = SplitPredictions(tuple(f"{i}.png" for i in range(300)), labels, probabilities)
    with Image.open(io.BytesIO(reliability_diagram_png(calibrate(test)))) as only_before:
        with Image.open(io.BytesIO(reliability_diagram_png(calibrate(test, test)))) as both:
            assert both.width > 1.8 * only_before.width and both.height == only_before.height


def test_the_evaluation_bundle_holds_the_calibration(tmp_path):
    images = []
    for i in range(6):
        images.append(tmp_path / f"img_{i}.png")
        Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(images[-1])
    labels, probabilities = miscalibrated(2.0, n=6, classes=3)
    test = SplitPredictions(tuple(map(str, images)), labels, probabilities)
    val_labels, val_probabilities = miscalibrated(2.0, n=400, classes=3, seed=1)
    val = SplitPredictions(tuple(f"{i}.png" for i in range(400)), val_labels, val_probabilities)

    for run, split in (("train", val), ("evaluate", None)):
        (tmp_path / run).mkdir()
        write_evaluation(tmp_path / run, class_names=["a", "b", "c"], test=test, val=split)
        assert_png_figure(tmp_path / run / "reliability_diagram.png")
    trained = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert trained["temperature"] == pytest.approx(fit_temperature(val_labels, val_probabilities))
    assert trained["test_ece"] == pytest.approx(expected_calibration_error(labels, probabilities))
    assert 0 <= trained["test_ece_calibrated"] <= 1 and 0 <= trained["val_ece"] <= 1
    evaluated = json.loads((tmp_path / "evaluate" / "metrics.json").read_text())
    assert evaluated["test_ece"] == trained["test_ece"]
    assert not {"temperature", "test_ece_calibrated", "val_ece"} & set(evaluated)


def test_the_calibrated_model_loads_safely_and_scales_the_original_outputs(tmp_path):
    names = ["cat", "dog", "zebra fish"]
    model = tiny_classifier(names, "builtin")
    path = tmp_path / "model_calibrated.keras"
    with_temperature(model, 2.0).save(path)

    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    images = np.random.default_rng(1).uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    original = model.predict(images, verbose=0)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), scale_probabilities(original, 2.0), atol=1e-5)
    assert model_class_names(loaded) == names and model_image_size(loaded) == 32
    assert model_class_names(load_trained_model(path)) == names


@pytest.mark.slow
def test_eval_calibrate_saves_the_scaled_model_next_to_the_uncalibrated_one(tiny_config, tmp_path):
    from imgcls.train import train

    metrics = train(
        tiny_config(["eval.calibrate=true", "train.phases.phase2.epochs=0", "augmentation=none", "mixup=none"])
    )
    run = tmp_path / "run"
    model = load_trained_model(run / "model.keras")
    calibrated = load_trained_model(run / "model_calibrated.keras")
    assert "temperature_scaling" not in {layer.name for layer in model.layers}
    images = np.random.default_rng(2).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        calibrated.predict(images, verbose=0),
        scale_probabilities(model.predict(images, verbose=0), metrics["temperature"]),
        atol=1e-5,
    )
    assert json.loads((run / "metrics.json").read_text())["temperature"] == metrics["temperature"]
