"""tf.data input pipelines: parallel decode and resize, cache, shuffle, augment, mix, prefetch."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from imgcls.data.split import Subset
from imgcls.errors import ConfigError

AUTOTUNE = tf.data.AUTOTUNE
CACHE_MODES = ("none", "memory", "disk")
FILE_ORDER_SEED = 0


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


def disk_cache_prefix(cache_dir: str | Path, subset: Subset, image_size: int, name: str) -> Path:
    """A tf.data cache file prefix that changes whenever the files, their labels or the image size change."""
    digest = hashlib.sha256(f"{image_size}".encode())
    for path, label in zip(subset.paths, subset.labels):
        stat = os.stat(path)
        digest.update(f"\n{path}\t{label}\t{stat.st_size}\t{stat.st_mtime_ns}".encode("utf-8", "surrogateescape"))
    return Path(cache_dir).expanduser() / f"{name}-{image_size}px-{digest.hexdigest()[:16]}"


def make_dataset(
    subset: Subset,
    *,
    num_classes: int,
    image_size: int,
    batch_size: int,
    training: bool,
    cache: str = "memory",
    cache_dir: str | Path | None = None,
    name: str = "data",
    shuffle_buffer: int = 2048,
    augment: Callable | None = None,
    mix: Callable | None = None,
    class_weights: np.ndarray | None = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of (float32 images 0-255, one-hot float32 labels[, per-example weights]).

    Images are decoded and resized in parallel, then cached as uint8 (``cache``: none, memory,
    or disk files under ``cache_dir``). Training batches are shuffled (the file order too, so a
    small buffer still mixes classes), augmented, mixed, and weighted by ``class_weights`` when
    given; evaluation batches keep the file order and are never augmented.
    """
    if cache not in CACHE_MODES:
        raise ConfigError(f"data.cache must be one of {CACHE_MODES}, got {cache!r}.")
    paths = np.asarray(subset.paths)
    labels = np.asarray(subset.labels, dtype=np.int32)
    if training:
        # A fixed permutation, not the run's seed, so a disk cache serves every seed of a sweep.
        order = np.random.default_rng(FILE_ORDER_SEED).permutation(len(paths))
        paths, labels = paths[order], labels[order]

    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    ds = ds.map(
        lambda path, label: (tf.cast(tf.round(load_image(path, image_size)), tf.uint8), label),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    if cache == "memory":
        ds = ds.cache()
    elif cache == "disk":
        if cache_dir is None:
            raise ConfigError("data.cache=disk needs data.cache_dir.")
        prefix = disk_cache_prefix(cache_dir, subset, image_size, name)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        ds = ds.cache(str(prefix))
    if training:
        ds = ds.shuffle(max(1, min(shuffle_buffer, len(paths))), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, num_parallel_calls=AUTOTUNE)
    ds = ds.map(
        lambda images, label: (tf.cast(images, tf.float32), tf.one_hot(label, num_classes, dtype=tf.float32)),
        num_parallel_calls=AUTOTUNE,
    )
    if training and augment is not None:
        ds = ds.map(lambda images, y: (augment(images, training=True), y), num_parallel_calls=AUTOTUNE)
    if training and mix is not None:
        ds = ds.map(lambda images, y: _mixed(mix, images, y), num_parallel_calls=AUTOTUNE)
    if training and class_weights is not None:
        weights = tf.constant(class_weights, tf.float32)
        ds = ds.map(lambda images, y: (images, y, tf.linalg.matvec(y, weights)), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def _mixed(mix: Callable, images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    out = mix({"images": images, "labels": labels}, training=True)
    return out["images"], out["labels"]
