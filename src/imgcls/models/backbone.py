"""Build a backbone from its config, with ImageNet, random or file weights, or an earlier run's (a warm start)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
from omegaconf import OmegaConf

from imgcls.errors import ConfigError, WeightsError
from imgcls.resolvers import means_random_init
from imgcls.targets import trusted_callable

log = logging.getLogger(__name__)

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
    """The backbone named by ``cfg.constructor`` without its classifier top, for square ``image_size`` inputs."""
    if image_size < cfg.min_image_size:
        raise ConfigError(
            f"data.image_size={image_size} is below {cfg.name}'s minimum of {cfg.min_image_size} px. "
            f"Use data.image_size={cfg.min_image_size} or larger."
        )
    constructor = trusted_callable(cfg.constructor, "backbone.constructor")
    weights = resolve_weights(cfg.weights)
    try:
        backbone = constructor(
            include_top=False,
            weights=None if is_warm_start(weights) else weights,
            input_shape=(image_size, image_size, 3),
            **_plain(cfg.get("kwargs") or {}),
        )
    except WeightsError:
        raise
    except Exception as error:  # Keras raises bare Exception/ValueError for download and shape problems
        raise _weights_error(cfg, weights, error) from error
    if is_warm_start(weights):
        copy_trained_backbone(weights, backbone, cfg.name)
    if cfg.get("bn_momentum") is not None:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(cfg.bn_momentum)
    log.info("Backbone %s (%s weights): %d layers", cfg.name, weights or "random", len(backbone.layers))
    return backbone


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


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
