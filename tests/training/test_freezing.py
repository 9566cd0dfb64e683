"""Phase 1 freezes the backbone; phase 2 unfreezes exactly its last N blocks and never trains BatchNormalization."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import tiny_classifier
from imgcls.errors import ConfigError
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
    assert [block.name for block in trained] == [layer.name for layer in expected]
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_unfrozen_batchnorm_trains_when_asked():
    model, backbone = classifier(freeze_batchnorm=False)
    set_trainable_backbone(backbone, -1, freeze_batchnorm=False)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    before = bn_statistics(backbone)
    model.fit(tf.random.uniform((8, 32, 32, 3), 0, 255), tf.one_hot(tf.range(8) % 3, 3), verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, bn_statistics(backbone)))


MOBILENET_BLOCKS = r"(expanded_conv(?:_\d+)?)_.*"  # conf/backbone/mobilenetv3small.yaml


def test_unfreeze_counts_the_backbones_own_blocks():
    _, backbone = classifier()
    trained = set_trainable_backbone(backbone, 2, blocks=MOBILENET_BLOCKS)
    assert [block.name for block in trained] == ["expanded_conv_9", "expanded_conv_10"]
    trainable = {layer.name for layer in backbone.layers if layer.trainable and layer.weights}
    assert "expanded_conv_9_expand" in trainable and "conv_1" in trainable, "the top conv trains with the last block"
    assert "expanded_conv_8_project" not in trainable
    assert not any(is_bn(layer) and layer.trainable for layer in backbone.layers)


def test_unfreeze_from_a_layer_inside_a_block_starts_at_that_block():
    _, backbone = classifier()
    trained = set_trainable_backbone(backbone, 0, from_layer="expanded_conv_9_depthwise", blocks=MOBILENET_BLOCKS)
    assert [block.name for block in trained] == ["expanded_conv_9", "expanded_conv_10"]


def test_an_unknown_block_names_the_close_ones():
    _, backbone = classifier()
    with pytest.raises(ConfigError, match=r"unfreeze_from=expanded_conv_99: .*Did you mean"):
        set_trainable_backbone(backbone, 0, from_layer="expanded_conv_99", blocks=MOBILENET_BLOCKS)


def test_a_pattern_that_matches_nothing_shows_the_layer_paths():
    _, backbone = classifier()
    with pytest.raises(ConfigError, match=r"matches no layer of .*the paths begin: input"):
        set_trainable_backbone(backbone, 1, blocks="encoder/layers_\\d+")


def nested_backbone() -> keras.Model:
    """Blocks that are layers holding layers, BatchNormalization among them (as in keras-hub's CNNs)."""

    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv = keras.layers.Conv2D(4, 3, padding="same")
            self.norm = keras.layers.BatchNormalization()

        def call(self, x, training=None):
            return self.norm(self.conv(x), training=training)

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="stem_conv")(inputs)
    for i in range(3):
        x = Block(name=f"stage_{i}")(x)
    return keras.Model(inputs, x)


def test_batchnorm_inside_nested_blocks_stays_frozen():
    backbone = nested_backbone()
    trained = set_trainable_backbone(backbone, -1, blocks=r"stage_\d+")
    assert [block.name for block in trained] == ["stem", "stage_0", "stage_1", "stage_2"]
    paths = {w.path for w in backbone.trainable_weights}
    assert paths and not any("batch_normalization" in p for p in paths)
    assert any(p.startswith("stage_2/conv") or "conv2d" in p for p in paths)
    assert len(backbone.trainable_weights) == 2 + 3 * 2  # the stem's and each block's conv kernel and bias
