"""How an exported artifact does on the test set next to the Keras model it came from: ``export_report.json``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from imgcls.data.integrity import files_checked_again_on_read_error
from imgcls.data.split import Subset
from imgcls.models.loading import model_image_size
from imgcls.predict import image_batches, predict_files

REPORT_FILE = "export_report.json"


def compare_on_test_set(
    model: keras.Model, artifact: Callable[[np.ndarray], np.ndarray], test: Subset, *, batch_size: int
) -> dict[str, Any]:
    """Test accuracy of the artifact and of ``model`` on the same decoded images, and how often their top-1 agree."""
    expected = predict_files(model, test.paths, batch_size=batch_size, progress=False)
    with files_checked_again_on_read_error(test.paths, doing="evaluating the artifact"):
        served = np.concatenate(
            [artifact(batch.numpy()) for batch in image_batches(test.paths, model_image_size(model), batch_size)]
        )
    labels = np.asarray(test.labels)
    return dict(
        test_images=len(test),
        test_accuracy=float(np.mean(served.argmax(1) == labels)),
        keras_test_accuracy=float(np.mean(expected.argmax(1) == labels)),
        agreement=float(np.mean(served.argmax(1) == expected.argmax(1))),
        max_probability_difference=float(np.abs(served - expected).max()),
    )


def artifact_bytes(path: Path) -> int:
    """The size of a file, or of every file under a folder (a SavedModel)."""
    if path.is_dir():
        return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
    return path.stat().st_size


def write_report(folder: Path, report: dict[str, Any]) -> Path:
    """``folder/export_report.json``."""
    path = folder / REPORT_FILE
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
