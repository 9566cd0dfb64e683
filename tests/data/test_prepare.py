"""Preparing data: unusable files are found before training, reported, and handled as the user chose."""

from __future__ import annotations

import json
import logging

import pytest

from helpers import data_config
from imgcls.data.prepare import prepare_data
from imgcls.errors import ConfigError, DataError


@pytest.fixture
def messy_dataset(make_image_tree, tmp_path):
    """A dataset with one zero-byte file and one text file named .jpg in the training tree."""
    root = tmp_path / "messy"
    make_image_tree(root / "training_set", per_class=8, seed=1)
    make_image_tree(root / "test_set", per_class=2, seed=2)
    (root / "training_set" / "cat" / "empty.png").write_bytes(b"")
    (root / "training_set" / "dog" / "page.jpg").write_text("<html><body>404</body></html>")
    return root


def snapshot(root):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_skip_leaves_bad_files_out_reports_them_and_touches_nothing(messy_dataset, tmp_path, caplog):
    before = snapshot(messy_dataset)
    out = tmp_path / "run"
    out.mkdir()
    with caplog.at_level(logging.INFO):
        data = prepare_data(data_config(messy_dataset, tmp_path), seed=0, output_dir=out)

    assert snapshot(messy_dataset) == before
    used = set(data.train.paths) | set(data.val.paths) | set(data.test.paths)
    assert not any(p.endswith(("empty.png", "page.jpg")) for p in used)
    assert len(data.train) + len(data.val) == 24 and len(data.test) == 6

    report = json.loads((out / "data_report.json").read_text())
    skipped = {e["path"].rsplit("/", 1)[-1]: e["reason"] for e in report["trees"]["train"]["skipped"]}
    assert skipped["empty.png"].startswith("empty file")
    assert "page.jpg" in skipped
    assert report["trees"]["train"]["usable_per_class"] == {"cat": 8, "dog": 8, "zebra fish": 8}
    assert report["integrity_check"]["unusable"] == 2
    assert "empty.png" in caplog.text and "skipped" in caplog.text


def test_fail_stops_before_training_and_still_writes_the_report(messy_dataset, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with pytest.raises(DataError, match=r"(?s)2 unusable image file\(s\).*empty\.png"):
        prepare_data(data_config(messy_dataset, tmp_path, on_corrupt="fail"), seed=0, output_dir=out)
    assert json.loads((out / "data_report.json").read_text())["integrity_check"]["unusable"] == 2


def test_quarantine_moves_bad_files_out_of_the_tree_and_records_it(messy_dataset, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    quarantine = tmp_path / "quarantine"
    cfg = data_config(messy_dataset, tmp_path, on_corrupt="quarantine", quarantine_dir=str(quarantine))
    prepare_data(cfg, seed=0, output_dir=out)

    assert not (messy_dataset / "training_set" / "cat" / "empty.png").exists()
    assert (quarantine / "train" / "cat" / "empty.png").is_file()
    assert (quarantine / "train" / "dog" / "page.jpg").read_text().startswith("<html>")
    moves = json.loads((out / "data_report.json").read_text())["quarantined"]
    assert sorted(m["to"].rsplit("/", 1)[-1] for m in moves) == ["empty.png", "page.jpg"]


def test_quarantine_needs_a_folder_outside_the_trees(messy_dataset, tmp_path):
    with pytest.raises(ConfigError, match="quarantine_dir"):
        prepare_data(data_config(messy_dataset, tmp_path, on_corrupt="quarantine"), seed=0, output_dir=tmp_path)
    inside = messy_dataset / "training_set" / "quarantine"
    cfg = data_config(messy_dataset, tmp_path, on_corrupt="quarantine", quarantine_dir=str(inside))
    with pytest.raises(ConfigError, match="inside the class tree"):
        prepare_data(cfg, seed=0, output_dir=tmp_path)
    assert (messy_dataset / "training_set" / "cat" / "empty.png").exists()


def test_training_class_with_no_usable_image_is_an_error(make_image_tree, tmp_path):
    root = tmp_path / "d"
    make_image_tree(root / "training_set", per_class=4)
    make_image_tree(root / "test_set", per_class=1)
    (root / "training_set" / "broken").mkdir()
    (root / "training_set" / "broken" / "a.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"no usable image in class folder\(s\) \['broken'\]"):
        prepare_data(data_config(root, tmp_path), seed=0, output_dir=tmp_path)


def test_test_classes_missing_or_extra(make_image_tree, tmp_path, caplog):
    root = tmp_path / "d"
    make_image_tree(root / "training_set", per_class=4)
    make_image_tree(root / "test_set", per_class=1)
    for file in (root / "test_set" / "dog").iterdir():
        file.unlink()
    (root / "test_set" / "dog").rmdir()
    with caplog.at_level(logging.WARNING):
        data = prepare_data(data_config(root, tmp_path), seed=0, output_dir=tmp_path)
    assert data.class_names == ("cat", "dog", "zebra fish")
    assert "not in the test set" in caplog.text and "dog" in caplog.text
    assert json.loads((tmp_path / "data_report.json").read_text())["classes_only_in_train"] == ["dog"]

    (root / "test_set" / "lynx").mkdir()
    with pytest.raises(DataError, match=r"\['lynx'\].*not in the training set"):
        prepare_data(data_config(root, tmp_path), seed=0, output_dir=tmp_path)


def test_manifest_records_classes_counts_and_file_list_hashes(make_image_tree, tmp_path):
    root = tmp_path / "d"
    make_image_tree(root / "training_set", per_class=8)
    make_image_tree(root / "test_set", per_class=2)
    prepare_data(data_config(root, tmp_path), seed=3, output_dir=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["class_names"] == ["cat", "dog", "zebra fish"]
    assert manifest["class_index"] == {"cat": 0, "dog": 1, "zebra fish": 2}
    assert manifest["images_per_class"]["val"] == {"cat": 2, "dog": 2, "zebra fish": 2}
    assert manifest["images_per_class"]["test"] == {"cat": 2, "dog": 2, "zebra fish": 2}
    hashes = manifest["file_list_sha256"]

    prepare_data(data_config(root, tmp_path), seed=3, output_dir=tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text())["file_list_sha256"] == hashes
    prepare_data(data_config(root, tmp_path), seed=4, output_dir=tmp_path)
    again = json.loads((tmp_path / "manifest.json").read_text())["file_list_sha256"]
    assert again["val"] != hashes["val"] and again["test"] == hashes["test"]


def test_a_second_run_decodes_nothing(make_image_tree, tmp_path):
    root = tmp_path / "d"
    make_image_tree(root / "training_set", per_class=4)
    make_image_tree(root / "test_set", per_class=1)
    prepare_data(data_config(root, tmp_path), seed=0, output_dir=tmp_path)
    first = json.loads((tmp_path / "data_report.json").read_text())["integrity_check"]
    prepare_data(data_config(root, tmp_path), seed=0, output_dir=tmp_path)
    second = json.loads((tmp_path / "data_report.json").read_text())["integrity_check"]
    assert first["checked"] == 15 and second == {**first, "checked": 0, "from_cache": 15}
