"""Classification metrics of one split from labels and predicted probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

TOP_K = 5


def split_metrics(prefix: str, y_true: np.ndarray, probabilities: np.ndarray, loss: float) -> dict[str, float]:
    """``<prefix>_accuracy``, ``_loss``, macro ``_precision``/``_recall``/``_f1``, their ``_weighted`` forms,
    and ``_top5_accuracy`` when there are more than five classes; all plain floats."""
    y_pred = probabilities.argmax(axis=1)
    labels = np.arange(probabilities.shape[1])
    metrics = {f"{prefix}_accuracy": float(accuracy_score(y_true, y_pred)), f"{prefix}_loss": float(loss)}
    for average, suffix in (("macro", ""), ("weighted", "_weighted")):
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        metrics.update(
            {
                f"{prefix}_precision{suffix}": float(precision),
                f"{prefix}_recall{suffix}": float(recall),
                f"{prefix}_f1{suffix}": float(f1),
            }
        )
    if len(labels) > TOP_K:
        metrics[f"{prefix}_top{TOP_K}_accuracy"] = float(
            top_k_accuracy_score(y_true, probabilities, k=TOP_K, labels=labels)
        )
    return metrics


def per_class_report(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str]
) -> tuple[str, dict[str, Any]]:
    """scikit-learn's classification report as text and as a dict keyed by class name."""
    y_pred = probabilities.argmax(axis=1)
    kwargs = dict(labels=np.arange(len(class_names)), target_names=class_names, zero_division=0, digits=4)
    text = classification_report(y_true, y_pred, **kwargs)
    table = classification_report(y_true, y_pred, output_dict=True, **kwargs)
    return text, table


def confusion(y_true: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Confusion matrix counts: rows are true classes, columns predicted classes."""
    return confusion_matrix(y_true, probabilities.argmax(axis=1), labels=np.arange(probabilities.shape[1]))


def worst_mistakes(y_true: np.ndarray, probabilities: np.ndarray, count: int) -> np.ndarray:
    """Indices of the wrong predictions made with the highest confidence, most confident first."""
    y_pred = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    confidence = probabilities[wrong, y_pred[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:count]]


def most_confused(matrix: np.ndarray, count: int | None = None) -> list[tuple[int, int, int, float]]:
    """The class pairs (true, predicted) with mistakes, most mistakes first, from a confusion matrix of counts.

    Each pair comes with its number of mistakes and their share of the true class's images. Ties go to the
    larger share, then to the lower class indices. ``count`` keeps the first pairs only.
    """
    matrix = np.asarray(matrix)
    off_diagonal = matrix * ~np.eye(len(matrix), dtype=bool)
    rows, cols = np.nonzero(off_diagonal)
    mistakes = off_diagonal[rows, cols]
    shares = mistakes / matrix.sum(axis=1)[rows]
    order = np.lexsort((cols, rows, -shares, -mistakes))[:count]
    return [(int(rows[i]), int(cols[i]), int(mistakes[i]), float(shares[i])) for i in order]
