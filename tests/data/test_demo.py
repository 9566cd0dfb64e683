"""The built-in demo dataset is the real digits data, written once as a stratified PNG tree."""

from __future__ import annotations

import numpy as np
from PIL import Image

from imgcls.data.demo import ensure_digits_dataset
from imgcls.data.scan import scan_image_folder


def test_digits_tree_is_written_once_and_stratified(tmp_path):
    root = ensure_digits_dataset(tmp_path / "digits")
    train = scan_image_folder(root / "training_set")
    test = scan_image_folder(root / "test_set", train.class_names)

    assert train.class_names == tuple(str(d) for d in range(10))
    assert len(train.paths) + len(test.paths) == 1797
    assert len(test.paths) == 360
    share = np.bincount(test.labels) / np.bincount(train.labels)
    assert np.allclose(share, 0.25, atol=0.03)
    assert set(map(lambda p: p.split("/")[-1], train.paths)).isdisjoint(p.split("/")[-1] for p in test.paths)
    with Image.open(train.paths[0]) as image:
        assert image.size == (8, 8) and image.getextrema()[1] > 200

    stamp = (root / "training_set" / "0").stat().st_mtime_ns
    assert ensure_digits_dataset(root) == root
    assert (root / "training_set" / "0").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".digits-")]
