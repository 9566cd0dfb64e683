"""Figures of a run, drawn with matplotlib's non-interactive Agg backend (works on headless machines).

Class names are text: they are drawn as written, never parsed as math (``$``, ``^``, ``_``, ``\\``), and
names longer than :data:`LABEL_CHARS` are shortened in the figures only (CSV and JSON files keep them whole).
Each ``*_figure`` function builds a figure; its ``*_png`` twin draws it to PNG bytes.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import ListedColormap, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402
from PIL import Image  # noqa: E402

# Above this many classes cell values and full-size tick labels no longer fit; the picture still does.
ANNOTATED_CLASSES = 30
# Longest class name drawn whole; longer ones end in "…" in figures.
LABEL_CHARS = 40
# Longest file name drawn whole under a gallery image.
PATH_CHARS = 30
# Drawing settings of every figure here, for the figure only (not the rest of the user's process).
TEXT_ONLY = {"text.parse_math": False}
# Correct predictions (the diagonal) and mistakes get their own colours and scales, so that one mistake
# stays visible next to diagonal cells of hundreds; the lightest mistake colour is this far up "Reds".
CORRECT_COLOURS = plt.get_cmap("Blues")
ERROR_COLOURS = ListedColormap(plt.get_cmap("Reds")(np.linspace(0.3, 1.0, 256)), name="errors")
# Share of the x-axis that one character of a phase name takes on the training curves (a generous estimate).
PHASE_CHAR_WIDTH = 0.011


def _as_text(draw: Callable) -> Callable:
    """Run ``draw`` (which builds or saves a figure) with math-text parsing off, so labels are literal."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(TEXT_ONLY):
            return draw(*args, **kwargs)

    return wrapper


def label(name: str, limit: int = LABEL_CHARS) -> str:
    """``name`` as drawn in a figure: whole up to ``limit`` characters, otherwise its start and "…"."""
    name = str(name)
    return name if len(name) <= limit else name[: limit - 1] + "…"


def short_path(path: str, limit: int = PATH_CHARS) -> str:
    """``path`` as drawn under a gallery image: its folder and file name, cut with "…" to ``limit`` characters.

    The file name wins over the folder; a file name too long on its own keeps its start and its end (extension).
    """
    parts = Path(path).parts
    text = "/".join(parts[-2:])
    if len(parts) > 2:
        text = "…/" + text
    if len(text) <= limit:
        return text
    name = parts[-1] if parts else ""
    if len(name) < limit:
        return "…" + text[-(limit - 1) :]
    head = (limit - 1) // 2
    return name[:head] + "…" + name[-(limit - 1 - head) :]


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _shares(matrix: np.ndarray) -> np.ndarray:
    values = matrix.astype(float)
    totals = values.sum(axis=1, keepdims=True)
    return np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)


def colour_scales(values: np.ndarray, *, normalize: bool = False) -> tuple[Normalize, Normalize]:
    """The scales of the correct cells (diagonal) and of the mistakes (off the diagonal), each up to its own top."""
    off_diagonal = values[~np.eye(len(values), dtype=bool)]
    correct_top = 1.0 if normalize else max(float(np.diag(values).max(initial=0)), 1.0)
    error_top = float(off_diagonal.max(initial=0)) or 1.0
    return Normalize(0.0, correct_top), Normalize(0.0, error_top)


def cell_colours(values: np.ndarray, *, normalize: bool = False) -> np.ndarray:
    """RGBA colour of every cell: blues on the diagonal, reds for any mistake (never near white), white for none."""
    correct, errors = colour_scales(values, normalize=normalize)
    diagonal = np.eye(len(values), dtype=bool)
    colours = np.ones(values.shape + (4,))
    colours[diagonal] = CORRECT_COLOURS(correct(values[diagonal]))
    mistakes = ~diagonal & (values > 0)
    colours[mistakes] = ERROR_COLOURS(errors(values[mistakes]))
    return colours


