"""tf.data pipelines: every common format decodes to RGB; training batches are augmented and mixed."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from imgcls.data.augment import BatchAugmentation, build_augmenter, build_mixer
from imgcls.data.pipeline import load_image, make_dataset, xla_compiled
from imgcls.data.split import Subset


def save(image: Image.Image, path, **kwargs):
    image.save(path, **kwargs)
    return str(path)


@pytest.fixture
def format_zoo(tmp_path):
    red = Image.new("RGB", (20, 10), (255, 0, 0))
    gif = [Image.new("P", (20, 10), 0), Image.new("P", (20, 10), 1)]
    for frame in gif:
        frame.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    return {
        "jpeg": save(red, tmp_path / "a.jpg", quality=95),
        "png": save(red, tmp_path / "a.png"),
        "bmp": save(red, tmp_path / "a.bmp"),
        "gif": save(gif[0], tmp_path / "a.gif", save_all=True, append_images=gif[1:]),
        "grayscale png": save(Image.new("L", (20, 10), 128), tmp_path / "g.png"),
        "rgba png": save(Image.new("RGBA", (20, 10), (255, 0, 0, 255)), tmp_path / "rgba.png"),
    }


def test_every_format_decodes_to_resized_rgb(format_zoo):
    for name, path in format_zoo.items():
        image = load_image(tf.constant(path), 16).numpy()
        assert image.shape == (16, 16, 3), name
        assert image.dtype == np.float32 and 0.0 <= image.min() and image.max() <= 255.0, name
        if name == "grayscale png":
            assert np.allclose(image, 128, atol=1)
        else:  # red, and the GIF's first frame (red), not its second (blue)
            assert image[..., 0].mean() > 240 and image[..., 2].mean() < 15, name


def subset(paths, labels):
    return Subset(tuple(paths), np.asarray(labels))


def test_evaluation_batches_keep_order_and_one_hot_labels(format_zoo):
    paths = [format_zoo["png"], format_zoo["grayscale png"], format_zoo["bmp"]]
    ds = make_dataset(subset(paths, [2, 0, 1]), num_classes=3, image_size=8, batch_size=2, training=False)
    images, labels = zip(*ds.as_numpy_iterator())
    assert [len(b) for b in images] == [2, 1]
    assert np.array_equal(np.concatenate(labels).argmax(1), [2, 0, 1])
    assert np.allclose(np.concatenate(images)[1], 128, atol=1)


def test_training_batches_are_mixed_with_soft_labels(make_image_tree, tmp_path):
    from imgcls.data.scan import scan_image_folder

    folder = scan_image_folder(make_image_tree(tmp_path / "t", per_class=8))
    mix = build_mixer({"_target_": "keras.layers.MixUp", "alpha": 0.4})
    augment = build_augmenter([{"_target_": "keras.layers.RandomFlip", "mode": "horizontal"}])
    ds = make_dataset(
        subset(folder.paths, folder.labels),
        num_classes=3,
        image_size=16,
        batch_size=8,
        training=True,
        batch_augmentation=BatchAugmentation(augment, mix),
        seed=1,
    )
    images, labels = next(iter(ds))
    assert images.shape == (8, 16, 16, 3) and images.dtype == tf.float32
    assert np.allclose(labels.numpy().sum(axis=1), 1.0, atol=1e-5)
    assert (labels.numpy().max(axis=1) < 0.999).any(), "MixUp should blend some labels"
    first_epoch = np.concatenate([y.numpy() for _, y in ds]).sum(0)
    assert np.allclose(first_epoch.sum(), 24, atol=1e-3)


def tiny_subset(make_image_tree, root, per_class=4):
    from imgcls.data.scan import scan_image_folder

    folder = scan_image_folder(make_image_tree(root, per_class=per_class))
    return subset(folder.paths, folder.labels)


def test_disk_cache_is_written_reused_and_keyed_by_the_files(make_image_tree, tmp_path):
    data = tiny_subset(make_image_tree, tmp_path / "t")
    options = dict(num_classes=3, image_size=8, batch_size=4, training=False, cache="disk", cache_dir=tmp_path / "c")
    first = np.concatenate([x for x, _ in make_dataset(data, name="val", **options).as_numpy_iterator()])
    (index,) = (tmp_path / "c").glob("val-8px-*.index")

    again = np.concatenate([x for x, _ in make_dataset(data, name="val", **options).as_numpy_iterator()])
    np.testing.assert_array_equal(first, again)
    assert list((tmp_path / "c").glob("*.index")) == [index]

    Image.new("RGB", (40, 40), (0, 0, 0)).save(data.paths[0])
    changed = np.concatenate([x for x, _ in make_dataset(data, name="val", **options).as_numpy_iterator()])
    assert len(list((tmp_path / "c").glob("*.index"))) == 2, "a changed file means a new cache, not stale images"
    assert changed[0].max() < 1 and first[0].max() > 100


def test_class_weights_weight_each_example_by_its_label(make_image_tree, tmp_path):
    data = tiny_subset(make_image_tree, tmp_path / "t", per_class=2)
    ds = make_dataset(
        data,
        num_classes=3,
        image_size=8,
        batch_size=6,
        training=True,
        seed=0,
        batch_augmentation=BatchAugmentation(
            mix=build_mixer({"_target_": "keras.layers.MixUp", "alpha": 0.4}), class_weights=np.array([1.0, 2.0, 3.0])
        ),
    )
    images, labels, weights = next(iter(ds))
    np.testing.assert_allclose(weights.numpy(), labels.numpy() @ np.array([1.0, 2.0, 3.0]), rtol=1e-6)


def test_unknown_cache_mode_is_a_config_error(make_image_tree, tmp_path):
    from imgcls.errors import ConfigError

    data = tiny_subset(make_image_tree, tmp_path / "t", per_class=1)
    with pytest.raises(ConfigError, match="data.cache"):
        make_dataset(data, num_classes=3, image_size=8, batch_size=2, training=False, cache="ssd")


def test_large_shrinks_are_antialiased_and_small_ones_are_not(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    large = load_image(tf.constant(save(Image.fromarray(noise), tmp_path / "large.png")), 8).numpy()
    assert large.std() < 20, "an 8x shrink averages 8x8 blocks of noise"
    assert tf.image.resize(noise, [8, 8], method="bilinear").numpy().std() > 30, "plain bilinear would not"
    near = noise[:20, :20]  # 2.5x: plain bilinear still reads enough of the pixels
    small = load_image(tf.constant(save(Image.fromarray(near), tmp_path / "near.png")), 8).numpy()
    assert np.allclose(small, tf.image.resize(near, [8, 8], method="bilinear").numpy(), atol=1e-3)


def test_xla_compiled_augmentation_keeps_what_each_layer_does():
    image = np.tile(np.arange(16, dtype=np.float32)[None, :, None], (16, 1, 3)) * 10.0
    images = tf.constant(np.stack([image] * 8))
    policy = keras.Sequential([keras.layers.RandomFlip("horizontal", seed=1), keras.layers.RandomRotation(0.0)])
    compiled = xla_compiled(policy, 16)
    assert compiled is not policy
    for out in (compiled(images, training=True), next(iter(tf.data.Dataset.from_tensors(images).map(compiled)))):
        out = out.numpy()
        flipped = [np.allclose(o, image[:, ::-1]) for o in out]
        assert all(f or np.allclose(o, image) for f, o in zip(flipped, out)), "each image kept or mirrored"
        assert 0 < sum(flipped) < len(out)


def test_augmentation_xla_cannot_compile_is_left_as_it_is():
    policy = keras.Sequential([keras.layers.RandomRotation(0.1, seed=1)])  # ImageProjectiveTransformV3: no XLA
    assert xla_compiled(policy, 16) is policy


def test_autotuner_buffers_have_a_budget_that_follows_the_batch(make_image_tree, tmp_path):
    data = tiny_subset(make_image_tree, tmp_path / "t")
    small = make_dataset(data, num_classes=3, image_size=16, batch_size=4, training=True)
    large = make_dataset(data, num_classes=3, image_size=224, batch_size=256, training=False)
    assert small.options().autotune.ram_budget == 256 * 2**20
    assert large.options().autotune.ram_budget == 16 * 256 * 224 * 224 * 3 * 4  # 16 batches of 154 MB


def test_uncached_training_shuffles_all_files_and_yields_what_the_cache_would(make_image_tree, tmp_path):
    data = tiny_subset(make_image_tree, tmp_path / "t", per_class=6)

    def epochs(cache, seed=1):
        ds = make_dataset(data, num_classes=3, image_size=16, batch_size=4, training=True, cache=cache, seed=seed)
        return [np.concatenate([images.numpy() for images, _ in ds]) for _ in range(2)]

    uncached, cached = epochs("none"), epochs("memory")
    assert uncached[0].dtype == cached[0].dtype == np.uint8, "unaugmented batches stay uint8 until the model"
    fingerprint = lambda images: sorted(images.reshape(len(images), -1).sum(axis=1).tolist())  # noqa: E731
    assert fingerprint(uncached[0]) == fingerprint(uncached[1]) == fingerprint(cached[0]), "each file once per epoch"
    assert not np.array_equal(uncached[0], uncached[1]), "a new order every epoch"
    assert np.array_equal(epochs("none")[0], uncached[0]), "the same order for the same seed"
