"""Shared fixtures: tiny generated image trees and the real Hydra config, composed with overrides."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import compose_app, tiny_run_overrides

CLASS_COLOURS = {"cat": (200, 40, 40), "dog": (40, 200, 40), "zebra fish": (40, 40, 200)}


def write_image_tree(
    root: Path, per_class: int, seed: int = 0, size: int = 40, colours: dict[str, tuple] | None = None
) -> Path:
    """``root/<class>/img_<i>.png``: noisy images whose dominant colour is the class (``CLASS_COLOURS`` by default)."""
    rng = np.random.default_rng(seed)
    for name, colour in (colours or CLASS_COLOURS).items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(-40, 40, size=(size, size, 3))
            pixels = np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"img_{i:03d}.png")
    return root


@pytest.fixture(scope="session", autouse=True)
def _hermetic_environment(tmp_path_factory):
    """Generated data and Keras downloads go to temporary folders, never the user's home."""
    cache = tmp_path_factory.mktemp("imgcls-cache")
    os.environ["IMGCLS_CACHE_DIR"] = str(cache)
    os.environ["KERAS_HOME"] = str(tmp_path_factory.mktemp("keras-home"))
    yield


@pytest.fixture(scope="session")
def image_dataset(tmp_path_factory) -> Path:
    """A dataset folder with training_set/ (12 images a class) and test_set/ (4 a class), 3 classes."""
    root = tmp_path_factory.mktemp("images")
    write_image_tree(root / "training_set", per_class=12, seed=1)
    write_image_tree(root / "test_set", per_class=4, seed=2)
    return root


@pytest.fixture
def compose_config():
    """The real conf/train.yaml composed with a list of overrides."""
    return lambda overrides=(): compose_app("train", overrides)


@pytest.fixture
def make_image_tree():
    """``make_image_tree(root, per_class, seed)`` writes a 3-class tree of noisy coloured PNGs."""
    return write_image_tree


@pytest.fixture
def tiny_config(image_dataset, tmp_path):
    """A factory of configs for tiny runs (conf/debug/tiny.yaml) on ``image_dataset`` writing into ``tmp_path/run``."""

    def make(extra: list[str] | None = None):
        output = f"paths.output_dir={tmp_path / 'run'}"
        return compose_app("train", tiny_run_overrides(image_dataset, output, *(extra or [])))

    return make
