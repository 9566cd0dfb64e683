"""Discover classes and image files in a class-per-folder tree."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgcls.errors import DataError

log = logging.getLogger(__name__)

# Formats tf.io.decode_image reads (GIF: first frame). TIFF is not among them.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})


@dataclass(frozen=True)
class ImageFolder:
    """Image files of one tree with their integer labels into ``class_names``."""

    root: Path
    class_names: tuple[str, ...]
    paths: tuple[str, ...]
    labels: np.ndarray

    def counts(self) -> dict[str, int]:
        """Number of images per class, in class order."""
        per_class = np.bincount(self.labels, minlength=len(self.class_names))
        return dict(zip(self.class_names, per_class.tolist()))


def discover_classes(root: str | Path, *, what: str = "data.train_dir") -> tuple[str, ...]:
    """Sorted names of the class sub-folders of ``root``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{what}: folder not found: {root}. Point {what} at a folder with one sub-folder per class.")
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not classes:
        raise DataError(f"{what}: {root} has no class sub-folders. Expected {root}/<class name>/<images>.")
    return classes


def _image_files(class_dir: Path) -> list[str]:
    files = (
        p
        for p in class_dir.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    return sorted(str(p) for p in files)


def scan_image_folder(
    root: str | Path, class_names: tuple[str, ...] | None = None, *, what: str = "data.train_dir"
) -> ImageFolder:
    """List the images of every class folder under ``root``.

    ``class_names`` fixes the class order (a test tree is read in the training tree's order);
    without it the classes are the sorted sub-folder names. A class folder with no image is an error.
    """
    root = Path(root).expanduser()
    found = discover_classes(root, what=what)
    defines_classes = class_names is None
    if defines_classes:
        class_names = found
    else:
        unknown = sorted(set(found) - set(class_names))
        if unknown:
            raise DataError(
                f"{what}: classes {unknown} in {root} are not in the training set {list(class_names)}. "
                "Rename or remove those folders so both trees use the same class names."
            )
    paths: list[str] = []
    labels: list[int] = []
    empty: list[str] = []
    for index, name in enumerate(class_names):
        files = _image_files(root / name) if (root / name).is_dir() else []
        if not files:
            empty.append(name)
        paths.extend(files)
        labels.extend([index] * len(files))
    if empty and defines_classes:
        raise DataError(
            f"{what}: class folders without any image ({', '.join(sorted(IMAGE_EXTENSIONS))}): {empty} in {root}."
        )
    if empty:
        log.warning("%s: no images for classes %s in %s; they are not evaluated.", what, empty, root)
    return ImageFolder(root, tuple(class_names), tuple(paths), np.asarray(labels, dtype=np.int64))
