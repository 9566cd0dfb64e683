"""Train/test overlap and duplicates: test images that are training images are found, reported, and can stop a run."""

from __future__ import annotations

import json
import logging
import os
import shutil

import pytest

from helpers import data_config
from imgcls.data.integrity import check_images
from imgcls.data.overlap import find_overlap
from imgcls.data.prepare import prepare_data
from imgcls.errors import ConfigError, DataError


@pytest.fixture
def leaky_dataset(make_image_tree, tmp_path):
    """Training image cat/img_000.png copied into the test tree, and duplicated inside the training tree."""
    root = tmp_path / "leaky"
    make_image_tree(root / "training_set", per_class=6, seed=1)
    make_image_tree(root / "test_set", per_class=2, seed=2)
    source = root / "training_set" / "cat" / "img_000.png"
    shutil.copy(source, root / "test_set" / "cat" / "copied.png")
    shutil.copy(source, root / "training_set" / "dog" / "also_a_cat.png")
    return root


def run_dir(tmp_path, name="run"):
    out = tmp_path / name
    out.mkdir()
    return out


def test_a_test_image_copied_from_training_is_warned_about_and_listed(leaky_dataset, tmp_path, caplog):
    out = run_dir(tmp_path)
    with caplog.at_level(logging.WARNING):
        prepare_data(data_config(leaky_dataset, tmp_path), seed=0, output_dir=out)

    train = str(leaky_dataset / "training_set" / "cat" / "img_000.png")
    copied = str(leaky_dataset / "test_set" / "cat" / "copied.png")
    duplicate = str(leaky_dataset / "training_set" / "dog" / "also_a_cat.png")
    overlap = json.loads((out / "data_report.json").read_text())["overlap"]
    assert overlap["test_files_in_training_set"] == 1
    assert overlap["shared"] == [{"test": copied, "train": train, "how": "identical content"}]
    assert overlap["training_duplicate_groups"] == 1
    assert overlap["training_duplicates"] == [[train, duplicate]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("1 test file(s) are also in the training set" in w and copied in w for w in warnings)
    assert any("1 group(s) of identical files in the training set" in w and duplicate in w for w in warnings)


def test_on_overlap_fail_stops_with_one_line_naming_the_file(leaky_dataset, tmp_path):
    out = run_dir(tmp_path)
    with pytest.raises(DataError) as raised:
        prepare_data(data_config(leaky_dataset, tmp_path, on_overlap="fail"), seed=0, output_dir=out)
    message = str(raised.value)
    assert "\n" not in message
    assert "data.on_overlap=fail" in message and "copied.png" in message
    assert (out / "data_report.json").exists()  # the full list is written before the run stops


def test_fail_without_overlap_goes_on(make_image_tree, tmp_path):
    root = tmp_path / "clean"
    make_image_tree(root / "training_set", per_class=4, seed=1)
    make_image_tree(root / "test_set", per_class=2, seed=2)
    out = run_dir(tmp_path)
    prepare_data(data_config(root, tmp_path, on_overlap="fail"), seed=0, output_dir=out)
    overlap = json.loads((out / "data_report.json").read_text())["overlap"]
    assert overlap["test_files_in_training_set"] == 0 and overlap["training_duplicate_groups"] == 0


def test_a_bad_on_overlap_value_is_a_config_error(leaky_dataset, tmp_path):
    with pytest.raises(ConfigError, match=r"data\.on_overlap=stop is not one of warn, fail"):
        prepare_data(data_config(leaky_dataset, tmp_path, on_overlap="stop"), seed=0, output_dir=tmp_path)


def test_the_same_folder_for_train_and_test_is_an_error(make_image_tree, tmp_path):
    root = tmp_path / "one"
    make_image_tree(root / "training_set", per_class=4, seed=1)
    os.symlink(root / "training_set", root / "test_set")  # the same folder once symlinks are resolved
    with pytest.raises(DataError, match=r"data.train_dir and data.test_dir are the same folder"):
        prepare_data(data_config(root, tmp_path), seed=0, output_dir=tmp_path)


def test_a_test_file_linked_to_a_training_file_is_the_same_file(make_image_tree, tmp_path):
    root = tmp_path / "linked"
    make_image_tree(root / "training_set", per_class=2, seed=1)
    make_image_tree(root / "test_set", per_class=1, seed=2)
    train = root / "training_set" / "dog" / "img_001.png"
    os.symlink(train, root / "test_set" / "dog" / "link.png")
    found = find_overlap([str(train)], [str(root / "test_set" / "dog" / "link.png")], digests={})
    assert found.shared == [(str(root / "test_set" / "dog" / "link.png"), str(train), "same file")]


def test_content_hashes_come_from_the_cache_on_a_second_run(leaky_dataset, tmp_path, caplog, monkeypatch):
    prepare_data(data_config(leaky_dataset, tmp_path), seed=0, output_dir=run_dir(tmp_path, "first"))

    def no_reading(*args, **kwargs):
        raise AssertionError("a file unchanged since the first scan was read again")

    import imgcls.data.integrity as integrity

    monkeypatch.setattr(integrity, "_problem", no_reading)
    out = run_dir(tmp_path, "second")
    with caplog.at_level(logging.INFO):
        prepare_data(data_config(leaky_dataset, tmp_path), seed=0, output_dir=out)
    files = len(list((leaky_dataset).rglob("*.png")))
    assert f"{files} files, 0 checked, {files} unchanged since an earlier check" in caplog.text
    assert json.loads((out / "data_report.json").read_text())["overlap"]["test_files_in_training_set"] == 1


def test_check_images_returns_the_sha256_of_each_usable_file(leaky_dataset, tmp_path):
    import hashlib

    paths = [str(p) for p in sorted(leaky_dataset.rglob("*.png"))]
    (leaky_dataset / "training_set" / "cat" / "empty.png").write_bytes(b"")
    paths.append(str(leaky_dataset / "training_set" / "cat" / "empty.png"))
    for cache in (tmp_path / "c.sqlite", tmp_path / "c.sqlite", None):  # fresh, cached, no cache
        result = check_images(paths, cache_path=cache, progress=False)
        assert set(result.digests) == set(paths[:-1])
        assert all(result.digests[p] == hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths[:-1])
