"""Figures render headless, stay readable with 100 classes, and show what they claim."""

from __future__ import annotations

import io
import itertools

import matplotlib
import numpy as np
import pytest
from PIL import Image

from imgcls.evaluation.plots import (
    TEXT_ONLY,
    best_epoch,
    cell_colours,
    confusion_matrix_figure,
    confusion_matrix_png,
    learning_rates,
    misclassified_figure,
    misclassified_png,
    mistake_caption,
    phase_labels,
    short_path,
    training_curves_figure,
    training_curves_png,
)

# 100 names of 60+ characters with accents, CJK and math-text markers; they differ only at the end.
LONG_NAMES = [f"Espèce très rare du Québec 中文名字 $x_i^2$ \\alpha {'é' * 12} n°{i:03d}" for i in range(100)]


def decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def size(png: bytes) -> tuple[int, int]:
    height, width, _ = decode(png).shape
    return width, height


def one_mistake(n: int) -> np.ndarray:
    matrix = np.eye(n, dtype=int) * 50
    matrix[1, n - 1] = 1
    return matrix


def test_confusion_matrix_grows_with_the_number_of_classes():
    small = size(confusion_matrix_png(np.eye(3, dtype=int) * 5, ["a", "b", "c"], dpi=40))
    big = size(confusion_matrix_png(np.eye(100, dtype=int), [f"c{i}" for i in range(100)], normalize=True, dpi=40))
    assert big[0] >= 0.3 * 100 * 40 and big[0] > 4 * small[0], "100 classes get at least 0.3 inch per row"


@pytest.mark.parametrize("normalize", [False, True])
def test_one_mistake_is_coloured_next_to_diagonals_of_50(normalize):
    matrix = one_mistake(100)
    values = matrix / matrix.sum(axis=1, keepdims=True) if normalize else matrix.astype(float)
    colours = cell_colours(values, normalize=normalize)
    red, green, blue, _ = colours[1, 99]
    assert red - max(green, blue) > 0.25, "a mistake is clearly red, not near white"
    assert colours[5, 60].tolist() == [1, 1, 1, 1], "no mistake: white"
    assert colours[7, 7, 2] > colours[7, 7, 0] + 0.3, "correct cells are blue"


def test_normalized_matrix_shows_row_shares():
    matrix = np.array([[8, 2], [0, 0]])
    png = confusion_matrix_png(matrix, ["a", "b"], normalize=True)
    assert size(png)[0] > 0  # an empty row (no images of class b) must not divide by zero
    colours = cell_colours(np.array([[0.8, 0.2], [0.0, 0.0]]), normalize=True)
    assert colours[0, 1, 0] > colours[0, 1, 1] + 0.25


@pytest.mark.parametrize(("classes", "normalize"), [(3, False), (3, True), (100, False), (100, True)])
def test_the_png_shows_one_mistake_in_its_cell(classes, normalize):
    names = ["cat", "dog", "x$^$"] if classes == 3 else LONG_NAMES
    matrix = one_mistake(classes)
    with matplotlib.rc_context(TEXT_ONLY):
        fig = confusion_matrix_figure(matrix, names, normalize=normalize, dpi=40)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    pixels = decode(buffer.getvalue())
    ax = fig.axes[0]

    def pixel(row, col):  # off the cell's centre, where small matrices write the value
        x, y = ax.transData.transform((col - 0.35, row - 0.35))
        return pixels[pixels.shape[0] - int(round(y)), int(round(x))].astype(int)

    red, green, blue = pixel(1, classes - 1)
    assert red - max(green, blue) > 60, f"the single mistake is drawn red, got {(red, green, blue)}"
    assert pixel(0, 0)[2] > pixel(0, 0)[0] + 60, "the diagonal is blue"
    assert pixel(classes - 1, 0).min() > 245, "a cell without mistakes is white"


def test_gallery_captions_name_the_file_and_both_classes():
    caption = mistake_caption("/data/test_set/cats/IMG_0042.jpg", "cat", "dog", 0.873)
    assert caption.splitlines() == ["…/cats/IMG_0042.jpg", "true: cat", "predicted: dog (87%)"]
    assert short_path("IMG_1.jpg") == "IMG_1.jpg"
    assert short_path("cats/IMG_1.jpg") == "cats/IMG_1.jpg"
    deep = short_path("/data/a_very_long_folder_name_of_images/chat_noir.png")
    assert deep.startswith("…") and deep.endswith("_images/chat_noir.png") and len(deep) == 30
    long_name = short_path("/d/photo_prise_à_Montréal_le_12_juin_2024_numéro_000123.jpeg")
    assert long_name.startswith("photo_prise") and long_name.endswith("000123.jpeg") and "…" in long_name
    assert len(long_name) == 30


