"""Which backbone layers train in each phase."""

from __future__ import annotations

import keras


def freeze(backbone: keras.Model) -> None:
    """Phase 1: no backbone weight trains."""
    backbone.trainable = False


def unfreeze_top(backbone: keras.Model, count: int, *, freeze_batchnorm: bool = True) -> list[str]:
    """Phase 2: make the last ``count`` backbone layers trainable (-1: all of them).

    BatchNormalization layers stay frozen when ``freeze_batchnorm`` is set. Returns the names of
    the layers that now hold trainable weights.
    """
    layers = backbone.layers
    first = 0 if count < 0 else max(0, len(layers) - count)
    backbone.trainable = True
    trained = []
    for index, layer in enumerate(layers):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = index >= first and not (is_bn and freeze_batchnorm)
        if layer.trainable and layer.weights:
            trained.append(layer.name)
    return trained
