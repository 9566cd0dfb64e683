"""Augmentation and batch mixing built from config lists of Keras preprocessing layers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from imgcls.targets import build


def build_augmenter(layer_configs: Sequence[Any]) -> keras.Sequential | None:
    """A Sequential of the configured layers (``_target_`` each), or None when the list is empty.

    Layers run in float32 wherever they run, whatever the model's mixed-precision policy.
    """
    layers = [build(layer_cfg, dtype="float32") for layer_cfg in layer_configs]
    return keras.Sequential(layers, name="augmentation") if layers else None


def build_mixer(layer_config: Any) -> keras.layers.Layer | None:
    """The configured batch-mixing layer (MixUp, CutMix), or None."""
    if layer_config is None:
        return None
    return build(layer_config, dtype="float32")


@dataclasses.dataclass(frozen=True)
class BatchAugmentation:
    """What happens to each training batch, in order: augmentation, mixing, then class weights.

    Called on (float32 0-255 images, one-hot labels), it returns (images, soft labels) or, with
    ``class_weights``, (images, soft labels, per-example weights). Weights follow the mixed labels:
    a 70/30 mix of two classes weighs 0.7 w_a + 0.3 w_b. The same object runs in a ``tf.data`` map
    (``data.augment_on=pipeline``) or inside the training step (``device``).
    """

    augment: Callable | None = None
    mix: Callable | None = None
    class_weights: np.ndarray | None = None

    @classmethod
    def of(
        cls, augment: Callable | None, mix: Callable | None, class_weights: np.ndarray | None
    ) -> BatchAugmentation | None:
        """The transform, or None when it would do nothing."""
        if augment is None and mix is None and class_weights is None:
            return None
        return cls(augment, mix, class_weights)

    def __call__(self, images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, ...]:
        if self.augment is not None:
            images = self.augment(images, training=True)
        if self.mix is not None:
            mixed = self.mix({"images": images, "labels": labels}, training=True)
            images, labels = mixed["images"], mixed["labels"]
        if self.class_weights is None:
            return images, labels
        weights = tf.constant(self.class_weights, tf.float32)
        return images, labels, tf.linalg.matvec(tf.cast(labels, tf.float32), weights)
