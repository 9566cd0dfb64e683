"""Class weights for imbalanced training sets."""

from __future__ import annotations

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from imgcls.config_schema import check_choice


def class_weights(labels: np.ndarray, num_classes: int, mode: str) -> np.ndarray | None:
    """Per-class loss weights: None for ``none``; ``n / (k * n_c)`` for ``balanced`` (scikit-learn's rule)."""
    check_choice("data.class_weights", mode)
    if mode == "none":
        return None
    classes = np.arange(num_classes)
    return compute_class_weight("balanced", classes=classes, y=np.asarray(labels)).astype(np.float32)
