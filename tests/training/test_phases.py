"""Phase mechanics: discriminative learning rates, unfreezing by name, stopping on NaN, checkpoints."""

from __future__ import annotations

import functools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from imgcls.errors import ConfigError
from imgcls.models.classifier import build_classifier
from imgcls.training.checkpoints import PhaseCheckpoints
from imgcls.training.freezing import freeze, unfreeze_top
from imgcls.training.optimizers import backbone_lr_optimizer
from imgcls.training.phases import FitSettings, PhasePlan, TrainingDivergedError, fit_phase
from imgcls.training.schedules import constant


def classifier(seed=0):
    keras.utils.set_random_seed(seed)
    backbone = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3))
    model = build_classifier(
        backbone, class_names=["a", "b", "c"], image_size=32, preprocessing="builtin", dense_units=8, dropout=0.0,
        l2=0.0,
    )
    return model, backbone


def batch():
    images = tf.random.stateless_uniform((8, 32, 32, 3), seed=(1, 2), minval=0, maxval=255)
    return images, tf.one_hot(tf.range(8) % 3, 3)


def one_step_deltas(multiplier):
    model, backbone = classifier()
    unfreeze_top(backbone, -1)
    factory = backbone_lr_optimizer(functools.partial(keras.optimizers.SGD), backbone, multiplier)
    model.compile(optimizer=factory(learning_rate=0.1), loss="categorical_crossentropy")
    before = {w.path: w.numpy().copy() for w in model.trainable_weights}
    model.train_on_batch(*batch())
    return {w.path: w.numpy() - before[w.path] for w in model.trainable_weights}, {w.path for w in backbone.weights}


def test_backbone_learning_rate_multiplier_scales_only_backbone_updates():
    full, backbone_paths = one_step_deltas(1.0)
    scaled, _ = one_step_deltas(0.1)
    checked = 0
    for path, delta in full.items():
        if not np.any(delta):
            continue
        expected = delta * (0.1 if path in backbone_paths else 1.0)
        np.testing.assert_allclose(scaled[path], expected, rtol=1e-3, atol=1e-7)
        checked += 1
    assert checked > 10


def test_unfreeze_from_a_layer_name():
    _, backbone = classifier()
    names = [layer.name for layer in backbone.layers]
    start = names[-20]
    trained = unfreeze_top(backbone, 0, from_layer=start)
    assert all(not layer.trainable for layer in backbone.layers[:-20])
    assert set(trained) <= set(names[-20:]) and trained
    with pytest.raises(ConfigError, match=r"no such layer.*Did you mean"):
        unfreeze_top(backbone, 0, from_layer=start + "x")


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_epoch(tmp_path):
    model, backbone = classifier()
    freeze(backbone)
    images, labels = batch()
    train_ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)

    def explodes_in_epoch_2(base_lr, steps_per_epoch, epochs):
        return keras.optimizers.schedules.PiecewiseConstantDecay([steps_per_epoch], [base_lr, 1e38]), []

    checkpoints = PhaseCheckpoints(tmp_path / "checkpoints", resume=False)
    settings = FitSettings(
        loss=keras.losses.CategoricalCrossentropy(), optimizer_factory=functools.partial(keras.optimizers.SGD),
        schedule_factory=explodes_in_epoch_2, checkpoints=checkpoints, verbose=0, early_stopping_patience=10,
    )
    plan = PhasePlan("phase1", epochs=4, lr=1e-3)
    with pytest.raises(TrainingDivergedError, match=r"phase1, epoch 2.*train\.phase1\.lr"):
        fit_phase(model, plan, settings, train_ds=train_ds, val_ds=train_ds, initial_epoch=0,
                  strategy=tf.distribute.get_strategy())
    backup = tmp_path / "checkpoints" / "phase1"
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1
    restored, _ = classifier(seed=1)
    restored.load_weights(backup / "latest.weights.h5", skip_mismatch=True)
    assert all(np.isfinite(w.numpy()).all() for w in restored.weights)


def test_finished_phase_is_restored_not_rerun(tmp_path):
    model, _ = classifier()
    checkpoints = PhaseCheckpoints(tmp_path / "c", resume=False)
    checkpoints.finish_phase("phase1", model, first_epoch=0, epochs=3)
    expected = [w.numpy().copy() for w in model.weights]

    other, _ = classifier(seed=5)
    resumed = PhaseCheckpoints(tmp_path / "c", resume=True)
    assert resumed.is_finished("phase1") and not resumed.is_finished("phase2") and resumed.epochs_done() == 3
    resumed.restore_phase("phase1", other)
    for a, b in zip(expected, other.weights):
        np.testing.assert_array_equal(a, b.numpy())

    assert not PhaseCheckpoints(tmp_path / "c", resume=False).is_finished("phase1"), "a fresh run starts over"
