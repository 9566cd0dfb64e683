"""Figures of a run, drawn with matplotlib's non-interactive Agg backend."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402


def confusion_matrix_png(matrix: np.ndarray, class_names: list[str], title: str = "Test confusion matrix") -> bytes:
    """The confusion matrix as PNG bytes; cell labels are dropped when there are too many classes to read."""
    n = len(class_names)
    side = min(40.0, max(5.0, 0.45 * n + 2.5))
    fig, ax = plt.subplots(figsize=(side, side), dpi=100)
    display = ConfusionMatrixDisplay(matrix, display_labels=class_names)
    display.plot(ax=ax, cmap="Blues", colorbar=n <= 30, include_values=n <= 30, xticks_rotation="vertical")
    ax.set_title(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
