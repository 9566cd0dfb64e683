"""Classification metrics of one split from labels and predicted probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, precision_recall_fscore_support


def split_metrics(prefix: str, y_true: np.ndarray, probabilities: np.ndarray, loss: float) -> dict[str, float]:
    """``<prefix>_accuracy``, ``_loss`` and macro ``_precision``, ``_recall``, ``_f1`` as plain floats."""
    y_pred = probabilities.argmax(axis=1)
    labels = np.arange(probabilities.shape[1])
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    return {
        f"{prefix}_accuracy": float(accuracy_score(y_true, y_pred)),
        f"{prefix}_loss": float(loss),
        f"{prefix}_precision": float(precision),
        f"{prefix}_recall": float(recall),
        f"{prefix}_f1": float(f1),
    }


def per_class_report(y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> tuple[str, dict[str, Any]]:
    """scikit-learn's classification report as text and as a dict keyed by class name."""
    y_pred = probabilities.argmax(axis=1)
    kwargs = dict(labels=np.arange(len(class_names)), target_names=class_names, zero_division=0, digits=4)
    text = classification_report(y_true, y_pred, **kwargs)
    table = classification_report(y_true, y_pred, output_dict=True, **kwargs)
    return text, table


def confusion(y_true: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Confusion matrix counts: rows are true classes, columns predicted classes."""
    return confusion_matrix(y_true, probabilities.argmax(axis=1), labels=np.arange(probabilities.shape[1]))
