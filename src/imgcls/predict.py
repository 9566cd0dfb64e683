"""The predict entrypoint: ``imgcls-predict`` / ``python -m imgcls.predict`` (a Hydra app over conf/predict.yaml).

Classifies image files with a trained ``model.keras`` and writes each file's top-k classes to a CSV.
Images go through evaluation's own pipeline (:func:`image_batches` is
:func:`imgcls.data.pipeline.make_dataset` without labels); :func:`predict_files` is the batched prediction
others can reuse.
"""

from __future__ import annotations

import csv
import glob
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from imgcls.cli import run_job
from imgcls.data.integrity import check_images, files_checked_again_on_read_error
from imgcls.data.pipeline import make_dataset
from imgcls.data.scan import IMAGE_EXTENSIONS, has_image_extension, list_images
from imgcls.data.split import Subset
from imgcls.errors import ConfigError, DataError
from imgcls.models.loading import load_trained_model, model_class_names, model_image_size
from imgcls.targets import TRUSTED_TARGETS

log = logging.getLogger("imgcls.predict")

GLOB_CHARACTERS = "*?["
SKIPPED_CSV = "skipped.csv"


# --- the files ---------------------------------------------------------------------------------


def find_images(input: str | os.PathLike) -> list[str]:
    """The files ``input`` names: one file (taken as is), a folder or a glob pattern (``**`` recurses).

    Folders, also those a pattern matches, are searched recursively for the extensions of
    :data:`imgcls.data.scan.IMAGE_EXTENSIONS`, skipping hidden and system files; files a pattern
    matches are kept when they have one of those extensions. Nothing found is a :class:`DataError`.
    """
    text = os.path.expanduser(os.fspath(input))
    if os.path.isfile(text):
        return [text]
    if os.path.isdir(text):
        found = list_images(text)
    elif any(character in text for character in GLOB_CHARACTERS):
        found = []
        for match in sorted(glob.glob(text, recursive=True)):
            if os.path.isdir(match):
                found.extend(list_images(match))
            elif os.path.isfile(match) and has_image_extension(match):
                found.append(match)
        found = list(dict.fromkeys(found))
    else:
        raise DataError(
            f"input={input}: no such file or folder. Give an image file, a folder, or a quoted glob pattern "
            "such as input='photos/**/*.jpg'."
        )
    if not found:
        extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise DataError(f"input={input}: no image files found (looked for {extensions}; hidden files are skipped).")
    return found


# --- prediction --------------------------------------------------------------------------------


def image_batches(paths: Sequence[str], image_size: int, batch_size: int) -> tf.data.Dataset:
    """Batches of float32 0-255 RGB images of ``paths``, in order, decoded in parallel.

    The evaluation pipeline itself, :func:`imgcls.data.pipeline.make_dataset` (decode, resize, round;
    file order kept; no cache), with placeholder labels dropped; its uint8 images as float32.
    """
    if not len(paths):  # nothing to take the file names' type from
        return tf.data.Dataset.from_tensor_slices(tf.zeros([0, image_size, image_size, 3])).batch(batch_size)
    unlabelled = Subset(tuple(map(os.fspath, paths)), np.zeros(len(paths), np.int32))
    batches = make_dataset(
        unlabelled, num_classes=1, image_size=image_size, batch_size=batch_size, training=False, cache="none"
    )
    return batches.map(lambda images, labels: tf.cast(images, tf.float32))


