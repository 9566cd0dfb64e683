"""imgcls-evaluate: the evaluation bundle of a saved model on any class-folder tree."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from helpers import assert_test_metrics_match_predictions, tiny_classifier
from imgcls.errors import DataError
from imgcls.evaluate import evaluate

BUNDLE = (
    "metrics.json",
    "classification_report.txt",
    "confusion_matrix.png",
    "confusion_matrix_normalized.png",
    "misclassified.png",
    "test_predictions.csv",
    "data_report.json",
)


@pytest.fixture
def saved_model(tmp_path):
    path = tmp_path / "model.keras"
    tiny_classifier(["cat", "dog", "zebra fish"], "builtin").save(path)
    return path


def config(model, test_dir, tmp_path):
    return OmegaConf.create(
        {
            "model": str(model),
            "tensorboard": True,
            "data": {
                "test_dir": str(test_dir),
                "batch_size": 4,
                "max_image_pixels": 10**8,
                "integrity_cache": str(tmp_path / "integrity.sqlite"),
            },
        }
    )


def test_evaluate_writes_the_bundle_and_skips_bad_files(saved_model, image_dataset, make_image_tree, tmp_path):
    test_dir = make_image_tree(tmp_path / "test", per_class=3)
    (test_dir / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "out"
    out.mkdir()
    metrics = evaluate(config(saved_model, test_dir, tmp_path), out)
    for name in BUNDLE:
        assert (out / name).is_file(), name
    assert metrics["num_test_images"] == 9 and "val_accuracy" not in metrics
    with open(out / "test_predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9 and {r["true_label"] for r in rows} == {"cat", "dog", "zebra fish"}
    assert_test_metrics_match_predictions(out, metrics)
    report = json.loads((out / "data_report.json").read_text())
    # imgcls-train's shape (imgcls.data.data_report), with the test tree alone
    assert [e["path"].endswith("broken.jpg") for e in report["trees"]["test"]["skipped"]] == [True]
    assert report["trees"]["test"]["usable_images"] == 9 and report["integrity_check"]["unusable"] == 1


def test_classes_the_model_does_not_know_are_an_error(saved_model, make_image_tree, tmp_path):
    test_dir = make_image_tree(tmp_path / "test", per_class=1)
    (test_dir / "lynx").mkdir()
    (test_dir / "cat").rename(test_dir / "lynx" / "cat")
    with pytest.raises(DataError, match=r"\['lynx'\].*not in the training set"):
        evaluate(config(saved_model, test_dir, tmp_path), tmp_path)


@pytest.mark.slow
def test_cli_reports_a_missing_model_clearly(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "imgcls.evaluate",
            f"model={tmp_path / 'nope.keras'}",
            f"data.test_dir={tmp_path}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )
    assert result.returncode == 2
    assert "file not found" in result.stdout + result.stderr and "Traceback" not in result.stdout + result.stderr
