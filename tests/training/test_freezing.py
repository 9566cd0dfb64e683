"""Phase 1 freezes the backbone; phase 2 unfreezes exactly its last N layers and never trains BatchNormalization."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import tiny_classifier
from imgcls.models.classifier import find_backbone
from imgcls.training.freezing import set_trainable_backbone

HEAD_WEIGHTS = 8  # BN1 gamma/beta, Dense kernel/bias, BN2 gamma/beta, output kernel/bias


def classifier(freeze_batchnorm=True):
    model = tiny_classifier(spread=False, dropout=0.0, l2=0.0, freeze_batchnorm=freeze_batchnorm)
    return model, find_backbone(model)


def is_bn(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def test_phase1_trains_only_the_head():
    model, backbone = classifier()
    set_trainable_backbone(backbone, 0)
    assert not backbone.trainable_weights
    assert len(model.trainable_weights) == HEAD_WEIGHTS


@pytest.mark.parametrize("count", [1, 10, 40])
def test_phase2_unfreezes_the_last_layers_except_batchnorm(count):
    model, backbone = classifier()
    set_trainable_backbone(backbone, 0)
    trained = set_trainable_backbone(backbone, count)
    top = backbone.layers[-count:]
    expected = [layer for layer in top if layer.weights and not is_bn(layer)]
    assert trained == [layer.name for layer in expected]
    assert all(not layer.trainable for layer in backbone.layers[:-count])
    assert all(not layer.trainable for layer in backbone.layers if is_bn(layer))
    expected_weights = sum(len(layer.trainable_weights) for layer in expected)
    assert len(backbone.trainable_weights) == expected_weights
    assert len(model.trainable_weights) == expected_weights + HEAD_WEIGHTS


def test_minus_one_unfreezes_the_whole_backbone():
    _, backbone = classifier()
    set_trainable_backbone(backbone, -1)
    assert all(layer.trainable for layer in backbone.layers if not is_bn(layer))


def bn_statistics(backbone):
    return [w.numpy().copy() for layer in backbone.layers if is_bn(layer) for w in layer.non_trainable_weights]


def test_batchnorm_statistics_do_not_change_in_phase2():
    model, backbone = classifier()
    set_trainable_backbone(backbone, -1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    before = bn_statistics(backbone)
    kernel_before = [w.numpy().copy() for w in backbone.trainable_weights]
    images = tf.random.uniform((16, 32, 32, 3), 0, 255, seed=1)
    model.fit(images, tf.one_hot(tf.range(16) % 3, 3), epochs=2, batch_size=8, verbose=0)
    for expected, actual in zip(before, bn_statistics(backbone)):
        np.testing.assert_array_equal(expected, actual)
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(kernel_before, backbone.trainable_weights))


def test_unfrozen_batchnorm_trains_when_asked():
    model, backbone = classifier(freeze_batchnorm=False)
    set_trainable_backbone(backbone, -1, freeze_batchnorm=False)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    before = bn_statistics(backbone)
    model.fit(tf.random.uniform((8, 32, 32, 3), 0, 255), tf.one_hot(tf.range(8) % 3, 3), verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, bn_statistics(backbone)))