def predict_files(
    model: keras.Model, paths: Sequence[str], *, batch_size: int = 32, tta: bool = False, progress: bool = True
) -> np.ndarray:
    """Class probabilities of each file of ``paths``, in order: float32 of shape ``(len(paths), classes)``.

    Every file must decode (check them first with :func:`imgcls.data.integrity.check_images`); one that
    vanished or changed since is a :class:`DataError` naming it.
    With ``tta`` each row is the mean of the probabilities of the image and of its horizontal flip.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
    probabilities = np.empty((len(paths), int(model.output_shape[-1])), np.float32)
    if not len(paths):
        return probabilities
    infer = _inference_function(model, model_image_size(model), tta)
    start = 0
    with tqdm(total=len(paths), desc="Predicting", unit="image", disable=not progress) as bar:
        with files_checked_again_on_read_error(paths, doing="predicting"):
            for images in image_batches(paths, model_image_size(model), batch_size):
                count = int(images.shape[0])
                probabilities[start : start + count] = infer(images).numpy()
                start += count
                bar.update(count)
    return probabilities


def _inference_function(model: keras.Model, image_size: int, tta: bool) -> tf.types.experimental.PolymorphicFunction:
    """``model`` in inference mode as one graph for every batch size (the last, smaller batch does not retrace)."""

    @tf.function(input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32)])
    def infer(images: tf.Tensor) -> tf.Tensor:
        if not tta:
            return model(images, training=False)
        count = tf.shape(images)[0]
        both = model(tf.concat([images, tf.reverse(images, axis=[2])], axis=0), training=False)  # one call for both
        return (both[:count] + both[count:]) / 2.0

    return infer


def top_k(probabilities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and probabilities of each row's ``k`` most probable classes, most probable first (ties: lower index)."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(probabilities, order, axis=1)


def _probability(value: float) -> str:
    """The shortest text that reads back as the same float32."""
    return np.format_float_positional(np.float32(value), unique=True, trim="0")


def write_predictions_csv(
    path: Path, files: Sequence[str], probabilities: np.ndarray, class_names: Sequence[str], k: int
) -> None:
    """``file, top1_class, top1_probability, ..., topK_class, topK_probability``, one row per file."""
    indices, values = top_k(probabilities, k)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", *(f"top{i}_{what}" for i in range(1, k + 1) for what in ("class", "probability"))])
        for file, row_indices, row_values in zip(files, indices, values):
            cells = [file]
            for index, value in zip(row_indices, row_values):
                cells += [class_names[index], _probability(value)]
            writer.writerow(cells)


def write_skipped_csv(path: Path, problems: dict[str, str]) -> None:
    """``file, reason`` of each file left out (only the header when none was)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "reason"])
        writer.writerows(problems.items())


# --- the app -----------------------------------------------------------------------------------


def check_config(cfg: DictConfig) -> None:
    """Fail at start-up on settings that cannot work."""
    missing = sorted(OmegaConf.missing_keys(cfg) & {"model", "input"})
    if missing:
        raise ConfigError(
            f"{' and '.join(f'{key}=' for key in missing)} {'is' if len(missing) == 1 else 'are'} required: "
            "imgcls-predict model=<model.keras> input=<image file, folder or quoted glob>."
        )
    if cfg.top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {cfg.top_k}.")
    if cfg.batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {cfg.batch_size}.")
    if not isinstance(cfg.tta, bool):
        raise ConfigError(f"tta must be true or false, got {cfg.tta!r}.")


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Predict every image ``cfg.input`` names; write the CSVs and return a summary of plain data."""
    check_config(cfg)
    output_dir = Path(cfg.paths.output_dir)
    model = load_trained_model(cfg.model)
    class_names = model_class_names(model)
    k = min(int(cfg.top_k), len(class_names))
    if k < cfg.top_k:
        log.info("top_k=%d capped at the model's %d classes", cfg.top_k, len(class_names))

    files = find_images(cfg.input)
    log.info("input=%s: %d file(s); checking that each decodes", cfg.input, len(files))
    problems = check_images(files, cache_path=None, progress=False).problems
    for path, reason in problems.items():
        log.warning("Skipped %s: %s", path, reason)
    skipped_csv = output_dir / SKIPPED_CSV
    write_skipped_csv(skipped_csv, problems)
    usable = [path for path in files if path not in problems]
    if not usable:
        raise DataError(f"input={cfg.input}: none of the {len(files)} file(s) can be decoded; see {skipped_csv}.")

    started = time.monotonic()
    probabilities = predict_files(model, usable, batch_size=int(cfg.batch_size), tta=bool(cfg.tta))
    seconds = time.monotonic() - started
    output = Path(cfg.output).expanduser() if cfg.output else output_dir / "predictions.csv"
    if output.is_dir():
        output = output / "predictions.csv"
    write_predictions_csv(output, usable, probabilities, class_names, k)

    counts = Counter(class_names[i] for i in probabilities.argmax(axis=1))
    log.info(
        "Predicted %d image(s) in %.1f s (tta=%s); %d file(s) skipped%s. Top-1 classes: %s",
        len(usable),
        seconds,
        cfg.tta,
        len(problems),
        f" (listed in {skipped_csv})" if problems else "",
        ", ".join(f"{name} {count}" for name, count in counts.most_common()),
    )
    log.info("Predictions: %s", output)
    return dict(
        predictions_csv=str(output),
        skipped_csv=str(skipped_csv),
        num_images=len(usable),
        num_skipped=len(problems),
        top1_counts=dict(counts),
        seconds=round(seconds, 2),
    )


@hydra.main(config_path="pkg://imgcls.conf", config_name="predict", execution_whitelist=TRUSTED_TARGETS)
def main(cfg: DictConfig) -> None:
    """Run :func:`predict`; problems a user can fix end with a message and exit code 2."""
    run_job(cfg, lambda: predict(cfg))


if __name__ == "__main__":
    from imgcls_launcher import run_and_exit

    run_and_exit(main)
