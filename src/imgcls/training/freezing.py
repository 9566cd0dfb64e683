"""Which backbone layers train in a phase: decided here, for every phase and every backbone."""

from __future__ import annotations

import difflib

import keras

from imgcls.errors import ConfigError


def _first_unfrozen(backbone: keras.Model, count: int, from_layer: str | None) -> int:
    names = [layer.name for layer in backbone.layers]
    if from_layer is None:
        if count == 0:
            return len(names)
        return 0 if count < 0 else max(0, len(names) - count)
    if from_layer not in names:
        close = difflib.get_close_matches(from_layer, names, n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise ConfigError(f"unfreeze_from={from_layer}: no such layer in {backbone.name}.{hint}")
    return names.index(from_layer)


def set_trainable_backbone(
    backbone: keras.Model, count: int, *, from_layer: str | None = None, freeze_batchnorm: bool = True
) -> list[str]:
    """Make the last ``count`` backbone layers trainable and freeze the rest.

    ``count`` 0 freezes the whole backbone (only the head trains), -1 unfreezes all of it; a
    ``from_layer`` name unfreezes that layer and every layer above it instead. BatchNormalization
    layers stay frozen when ``freeze_batchnorm`` is set. Returns the names of the layers that now
    hold trainable weights.
    """
    first = _first_unfrozen(backbone, count, from_layer)
    if first >= len(backbone.layers):
        backbone.trainable = False
        return []
    backbone.trainable = True
    trained = []
    for index, layer in enumerate(backbone.layers):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = index >= first and not (is_bn and freeze_batchnorm)
        if layer.trainable and layer.weights:
            trained.append(layer.name)
    return trained
