"""Linear probes at full speed: the head trains on features computed once, with the classifier's own weights."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tensorflow as tf

from helpers import tiny_classifier
from imgcls.errors import ConfigError
from imgcls.train import train
from imgcls.training.feature_cache import feature_extractor, head_model, wanted


def test_the_head_model_is_the_classifiers_own_head():
    model = tiny_classifier(dropout=0.0, seed=3)
    images = tf.random.stateless_uniform((4, 32, 32, 3), seed=(4, 5), minval=0, maxval=255)
    head = head_model(model)
    np.testing.assert_allclose(head(feature_extractor(model)(images)), model(images), rtol=1e-5, atol=1e-6)
    assert {id(w) for w in head.weights} <= {id(w) for w in model.weights}, "training the head trains the classifier"


@pytest.mark.parametrize(
    ("setting", "augmented", "expected"),
    [("auto", False, True), ("auto", True, False), (True, True, True), (False, False, False)],
)
def test_auto_caches_only_when_no_augmentation_applies(setting, augmented, expected):
    assert wanted(setting, augmented=augmented) is expected


def test_several_workers_train_on_images_and_refuse_an_explicit_cache():
    """Cached feature batches cannot be split between workers: TensorFlow fails in the first step (seen with
    strategy=multi_worker on two processes), so auto turns the cache off there and true is refused up front."""
    assert wanted("auto", augmented=False, workers=2) is False
    assert wanted(False, augmented=False, workers=2) is False
    with pytest.raises(ConfigError, match="train.feature_cache=true does not work with 2 workers"):
        wanted(True, augmented=False, workers=2)


def test_an_unknown_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="train.feature_cache=sometimes is not one of auto, true, false"):
        wanted("sometimes", augmented=False)


@pytest.mark.slow
def test_the_cached_phase_trains_the_head_as_the_uncached_one_does(tiny_config, tmp_path, caplog):
    """The cached features come in the batches and order the images would (4 batches an epoch, reshuffled each
    epoch) and dropout draws alike, so both ways end on the same weights."""
    common = [
        "augmentation=none",
        "mixup=none",
        "train.phases.phase1.epochs=3",
        "train.phases.phase2.epochs=0",
        "train.early_stopping.patience=5",
    ]
    with caplog.at_level(logging.INFO):
        cached = train(tiny_config([*common, "train.feature_cache=true", f"paths.output_dir={tmp_path / 'a'}"]))
    assert "the head trains on the backbone's cached features" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        uncached = train(tiny_config([*common, "train.feature_cache=false", f"paths.output_dir={tmp_path / 'b'}"]))
    assert "cached features" not in caplog.text
    for key in ("val_loss", "test_loss", "val_accuracy", "test_accuracy"):
        assert cached[key] == pytest.approx(uncached[key], abs=1e-4), key
