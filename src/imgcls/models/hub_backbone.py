"""Backbones from keras-hub presets (ViT, DeiT, DINOv2, Swin, EfficientNet, HGNetV2, MobileNetV5, ...).

A ``backbone`` config with ``source: keras_hub`` names a keras-hub Backbone class (``constructor``) and a
``preset``. ``backbone.weights`` says where the weights come from:

* ``preset``: keras-hub downloads the preset once and caches it (``~/.cache/kagglehub``);
* a local preset folder (``config.json`` and ``model.weights.h5``, as ``save_to_preset`` writes them);
* an earlier imgcls run's ``model.keras`` (or its run folder): a warm start;
* ``null``: random initialisation, of the architecture in ``kwargs`` (no download) or the preset's.

The preset's own image converter (resizing, scaling, normalising) goes inside the classifier, so a saved
model takes raw 0-255 RGB. Without preset weights, the converter of ``backbone.converter`` stands in for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
from omegaconf import OmegaConf

from imgcls.errors import WeightsError
from imgcls.resolvers import means_random_init
from imgcls.targets import trusted_callable

log = logging.getLogger(__name__)

OFFLINE_HINT = (
    "Either run once on a machine with internet access (keras-hub caches the preset under ~/.cache/kagglehub, "
    "or $KAGGLEHUB_CACHE; copy that folder here), or give backbone.weights one of: a local preset folder "
    "(written by keras-hub's save_to_preset), an earlier run's model.keras or run folder (a warm start), "
    "or null (random initialisation)."
)


@dataclass(frozen=True)
class HubWeights:
    """Where a keras-hub backbone's weights come from: ``preset``, ``folder``, ``warm_start`` or ``random``."""

    kind: str
    location: str | None = None

    @property
    def from_preset(self) -> bool:
        return self.kind in ("preset", "folder")


def resolve_hub_weights(weights: Any, preset: str) -> HubWeights:
    """What ``backbone.weights`` names for a keras-hub backbone (see the module's docstring)."""
    if means_random_init(weights):
        return HubWeights("random")
    if str(weights) == "preset":
        return HubWeights("preset", preset)
    path = Path(str(weights)).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return HubWeights("folder", str(path.resolve()))
    if path.is_dir() and (path / "model.keras").is_file():
        path = path / "model.keras"
    if path.is_file() and path.suffix == ".keras":
        return HubWeights("warm_start", str(path.resolve()))
    raise WeightsError(
        f"backbone.weights={weights}: not a keras-hub preset folder (no config.json there), nor an earlier run's "
        "model.keras or run folder. Give preset, a preset folder, a model.keras, or null."
    )


def plain(value: Any) -> Any:
    """A config node as plain Python (dicts and lists), anything else as it is."""
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _load_preset(load: Any, location: str, cfg: Any, what: str, **kwargs) -> Any:
    """``load(location, **kwargs)`` (a keras-hub ``from_preset``), its failures turned into one clear message."""
    try:
        return load(location, **kwargs)
    except Exception as error:  # keras-hub and kagglehub raise many kinds for a missing network or file
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        if Path(location).is_dir():
            raise WeightsError(
                f"The preset folder {location} does not hold a {what} for backbone={cfg.name} ({reason}). Write it "
                f"with {cfg.constructor.rsplit('.', 1)[-1]}.save_to_preset(folder), or choose another backbone.weights."
            ) from error
        raise WeightsError(
            f"Could not load the keras-hub preset {location} ({what}) for backbone={cfg.name}: this machine may not "
            f"reach the internet ({reason}). {OFFLINE_HINT}"
        ) from error


def _architecture_of(model_path: str, image_shape: tuple[int, int, int]) -> keras.Model:
    """A fresh backbone of the same architecture as the one inside an earlier run's ``model.keras``."""
    from imgcls.models.classifier import find_backbone
    from imgcls.models.loading import load_trained_model

    source = find_backbone(load_trained_model(model_path))
    config = {**source.get_config(), "image_shape": image_shape}
    return type(source).from_config(config)


def build_hub_backbone(cfg: Any, image_size: int) -> tuple[keras.Model, str | None]:
    """The keras-hub backbone of ``cfg`` for square ``image_size`` inputs, and the warm-start model it still
    needs its weights copied from (None otherwise)."""
    constructor = trusted_callable(cfg.constructor, "backbone.constructor")
    image_shape = (image_size, image_size, 3)
    weights = resolve_hub_weights(cfg.weights, cfg.preset)
    kwargs = plain(cfg.get("kwargs") or {})
    if weights.from_preset:
        backbone = _load_preset(constructor.from_preset, weights.location, cfg, "backbone", image_shape=image_shape)
    elif kwargs:
        backbone = constructor(image_shape=image_shape, **kwargs)
    elif weights.kind == "warm_start":
        backbone = _architecture_of(weights.location, image_shape)
    else:
        backbone = _load_preset(
            constructor.from_preset, cfg.preset, cfg, "architecture", load_weights=False, image_shape=image_shape
        )
    log.info("keras-hub backbone %s (%s): %s weights", cfg.name, cfg.preset, weights.location or weights.kind)
    return backbone, weights.location if weights.kind == "warm_start" else None


def build_hub_converter(cfg: Any, image_size: int) -> keras.layers.Layer:
    """The preset's image converter at ``image_size`` (or ``backbone.converter`` when the weights are not a
    preset's): raw 0-255 RGB in, what the backbone was trained on out."""
    import keras_hub

    weights = resolve_hub_weights(cfg.weights, cfg.preset)
    size = (image_size, image_size)
    spec = plain(cfg.get("converter"))
    if weights.from_preset or not spec:
        location = weights.location if weights.from_preset else cfg.preset
        return _load_preset(
            keras_hub.layers.ImageConverter.from_preset, location, cfg, "image converter", image_size=size
        )
    spec = dict(spec)
    converter_class = trusted_callable(spec.pop("class_name"), "backbone.converter.class_name")
    return converter_class(image_size=size, **spec)