@pytest.mark.parametrize("classes", [3, 100])
def test_gallery_draws_captions_with_long_names(tmp_path, classes):
    names = ["cat", "dog", "x$^$"] if classes == 3 else LONG_NAMES
    folder = tmp_path / "Québec 中文"
    folder.mkdir()
    paths = []
    for i in range(7):
        paths.append(str(folder / f"image_{i}_{'é' * 40}.png"))
        Image.new("RGB", (50, 30), (255, 0, 0)).save(paths[-1])
    true = [names[i % classes] for i in range(7)]
    predicted = [names[(i + 1) % classes] for i in range(7)]
    with matplotlib.rc_context(TEXT_ONLY):
        fig = misclassified_figure(paths, true, predicted, [0.9] * 7)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    matplotlib.pyplot.close(fig)
    assert titles[0] == mistake_caption(paths[0], true[0], predicted[0], 0.9)
    assert titles[0].startswith("image_0_") and ".png" in titles[0].splitlines()[0]
    width, height = size(misclassified_png(paths, true, predicted, [0.9] * 7))
    assert 1000 < width < 2000 and width > height, "7 mistakes: 5 columns, 2 rows"
    assert size(misclassified_png([], [], [], []))[0] > 0


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize(
    "phases",
    [
        {"phase1": 1, "phase2": 1},
        {"warmup": 1, "phase1": 1, "phase2": 28},
        {"phase1": 20, "a_long_phase_name_2": 1, "a_long_phase_name_3": 1, "a_long_phase_name_4": 1},
    ],
)
def test_phase_names_never_overlap(phases):
    epochs = sum(phases.values())
    labels = phase_labels(phases, epochs)
    assert [name for name, _, _ in labels] == list(phases)
    history = {"loss": list(np.linspace(1, 0.2, epochs)), "val_loss": list(np.linspace(1.1, 0.3, epochs))}
    with matplotlib.rc_context(TEXT_ONLY):
        fig = training_curves_figure(history, phases)
        fig.canvas.draw()
    band = fig.axes[0]
    drawn = {text.get_text(): text.get_window_extent() for text in band.texts}
    matplotlib.pyplot.close(fig)
    assert sorted(drawn) == sorted(phases)
    for (a, box_a), (b, box_b) in itertools.combinations(drawn.items(), 2):
        assert not overlaps(box_a, box_b), f"{a!r} and {b!r} overlap"


def test_short_phases_are_staggered():
    rows = {name: row for name, _, row in phase_labels({"warmup": 1, "phase1": 1, "phase2": 28}, 30)}
    assert rows["warmup"] != rows["phase1"]
    assert rows["phase2"] == 0, "a long phase has room in the first row"


def test_best_epoch_follows_the_monitor():
    history = {"val_loss": [0.9, 0.5, float("nan"), 0.7], "val_accuracy": [0.5, 0.6, 0.8, 0.7]}
    assert best_epoch(history) == (2, 0.5)
    assert best_epoch(history, "val_accuracy") == (3, 0.8)
    assert best_epoch(history, "val_auc") is None
    assert best_epoch({"val_loss": [float("nan")]}) is None


def test_learning_rate_panel():
    curves = {"loss": [1.0, 0.8, 0.6], "val_loss": [1.1, 0.7, 0.9], "accuracy": [0.5, 0.6, 0.7]}
    assert learning_rates({**curves, "learning_rate": [3.0, 2.0, 1.0], "lr": [1e-3, 1e-4, 1e-5]}) == [1e-3, 1e-4, 1e-5]
    assert learning_rates({**curves, "learning_rate": [3.0, 2.0, 1.0], "lr": [float("nan")] * 3}) == [3.0, 2.0, 1.0]
    with matplotlib.rc_context(TEXT_ONLY):
        fig = training_curves_figure({**curves, "lr": [1e-3, 1e-4, 1e-5]}, {"phase1": 3})
        rate_axes = fig.axes[3]
        assert rate_axes.lines[0].get_ydata().tolist() == [1e-3, 1e-4, 1e-5]
        assert rate_axes.get_yscale() == "log"
        assert any(line.get_xdata()[0] == 2 for line in rate_axes.lines[1:]), "best epoch (val_loss) marked"
        matplotlib.pyplot.close(fig)
        fig = training_curves_figure(curves, {"phase1": 3})
        assert [text.get_text() for text in fig.axes[3].texts] == ["no learning rate recorded"]
        matplotlib.pyplot.close(fig)
    width, height = size(training_curves_png({**curves, "lr": [1e-3] * 3}, {"phase1": 1, "phase2": 2}))
    assert 800 <= width <= 1200 and 600 <= height <= 1000


# Names matplotlib would read as math text ($...$, ^, _, \) or that are long or not Latin; the last is 200 chars.
ODD_NAMES = ["x$^$", "a_b\\c", "$\\frac{1}{0}$", "ü ñ 中文", "price $5 ^ 10%", "n" * 200]


def test_class_names_are_drawn_as_text_not_math():
    before = matplotlib.rcParams["text.parse_math"]
    n = len(ODD_NAMES)
    for normalize in (False, True):
        assert size(confusion_matrix_png(np.eye(n, dtype=int) * 3, ODD_NAMES, normalize=normalize))[0] > 0
    history = {"loss": [1.0, 0.5], "learning_rate": [1e-2, 1e-5]}
    assert size(training_curves_png(history, {"$\\frac{1}{0}$": 1, "a_b^c": 1}))[0] > 0
    assert matplotlib.rcParams["text.parse_math"] == before, "the setting is for imgcls's figures only"


def test_mistakes_gallery_draws_odd_names(tmp_path):
    path = tmp_path / "x$^$.png"
    Image.new("RGB", (20, 20), "red").save(path)
    png = misclassified_png([str(path)] * 2, ODD_NAMES[:2], ODD_NAMES[-2:], [0.9, 0.8])
    assert size(png)[0] > 0


def test_long_names_are_shortened_for_figures_only():
    from imgcls.evaluation.plots import LABEL_CHARS, label

    assert label("x$^$") == "x$^$"
    assert len(label("n" * 200)) == LABEL_CHARS and label("n" * 200).endswith("…")
