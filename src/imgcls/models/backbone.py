"""Build a Keras Applications backbone from its config, with ImageNet, random or file weights."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
from hydra.utils import get_method

from imgcls.errors import ConfigError, WeightsError

log = logging.getLogger(__name__)

OFFLINE_HINT = (
    "Either run once on a machine with internet access (Keras caches the file in ~/.keras/models; copy that "
    "folder here), pass a local weights file with backbone.weights=/path/to/weights.h5, or train from random "
    "initialisation with backbone.weights=null."
)


def resolve_weights(weights: Any) -> str | None:
    """``imagenet``, None (random init) or an existing local file path."""
    if weights is None or str(weights).lower() in {"null", "none", ""}:
        return None
    if str(weights) == "imagenet":
        return "imagenet"
    path = Path(str(weights)).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"backbone.weights={weights}: no such file. Give imagenet, null, or the path of a weights file."
        )
    return str(path)


def build_backbone(cfg: Any, image_size: int) -> keras.Model:
    """The backbone named by ``cfg.constructor`` without its classifier top, for square ``image_size`` inputs."""
    if image_size < cfg.min_image_size:
        raise ConfigError(
            f"data.image_size={image_size} is below {cfg.name}'s minimum of {cfg.min_image_size} px. "
            f"Use data.image_size={cfg.min_image_size} or larger."
        )
    constructor = get_method(cfg.constructor)
    weights = resolve_weights(cfg.weights)
    try:
        backbone = constructor(include_top=False, weights=weights, input_shape=(image_size, image_size, 3))
    except Exception as error:  # Keras raises bare Exception/ValueError for download and shape problems
        raise _weights_error(cfg, weights, error) from error
    if cfg.get("bn_momentum") is not None:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(cfg.bn_momentum)
    log.info("Backbone %s (%s weights): %d layers", cfg.name, weights or "random", len(backbone.layers))
    return backbone


def _weights_error(cfg: Any, weights: str | None, error: Exception) -> Exception:
    message = str(error)
    if weights == "imagenet" and "URL fetch failure" in message:
        return WeightsError(
            f"Could not download the ImageNet weights of {cfg.name}: this machine cannot reach the internet "
            f"({message.split(' -- ')[-1]}). {OFFLINE_HINT}"
        )
    if weights not in (None, "imagenet"):
        return WeightsError(
            f"The weights file {weights} does not fit {cfg.name} without its top ({message}). "
            f"Use a file saved from keras.applications.{cfg.constructor.rsplit('.', 1)[-1]}(include_top=False), "
            "or backbone.weights=imagenet|null."
        )
    return error
