r"""A backbone as the blocks it is made of (transformer layers, stages, residual blocks), input side first.

``backbone.blocks`` (a regular expression) is the one description every family shares. It is matched in full
against the path of each layer inside the backbone (``encoder/layers_3``: names joined by ``/``, as the layers
nest). A matching layer belongs to a block with everything inside it: the block its first group names
(``(block\d+[a-z])_.*`` puts EfficientNet's ``block2a_expand_conv`` and ``block2a_bn`` in one block
``block2a``), or without a group its own block. The layers outside every block belong to the block before
them; those before the first block form a block of their own, ``stem``. A layer name that starts with the
backbone's own name and ``_`` is matched without it (keras-hub names some layers ``<backbone name>_encoder``
when the backbone has a name, as one loaded from a preset does). With ``blocks: null``,
each top-level layer of the backbone is a block (Keras Applications' layers, counted one by one).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import keras

from imgcls.compat.keras_private import all_sublayers, sublayers
from imgcls.errors import ConfigError

STEM = "stem"


@dataclass(frozen=True)
class Block:
    """One block of a backbone: its name (the path of its layer, or ``stem``) and the layers it owns."""

    name: str
    layers: tuple[keras.layers.Layer, ...]

    def all_layers(self) -> list[keras.layers.Layer]:
        """The block's layers and every layer inside them."""
        return [inner for layer in self.layers for inner in (layer, *all_sublayers(layer))]

    def trainable_weights(self) -> list[keras.Variable]:
        return [weight for layer in self.layers for weight in layer.trainable_weights]


def _name(layer: keras.layers.Layer, owner: str) -> str:
    return layer.name.removeprefix(f"{owner}_")


def _holds_block(layer: keras.layers.Layer, prefix: str, pattern: re.Pattern, owner: str) -> bool:
    return any(
        pattern.fullmatch(prefix + _name(child, owner))
        or _holds_block(child, f"{prefix}{_name(child, owner)}/", pattern, owner)
        for child in sublayers(layer)
    )


def _walk(
    layer: keras.layers.Layer, prefix: str, pattern: re.Pattern, owner: str
) -> list[tuple[str | None, keras.layers.Layer]]:
    """(block name or None, layer) for the block layers and the loose layers inside ``layer``, in order. A layer
    with no block inside is loose as a whole (a patch embedding keeps its own weights and its sublayers')."""
    found = []
    for child in sublayers(layer):
        path = f"{prefix}{_name(child, owner)}"
        match = pattern.fullmatch(path)
        if match:
            found.append((match.group(1) if pattern.groups else path, child))
        elif _holds_block(child, path + "/", pattern, owner):
            found.extend(_walk(child, path + "/", pattern, owner))
        else:
            found.append((None, child))
    return found


def layer_paths(backbone: keras.Model) -> list[str]:
    """The path of every layer inside ``backbone`` (what ``backbone.blocks`` is matched against)."""

    def paths(layer: keras.layers.Layer, prefix: str) -> list[str]:
        names = [(child, prefix + _name(child, backbone.name)) for child in sublayers(layer)]
        return [p for child, path in names for p in (path, *paths(child, path + "/"))]

    return paths(backbone, "")


def backbone_blocks(backbone: keras.Model, pattern: str | None) -> list[Block]:
    """The blocks of ``backbone`` that ``pattern`` (``backbone.blocks``) describes, input side first."""
    if pattern is None:
        return [Block(layer.name, (layer,)) for layer in backbone.layers]
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ConfigError(f"backbone.blocks={pattern!r} is not a regular expression: {error}.") from error
    blocks: list[tuple[str, list]] = []
    stem: list = []
    for name, layer in _walk(backbone, "", compiled, backbone.name):
        if name is not None and not (blocks and blocks[-1][0] == name):
            blocks.append((name, [layer]))
        elif name is not None:
            blocks[-1][1].append(layer)
        elif blocks:
            blocks[-1][1].append(layer)
        else:
            stem.append(layer)
    if not blocks:
        sample = ", ".join(layer_paths(backbone)[:12])
        raise ConfigError(
            f"backbone.blocks={pattern!r} matches no layer of {backbone.name}. It must match a layer's whole path; "
            f"the paths begin: {sample}, ..."
        )
    described = [Block(STEM, tuple(stem))] if stem else []
    return described + [Block(name, tuple(layers)) for name, layers in blocks]


def find_block(blocks: list[Block], name: str) -> int:
    """The index of the block called ``name`` (its path, or the last part of it), or of the block that holds a
    layer called ``name``; a :class:`ConfigError` with close names otherwise."""
    for index, block in enumerate(blocks):
        if name in (block.name, block.name.rsplit("/", 1)[-1]):
            return index
    for index, block in enumerate(blocks):
        if any(layer.name == name for layer in block.all_layers()):
            return index
    names = [block.name for block in blocks]
    close = difflib.get_close_matches(name, names, n=3)
    listed = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    hint = f" Did you mean {close}?" if close else f" Its blocks: {listed}."
    raise ConfigError(f"unfreeze_from={name}: no such block or layer in the backbone.{hint}")


def is_batchnorm(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


def has_batchnorm(backbone: keras.Model) -> bool:
    """Whether any layer inside ``backbone`` is a BatchNormalization (LayerNorm-only transformers have none)."""
    return any(is_batchnorm(layer) for layer in all_sublayers(backbone))
