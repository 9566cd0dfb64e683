"""A run's report files and figures hold class names as they are written, whatever characters they use."""

from __future__ import annotations

import csv
import json

import pytest

from helpers import assert_png_figure
from imgcls.train import train

pytestmark = pytest.mark.slow

# Math-text markers, a backslash, non-Latin letters, and a 200-character name (under the 255-byte file name limit).
ODD_NAMES = {"x$^$": (200, 40, 40), "a_b\\c": (40, 200, 40), "ü ñ 中文": (40, 40, 200), "L" * 200: (200, 200, 40)}


def test_a_run_with_odd_class_names_writes_every_report_verbatim(tiny_config, make_image_tree, tmp_path):
    data = tmp_path / "data"
    make_image_tree(data / "training_set", per_class=8, seed=1, colours=ODD_NAMES)
    make_image_tree(data / "test_set", per_class=3, seed=2, colours=ODD_NAMES)
    run = tmp_path / "odd"
    train(
        tiny_config(
            [
                f"data.train_dir={data / 'training_set'}",
                f"data.test_dir={data / 'test_set'}",
                f"paths.output_dir={run}",
                "train.phases.phase2.epochs=0",
                "augmentation=none",
                "mixup=none",
            ]
        )
    )

    for figure in ("confusion_matrix", "confusion_matrix_normalized", "misclassified", "training_curves"):
        assert_png_figure(run / f"{figure}.png")
    names = sorted(ODD_NAMES)
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert sorted(metrics["class_names"]) == names
    assert sorted(metrics["test_per_class"]) == names
    with open(run / "test_predictions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {row["true_label"] for row in rows} == set(names)
    assert {row["predicted_label"] for row in rows} <= set(names)
    report = (run / "classification_report.txt").read_text(encoding="utf-8")
    assert all(name in report for name in names)
