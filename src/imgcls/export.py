"""The export entrypoint: ``imgcls-export`` / ``python -m imgcls.export`` (a Hydra app over conf/export.yaml).

Writes a trained ``model.keras`` as a TensorFlow SavedModel or a float32 TFLite file for serving.
Either takes raw 0-255 RGB float32 images of shape ``(batch, size, size, 3)`` (the preprocessing
is part of the model) and returns softmax probabilities, computing in float32 also when the model
was trained with mixed precision (see :func:`imgcls.models.loading.float32_model`). Neither format can carry the Keras
layer config that holds the class names, so ``class_names.json`` (a JSON list: output ``i`` is
class ``names[i]``) is written next to the artifact.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import keras
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

from imgcls.cli import run_job
from imgcls.errors import ConfigError, ImgclsError
from imgcls.models.loading import load_trained_model, model_class_names, model_image_size
from imgcls.targets import TRUSTED_TARGETS

log = logging.getLogger("imgcls.export")

CLASS_NAMES_FILE = "class_names.json"


class ExportError(ImgclsError):
    """The model cannot be written in the requested format."""


def export_savedmodel(model: keras.Model, path: Path) -> None:
    """A SavedModel folder: signature ``serving_default`` and endpoint ``serve``, input ``image``."""
    model.export(str(path), format="tf_saved_model", verbose=False)


def export_tflite(model: keras.Model, path: Path) -> None:
    """A float32 TFLite file of builtin ops only, converted from a SavedModel of ``model``.

    No quantization, and no TensorFlow (Flex) ops, so the plain TFLite/LiteRT runtime runs it.
    Keras's own ``model.export(format="litert")`` allows Flex ops, which need the Flex delegate.
    """
    with tempfile.TemporaryDirectory(prefix="imgcls-export-") as saved_model:
        export_savedmodel(model, Path(saved_model))
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        try:
            content = converter.convert()
        except Exception as error:  # the converter's own error types are not public API
            raise ExportError(f"TFLite conversion of {model.name} failed: {error}") from error
    path.write_bytes(content)


# One writer per format: the keys are the values `format=` accepts.
EXPORTERS: dict[str, tuple[Callable[[keras.Model, Path], None], str]] = {
    "savedmodel": (export_savedmodel, "model_savedmodel"),
    "tflite": (export_tflite, "model.tflite"),
}


def write_class_names(folder: Path, class_names: list[str]) -> Path:
    """``folder/class_names.json``: a JSON list, the class of each output in order."""
    path = folder / CLASS_NAMES_FILE
    path.write_text(json.dumps(class_names, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def check_config(cfg: DictConfig) -> None:
    """Fail at start-up, before loading the model, on settings that cannot work."""
    if OmegaConf.is_missing(cfg, "model"):
        raise ConfigError("model= is required: imgcls-export model=<model.keras> format=savedmodel|tflite.")
    if cfg.format not in EXPORTERS:
        raise ConfigError(f"format must be one of {', '.join(EXPORTERS)}, got {cfg.format!r}.")


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export ``cfg.model`` as ``cfg.format``; return where the artifact and the class names went."""
    check_config(cfg)
    writer, default_name = EXPORTERS[cfg.format]
    output = Path(cfg.output).expanduser() if cfg.output else Path(cfg.paths.output_dir) / default_name
    model = load_trained_model(cfg.model)
    class_names = model_class_names(model)
    size = model_image_size(model)
    output.parent.mkdir(parents=True, exist_ok=True)
    writer(model, output)
    labels = write_class_names(output.parent, class_names)
    log.info(
        "Exported %s as %s: %s. Input: float32 RGB 0-255 of shape (batch, %d, %d, 3); output: %d class "
        "probabilities, named in %s",
        cfg.model, cfg.format, output, size, size, len(class_names), labels,
    )
    return dict(artifact=str(output), class_names_json=str(labels), format=cfg.format, image_size=size)


@hydra.main(config_path="pkg://imgcls.conf", config_name="export", execution_whitelist=TRUSTED_TARGETS)
def main(cfg: DictConfig) -> None:
    """Run :func:`export`; problems a user can fix end with a message and exit code 2."""
    run_job(cfg, lambda: export(cfg))


if __name__ == "__main__":
    main()
