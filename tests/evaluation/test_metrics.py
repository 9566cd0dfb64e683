"""Metrics from labels and probabilities: accuracy, top-k, macro and weighted scores, worst mistakes."""

from __future__ import annotations

import numpy as np
import pytest

from imgcls.evaluation.metrics import split_metrics, worst_mistakes


def one_hot_probabilities(predicted, classes, confidence=0.9):
    probabilities = np.full((len(predicted), classes), (1 - confidence) / (classes - 1))
    probabilities[np.arange(len(predicted)), predicted] = confidence
    return probabilities


def test_accuracy_macro_and_weighted_scores():
    y_true = np.array([0, 0, 0, 0, 1, 2])
    probabilities = one_hot_probabilities([0, 0, 0, 1, 1, 1], 3)
    metrics = split_metrics("test", y_true, probabilities, loss=0.5)
    assert metrics["test_accuracy"] == pytest.approx(4 / 6)
    assert metrics["test_recall"] == pytest.approx((3 / 4 + 1 + 0) / 3)
    assert metrics["test_recall_weighted"] == pytest.approx(4 / 6)
    assert metrics["test_loss"] == 0.5
    assert "test_top5_accuracy" not in metrics, "top-5 only where there are more than 5 classes"


def test_top5_accuracy_with_many_classes():
    probabilities = np.tile(np.linspace(1.0, 0.1, 8), (2, 1))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    metrics = split_metrics("val", np.array([4, 6]), probabilities, loss=1.0)
    assert metrics["val_top5_accuracy"] == pytest.approx(0.5)
    assert metrics["val_accuracy"] == 0.0


def test_worst_mistakes_are_the_most_confident_wrong_predictions():
    y_true = np.array([0, 1, 2, 0])
    probabilities = np.array([[0.2, 0.8, 0.0], [0.1, 0.9, 0.0], [0.95, 0.0, 0.05], [0.4, 0.0, 0.6]])
    assert worst_mistakes(y_true, probabilities, 10).tolist() == [2, 0, 3]
    assert worst_mistakes(y_true, probabilities, 1).tolist() == [2]


def test_most_confused_pairs_come_most_mistakes_first():
    from imgcls.evaluation.metrics import most_confused

    matrix = np.array([[5, 2, 1], [3, 7, 0], [0, 2, 0]])
    assert most_confused(matrix) == [(1, 0, 3, 0.3), (2, 1, 2, 1.0), (0, 1, 2, 0.25), (0, 2, 1, 0.125)]
    assert most_confused(matrix, 2) == [(1, 0, 3, 0.3), (2, 1, 2, 1.0)]
    assert most_confused(np.eye(4, dtype=int) * 9) == [], "no mistakes, no pairs"


def test_most_confused_csv_names_the_classes(tmp_path):
    import csv

    from imgcls.evaluation.bundle import write_most_confused_csv

    names = ["chat", "chien $x^2$", "中文"]
    write_most_confused_csv(tmp_path / "most_confused.csv", np.array([[5, 2, 1], [3, 7, 0], [0, 2, 0]]), names, 3)
    with open(tmp_path / "most_confused.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(row["true_label"], row["predicted_label"], row["count"]) for row in rows] == [
        ("chien $x^2$", "chat", "3"),
        ("中文", "chien $x^2$", "2"),
        ("chat", "chien $x^2$", "2"),
    ]
    assert float(rows[0]["share_of_true_label"]) == pytest.approx(0.3)
