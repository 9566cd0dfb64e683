"""Build a backbone from its config, with ImageNet, random or file weights, or an earlier run's (a warm start).

``backbone.source`` chooses the constructor's convention: ``keras_applications`` (``include_top``, ``weights``,
``input_shape``; Keras Applications and imgcls's own networks) or ``keras_hub`` (a keras-hub preset, see
:mod:`imgcls.models.hub_backbone`). Nothing here depends on a backbone's name.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras

from imgcls.compat.keras_private import all_sublayers
from imgcls.errors import ConfigError, WeightsError
from imgcls.models.blocks import is_batchnorm
from imgcls.models.hub_backbone import build_hub_backbone, build_hub_converter, plain
from imgcls.resolvers import means_random_init
from imgcls.targets import trusted_callable

log = logging.getLogger(__name__)

APPLICATIONS = "keras_applications"
SOURCES = (APPLICATIONS, "keras_hub")

OFFLINE_HINT = (
    "Either run once on a machine with internet access (Keras caches the file in ~/.keras/models; copy that "
    "folder here), pass a local weights file with backbone.weights=/path/to/weights.h5, or train from random "
    "initialisation with backbone.weights=null."
)


def resolve_weights(weights: Any) -> str | None:
    """``imagenet``, None (random init), or an existing local file: a weights file, or an earlier run's
    ``model.keras`` (a run folder stands for the ``model.keras`` in it)."""
    if means_random_init(weights):
        return None
    if str(weights) == "imagenet":
        return "imagenet"
    path = Path(str(weights)).expanduser()
    if path.is_dir() and (path / "model.keras").is_file():
        path = path / "model.keras"
    if not path.is_file():
        raise WeightsError(
            f"backbone.weights={weights}: no such file. Give imagenet, null, the path of a weights file, or an "
            "earlier run's model.keras or run folder."
        )
    return str(path.resolve())


def is_warm_start(weights: str | None) -> bool:
    """Whether ``weights`` (resolved) is an earlier run's saved model rather than a weights file."""
    return weights is not None and weights.endswith(".keras")


def build_backbone(cfg: Any, image_size: int) -> keras.Model:
    """The backbone ``cfg`` describes, without its classifier top, for square ``image_size`` inputs."""
    if image_size < cfg.min_image_size:
        raise ConfigError(
            f"data.image_size={image_size} is below {cfg.name}'s minimum of {cfg.min_image_size} px. "
            f"Use data.image_size={cfg.min_image_size} or larger."
        )
    if cfg.get("source", APPLICATIONS) == APPLICATIONS:
        backbone, warm_start = _applications_backbone(cfg, image_size)
    else:
        backbone, warm_start = build_hub_backbone(cfg, image_size)
    if warm_start is not None:
        copy_trained_backbone(warm_start, backbone, cfg.name)
    batchnorms = [layer for layer in all_sublayers(backbone) if is_batchnorm(layer)]
    if cfg.get("bn_momentum") is not None:
        if not batchnorms:
            log.warning("backbone.bn_momentum has no effect: %s has no BatchNormalization", cfg.name)
        for layer in batchnorms:
            layer.momentum = float(cfg.bn_momentum)
    if not batchnorms:
        log.info("%s has no BatchNormalization layers: the BatchNormalization rules do not apply to it", cfg.name)
    log.info("Backbone %s (%s weights): %d layers", cfg.name, cfg.weights or "random", len(all_sublayers(backbone)))
    return backbone


def build_preprocessing(cfg: Any, image_size: int) -> str | keras.layers.Layer:
    """What turns raw 0-255 RGB into the backbone's input: a Keras Applications mode (see
    :class:`~imgcls.models.layers.BackbonePreprocessing`), or ``preset``: keras-hub's image converter."""
    if cfg.preprocessing == "preset":
        return build_hub_converter(cfg, image_size)
    return cfg.preprocessing


def _applications_backbone(cfg: Any, image_size: int) -> tuple[keras.Model, str | None]:
    constructor = trusted_callable(cfg.constructor, "backbone.constructor")
    weights = resolve_weights(cfg.weights)
    try:
        backbone = constructor(
            include_top=False,
            weights=None if is_warm_start(weights) else weights,
            input_shape=(image_size, image_size, 3),
            **plain(cfg.get("kwargs") or {}),
        )
    except WeightsError:
        raise
    except Exception as error:  # Keras raises bare Exception/ValueError for download and shape problems
        raise _weights_error(cfg, weights, error) from error
    return backbone, weights if is_warm_start(weights) else None


def copy_trained_backbone(model_path: str, backbone: keras.Model, name: str) -> None:
    """Set ``backbone``'s weights to those of the backbone inside the imgcls model at ``model_path``.

    The saved backbone must be the same architecture: the same weights, in the same order, of the
    same shapes (for a convolutional network the image size may differ). The head is not copied.
    """
    from imgcls.models.classifier import find_backbone
    from imgcls.models.loading import load_trained_model

    try:
        source = find_backbone(load_trained_model(model_path))
    except (ConfigError, ValueError) as error:
        raise WeightsError(
            f"backbone.weights={model_path}: not an imgcls model to warm-start from ({error})."
        ) from error
    saved = [tuple(w.shape) for w in source.weights]
    wanted = [tuple(w.shape) for w in backbone.weights]
    if saved != wanted:
        first = next(
            (
                f"{w.path} is {w_shape} here, {s_shape} there"
                for w, w_shape, s_shape in zip(backbone.weights, wanted, saved)
                if w_shape != s_shape
            ),
            f"{len(wanted)} weights here, {len(saved)} there",
        )
        raise WeightsError(
            f"backbone.weights={model_path} holds a {source.name} backbone ({len(saved)} weights) that does not "
            f"match backbone={name} ({backbone.name}, {len(wanted)} weights): {first}. Warm-start from a run of "
            f"the same backbone (at the same image size where the architecture depends on it), or choose that "
            f"run's backbone."
        )
    backbone.set_weights(source.get_weights())
    log.info("Warm start: backbone weights from %s (%s)", model_path, source.name)


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
