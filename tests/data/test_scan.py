"""Class discovery: sorted class folders, recursive image listing, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from imgcls.data.scan import discover_classes, scan_image_folder
from imgcls.errors import DataError


def test_classes_are_sorted_folder_names(make_image_tree, tmp_path):
    root = make_image_tree(tmp_path / "train", per_class=3)
    (root / ".hidden").mkdir()
    assert discover_classes(root) == ("cat", "dog", "zebra fish")


def test_scan_lists_every_image_with_its_label(make_image_tree, tmp_path):
    root = make_image_tree(tmp_path / "train", per_class=3)
    nested = root / "dog" / "more"
    nested.mkdir()
    (root / "dog" / "img_000.png").rename(nested / "img_000.png")
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "cat" / ".DS_Store").write_bytes(b"\0")

    folder = scan_image_folder(root)

    assert folder.counts() == {"cat": 3, "dog": 3, "zebra fish": 3}
    assert str(nested / "img_000.png") in folder.paths
    for path, label in zip(folder.paths, folder.labels):
        assert f"/{folder.class_names[label]}/" in path


def test_test_tree_uses_training_class_order(make_image_tree, tmp_path):
    train = make_image_tree(tmp_path / "train", per_class=2)
    test = make_image_tree(tmp_path / "test", per_class=1)
    order = ("zebra fish", "cat", "dog")
    folder = scan_image_folder(test, order, what="data.test_dir")
    assert folder.class_names == order
    assert np.array_equal(folder.labels, [0, 1, 2])
    assert scan_image_folder(train).class_names == ("cat", "dog", "zebra fish")


def test_test_class_unknown_to_training_is_an_error(make_image_tree, tmp_path):
    test = make_image_tree(tmp_path / "test", per_class=1)
    with pytest.raises(DataError, match=r"zebra fish.*not in the training set"):
        scan_image_folder(test, ("cat", "dog"), what="data.test_dir")


def test_missing_folder_and_empty_class_are_clear_errors(make_image_tree, tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        scan_image_folder(tmp_path / "nope")
    with pytest.raises(DataError, match="no class sub-folders"):
        scan_image_folder(tmp_path)
    root = make_image_tree(tmp_path / "train", per_class=2)
    (root / "empty").mkdir()
    with pytest.raises(DataError, match=r"without any image.*empty"):
        scan_image_folder(root)
