"""The built-in demo dataset: scikit-learn's 1,797 handwritten digits written as PNG class folders."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

log = logging.getLogger(__name__)

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def ensure_digits_dataset(root: str | Path) -> Path:
    """Write the digits as ``root/training_set/<digit>/*.png`` and ``root/test_set/<digit>/*.png`` once.

    The split is stratified with a fixed seed, so every machine gets the same tree. Concurrent
    callers (parallel sweep jobs) are safe: the tree is built aside and moved into place whole.
    """
    root = Path(root).expanduser()
    if (root / "training_set").is_dir() and (root / "test_set").is_dir():
        return root
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    indices = np.arange(len(images))
    train_idx, test_idx = train_test_split(
        indices, test_size=TEST_FRACTION, stratify=digits.target, random_state=SPLIT_SEED
    )
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        log.info("Writing the demo digits dataset (%d images) to %s", len(images), root)
        for split, split_idx in (("training_set", train_idx), ("test_set", test_idx)):
            for i in tqdm(sorted(split_idx), desc=f"demo {split}", unit="img", leave=False):
                class_dir = staging / split / str(digits.target[i])
                class_dir.mkdir(parents=True, exist_ok=True)
                Image.fromarray(images[i]).save(class_dir / f"digit_{i:04d}.png")
        try:
            os.rename(staging, root)
        except OSError:
            if not (root / "training_set").is_dir():  # not a concurrent writer winning the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root