@_as_text
def confusion_matrix_figure(
    matrix: np.ndarray, class_names: Sequence[str], *, normalize: bool = False, dpi: int = 100
) -> Figure:
    """The confusion matrix (rows: true class, columns: predicted); ``normalize`` shows each row's shares.

    Correct cells and mistakes have separate colour bars, so small mistakes show at any number of classes.
    The figure grows with the number of classes (100 classes stay readable).
    """
    n = len(class_names)
    values = _shares(matrix) if normalize else matrix.astype(float)
    colours = cell_colours(values, normalize=normalize)
    side = min(48.0, max(6.0, 0.32 * n + 3.0))
    fig, ax = plt.subplots(figsize=(side + 1.0, side), dpi=dpi, layout="constrained")
    ax.imshow(colours, interpolation="nearest", aspect="auto")  # "equal" upsets the layout next to colour bars
    unit = "share of the true class" if normalize else "images"
    for scale, cmap, what in zip(
        colour_scales(values, normalize=normalize), (CORRECT_COLOURS, ERROR_COLOURS), ("correct", "mistakes")
    ):
        bar = fig.colorbar(ScalarMappable(scale, cmap), ax=ax, fraction=0.03, pad=0.02)
        bar.set_label(f"{what} ({unit})")
    font = 10 if n <= ANNOTATED_CLASSES else max(4, int(600 / n))
    names = [label(name) for name in class_names]
    ax.set_xticks(range(n), names, rotation=90, fontsize=font)
    ax.set_yticks(range(n), names, fontsize=font)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Test confusion matrix" + (" (share of each true class)" if normalize else " (images)"))
    if n <= ANNOTATED_CLASSES:
        dark = colours[..., :3] @ np.array([0.299, 0.587, 0.114]) < 0.5
        for (row, col), value in np.ndenumerate(values):
            if value == 0 and row != col:
                continue
            text = f"{value:.2f}" if normalize else f"{int(value)}"
            ax.text(col, row, text, ha="center", va="center", fontsize=8, color="white" if dark[row, col] else "black")
    return fig


@_as_text
def confusion_matrix_png(
    matrix: np.ndarray, class_names: Sequence[str], *, normalize: bool = False, dpi: int = 100
) -> bytes:
    """:func:`confusion_matrix_figure` as PNG bytes."""
    return _png(confusion_matrix_figure(matrix, class_names, normalize=normalize, dpi=dpi))


def phase_spans(epochs_per_phase: Mapping[str, int]) -> list[tuple[str, float, float]]:
    """Each phase's name and the x-range of its epochs (epochs count from 1), in order; empty phases left out."""
    spans, start = [], 0
    for phase, count in epochs_per_phase.items():
        if count > 0:
            spans.append((phase, start + 0.5, start + count + 0.5))
        start += count
    return spans


def label_rows(centres: Sequence[float], widths: Sequence[float]) -> list[int]:
    """A row for each label (0 first) so that no two labels in one row overlap; labels go left to right."""
    row_ends: list[float] = []
    rows = []
    for centre, width in zip(centres, widths):
        left = centre - width / 2
        row = next((i for i, end in enumerate(row_ends) if left >= end), len(row_ends))
        if row == len(row_ends):
            row_ends.append(0.0)
        row_ends[row] = centre + width / 2
        rows.append(row)
    return rows


def best_epoch(history: Mapping[str, Sequence[float]], monitor: str = "val_loss") -> tuple[int, float] | None:
    """The epoch (from 1) with the best ``monitor`` value and that value; None when it was not recorded.

    Lower is better, except for accuracy-like names (``acc``, ``auc``, ``precision``, ``recall``, ``f1``).
    """
    values = np.asarray(history.get(monitor) or [], dtype=float)
    if not np.isfinite(values).any():
        return None
    higher = any(word in monitor for word in ("acc", "auc", "precision", "recall", "f1"))
    index = int(np.nanargmax(values) if higher else np.nanargmin(values))
    return index + 1, float(values[index])


def learning_rates(history: Mapping[str, Sequence[float]]) -> Sequence[float] | None:
    """The learning rate per epoch: the ``lr`` column, else Keras's ``learning_rate``; None when neither holds one."""
    for key in ("lr", "learning_rate"):
        if np.isfinite(np.asarray(history.get(key) or [], dtype=float)).any():
            return history[key]
    return None


def phase_labels(epochs_per_phase: Mapping[str, int], last_epoch: int) -> list[tuple[str, float, int]]:
    """Each phase's name as drawn, its x position and its row in the band over the curves (x from 0.5 to
    ``last_epoch`` + 0.5); names in one row never overlap, however short their phases."""
    spans = phase_spans(epochs_per_phase)
    names = [label(name, 24) for name, _, _ in spans]
    widths = [(len(name) + 1) * PHASE_CHAR_WIDTH * last_epoch for name in names]
    centres = [
        min(max((start + end) / 2, 0.5 + width / 2), last_epoch + 0.5 - width / 2)
        for (_, start, end), width in zip(spans, widths)
    ]
    return list(zip(names, centres, label_rows(centres, widths)))


def _draw_phases(band, axes, epochs_per_phase: Mapping[str, int], last_epoch: int) -> None:
    labels = phase_labels(epochs_per_phase, last_epoch)
    for i, ((_, start, end), (name, centre, row)) in enumerate(zip(phase_spans(epochs_per_phase), labels)):
        shade = ("#dce6f2", "#f2e6dc")[i % 2]
        band.axvspan(start, end, color=shade)
        band.text(centre, row + 0.4, name, ha="center", va="center", fontsize=9, color="dimgrey")
        band.plot([start + 0.1, end - 0.1], [row + 0.85] * 2, color="dimgrey", linewidth=2, solid_capstyle="butt")
        for ax in axes:
            ax.axvspan(start, end, color=shade, alpha=0.35, linewidth=0)
            if i:
                ax.axvline(start, color="grey", linestyle="--", linewidth=1)
    band.set_ylim(max((row for _, _, row in labels), default=0) + 1, 0)
    band.axis("off")


