"""Which backbone layers train in each phase."""

from __future__ import annotations

import difflib

import keras

from imgcls.errors import ConfigError


def freeze(backbone: keras.Model) -> None:
    """Phase 1: no backbone weight trains."""
    backbone.trainable = False


def _first_unfrozen(backbone: keras.Model, count: int, from_layer: str | None) -> int:
    names = [layer.name for layer in backbone.layers]
    if from_layer is None:
        return 0 if count < 0 else max(0, len(names) - count)
    if from_layer not in names:
        close = difflib.get_close_matches(from_layer, names, n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise ConfigError(f"train.phase2.unfreeze_from={from_layer}: no such layer in {backbone.name}.{hint}")
    return names.index(from_layer)


def unfreeze_top(
    backbone: keras.Model, count: int, *, from_layer: str | None = None, freeze_batchnorm: bool = True
) -> list[str]:
    """Phase 2: make the last ``count`` backbone layers trainable (-1: all), or every layer from
    ``from_layer`` (a layer name) to the top when it is given.

    BatchNormalization layers stay frozen when ``freeze_batchnorm`` is set. Returns the names of
    the layers that now hold trainable weights.
    """
    first = _first_unfrozen(backbone, count, from_layer)
    backbone.trainable = True
    trained = []
    for index, layer in enumerate(backbone.layers):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = index >= first and not (is_bn and freeze_batchnorm)
        if layer.trainable and layer.weights:
            trained.append(layer.name)
    return trained
