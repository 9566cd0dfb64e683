"""The run's data manifest: class order, images per class per split, and a hash of each file list."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from imgcls.data.split import Subset


def file_list_sha256(paths: tuple[str, ...], root: Path) -> str:
    """SHA-256 of the sorted paths relative to ``root``: equal lists hash equal wherever the tree lives."""
    relative = sorted(os.path.relpath(path, root) for path in paths)
    return hashlib.sha256("\n".join(relative).encode("utf-8")).hexdigest()


def build_manifest(
    class_names: tuple[str, ...], splits: dict[str, tuple[Subset, Path]], **settings: Any
) -> dict[str, Any]:
    """``splits`` maps a split name to (its subset, the root its paths are relative to)."""
    counts = {
        name: dict(zip(class_names, np.bincount(subset.labels, minlength=len(class_names)).tolist()))
        for name, (subset, _) in splits.items()
    }
    return {
        "class_names": list(class_names),
        "class_index": {name: index for index, name in enumerate(class_names)},
        "images_per_class": counts,
        "images": {name: len(subset) for name, (subset, _) in splits.items()},
        "file_list_sha256": {name: file_list_sha256(subset.paths, root) for name, (subset, root) in splits.items()},
        "roots": {name: str(root) for name, (_, root) in splits.items()},
        **settings,
    }


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest as indented JSON."""
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
