"""data.on_corrupt=quarantine never writes inside a tree, and a move that cannot finish leaves the original (issue 12).

The file-system cases mount a tmpfs (read-only, or a second file system); they skip, with the
reason, where mounting is not permitted, and always unmount in teardown.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from imgcls.data import quarantine
from imgcls.data.prepare import prepare_data
from imgcls.errors import ConfigError

HTML = "<html><body>404</body></html>"


def data_config(root, tmp_path, quarantine_dir, train="training_set", test="test_set"):
    return OmegaConf.create(
        {
            "demo_root": str(tmp_path / "no-demo"),
            "train_dir": str(root / train),
            "test_dir": str(root / test),
            "val_split": 0.25,
            "on_corrupt": "quarantine",
            "quarantine_dir": str(quarantine_dir),
            "max_image_pixels": 89478485,
            "integrity_cache": str(tmp_path / "integrity.sqlite"),
        }
    )


def make_dataset(make_image_tree, root, train="training_set", test="test_set"):
    """Two trees under ``root``; one text file named .jpg in each (unusable)."""
    make_image_tree(root / train, per_class=4, seed=1)
    make_image_tree(root / test, per_class=2, seed=2)
    (root / train / "dog" / "page.jpg").write_text(HTML)
    (root / test / "cat" / "page.jpg").write_text(HTML)
    return root


def files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def report_of(out):
    return json.loads((out / "data_report.json").read_text())


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    return folder


@pytest.fixture
def tmpfs():
    """``tmpfs(path, size="8m", read_only=False)`` mounts a fresh tmpfs at ``path``; unmounted in teardown."""
    mounted = []

    def run(*args):
        return subprocess.run(args, capture_output=True, text=True)

    def mount(path, size="8m"):
        if not sys.platform.startswith("linux") or shutil.which("mount") is None:
            pytest.skip("needs Linux mount(8) to make a tmpfs")
        path.mkdir(parents=True, exist_ok=True)
        done = run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
        if done.returncode:
            pytest.skip(f"mounting a tmpfs is not permitted here ({done.stderr.strip()}); needs CAP_SYS_ADMIN")
        mounted.append(path)
        return path

    def make_read_only(path):
        done = run("mount", "-o", "remount,ro", str(path))
        if done.returncode:
            pytest.skip(f"remounting a tmpfs read-only is not permitted here ({done.stderr.strip()})")

    mount.make_read_only = make_read_only
    yield mount
    for path in reversed(mounted):
        run("umount", "-l", str(path))


def test_quarantine_dir_whose_subfolders_are_the_trees_is_refused_before_anything_moves(make_image_tree, tmp_path, out):
    # The reported case: quarantine_dir is the parent of train/ and test/, so <dir>/test/... is the test tree.
    root = make_dataset(make_image_tree, tmp_path / "d", train="train", test="test")
    before = files(root)
    cfg = data_config(root, tmp_path, quarantine_dir=root, train="train", test="test")

    with pytest.raises(ConfigError, match=rf"quarantine_dir={root}.*inside the class tree {root / 'train'}"):
        prepare_data(cfg, seed=0, output_dir=out)

    assert files(root) == before, "nothing was moved or renamed"


def test_parent_of_trees_with_other_names_is_a_valid_quarantine_dir(make_image_tree, tmp_path, out):
    root = make_dataset(make_image_tree, tmp_path / "d")
    prepare_data(data_config(root, tmp_path, quarantine_dir=root), seed=0, output_dir=out)
    assert (root / "train" / "dog" / "page.jpg").read_text() == HTML
    assert (root / "test" / "cat" / "page.jpg").read_text() == HTML
    assert not (root / "training_set" / "dog" / "page.jpg").exists()
    assert len(report_of(out)["quarantined"]) == 2


def test_destination_reaching_into_a_tree_through_a_symlink_is_refused_per_file(make_image_tree, tmp_path, out):
    root = make_dataset(make_image_tree, tmp_path / "d")
    q = tmp_path / "q"
    (q / "train").mkdir(parents=True)
    (q / "train" / "dog").symlink_to(root / "training_set" / "dog", target_is_directory=True)
    before = files(root / "training_set")

    data = prepare_data(data_config(root, tmp_path, quarantine_dir=q), seed=0, output_dir=out)

    assert files(root / "training_set") == before, "no file renamed or written inside the training tree"
    report = report_of(out)
    [kept] = report["not_quarantined"]
    assert kept["path"] == str(root / "training_set" / "dog" / "page.jpg")
    assert "inside the class tree" in kept["why_not_moved"]
    assert [m["from"] for m in report["quarantined"]] == [str(root / "test_set" / "cat" / "page.jpg")]
    assert not any(p.endswith("page.jpg") for p in data.train.paths + data.val.paths), "left out as with skip"


def test_read_only_source_leaves_the_original_and_no_copy(make_image_tree, tmp_path, out, tmpfs):
    root = make_dataset(make_image_tree, tmpfs(tmp_path / "ro"))
    tmpfs.make_read_only(root)
    before = files(root)
    q = tmp_path / "q"

    data = prepare_data(data_config(root, tmp_path, quarantine_dir=q), seed=0, output_dir=out)

    assert files(root) == before
    assert not q.exists() or files(q) == {}, "no stray copy in the quarantine folder"
    report = report_of(out)
    assert report["quarantined"] == []
    assert sorted(e["path"] for e in report["not_quarantined"]) == [
        str(root / "test_set" / "cat" / "page.jpg"),
        str(root / "training_set" / "dog" / "page.jpg"),
    ]
    assert all("Read-only file system" in e["why_not_moved"] for e in report["not_quarantined"])
    assert len(data.train) + len(data.val) == 12 and len(data.test) == 6, "training goes on as with skip"


def test_move_between_file_systems_copies_verifies_then_removes(make_image_tree, tmp_path, out, tmpfs):
    root = make_dataset(make_image_tree, tmp_path / "d")
    q = tmpfs(tmp_path / "other-fs")

    prepare_data(data_config(root, tmp_path, quarantine_dir=q), seed=0, output_dir=out)

    assert not (root / "training_set" / "dog" / "page.jpg").exists()
    assert files(q) == {
        (q / "train" / "dog" / "page.jpg").relative_to(q): HTML.encode(),
        (q / "test" / "cat" / "page.jpg").relative_to(q): HTML.encode(),
    }, "each file arrived whole, with no temporary copy left"
    assert report_of(out)["not_quarantined"] == []


def test_full_disk_leaves_the_original_and_no_partial_copy(make_image_tree, tmp_path, out, tmpfs):
    root = make_dataset(make_image_tree, tmp_path / "d")
    big = root / "training_set" / "cat" / "big.jpg"
    big.write_bytes(b"not a jpeg" * 40_000)  # 400 kB, more than the quarantine file system holds
    before = files(root)
    q = tmpfs(tmp_path / "small-fs", size="64k")

    prepare_data(data_config(root, tmp_path, quarantine_dir=q), seed=0, output_dir=out)

    assert files(root)[big.relative_to(root)] == before[big.relative_to(root)]
    assert not any(p.name.startswith(".big.jpg") or p.name == "big.jpg" for p in q.rglob("*"))
    [kept] = report_of(out)["not_quarantined"]
    assert kept["path"] == str(big) and "No space left" in kept["why_not_moved"]


def test_copy_that_does_not_match_is_removed_and_the_original_kept(tmp_path, monkeypatch):
    source = tmp_path / "tree" / "cat" / "bad.jpg"
    source.parent.mkdir(parents=True)
    source.write_text(HTML)
    target = tmp_path / "q" / "train" / "cat" / "bad.jpg"
    real_rename = quarantine.os.rename

    def cross_device_first(src, dst):
        if str(src) == str(source):
            raise OSError(quarantine.errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst)

    hashes = iter([(len(HTML), "a"), (len(HTML), "b")])
    monkeypatch.setattr(quarantine.os, "rename", cross_device_first)
    monkeypatch.setattr(quarantine, "_sha256", lambda path: next(hashes))

    with pytest.raises(OSError, match="does not match"):
        quarantine.move_file(str(source), target)

    assert source.read_text() == HTML
    assert not (tmp_path / "q").exists(), "the copy and the folders made for it are gone"
