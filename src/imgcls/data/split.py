"""Stratified, seeded hold-out of a validation set from the training tree."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from imgcls.data.scan import ImageFolder
from imgcls.errors import ConfigError, DataError


@dataclass(frozen=True)
class Subset:
    """Image paths and integer labels of one split."""

    paths: tuple[str, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)


def _take(folder: ImageFolder, indices: np.ndarray) -> Subset:
    return Subset(tuple(folder.paths[i] for i in indices), folder.labels[indices])


def stratified_split(folder: ImageFolder, val_fraction: float, seed: int) -> tuple[Subset, Subset]:
    """Split ``folder`` into (train, validation), keeping each class's share; same seed, same split."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"data.val_split must be between 0 and 1 (exclusive), got {val_fraction}.")
    counts = folder.counts()
    too_small = {name: n for name, n in counts.items() if n < 2}
    if too_small:
        raise DataError(
            "Each class needs at least 2 training images to hold one out for validation; "
            f"too few in: {too_small}. Add images or remove those class folders."
        )
    n_val = int(np.ceil(val_fraction * len(folder.paths)))
    if n_val < len(counts) or len(folder.paths) - n_val < len(counts):
        raise DataError(
            f"data.val_split={val_fraction} holds out {n_val} of {len(folder.paths)} images, "
            f"but a stratified split needs at least one image of each of the {len(counts)} classes on both sides. "
            "Change data.val_split or add images."
        )
    indices = np.arange(len(folder.paths))
    train_idx, val_idx = train_test_split(
        indices, test_size=n_val, stratify=folder.labels, random_state=seed, shuffle=True
    )
    return _take(folder, np.sort(train_idx)), _take(folder, np.sort(val_idx))


def whole(folder: ImageFolder) -> Subset:
    """All images of ``folder`` as one split (the test set)."""
    return Subset(folder.paths, folder.labels)
