"""The training and test images of the run that wrote a model: its manifest.json's splits, or folders given instead.

``manifest.json`` (written beside ``model.keras`` by imgcls-train) names each split's root, the
seed and the validation share; the training split is drawn again from them as training drew it, and
checked against the manifest's hash of its file list.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from imgcls.data.integrity import check_images
from imgcls.data.manifest import file_list_sha256
from imgcls.data.scan import ImageFolder, scan_image_folder
from imgcls.data.split import Subset, stratified_split, whole
from imgcls.errors import ConfigError, DataError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def manifest_path(model: str | Path) -> Path:
    """Where the manifest of the run that wrote ``model`` lies: beside it."""
    return Path(model).expanduser().parent / MANIFEST


def has_split(model: str | Path, data: Any, split: str) -> bool:
    """Whether ``split`` (train or test) can be found: ``data.<split>_dir`` is set, or the run's manifest exists."""
    return bool(data.get(f"{split}_dir")) or manifest_path(model).is_file()


def training_images(model: str | Path, class_names: tuple[str, ...], data: Any) -> Subset:
    """The usable images of ``data.train_dir``, else the training split (without validation) of ``model``'s run."""
    if data.get("train_dir"):
        return whole(_usable(scan_image_folder(data.train_dir, class_names, what="data.train_dir"), data))
    manifest = _manifest(model, needed_for="training images", setting="data.train_dir")
    root = Path(manifest["roots"]["train"])
    tree = _usable(scan_image_folder(root, class_names, what=f"the training root of {manifest_path(model)}"), data)
    train, _ = stratified_split(tree, manifest["val_split"], manifest["seed"])
    _compare_with_manifest(train, root, manifest, "train", model)
    return train


def test_images(model: str | Path, class_names: tuple[str, ...], data: Any) -> Subset:
    """The usable images of ``data.test_dir``, else the test split of the run of ``model``."""
    if data.get("test_dir"):
        return whole(_usable(scan_image_folder(data.test_dir, class_names, what="data.test_dir"), data))
    manifest = _manifest(model, needed_for="test images", setting="data.test_dir")
    root = Path(manifest["roots"]["test"])
    test = whole(_usable(scan_image_folder(root, class_names, what=f"the test root of {manifest_path(model)}"), data))
    _compare_with_manifest(test, root, manifest, "test", model)
    return test


def sample(subset: Subset, count: int, seed: int) -> Subset:
    """``count`` images of ``subset`` (all when it has fewer), drawn without replacement with ``seed``."""
    picked = np.sort(np.random.default_rng(seed).permutation(len(subset))[: max(count, 0)])
    return Subset(tuple(subset.paths[i] for i in picked), np.asarray(subset.labels)[picked])


def _manifest(model: str | Path, *, needed_for: str, setting: str) -> dict[str, Any]:
    path = manifest_path(model)
    if not path.is_file():
        raise ConfigError(
            f"Exporting needs {needed_for}, and there is no {MANIFEST} beside model={model} to find the run's "
            f"splits. Give them as {setting}=<folder with one sub-folder per class>."
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _usable(tree: ImageFolder, data: Any) -> ImageFolder:
    result = check_images(tree.paths, cache_path=data.integrity_cache, max_pixels=data.max_image_pixels, progress=False)
    usable = tree.without(result.problems)
    if not usable.paths:
        raise DataError(f"{tree.root}: no usable image of the model's classes {list(tree.class_names)}.")
    return usable


def _compare_with_manifest(subset: Subset, root: Path, manifest: dict[str, Any], split: str, model: str | Path) -> None:
    if file_list_sha256(subset.paths, root) != manifest["file_list_sha256"].get(split):
        log.warning(
            "The %s split of %s differs from the one model=%s was trained with (%d images now, %s then): "
            "files were added, removed or changed since. Using it as it is now.",
            split,
            root,
            model,
            len(subset),
            manifest["images"].get(split, "?"),
        )
