"""A file gets its own class or none: symlinks never move images between classes (issue 12)."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from imgcls.data.prepare import prepare_data
from imgcls.data.scan import scan_image_folder

NOT_FOLLOWED = "symlink leads out of its class folder"


def data_config(root, tmp_path):
    return OmegaConf.create(
        {
            "demo_root": str(tmp_path / "no-demo"),
            "train_dir": str(root / "training_set"),
            "test_dir": str(root / "test_set"),
            "val_split": 0.25,
            "on_corrupt": "skip",
            "quarantine_dir": None,
            "max_image_pixels": 89478485,
            "integrity_cache": str(tmp_path / "integrity.sqlite"),
        }
    )


def labelled(folder):
    return {path: folder.class_names[label] for path, label in zip(folder.paths, folder.labels)}


def test_link_to_the_tree_root_labels_nothing_and_is_reported(make_image_tree, tmp_path):
    root = make_image_tree(tmp_path / "train", per_class=4)
    loop = root / "dog" / "loop"
    loop.symlink_to("..", target_is_directory=True)

    folder = scan_image_folder(root)

    assert folder.counts() == {"cat": 4, "dog": 4, "zebra fish": 4}
    assert all(f"/{cls}/img_" in path and "/loop/" not in path for path, cls in labelled(folder).items())
    assert folder.skipped[str(loop)].startswith(NOT_FOLLOWED)


def test_link_to_an_ancestor_of_the_tree_is_not_followed(make_image_tree, tmp_path):
    root = make_image_tree(tmp_path / "data" / "train", per_class=2)
    (root / "cat" / "up").symlink_to(tmp_path, target_is_directory=True)
    folder = scan_image_folder(root)
    assert folder.counts() == {"cat": 2, "dog": 2, "zebra fish": 2}
    assert folder.skipped[str(root / "cat" / "up")].startswith(NOT_FOLLOWED)


@pytest.mark.parametrize("source, other", [("cat", "zebra fish"), ("zebra fish", "cat")])
def test_link_to_another_class_folder_or_file_is_skipped(make_image_tree, tmp_path, source, other):
    root = make_image_tree(tmp_path / "train", per_class=3)
    (root / source / "borrowed").symlink_to(root / other, target_is_directory=True)
    (root / source / "one.png").symlink_to(root / other / "img_000.png")

    folder = scan_image_folder(root)

    assert folder.counts() == {"cat": 3, "dog": 3, "zebra fish": 3}
    assert all(f"/{cls}/img_" in path for path, cls in labelled(folder).items())
    for name in ("borrowed", "one.png"):
        reason = folder.skipped[str(root / source / name)]
        assert reason.startswith(NOT_FOLLOWED) and f"class {other}/" in reason


def test_links_inside_the_own_class_are_followed_once(make_image_tree, tmp_path):
    root = make_image_tree(tmp_path / "train", per_class=2)
    dog = root / "dog"
    (dog / "sub").mkdir()
    (dog / "img_001.png").rename(dog / "sub" / "img_001.png")
    (dog / "sub" / "back").symlink_to("..", target_is_directory=True)  # up, but still inside dog/
    (dog / "zz_alias.png").symlink_to(dog / "img_000.png")
    (dog / "zz_shortcut").symlink_to(dog / "sub", target_is_directory=True)

    folder = scan_image_folder(root)

    assert folder.counts()["dog"] == 2
    dog_paths = [p for p, cls in labelled(folder).items() if cls == "dog"]
    assert sorted(p.rsplit("/", 1)[-1] for p in dog_paths) == ["img_000.png", "img_001.png"]
    assert folder.skipped[str(dog / "zz_alias.png")].startswith("same file as")
    assert not any(r.startswith(NOT_FOLLOWED) for r in folder.skipped.values())


def test_links_out_of_the_tree_are_still_followed(make_image_tree, tmp_path):
    root = make_image_tree(tmp_path / "train", per_class=1)
    extra = make_image_tree(tmp_path / "store", per_class=2)
    (root / "cat" / "more").symlink_to(extra / "cat", target_is_directory=True)
    (root / "dog" / "extra.png").symlink_to(extra / "dog" / "img_001.png")
    assert scan_image_folder(root).counts() == {"cat": 3, "dog": 2, "zebra fish": 1}


def test_a_test_tree_link_loop_is_reported_in_data_report(make_image_tree, tmp_path):
    root = tmp_path / "d"
    make_image_tree(root / "training_set", per_class=4, seed=1)
    make_image_tree(root / "test_set", per_class=2, seed=2)
    (root / "test_set" / "dog" / "loop").symlink_to("..", target_is_directory=True)
    out = tmp_path / "run"
    out.mkdir()

    data = prepare_data(data_config(root, tmp_path), seed=0, output_dir=out)

    assert len(data.test) == 6
    report = json.loads((out / "data_report.json").read_text())
    assert report["trees"]["test"]["usable_per_class"] == {"cat": 2, "dog": 2, "zebra fish": 2}
    skipped = {e["path"]: e["reason"] for e in report["trees"]["test"]["skipped"]}
    assert skipped[str(root / "test_set" / "dog" / "loop")].startswith(NOT_FOLLOWED)
