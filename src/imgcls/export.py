"""The export entrypoint: ``imgcls-export`` / ``python -m imgcls.export`` (a Hydra app over conf/export.yaml).

Writes a trained ``model.keras`` as a TensorFlow SavedModel, a TFLite file (float32, or quantized to
float16 or int8) or an ONNX file for serving. Each takes raw 0-255 RGB float32 images of shape
``(batch, size, size, 3)`` (the preprocessing is part of the model) and returns softmax probabilities,
computing in float32 also when the model was trained with mixed precision (see
:func:`imgcls.models.loading.float32_model`). No format can carry the Keras layer config that holds
the class names, so ``class_names.json`` (a JSON list: output ``i`` is class ``names[i]``) is written
next to the artifact, with ``export_report.json``: its size and, where the run's test split is known,
its test accuracy next to the Keras model's on the same images.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from imgcls.cli import run_job
from imgcls.errors import ConfigError
from imgcls.exporting import ExportError  # noqa: F401  (raised by the writers; part of this module's API)
from imgcls.exporting.evaluation import artifact_bytes, compare_on_test_set, write_report
from imgcls.exporting.onnx import check_onnx_extra, export_onnx, onnx_predictor
from imgcls.exporting.run_images import has_split, sample, test_images, training_images
from imgcls.exporting.savedmodel import export_savedmodel, savedmodel_predictor
from imgcls.exporting.tflite import CALIBRATED, QUANTIZE, export_tflite, tflite_predictor
from imgcls.models.loading import load_trained_model, model_class_names, model_image_size
from imgcls.predict import image_batches
from imgcls.targets import TRUSTED_TARGETS

log = logging.getLogger("imgcls.export")

CLASS_NAMES_FILE = "class_names.json"


@dataclass(frozen=True)
class Format:
    """How one value of ``format=`` is written, named, checked for its packages, and run."""

    write: Callable[..., None]
    file_name: str  # "{quantized}" becomes "_<quantize>" for a quantized artifact
    predictor: Callable[[Path], Callable[[np.ndarray], np.ndarray]]
    quantize: tuple[str, ...] = ("none",)
    check_packages: Callable[[], None] = lambda: None


# The keys are the values `format=` accepts.
FORMATS: dict[str, Format] = {
    "savedmodel": Format(export_savedmodel, "model_savedmodel", savedmodel_predictor),
    "tflite": Format(export_tflite, "model{quantized}.tflite", tflite_predictor, QUANTIZE),
    "onnx": Format(export_onnx, "model.onnx", onnx_predictor, check_packages=check_onnx_extra),
}


def write_class_names(folder: Path, class_names: list[str]) -> Path:
    """``folder/class_names.json``: a JSON list, the class of each output in order."""
    path = folder / CLASS_NAMES_FILE
    path.write_text(json.dumps(class_names, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def check_config(cfg: DictConfig) -> None:
    """Fail at start-up, before loading the model, on settings that cannot work."""
    if OmegaConf.is_missing(cfg, "model"):
        raise ConfigError(f"model= is required: imgcls-export model=<model.keras> format={'|'.join(FORMATS)}.")
    if cfg.format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {cfg.format!r}.")
    allowed = FORMATS[cfg.format].quantize
    if cfg.quantize not in allowed:
        raise ConfigError(
            f"quantize={cfg.quantize} is not available for format={cfg.format}: "
            + (f"choose one of {', '.join(allowed)}." if len(allowed) > 1 else "only format=tflite quantizes.")
        )
    if cfg.evaluate not in (None, True, False):
        raise ConfigError(f"evaluate must be true, false or null (when a test split is known), got {cfg.evaluate!r}.")
    if cfg.batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {cfg.batch_size}.")
    FORMATS[cfg.format].check_packages()
    if cfg.quantize in CALIBRATED:
        if cfg.representative_images < 1:
            raise ConfigError(f"representative_images must be at least 1, got {cfg.representative_images}.")
        if not has_split(cfg.model, cfg.data, "train"):
            raise ConfigError(
                f"quantize={cfg.quantize} calibrates on training images, and there is no manifest.json beside "
                f"model={cfg.model} to find them. Give data.train_dir=<folder with one sub-folder per class>."
            )
    if cfg.evaluate and not has_split(cfg.model, cfg.data, "test"):
        raise ConfigError(
            f"evaluate=true needs test images, and there is no manifest.json beside model={cfg.model} to find "
            "them. Give data.test_dir=<folder with one sub-folder per class>, or set evaluate=false."
        )


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export ``cfg.model`` as ``cfg.format``; return where the artifact, class names and report went."""
    check_config(cfg)
    chosen = FORMATS[cfg.format]
    quantized = "" if cfg.quantize == "none" else f"_{cfg.quantize}"
    default = Path(cfg.paths.output_dir) / chosen.file_name.format(quantized=quantized)
    output = Path(cfg.output).expanduser() if cfg.output else default
    model = load_trained_model(cfg.model)
    class_names = model_class_names(model)
    size = model_image_size(model)

    options: dict[str, Any] = {} if cfg.quantize == "none" else {"quantize": cfg.quantize}
    if cfg.quantize in CALIBRATED:
        train = training_images(cfg.model, tuple(class_names), cfg.data)
        calibration_images = sample(train, cfg.representative_images, cfg.seed)
        log.info("Calibrating %s on %d of %d training images", cfg.quantize, len(calibration_images), len(train))
        options["calibration"] = lambda: image_batches(calibration_images.paths, size, 1).as_numpy_iterator()
    output.parent.mkdir(parents=True, exist_ok=True)
    chosen.write(model, output, **options)
    labels = write_class_names(output.parent, class_names)
    log.info(
        "Exported %s as %s: %s. Input: float32 RGB 0-255 of shape (batch, %d, %d, 3); output: %d class "
        "probabilities, named in %s",
        cfg.model,
        cfg.format + quantized,
        output,
        size,
        size,
        len(class_names),
        labels,
    )

    report: dict[str, Any] = dict(
        model=str(cfg.model),
        format=cfg.format,
        quantize=cfg.quantize,
        artifact=str(output),
        bytes=artifact_bytes(output),
        image_size=size,
        evaluation=None,
    )
    if cfg.evaluate is not False and has_split(cfg.model, cfg.data, "test"):
        test = test_images(cfg.model, tuple(class_names), cfg.data)
        report["evaluation"] = compare_on_test_set(
            model, chosen.predictor(output), test, batch_size=int(cfg.batch_size)
        )
        log.info(
            "On %(test_images)d test images: test_accuracy %(test_accuracy).4f as exported, "
            "%(keras_test_accuracy).4f as the Keras model; top-1 agreement %(agreement).4f",
            report["evaluation"],
        )
    report_path = write_report(output.parent, report)
    return dict(
        artifact=str(output),
        class_names_json=str(labels),
        report_json=str(report_path),
        format=cfg.format,
        quantize=cfg.quantize,
        image_size=size,
        bytes=report["bytes"],
        evaluation=report["evaluation"],
    )


@hydra.main(config_path="pkg://imgcls.conf", config_name="export", execution_whitelist=TRUSTED_TARGETS)
def main(cfg: DictConfig) -> None:
    """Run :func:`export`; problems a user can fix end with a message and exit code 2."""
    run_job(cfg, lambda: export(cfg))


if __name__ == "__main__":
    from imgcls_launcher import run_and_exit

    run_and_exit(main)
