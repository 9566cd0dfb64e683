"""Evaluate a trained model on validation and test data and write the run's evaluation files."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from imgcls.evaluation.metrics import confusion, per_class_report, split_metrics
from imgcls.evaluation.plots import confusion_matrix_png

log = logging.getLogger(__name__)


def predict_split(model: keras.Model, dataset: tf.data.Dataset) -> tuple[np.ndarray, float]:
    """Class probabilities for every example of ``dataset`` (in order) and the compiled loss over it."""
    loss = model.evaluate(dataset, verbose=0, return_dict=True)["loss"]
    probabilities = model.predict(dataset, verbose=0)
    return probabilities, float(loss)


def write_tensorboard_image(log_dir: Path, tag: str, png: bytes, step: int) -> None:
    """Add a PNG image to the run's TensorBoard logs."""
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        tf.summary.image(tag, tf.expand_dims(tf.io.decode_png(png, channels=4), 0), step=step)
    writer.flush()
    writer.close()


def write_evaluation(
    output_dir: Path,
    *,
    class_names: list[str],
    val: tuple[np.ndarray, np.ndarray, float],
    test: tuple[np.ndarray, np.ndarray, float],
    extra: dict[str, Any],
    tensorboard_dir: Path | None = None,
    step: int = 0,
) -> dict[str, Any]:
    """Write metrics.json, classification_report.txt and confusion_matrix.png; return the metrics.

    ``val`` and ``test`` are (true labels, probabilities, loss).
    """
    metrics: dict[str, Any] = {**split_metrics("val", *val), **split_metrics("test", *test)}
    test_labels, test_probabilities, _ = test
    report_text, report_table = per_class_report(test_labels, test_probabilities, class_names)
    metrics.update(
        class_names=list(class_names),
        test_per_class={name: report_table[name] for name in class_names},
        num_val_images=int(len(val[0])),
        num_test_images=int(len(test_labels)),
        **extra,
    )
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (output_dir / "classification_report.txt").write_text(report_text)
    png = confusion_matrix_png(confusion(test_labels, test_probabilities), list(class_names))
    (output_dir / "confusion_matrix.png").write_bytes(png)
    if tensorboard_dir is not None:
        write_tensorboard_image(tensorboard_dir / "evaluation", "test/confusion_matrix", png, step)
    log.info("Test report:\n%s", report_text)
    return metrics
