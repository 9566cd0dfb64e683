"""Figures render headless, stay readable with 100 classes, and show what they claim."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from imgcls.evaluation.plots import confusion_matrix_png, misclassified_png, training_curves_png


def size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return image.size


def test_confusion_matrix_grows_with_the_number_of_classes():
    small = size(confusion_matrix_png(np.eye(3, dtype=int) * 5, ["a", "b", "c"]))
    names = [f"class_{i:03d}" for i in range(100)]
    big = size(confusion_matrix_png(np.eye(100, dtype=int), names, normalize=True))
    assert big[0] >= 3000 and big[0] > 4 * small[0], "100 classes get at least ~30 px per row"


def test_normalized_matrix_shows_row_shares():
    matrix = np.array([[8, 2], [0, 0]])
    png = confusion_matrix_png(matrix, ["a", "b"], normalize=True)
    assert size(png)[0] > 0  # an empty row (no images of class b) must not divide by zero


def test_training_curves_and_gallery(tmp_path):
    history = {"loss": [1.0, 0.8, 0.6, 0.5], "val_loss": [1.1, 0.9, 0.7, 0.6],
               "accuracy": [0.5, 0.6, 0.7, 0.8], "val_accuracy": [0.4, 0.6, 0.7, 0.75]}
    assert size(training_curves_png(history, {"phase1": 2, "phase2": 2}))[0] > 600
    picture = tmp_path / "x.png"
    Image.new("RGB", (50, 30), (255, 0, 0)).save(picture)
    gallery = misclassified_png([str(picture)] * 7, ["cat"] * 7, ["dog"] * 7, [0.9] * 7)
    width, height = size(gallery)
    assert width > height, "7 mistakes: 5 columns, 2 rows"
    assert size(misclassified_png([], [], [], []))[0] > 0


# Names matplotlib would read as math text ($...$, ^, _, \) or that are long or not Latin; the last is 200 chars.
ODD_NAMES = ["x$^$", "a_b\\c", "$\\frac{1}{0}$", "ü ñ 中文", "price $5 ^ 10%", "n" * 200]


def test_class_names_are_drawn_as_text_not_math():
    import matplotlib

    before = matplotlib.rcParams["text.parse_math"]
    n = len(ODD_NAMES)
    for normalize in (False, True):
        assert size(confusion_matrix_png(np.eye(n, dtype=int) * 3, ODD_NAMES, normalize=normalize))[0] > 0
    assert matplotlib.rcParams["text.parse_math"] == before, "the setting is for imgcls's figures only"


def test_mistakes_gallery_draws_odd_names(tmp_path):
    path = tmp_path / "x.png"
    Image.new("RGB", (20, 20), "red").save(path)
    png = misclassified_png([str(path)] * 2, ODD_NAMES[:2], ODD_NAMES[-2:], [0.9, 0.8])
    assert size(png)[0] > 0


def test_long_names_are_shortened_for_figures_only():
    from imgcls.evaluation.plots import LABEL_CHARS, label

    assert label("x$^$") == "x$^$"
    assert len(label("n" * 200)) == LABEL_CHARS and label("n" * 200).endswith("…")
