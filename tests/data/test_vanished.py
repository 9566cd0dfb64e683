"""Files that vanish or change after the data scan end a run with one clear line naming them, never a traceback."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from imgcls.data.integrity import check_images, files_checked_again_on_read_error
from imgcls.data.pipeline import disk_cache_prefix, make_dataset
from imgcls.data.scan import scan_image_folder
from imgcls.data.split import whole
from imgcls.errors import DataError
from imgcls.predict import predict_files


@pytest.fixture
def checked(make_image_tree, tmp_path):
    """A 3-class tree of 4 images a class, scanned and checked with an integrity cache."""
    tree = scan_image_folder(make_image_tree(tmp_path / "train", per_class=4, seed=3))
    cache = tmp_path / "integrity.sqlite"
    assert not check_images(tree.paths, cache_path=cache, progress=False).problems
    return whole(tree), cache


def iterate(subset, cache_path, dataset):
    with files_checked_again_on_read_error(subset.paths, doing="training", cache_path=cache_path):
        for _ in dataset:
            pass


@pytest.mark.parametrize("cache", ["none", "memory", "disk"])
def test_a_file_deleted_after_the_scan_is_one_line_naming_it(checked, tmp_path, cache):
    subset, integrity_cache = checked
    dataset = make_dataset(
        subset, num_classes=3, image_size=16, batch_size=4, training=True, cache=cache, cache_dir=tmp_path / "tfdata"
    )
    gone = subset.paths[5]
    (tmp_path / "train" / gone.split("/train/")[1]).unlink()
    with pytest.raises(DataError) as raised:
        iterate(subset, integrity_cache, dataset)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("1 image file(s) vanished or changed since the data scan, while training: ")
    assert gone in message


def test_a_file_overwritten_after_the_scan_is_named_with_its_reason(checked):
    subset, integrity_cache = checked
    changed = subset.paths[2]
    with open(changed, "w") as stream:
        stream.write("<html>not an image any more</html>")
    dataset = make_dataset(subset, num_classes=3, image_size=16, batch_size=4, training=False, cache="none")
    with pytest.raises(DataError, match=rf"{changed}: not an image TensorFlow can decode"):
        iterate(subset, integrity_cache, dataset)


def test_a_file_deleted_before_the_disk_cache_is_named(checked, tmp_path):
    subset, _ = checked
    gone = subset.paths[0]
    tf.io.gfile.remove(gone)
    with pytest.raises(DataError, match=rf"^{gone}: No such file or directory \(vanished since the data scan\)"):
        disk_cache_prefix(tmp_path / "tfdata", subset, 16, "train")


def test_other_errors_pass_through_unchanged(checked):
    subset, integrity_cache = checked
    with pytest.raises(tf.errors.InvalidArgumentError, match="a shape mismatch"):
        with files_checked_again_on_read_error(subset.paths, doing="training", cache_path=integrity_cache):
            raise tf.errors.InvalidArgumentError(None, None, "a shape mismatch")


def test_prediction_shares_the_same_handling(checked):
    subset, _ = checked
    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))
    assert predict_files(model, subset.paths, batch_size=4, progress=False).shape == (len(subset), 3)
    gone = subset.paths[-1]
    tf.io.gfile.remove(gone)
    with pytest.raises(DataError, match=rf"while predicting: {gone}: unreadable"):
        predict_files(model, subset.paths, batch_size=4, progress=False)
    assert np.isfinite(predict_files(model, subset.paths[:-1], batch_size=4, progress=False)).all()
