"""The evaluation bundle of a run folder: a model's predictions on labelled images and the metrics, reports and
figures written from them (by imgcls-train for its test split, and by imgcls-evaluate)."""

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

from imgcls.evaluation.calibration import calibrate, reliability_diagram_png
from imgcls.evaluation.metrics import confusion, most_confused, per_class_report, split_metrics, worst_mistakes
from imgcls.evaluation.plots import confusion_matrix_png, misclassified_png, training_curves_png

log = logging.getLogger(__name__)

GALLERY_SIZE = 25
# Not predictions.csv: that is imgcls-predict's file, with other columns (top-k classes of unlabelled images).
TEST_PREDICTIONS_CSV = "test_predictions.csv"


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


def predict_split(
    model: keras.Model, dataset: tf.data.Dataset, paths, labels, *, tta: bool = False
) -> SplitPredictions:
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


def write_test_predictions_csv(path: Path, test: SplitPredictions, class_names: list[str]) -> None:
    """One row per test image: file, true and predicted class, confidence, probability of the true class."""
    predicted = test.probabilities.argmax(axis=1)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "true_label", "predicted_label", "confidence", "true_label_probability"])
        for i, file in enumerate(test.paths):
            writer.writerow(
                [
                    file,
                    class_names[test.labels[i]],
                    class_names[predicted[i]],
                    f"{test.probabilities[i, predicted[i]]:.6f}",
                    f"{test.probabilities[i, test.labels[i]]:.6f}",
                ]
            )


def write_most_confused_csv(path: Path, matrix: np.ndarray, class_names: list[str], count: int = 50) -> None:
    """The ``count`` class pairs most often confused: true and predicted class, mistakes, share of the true class."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["true_label", "predicted_label", "count", "share_of_true_label"])
        for true, predicted, mistakes, share in most_confused(matrix, count):
            writer.writerow([class_names[true], class_names[predicted], mistakes, f"{share:.6f}"])


def _write_figures(output_dir: Path, test: SplitPredictions, class_names: list[str]) -> dict[str, bytes]:
    matrix = confusion(test.labels, test.probabilities)
    write_most_confused_csv(output_dir / "most_confused.csv", matrix, class_names)
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
    """Write metrics.json, classification_report.txt, test_predictions.csv and the figures; return the metrics.

    Calibration: ``test_ece`` always; with ``val``, also the ``temperature`` fitted on it, ``test_ece_calibrated``
    and ``val_ece``; reliability_diagram.png shows the test set before and after scaling.
    """
    metrics: dict[str, Any] = {}
    if val is not None:
        metrics.update(split_metrics("val", val.labels, val.probabilities, val.loss))
        metrics["num_val_images"] = len(val.labels)
    metrics.update(split_metrics("test", test.labels, test.probabilities, test.loss))
    calibration = calibrate(test, val)
    metrics.update(calibration.metrics)
    report_text, report_table = per_class_report(test.labels, test.probabilities, class_names)
    metrics.update(
        num_test_images=len(test.labels),
        class_names=list(class_names),
        test_per_class={name: report_table[name] for name in class_names},
        **(extra or {}),
    )
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (output_dir / "classification_report.txt").write_text(report_text, encoding="utf-8")
    write_test_predictions_csv(output_dir / TEST_PREDICTIONS_CSV, test, class_names)
    figures = _write_figures(output_dir, test, class_names)
    reliability_png = reliability_diagram_png(calibration)
    (output_dir / "reliability_diagram.png").write_bytes(reliability_png)
    if tensorboard_dir is not None:
        for name in ("confusion_matrix", "confusion_matrix_normalized"):
            write_tensorboard_image(tensorboard_dir / "evaluation", f"test/{name}", figures[name], step)
        write_tensorboard_image(tensorboard_dir / "evaluation", "test/reliability_diagram", reliability_png, step)
    log.info("Test report:\n%s", report_text)
    log.info("Calibration: %s", calibration.summary)
    return metrics


def _number(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):  # CSVLogger writes "NA" where an epoch lacks a column
        return float("nan")


def read_history(path: Path) -> dict[str, list[float]]:
    """The per-epoch logs that Keras's CSVLogger wrote, by column; missing values are NaN."""
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [_number(row.get(key)) for row in rows] for key in (rows[0] if rows else {}) if key != "epoch"}


def write_training_curves(output_dir: Path, epochs_per_phase: dict[str, int], monitor: str = "val_loss") -> None:
    """training_curves.png from the run's history.csv, its best epoch by ``monitor`` (early stopping's)."""
    history = read_history(output_dir / "history.csv")
    if history:
        png = training_curves_png(history, epochs_per_phase, monitor=monitor)
        (output_dir / "training_curves.png").write_bytes(png)
