"""Which backbone blocks train in a phase: decided here, for every phase and every backbone family."""

from __future__ import annotations

import keras

from imgcls.compat.keras_private import all_sublayers
from imgcls.models.blocks import Block, backbone_blocks, find_block, is_batchnorm


def _first_unfrozen(blocks: list[Block], count: int, from_block: str | None) -> int:
    if from_block is not None:
        return find_block(blocks, from_block)
    if count == 0:
        return len(blocks)
    return 0 if count < 0 else max(0, len(blocks) - count)


def set_trainable_backbone(
    backbone: keras.Model,
    count: int,
    *,
    from_layer: str | None = None,
    freeze_batchnorm: bool = True,
    blocks: str | None = None,
) -> list[Block]:
    """Make the last ``count`` blocks of ``backbone`` trainable and freeze the rest.

    Blocks are those the ``blocks`` pattern describes (see :mod:`imgcls.models.blocks`). ``count`` 0 freezes the
    whole backbone (only the head trains), -1 unfreezes all of it; ``from_layer`` (a block, or a layer inside
    one) unfreezes that block and every block above it instead. BatchNormalization layers, at any depth, stay
    frozen when ``freeze_batchnorm`` is set. Returns the blocks that now hold trainable weights, input side first.
    """
    described = backbone_blocks(backbone, blocks)
    first = _first_unfrozen(described, count, from_layer)
    if first >= len(described):
        backbone.trainable = False
        return []
    backbone.trainable = True  # every layer inside, at any depth; then the frozen blocks are switched off
    for block in described[:first]:
        for layer in block.layers:
            layer.trainable = False
    if freeze_batchnorm:
        for layer in all_sublayers(backbone):
            if is_batchnorm(layer):
                layer.trainable = False
    return [block for block in described[first:] if block.trainable_weights()]
