"""A 12-class real-photograph set: 64 px crops of the MATE desktop's nature photographs, nothing downloaded.

    .venv/bin/python benchmarks/real_photos.py     # class names, counts, and a colour-histogram baseline

Source: Debian's ``mate-backgrounds`` package (version 1.26.0-1 in bookworm, section x11, no
dependencies, about 46 MB installed), installed with

    apt-get install mate-backgrounds

Its ``/usr/share/backgrounds/mate/nature/`` folder holds twelve JPEG photographs (1280x1024 to
2560x1920 px), the nature set from GNOME 2's backgrounds, all licensed GPL-2+ (see
``/usr/share/doc/mate-backgrounds/copyright``; copyright holders include Charles Barbin, Lennart Poettering,
Marco Cogoni, Jens Ansorg, Timothy Schellhase, "blackcombwhistler07", Sergey Nazarov and
Jean-François Fortin Tam). Each photo is one class, named after its file:

    Aqua.jpg (water drop)          Blinds.jpg (backlit green leaf)    Dune.jpg (dune grass, sea)
    FreshFlower.jpg (orange bloom) Garden.jpg (marigold, bokeh)       GreenMeadow.jpg (grass blades)
    LadyBird.jpg (ladybird, blue flowers)  RainDrops.jpg (wet leaves) Storm.jpg (storm sky, road)
    TwoWings.jpg (dandelion seeds) Wood.jpg (wooden planks)           YellowFlower.jpg (yellow petals)

Crops and split, deterministic for a seed (``SEED`` = 0 by default; class ``k`` draws from its own
generator ``default_rng([seed, k])``, so one photo's crops do not depend on the others):

1. The photo is resized (Lanczos) so its short side is ``SHORT_SIDE`` = 320 px (512x320 for the
   16:10 photos), so a 64 px crop spans a fifth of the picture's height and holds recognisable
   structure (petals, blades of grass, drops, wood grain) rather than a flat patch of colour.
2. The resized photo is cut into a grid of ``CELL`` = 80 px square cells (6x4 or 5x4; the few
   pixels left over at the right and bottom edges are unused). ``TEST_FRACTION`` = 30% of the cells,
   chosen at random, are test cells; the others are training cells.
3. Each crop is a ``CROP`` = 64 px square lying wholly inside one cell (cell chosen at random among
   that split's cells, offset at random within it): ``TRAIN_PER_CLASS`` = 60 training crops and
   ``TEST_PER_CLASS`` = 40 test crops per class. No test crop shares a pixel with any training crop;
   crops of the same split may overlap one another.

That gives 720 training and 480 test images, uint8 RGB (N, 64, 64, 3). Colour alone goes a long way
but does not solve it: on 16-bin per-channel colour histograms, logistic regression scores 77.9% and
5-NN 78.3% on the test crops for seed 0 (79-82% and 81-88% for seeds 1-3; the ``__main__`` block
measures it), confusing the blurred, bokeh-heavy photos (Aqua / Storm / Dune, Garden / TwoWings /
FreshFlower, LadyBird). ``photo_arrays()`` takes under a second (twelve JPEG decodes and resizes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PHOTO_DIR = Path("/usr/share/backgrounds/mate/nature")
PACKAGE = "mate-backgrounds"
INSTALL_COMMAND = f"apt-get install {PACKAGE}"
PHOTO_CLASSES = [
    "Aqua",
    "Blinds",
    "Dune",
    "FreshFlower",
    "Garden",
    "GreenMeadow",
    "LadyBird",
    "RainDrops",
    "Storm",
    "TwoWings",
    "Wood",
    "YellowFlower",
]
SHORT_SIDE = 320
CELL = 80
CROP = 64
TEST_FRACTION = 0.3
TRAIN_PER_CLASS = 60
TEST_PER_CLASS = 40
SEED = 0


def photos_missing() -> str | None:
    """None when every photo is on this machine, else a one-line reason with the install command."""
    missing = [name for name in PHOTO_CLASSES if not (PHOTO_DIR / f"{name}.jpg").is_file()]
    if not missing:
        return None
    what = "not found" if len(missing) == len(PHOTO_CLASSES) else f"incomplete (no {', '.join(missing)})"
    return f"{PACKAGE}'s nature photos in {PHOTO_DIR} {what} (install: {INSTALL_COMMAND})"


PHOTOS_AVAILABLE = photos_missing() is None


def _load(name: str) -> np.ndarray:
    from PIL import Image

    with Image.open(PHOTO_DIR / f"{name}.jpg") as image:
        image = image.convert("RGB")
        scale = SHORT_SIDE / min(image.size)
        size = (round(image.width * scale), round(image.height * scale))
        return np.asarray(image.resize(size, Image.Resampling.LANCZOS))


def _crops(photo: np.ndarray, cells: list[tuple[int, int]], count: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((count, CROP, CROP, 3), np.uint8)
    for i in range(count):
        row, col = cells[rng.integers(len(cells))]
        y = row * CELL + int(rng.integers(CELL - CROP + 1))
        x = col * CELL + int(rng.integers(CELL - CROP + 1))
        out[i] = photo[y : y + CROP, x : x + CROP]
    return out


def photo_arrays(
    train_per_class: int = TRAIN_PER_CLASS, test_per_class: int = TEST_PER_CLASS, seed: int = SEED
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """({"training_set": (images, labels), "test_set": (images, labels)}, class names), as ``fashion_arrays()``.

    Images are uint8 (N, 64, 64, 3) RGB crops, labels int64 (N,) indexing the class names, sorted by label.
    Raises FileNotFoundError (with the install command) where the package is missing.
    """
    reason = photos_missing()
    if reason:
        raise FileNotFoundError(reason)
    parts: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {"training_set": ([], []), "test_set": ([], [])}
    for label, name in enumerate(PHOTO_CLASSES):
        rng = np.random.default_rng([seed, label])
        photo = _load(name)
        rows, cols = photo.shape[0] // CELL, photo.shape[1] // CELL
        cells = [(row, col) for row in range(rows) for col in range(cols)]
        order = rng.permutation(len(cells))
        n_test = max(1, round(TEST_FRACTION * len(cells)))
        splits = {
            "test_set": ([cells[i] for i in order[:n_test]], test_per_class),
            "training_set": ([cells[i] for i in order[n_test:]], train_per_class),
        }
        for split in ("training_set", "test_set"):
            split_cells, count = splits[split]
            parts[split][0].append(_crops(photo, split_cells, count, rng))
            parts[split][1].append(np.full(count, label, np.int64))
    arrays = {split: (np.concatenate(images), np.concatenate(labels)) for split, (images, labels) in parts.items()}
    return arrays, list(PHOTO_CLASSES)


def colour_histograms(images: np.ndarray, bins: int = 16) -> np.ndarray:
    """Per-channel colour histograms (N, 3 * bins), each channel's summing to 1."""
    flat = images.reshape(len(images), -1, 3).astype(np.int64) * bins // 256
    offsets = flat + np.arange(3) * bins  # bin index per channel, channels side by side
    hist = np.stack([np.bincount(row.ravel(), minlength=3 * bins) for row in offsets])
    return hist / flat.shape[1]


