"""Augmentation and batch mixing built from config lists of Keras preprocessing layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from imgcls.targets import build


def build_augmenter(layer_configs: Sequence[Any]) -> keras.Sequential | None:
    """A Sequential of the configured layers (``_target_`` each), or None when the list is empty.

    Layers run in float32 inside tf.data whatever the model's mixed-precision policy.
    """
    layers = [build(layer_cfg, dtype="float32") for layer_cfg in layer_configs]
    return keras.Sequential(layers, name="augmentation") if layers else None


def build_mixer(layer_config: Any) -> keras.layers.Layer | None:
    """The configured batch-mixing layer (MixUp, CutMix), or None."""
    if layer_config is None:
        return None
    return build(layer_config, dtype="float32")
