"""Discover classes and list image files in a class-per-folder tree, noting every file left out."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgcls.errors import DataError

log = logging.getLogger(__name__)

# Formats tf.io.decode_image reads (GIF: first frame). TIFF is not among them.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
# Files and folders that operating systems and archivers leave behind.
SYSTEM_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx", "$recycle.bin", "@eadir"})


@dataclass(frozen=True)
class ImageFolder:
    """Image files of one tree with their integer labels into ``class_names``.

    ``skipped`` maps each file that was found but left out to the reason.
    """

    root: Path
    class_names: tuple[str, ...]
    paths: tuple[str, ...]
    labels: np.ndarray
    skipped: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Number of images per class, in class order."""
        per_class = np.bincount(self.labels, minlength=len(self.class_names))
        return dict(zip(self.class_names, per_class.tolist()))

    def without(self, excluded: set[str] | dict[str, str]) -> ImageFolder:
        """The same tree without ``excluded`` paths (their reasons, if given, join ``skipped``)."""
        keep = [i for i, path in enumerate(self.paths) if path not in excluded]
        reasons = excluded if isinstance(excluded, dict) else dict.fromkeys(excluded, "excluded")
        skipped = {**self.skipped, **{p: reasons[p] for p in self.paths if p in excluded}}
        return ImageFolder(self.root, self.class_names, tuple(self.paths[i] for i in keep), self.labels[keep], skipped)


def _is_hidden_or_system(name: str) -> bool:
    return name.startswith(".") or name.lower() in SYSTEM_NAMES


def discover_classes(root: str | Path, *, what: str = "data.train_dir") -> tuple[str, ...]:
    """Sorted names of the class sub-folders of ``root``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{what}: folder not found: {root}. Point {what} at a folder with one sub-folder per class.")
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not _is_hidden_or_system(p.name)))
    if not classes:
        raise DataError(f"{what}: {root} has no class sub-folders. Expected {root}/<class name>/<images>.")
    return classes


def _link_leaves_class(path: str, class_real: Path, tree_real: Path) -> str | None:
    """Why the symlink ``path`` is not followed, or None when it may be.

    A link is followed when it resolves inside its own class folder, or to a place outside the
    tree that does not contain it. A link to another class, to the tree root or to any folder
    that holds the class folder (an ancestor) would label another class's images as this class.
    """
    target = Path(os.path.realpath(path))
    if target.is_relative_to(class_real):
        return None
    if class_real.is_relative_to(target):
        return f"symlink leads out of its class folder (to {target}, a folder holding {class_real.name}/); not followed"
    if target.is_relative_to(tree_real):
        other = target.relative_to(tree_real).parts[0]
        return f"symlink leads out of its class folder (to {target}, in class {other}/); not followed"
    return None


def _list_class_folder(
    class_dir: Path, skipped: dict[str, str], seen_files: dict[str, str], tree_root: Path | None = None
) -> list[str]:
    """Image files under ``class_dir``, following symlinks once, in sorted order.

    Symlinks that lead to another class, the tree root or an ancestor are not followed and are
    recorded in ``skipped`` (see :func:`_link_leaves_class`), so a file is labelled by its own class
    or not at all.
    """
    images = []
    seen_dirs = set()
    class_real = Path(os.path.realpath(class_dir))
    tree_real = Path(os.path.realpath(tree_root if tree_root is not None else class_dir))
    for folder, dirs, files in os.walk(class_dir, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen_dirs:  # a symlink loop, or two links to one folder
            dirs[:] = []
            continue
        seen_dirs.add(real)
        kept = []
        for d in sorted(d for d in dirs if not _is_hidden_or_system(d)):
            link = os.path.join(folder, d)
            reason = _link_leaves_class(link, class_real, tree_real) if os.path.islink(link) else None
            if reason:
                skipped[link] = reason
            else:
                kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            path = os.path.join(folder, name)
            leaves = os.path.islink(path) and os.path.exists(path) and _link_leaves_class(path, class_real, tree_real)
            reason = leaves or _why_not_an_image(path, name, seen_files)
            if reason:
                skipped[path] = reason
            else:
                seen_files[os.path.realpath(path)] = path
                images.append(path)
    return images


def _why_not_an_image(path: str, name: str, seen_files: dict[str, str]) -> str | None:
    if _is_hidden_or_system(name):
        return "hidden or system file"
    if not has_image_extension(name):
        extension = os.path.splitext(name)[1].lower() or "none"
        return f"not an image extension ({extension}); read are {', '.join(sorted(IMAGE_EXTENSIONS))}"
    if not os.path.exists(path):
        return "broken symlink"
    original = seen_files.get(os.path.realpath(path))
    if original is not None:
        return f"same file as {original} (linked twice)"
    return None


def list_images(folder: str | Path) -> list[str]:
    """Image files under ``folder``, recursively (symlinks followed once) and in sorted order;
    hidden and system files and other extensions are left out."""
    return _list_class_folder(Path(folder), {}, {})


def has_image_extension(name: str) -> bool:
    """Whether ``name`` ends in one of :data:`IMAGE_EXTENSIONS`."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def scan_image_folder(
    root: str | Path, class_names: tuple[str, ...] | None = None, *, what: str = "data.train_dir"
) -> ImageFolder:
    """List the images of every class folder under ``root``; nested folders and symlinks are followed,
    except symlinks that lead to another class, the tree root or an ancestor (skipped, with the reason).

    ``class_names`` fixes the class order (a test tree is read in the training tree's order); without
    it the classes are the sorted sub-folder names. A class folder of ``root`` that is not in
    ``class_names`` is an error: a model cannot be evaluated on classes it was not trained on.
    """
    root = Path(root).expanduser()
    found = discover_classes(root, what=what)
    if class_names is None:
        class_names = found
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        raise DataError(
            f"{what}: classes {unknown} in {root} are not in the training set {list(class_names)}. "
            "Rename or remove those folders so both trees use the same class names."
        )
    paths: list[str] = []
    labels: list[int] = []
    skipped: dict[str, str] = {}
    seen_files: dict[str, str] = {}
    for index, name in enumerate(class_names):
        files = _list_class_folder(root / name, skipped, seen_files, root) if (root / name).is_dir() else []
        paths.extend(files)
        labels.extend([index] * len(files))
    return ImageFolder(root, tuple(class_names), tuple(paths), np.asarray(labels, dtype=np.int64), skipped)


def classes_without_images(folder: ImageFolder) -> list[str]:
    """Classes of ``folder`` that have no usable image."""
    return [name for name, count in folder.counts().items() if count == 0]