def colour_baseline(arrays: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Test accuracy of colour-only classifiers (no spatial structure) trained on the training crops."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    (train_x, train_y), (test_x, test_y) = arrays["training_set"], arrays["test_set"]
    train_h, test_h = colour_histograms(train_x), colour_histograms(test_x)
    return {
        "logistic regression": LogisticRegression(C=10.0, max_iter=3000).fit(train_h, train_y).score(test_h, test_y),
        "5-NN": KNeighborsClassifier(5).fit(train_h, train_y).score(test_h, test_y),
    }


if __name__ == "__main__":
    import time

    reason = photos_missing()
    if reason:
        raise SystemExit(f"real photos unavailable: {reason}")
    started = time.monotonic()
    arrays, class_names = photo_arrays()
    seconds = time.monotonic() - started
    print(f"source: {PHOTO_DIR} (Debian package {PACKAGE}); photo_arrays() took {seconds:.2f} s")
    print(f"classes ({len(class_names)}): {', '.join(class_names)}")
    for split, (images, labels) in arrays.items():
        counts = np.bincount(labels, minlength=len(class_names))
        print(
            f"{split}: {len(images)} images {images.shape[1:]} {images.dtype}, per class {counts.min()}-{counts.max()}"
        )
    for model, accuracy in colour_baseline(arrays).items():
        print(f"colour-histogram baseline ({model}, 16 bins per channel): test accuracy {accuracy:.4f}")