@_as_text
def training_curves_figure(
    history: Mapping[str, Sequence[float]], epochs_per_phase: Mapping[str, int], *, monitor: str = "val_loss"
) -> Figure:
    """Loss, accuracy and learning rate per epoch, over a band naming the phases; the best epoch marked.

    The best epoch is the one with the best ``monitor`` value (early stopping's). Without an ``lr`` or
    ``learning_rate`` column the third panel says that no learning rate was recorded.
    """
    epochs_total = max((len(values) for values in history.values()), default=0)
    epochs = np.arange(1, epochs_total + 1)
    last_epoch = max(epochs_total, 1)
    rows = 1 + max((row for _, _, row in phase_labels(epochs_per_phase, last_epoch)), default=0)
    fig, (band, *axes) = plt.subplots(
        4,
        1,
        figsize=(10, 8.5),
        dpi=100,
        sharex=True,
        layout="constrained",
        gridspec_kw={"height_ratios": [0.12 * rows, 1, 1, 1]},
    )
    _draw_phases(band, axes, epochs_per_phase, last_epoch)
    best = best_epoch(history, monitor)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, name in ((metric, "training"), (f"val_{metric}", "validation")):
            if history.get(key):
                ax.plot(epochs[: len(history[key])], history[key], marker="o", markersize=3, label=name)
        ax.set_ylabel(metric)
    rates = learning_rates(history)
    if rates is None:
        axes[2].text(
            0.5,
            0.5,
            "no learning rate recorded",
            transform=axes[2].transAxes,
            ha="center",
            va="center",
            color="grey",
            bbox={"facecolor": "white", "edgecolor": "none"},
        )
        axes[2].set_yticks([])
    else:
        axes[2].plot(epochs[: len(rates)], rates, marker="o", markersize=3, color="purple", label="learning rate")
        positive = np.asarray(rates, dtype=float)
        positive = positive[np.isfinite(positive) & (positive > 0)]
        if positive.size and positive.max() > 20 * positive.min():
            axes[2].set_yscale("log")
            axes[2].yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # not math text
            axes[2].yaxis.set_minor_formatter(NullFormatter())
    axes[2].set_ylabel("learning rate")
    for ax in axes:
        if best is not None:
            ax.axvline(
                best[0],
                color="seagreen",
                linestyle=":",
                linewidth=2,
                label=f"best epoch {best[0]} ({monitor} {best[1]:.4g})",
            )
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[2].set_xlabel("epoch")
    axes[2].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[2].set_xlim(0.5, last_epoch + 0.5)
    fig.suptitle("Training curves")
    return fig


@_as_text
def training_curves_png(
    history: Mapping[str, Sequence[float]], epochs_per_phase: Mapping[str, int], *, monitor: str = "val_loss"
) -> bytes:
    """:func:`training_curves_figure` as PNG bytes."""
    return _png(training_curves_figure(history, epochs_per_phase, monitor=monitor))


def mistake_caption(path: str, true_name: str, predicted_name: str, confidence: float) -> str:
    """The caption of one gallery image: its shortened file name, true class, predicted class and confidence."""
    return (
        f"{short_path(path)}\ntrue: {label(true_name, 24)}\npredicted: {label(predicted_name, 24)} ({confidence:.0%})"
    )


@_as_text
def misclassified_figure(
    paths: Sequence[str],
    true_names: Sequence[str],
    predicted_names: Sequence[str],
    confidences: Sequence[float],
    *,
    thumbnail: int = 160,
) -> Figure:
    """A gallery of mistakes, each image captioned by :func:`mistake_caption`."""
    count = max(1, len(paths))
    columns = min(5, count)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 3.8 * rows), dpi=100, squeeze=False, layout="constrained"
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
        ax.set_title(mistake_caption(path, true, predicted, confidence), fontsize=9, color="firebrick")
    fig.suptitle("Most confident mistakes on the test set")
    return fig


@_as_text
def misclassified_png(
    paths: Sequence[str],
    true_names: Sequence[str],
    predicted_names: Sequence[str],
    confidences: Sequence[float],
    *,
    thumbnail: int = 160,
) -> bytes:
    """:func:`misclassified_figure` as PNG bytes."""
    return _png(misclassified_figure(paths, true_names, predicted_names, confidences, thumbnail=thumbnail))
