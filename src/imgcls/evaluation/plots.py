"""Figures of a run, drawn with matplotlib's non-interactive Agg backend (works on headless machines).

Class names are text: they are drawn as written, never parsed as math (``$``, ``^``, ``_``, ``\\``), and
names longer than :data:`LABEL_CHARS` are shortened in the figures only (CSV and JSON files keep them whole).
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

# Above this many classes cell values and full-size tick labels no longer fit; the picture still does.
ANNOTATED_CLASSES = 30
# Longest class name drawn whole; longer ones end in "…" in figures.
LABEL_CHARS = 40
# Drawing settings of every figure here, for the figure only (not the rest of the user's process).
TEXT_ONLY = {"text.parse_math": False}


def _as_text(draw: Callable[..., bytes]) -> Callable[..., bytes]:
    """Run ``draw`` (which builds and saves one figure) with math-text parsing off, so labels are literal."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs) -> bytes:
        with matplotlib.rc_context(TEXT_ONLY):
            return draw(*args, **kwargs)

    return wrapper


def label(name: str, limit: int = LABEL_CHARS) -> str:
    """``name`` as drawn in a figure: whole up to ``limit`` characters, otherwise its start and "…"."""
    name = str(name)
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


@_as_text
def confusion_matrix_png(matrix: np.ndarray, class_names: Sequence[str], *, normalize: bool = False) -> bytes:
    """The confusion matrix (rows: true class, columns: predicted) as PNG bytes.

    ``normalize`` divides each row by its total, so each cell is the share of that true class.
    The figure grows with the number of classes (100 classes stay readable).
    """
    n = len(class_names)
    values = matrix.astype(float)
    if normalize:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    side = min(48.0, max(6.0, 0.32 * n + 3.0))
    fig, ax = plt.subplots(figsize=(side, side), dpi=100, layout="constrained")
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    font = 10 if n <= ANNOTATED_CLASSES else max(4, int(600 / n))
    names = [label(name) for name in class_names]
    ax.set_xticks(range(n), names, rotation=90, fontsize=font)
    ax.set_yticks(range(n), names, fontsize=font)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Test confusion matrix" + (" (share of each true class)" if normalize else " (images)"))
    if n <= ANNOTATED_CLASSES:
        threshold = values.max() / 2 if values.size else 0
        for (row, col), value in np.ndenumerate(values):
            text = f"{value:.2f}" if normalize else f"{int(value)}"
            ax.text(col, row, text, ha="center", va="center", fontsize=8,
                    color="white" if value > threshold else "black")
    return _png(fig)


@_as_text
def training_curves_png(history: dict[str, list[float]], epochs_per_phase: dict[str, int]) -> bytes:
    """Loss and accuracy per epoch (training and validation) over both phases, phase starts marked."""
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100, layout="constrained")
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "training"), (f"val_{metric}", "validation")):
            if history.get(key):
                ax.plot(epochs, history[key], marker="o", markersize=3, label=label)
        start = 0
        for phase, count in epochs_per_phase.items():
            if start:
                ax.axvline(start + 0.5, color="grey", linestyle="--", linewidth=1)
            ax.text(start + 0.6, 0.98, phase, transform=ax.get_xaxis_transform(), va="top", fontsize=9, color="grey",
                    clip_on=True)
            start += count
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return _png(fig)


@_as_text
def misclassified_png(
    paths: Sequence[str], true_names: Sequence[str], predicted_names: Sequence[str], confidences: Sequence[float],
    *, thumbnail: int = 160,
) -> bytes:
    """A gallery of mistakes: each image with its true class, the predicted class and the confidence."""
    count = max(1, len(paths))
    columns = min(5, count)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 3.6 * rows), dpi=100, squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    if not paths:
        axes[0, 0].text(0.5, 0.5, "no mistakes on the test set", ha="center", va="center")
    for ax, path, true, predicted, confidence in zip(axes.flat, paths, true_names, predicted_names, confidences):
        with Image.open(path) as image:
            image.seek(0)
            picture = image.convert("RGB")
            picture.thumbnail((thumbnail, thumbnail))
        ax.imshow(np.asarray(picture))
        ax.set_title(f"true: {label(true, 24)}\npredicted: {label(predicted, 24)} ({confidence:.0%})", fontsize=9,
                     color="firebrick")
    fig.suptitle("Most confident mistakes on the test set")
    return _png(fig)
