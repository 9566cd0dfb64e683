"""A compact ResNet for small images (28-64 px) trained from scratch.

Keras Applications and keras-hub's ``ResNetBackbone`` shrink the image 4x in their stem (a stride-2
convolution, then a stride-2 max pool) before the first stage, and Keras Applications' models 32x
overall: at 32 px that leaves an 8x8 map before any residual block and 1x1 at the end. This network
keeps the full resolution in a stride-1 stem and halves it only at the start of a stage,
as He et al.'s CIFAR ResNets (2015) and the fast CIFAR-10 training records (Page 2018, airbench) do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
from keras import layers

from imgcls.errors import WeightsError

BN_MOMENTUM = 0.9


def _conv_bn_relu(x, filters: int, strides: int, name: str, *, relu: bool = True):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _basic_block(x, filters: int, strides: int, name: str):
    """Two 3x3 convolutions with an identity shortcut, or a 1x1 projection where the shape changes."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj_conv")(x)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
    x = _conv_bn_relu(x, filters, strides, f"{name}_1")
    x = _conv_bn_relu(x, filters, 1, f"{name}_2", relu=False)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.ReLU(name=f"{name}_out")(x)


def CompactResNet(
    include_top: bool = False,
    weights: str | None = None,
    input_shape: tuple[int, int, int] | None = None,
    *,
    stem_width: int = 32,
    stage_widths: Sequence[int] = (32, 64, 128),
    blocks_per_stage: Sequence[int] = (1, 1, 1),
    stage_strides: Sequence[int] | None = None,
    name: str = "compact_resnet",
) -> keras.Model:
    """A feature extractor: stride-1 3x3 stem, then one stage of basic blocks per entry of ``stage_widths``.

    Each stage's first block strides by ``stage_strides`` (default: the first stage keeps the
    resolution and each later one halves it, 32 px to an 8x8 map; conf/backbone/compact_resnet_*.yaml
    halve in every stage, 32 px to 4x4, for speed on CPUs). The signature follows Keras Applications
    (``include_top`` must be False; ``weights`` is None or a ``.weights.h5`` file saved from the same
    configuration), so configs select it like any other backbone.
    """
    if include_top:
        raise ValueError("CompactResNet is a backbone only: the classifier head is imgcls's")
    if weights == "imagenet":
        raise WeightsError(
            "compact ResNets have no ImageNet weights: they are built to train from scratch on small images. "
            "Use backbone.weights=null, a weights file, or an earlier run's model.keras."
        )
    stage_strides = list(stage_strides) if stage_strides is not None else [1] + [2] * (len(stage_widths) - 1)
    if not len(stage_widths) == len(blocks_per_stage) == len(stage_strides):
        raise ValueError(
            f"stage_widths {list(stage_widths)}, blocks_per_stage {list(blocks_per_stage)} and stage_strides "
            f"{stage_strides} must have one entry per stage"
        )
    images = keras.Input(shape=input_shape or (32, 32, 3), name="images")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(images)
    x = _conv_bn_relu(x, stem_width, 1, "stem")
    for stage, (width, blocks, stride) in enumerate(zip(stage_widths, blocks_per_stage, stage_strides), start=1):
        for block in range(1, blocks + 1):
            x = _basic_block(x, width, stride if block == 1 else 1, f"stage{stage}_block{block}")
    model = keras.Model(images, x, name=name)
    if weights is not None:
        if not Path(weights).is_file():
            raise WeightsError(f"backbone.weights={weights}: no such file.")
        model.load_weights(weights)
    return model
