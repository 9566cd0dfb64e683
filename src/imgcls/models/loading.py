"""Load a saved imgcls model for inference: checked, uncompiled, and computing in float32."""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import keras

from imgcls.errors import ConfigError
from imgcls.models.classifier import class_names_of

log = logging.getLogger(__name__)

MIXED_POLICIES = {"mixed_float16", "mixed_bfloat16"}
HALF_DTYPES = ("float16", "bfloat16")


def load_trained_model(path: str | os.PathLike) -> keras.Model:
    """The ``model.keras`` at ``path``, uncompiled and computing in float32 (see :func:`float32_model`).

    A missing or unloadable file is a :class:`ConfigError`.
    """
    path = Path(os.fspath(path)).expanduser()
    if not path.is_file():
        raise ConfigError(f"model={path}: file not found. Point model= at a model.keras written by imgcls-train.")
    import_layer_packages(path)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # not a .keras file, a truncated one, a foreign custom layer: the user's to fix
        raise ConfigError(
            f"model={path}: cannot be loaded as a Keras model ({type(error).__name__}: {error}). "
            "Point model= at a model.keras written by imgcls-train."
        ) from error
    return float32_model(model)


def import_layer_packages(path: Path) -> None:
    """Import the packages whose registered layers the ``.keras`` file at ``path`` uses (keras-hub's backbones
    and image converters), so that loading it in safe mode finds them."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = archive.read("config.json")
    except (OSError, KeyError, zipfile.BadZipFile):
        return  # keras.models.load_model says what is wrong with the file
    if b'"keras_hub' in config:
        import keras_hub  # noqa: F401  (registers keras_hub>... classes)


def _all_layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _float32_config(node: Any) -> Any:
    """A serialized Keras object with every mixed dtype policy, and float16/bfloat16 tensor dtype, made float32."""
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy" and node.get("config", {}).get("name") in MIXED_POLICIES:
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {
            key: "float32" if key == "dtype" and value in HALF_DTYPES else _float32_config(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_float32_config(value) for value in node]
    return node


def float32_model(model: keras.Model) -> keras.Model:
    """``model`` computing in float32: itself, or for a mixed-precision model a float32 copy with its weights.

    A model trained with ``precision=mixed_float16`` (the default on recent GPUs) keeps that policy in
    model.keras. Half precision is slow on CPUs and TFLite cannot convert it, so prediction and export
    run every model in float32 (the weights of a mixed-precision model are float32 already).
    """
    mixed = sorted({layer.dtype_policy.name for layer in _all_layers(model)} & MIXED_POLICIES)
    if not mixed:
        return model
    serialized = keras.saving.serialize_keras_object(model)
    serialized.pop("compile_config", None)
    copy = keras.saving.deserialize_keras_object(_float32_config(serialized))
    copy.set_weights(model.get_weights())
    log.info("The model was saved with %s layers; running it in float32", " and ".join(mixed))
    return copy


def model_class_names(model: keras.Model) -> list[str]:
    """The class of each output of ``model`` (its ``predictions`` layer), or a :class:`ConfigError`."""
    try:
        return class_names_of(model)
    except (ValueError, AttributeError) as error:
        raise ConfigError(
            f"model {model.name} has no 'predictions' layer carrying class names; was it written by imgcls-train?"
        ) from error


def model_image_size(model: keras.Model) -> int:
    """The square input size of ``model`` (inputs of shape ``(batch, size, size, 3)``)."""
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[1] != shape[2]:
        raise ConfigError(f"model {model.name} takes inputs of shape {shape}, not (batch, size, size, 3) RGB images.")
    return int(shape[1])
