"""Class discovery: sorted class folders, recursive image listing, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from imgcls.data.scan import classes_without_images, discover_classes, scan_image_folder
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


def test_missing_folder_and_no_classes_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        scan_image_folder(tmp_path / "nope")
    (tmp_path / ".git").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        scan_image_folder(tmp_path)


def test_empty_class_folder_is_listed_with_zero_images(make_image_tree, tmp_path):
    root = make_image_tree(tmp_path / "train", per_class=2)
    (root / "empty").mkdir()
    (root / "empty" / "readme.txt").write_text("nothing here")
    folder = scan_image_folder(root)
    assert folder.counts()["empty"] == 0
    assert classes_without_images(folder) == ["empty"]


def test_hidden_system_and_other_files_are_skipped_with_a_reason(make_image_tree, tmp_path):
    root = make_image_tree(tmp_path / "train", per_class=2)
    cat = root / "cat"
    for name in (".DS_Store", "Thumbs.db", "desktop.ini", "._img_000.png"):
        (cat / name).write_bytes(b"\0\1")
    (cat / "scan.tif").write_bytes(b"II*\0")
    (cat / ".thumbnails").mkdir()
    (cat / ".thumbnails" / "t.png").write_bytes(b"\0")
    (root / "__MACOSX").mkdir()

    folder = scan_image_folder(root)

    assert folder.class_names == ("cat", "dog", "zebra fish")
    assert folder.counts()["cat"] == 2
    reasons = {path.rsplit("/", 1)[-1]: reason for path, reason in folder.skipped.items()}
    for name in (".DS_Store", "Thumbs.db", "desktop.ini", "._img_000.png"):
        assert reasons[name] == "hidden or system file"
    assert reasons["scan.tif"].startswith("not an image extension (.tif)")
    assert "t.png" not in reasons, "hidden folders are not entered"


def test_symlinks_are_followed_once_and_broken_ones_reported(make_image_tree, tmp_path):
    root = make_image_tree(tmp_path / "train", per_class=2)
    extra = make_image_tree(tmp_path / "elsewhere", per_class=1)
    (root / "cat" / "linked").symlink_to(extra / "cat", target_is_directory=True)
    (root / "dog" / "alias.png").symlink_to(root / "dog" / "img_000.png")
    (root / "dog" / "gone.png").symlink_to(tmp_path / "missing.png")
    (root / "dog" / "loop").symlink_to(root / "dog", target_is_directory=True)

    folder = scan_image_folder(root)

    assert folder.counts() == {"cat": 3, "dog": 2, "zebra fish": 2}
    assert str(root / "cat" / "linked" / "img_000.png") in folder.paths
    assert folder.skipped[str(root / "dog" / "gone.png")] == "broken symlink"
    assert folder.skipped[str(root / "dog" / "img_000.png")].startswith("same file as")
    assert not any("/loop/" in p for p in folder.paths)


def test_unicode_and_spaces_in_class_names(make_image_tree, tmp_path):
    root = make_image_tree(tmp_path / "train", per_class=1)
    (root / "dog").rename(root / "chien de garde")
    (root / "cat").rename(root / "猫")
    assert scan_image_folder(root).class_names == ("chien de garde", "zebra fish", "猫")


def test_without_drops_paths_and_records_reasons(make_image_tree, tmp_path):
    folder = scan_image_folder(make_image_tree(tmp_path / "train", per_class=2))
    bad = folder.paths[0]
    kept = folder.without({bad: "corrupt"})
    assert bad not in kept.paths and len(kept.paths) == len(kept.labels) == 5
    assert kept.skipped[bad] == "corrupt"
    assert kept.counts()["cat"] == 1
