"""tf.data input pipelines: parallel decode and resize, cache, shuffle, augment, mix, prefetch."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from imgcls.data.split import Subset

AUTOTUNE = tf.data.AUTOTUNE
CACHE_MODES = ("none", "memory")


def decode_rgb(contents: tf.Tensor) -> tf.Tensor:
    """Decode JPEG/PNG/BMP/GIF (first frame)/WebP bytes of any colour mode to a uint8 RGB image."""
    image = tf.io.decode_image(contents, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def decode_image(contents: tf.Tensor, image_size: int) -> tf.Tensor:
    """Decode image bytes to RGB and resize to a float32 0-255 square (see :func:`decode_rgb`)."""
    image = tf.image.resize(decode_rgb(contents), [image_size, image_size], method="bilinear", antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def load_image(path: tf.Tensor, image_size: int) -> tf.Tensor:
    """Read one file and return it as a resized float32 0-255 RGB image."""
    return decode_image(tf.io.read_file(path), image_size)


def make_dataset(
    subset: Subset,
    *,
    num_classes: int,
    image_size: int,
    batch_size: int,
    training: bool,
    cache: str = "memory",
    shuffle_buffer: int = 2048,
    augment: Callable | None = None,
    mix: Callable | None = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of (float32 images 0-255, one-hot float32 labels).

    Training batches are shuffled (the file order too, so a small buffer still mixes classes),
    augmented and mixed; evaluation batches keep the file order and are never augmented.
    """
    if cache not in CACHE_MODES:
        raise ValueError(f"data.cache must be one of {CACHE_MODES}, got {cache!r}")
    paths = np.asarray(subset.paths)
    labels = np.asarray(subset.labels, dtype=np.int32)
    if training:
        order = np.random.default_rng(seed).permutation(len(paths))
        paths, labels = paths[order], labels[order]

    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    ds = ds.map(
        lambda path, label: (tf.cast(tf.round(load_image(path, image_size)), tf.uint8), label),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    if cache == "memory":
        ds = ds.cache()
    if training:
        ds = ds.shuffle(min(shuffle_buffer, len(paths)), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, num_parallel_calls=AUTOTUNE)
    ds = ds.map(
        lambda images, label: (tf.cast(images, tf.float32), tf.one_hot(label, num_classes, dtype=tf.float32)),
        num_parallel_calls=AUTOTUNE,
    )
    if training and augment is not None:
        ds = ds.map(lambda images, y: (augment(images, training=True), y), num_parallel_calls=AUTOTUNE)
    if training and mix is not None:
        ds = ds.map(lambda images, y: _mixed(mix, images, y), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def _mixed(mix: Callable, images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    out = mix({"images": images, "labels": labels}, training=True)
    return out["images"], out["labels"]
