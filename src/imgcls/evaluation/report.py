"""Evaluate a model on labelled images and write the evaluation bundle of a run folder."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import log_loss

from imgcls.evaluation.metrics import confusion, per_class_report, split_metrics, worst_mistakes
from imgcls.evaluation.plots import confusion_matrix_png, misclassified_png, training_curves_png

log = logging.getLogger(__name__)

GALLERY_SIZE = 25


@dataclass(frozen=True)
class SplitPredictions:
    """A split's files, true labels and predicted class probabilities, in the same order."""

    paths: tuple[str, ...]
    labels: np.ndarray
    probabilities: np.ndarray

    @property
    def loss(self) -> float:
        """Mean cross-entropy of the predictions (no label smoothing or weight penalty: comparable across runs)."""
        classes = np.arange(self.probabilities.shape[1])
        return float(log_loss(self.labels, self.probabilities, labels=classes))


def predict_split(model: keras.Model, dataset: tf.data.Dataset, paths, labels, *, tta: bool = False) -> SplitPredictions:
    """Run ``model`` over an evaluation ``dataset`` built from ``paths`` (in order) and keep the results.

    With ``tta`` each image's probabilities are the mean of the image's and its horizontal mirror's.
    """
    probabilities = model.predict(dataset, verbose=0)
    if tta:
        mirrored = dataset.map(lambda images, *rest: (tf.reverse(images, axis=[2]), *rest))
        probabilities = (probabilities + model.predict(mirrored, verbose=0)) / 2.0
    return SplitPredictions(tuple(paths), np.asarray(labels), probabilities)


def write_tensorboard_image(log_dir: Path, tag: str, png: bytes, step: int) -> None:
    """Add a PNG image to the run's TensorBoard logs."""
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        tf.summary.image(tag, tf.expand_dims(tf.io.decode_png(png, channels=4), 0), step=step)
    writer.flush()
    writer.close()


def write_predictions_csv(path: Path, test: SplitPredictions, class_names: list[str]) -> None:
    """One row per test image: file, true and predicted class, confidence, probability of the true class."""
    predicted = test.probabilities.argmax(axis=1)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "true_label", "predicted_label", "confidence", "true_label_probability"])
        for i, file in enumerate(test.paths):
            writer.writerow([
                file, class_names[test.labels[i]], class_names[predicted[i]],
                f"{test.probabilities[i, predicted[i]]:.6f}", f"{test.probabilities[i, test.labels[i]]:.6f}",
            ])


def _write_figures(output_dir: Path, test: SplitPredictions, class_names: list[str]) -> dict[str, bytes]:
    matrix = confusion(test.labels, test.probabilities)
    figures = {
        "confusion_matrix": confusion_matrix_png(matrix, class_names),
        "confusion_matrix_normalized": confusion_matrix_png(matrix, class_names, normalize=True),
    }
    mistakes = worst_mistakes(test.labels, test.probabilities, GALLERY_SIZE)
    predicted = test.probabilities.argmax(axis=1)
    figures["misclassified"] = misclassified_png(
        [test.paths[i] for i in mistakes],
        [class_names[test.labels[i]] for i in mistakes],
        [class_names[predicted[i]] for i in mistakes],
        [float(test.probabilities[i, predicted[i]]) for i in mistakes],
    )
    for name, png in figures.items():
        (output_dir / f"{name}.png").write_bytes(png)
    return figures


def write_evaluation(
    output_dir: Path,
    *,
    class_names: list[str],
    test: SplitPredictions,
    val: SplitPredictions | None = None,
    extra: dict[str, Any] | None = None,
    tensorboard_dir: Path | None = None,
    step: int = 0,
) -> dict[str, Any]:
    """Write metrics.json, classification_report.txt, predictions.csv and the figures; return the metrics."""
    metrics: dict[str, Any] = {}
    if val is not None:
        metrics.update(split_metrics("val", val.labels, val.probabilities, val.loss))
        metrics["num_val_images"] = len(val.labels)
    metrics.update(split_metrics("test", test.labels, test.probabilities, test.loss))
    report_text, report_table = per_class_report(test.labels, test.probabilities, class_names)
    metrics.update(
        num_test_images=len(test.labels),
        class_names=list(class_names),
        test_per_class={name: report_table[name] for name in class_names},
        **(extra or {}),
    )
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (output_dir / "classification_report.txt").write_text(report_text, encoding="utf-8")
    write_predictions_csv(output_dir / "predictions.csv", test, class_names)
    figures = _write_figures(output_dir, test, class_names)
    if tensorboard_dir is not None:
        for name in ("confusion_matrix", "confusion_matrix_normalized"):
            write_tensorboard_image(tensorboard_dir / "evaluation", f"test/{name}", figures[name], step)
    log.info("Test report:\n%s", report_text)
    return metrics


def read_history(path: Path) -> dict[str, list[float]]:
    """The per-epoch logs that Keras's CSVLogger wrote, by column."""
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {}) if key != "epoch"}


def write_training_curves(output_dir: Path, epochs_per_phase: dict[str, int]) -> None:
    """training_curves.png from the run's history.csv."""
    history = read_history(output_dir / "history.csv")
    if history:
        (output_dir / "training_curves.png").write_bytes(training_curves_png(history, epochs_per_phase))
