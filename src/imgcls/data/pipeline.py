"""tf.data input pipelines: parallel decode and resize, cache, shuffle, augment, mix, prefetch."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from imgcls.config_schema import check_choice
from imgcls.data.augment import BatchAugmentation
from imgcls.data.split import Subset
from imgcls.errors import ConfigError, DataError

AUTOTUNE = tf.data.AUTOTUNE
FILE_ORDER_SEED = 0


def decode_rgb(contents: tf.Tensor) -> tf.Tensor:
    """Decode JPEG/PNG/BMP/GIF (first frame)/WebP bytes of any colour mode to a uint8 RGB image."""
    image = tf.io.decode_image(contents, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def decode_image(contents: tf.Tensor, image_size: int) -> tf.Tensor:
    """Decode image bytes to RGB and resize to a float32 0-255 square (see :func:`decode_rgb`).

    Bilinear, as Keras's loaders do. Bilinear reads 2x2 pixels per output pixel, which covers a
    shrink of up to about 3x; a side shrunk more than that (a camera photo to 224 px) is
    antialiased so that it does not alias. Antialiasing every image would double the cost of
    the common case, a photo a little larger than the model input.
    """
    image = decode_rgb(contents)
    size = [image_size, image_size]
    shrinks_over_3x = tf.reduce_max(tf.shape(image)[:2]) > 3 * image_size
    image = tf.cond(
        shrinks_over_3x,
        lambda: tf.image.resize(image, size, method="bilinear", antialias=True),
        lambda: tf.image.resize(image, size, method="bilinear"),
    )
    return tf.clip_by_value(image, 0.0, 255.0)


def load_image(path: tf.Tensor, image_size: int) -> tf.Tensor:
    """Read one file and return it as a resized float32 0-255 RGB image."""
    return decode_image(tf.io.read_file(path), image_size)


def disk_cache_prefix(cache_dir: str | Path, subset: Subset, image_size: int, name: str) -> Path:
    """A tf.data cache file prefix that changes whenever the files, their labels or the image size change."""
    digest = hashlib.sha256(f"{image_size} (uint8 image, file index)".encode())  # the cached elements' format
    for path, label in zip(subset.paths, subset.labels):
        try:
            stat = os.stat(path)
        except OSError as error:
            raise DataError(
                f"{path}: {error.strerror or error} (vanished since the data scan). Leave the files alone "
                "during a run, or run again to scan them afresh."
            ) from error
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
    batch_augmentation: BatchAugmentation | None = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of (uint8 0-255 images, one-hot float32 labels), or what ``batch_augmentation`` makes of them.

    Images are decoded and resized in parallel, rounded to whole values, and kept as uint8: a
    quarter of float32's bytes to cache, batch and copy to an accelerator (the model casts them).
    ``cache``: memory, or disk files under ``cache_dir``. Training data is shuffled: with a cache,
    the cached images through a ``shuffle_buffer`` (the file order is permuted too, so a small
    buffer still mixes classes); with ``cache="none"``, the file names, all of them, before
    decoding, which holds no images. Training batches then go through ``batch_augmentation`` when
    given (as float32, see :class:`BatchAugmentation`); evaluation batches keep the file order
    and are never augmented.

    A file that vanishes or changes after the data scan fails the iteration with a TensorFlow error;
    iterate inside :func:`imgcls.data.integrity.files_checked_again_on_read_error` to end it with a
    one-line :class:`DataError` naming the file instead.
    """
    check_choice("data.cache", cache)
    paths = np.asarray(subset.paths)
    labels = np.asarray(subset.labels, dtype=np.int32)

    def decode_and_cache(ds: tf.data.Dataset) -> tf.data.Dataset:
        ds = ds.map(
            lambda index: (tf.cast(tf.round(load_image(tf.gather(paths, index), image_size)), tf.uint8), index),
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
        return ds

    ds = _file_order(len(paths), training, cache, shuffle_buffer, seed, load=decode_and_cache)
    ds = ds.map(lambda image, index: (image, tf.gather(labels, index)))
    ds = ds.batch(batch_size, num_parallel_calls=AUTOTUNE)
    ds = ds.map(lambda images, label: (images, tf.one_hot(label, num_classes, dtype=tf.float32)))
    if training and batch_augmentation is not None:
        transform = dataclasses.replace(
            batch_augmentation, augment=xla_compiled(batch_augmentation.augment, image_size)
        )
        ds = ds.map(lambda images, y: transform(tf.cast(images, tf.float32), y), num_parallel_calls=AUTOTUNE)
    options = tf.data.Options()
    options.autotune.ram_budget = autotune_ram_budget(batch_size, image_size)
    return ds.prefetch(AUTOTUNE).with_options(options)


def _file_order(
    count: int,
    training: bool,
    cache: str,
    shuffle_buffer: int,
    seed: int,
    load: Callable[[tf.data.Dataset], tf.data.Dataset] = lambda ds: ds,
) -> tf.data.Dataset:
    """The indices of a subset's files in the order an epoch reads them, through ``load`` (decoding, caching).

    Training data is shuffled: the file order is permuted, then, without a cache, all the indices before
    ``load``; with a cache, the loaded elements through a ``shuffle_buffer`` after it. The order depends on
    the count, the settings and the seed only, so an index-only dataset (``load`` left out) reads in the
    order the images do.
    """
    order = np.arange(count)
    if training:
        # A fixed permutation, not the run's seed, so a disk cache serves every seed of a sweep.
        order = np.random.default_rng(FILE_ORDER_SEED).permutation(count)
    ds = tf.data.Dataset.from_tensor_slices(order)
    if training and cache == "none":
        ds = ds.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    ds = load(ds)
    if training and cache != "none":
        ds = ds.shuffle(max(1, min(shuffle_buffer, count)), seed=seed, reshuffle_each_iteration=True)
    return ds


def training_file_order(
    count: int,
    *,
    batch_size: int,
    training: bool = True,
    cache: str = "memory",
    shuffle_buffer: int = 2048,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of the file indices that :func:`make_dataset`'s batches of the same settings hold, in the same
    order, epoch after epoch: how features computed once are fed in the order the images would be."""
    return _file_order(count, training, cache, shuffle_buffer, seed).batch(batch_size)


def autotune_ram_budget(batch_size: int, image_size: int) -> int:
    """Bytes tf.data's autotuner may hold in buffers: 16 float32 batches, at least 256 MiB.

    Without a budget the autotuner may grow its buffers toward half the machine's RAM over a long
    epoch, so a run's memory would grow with the number of images (docs/benchmarks.md).
    """
    return max(256 * 2**20, 16 * batch_size * image_size * image_size * 3 * 4)


def xla_compiled(augment: Callable | None, image_size: int) -> Callable | None:
    """``augment`` with each run of consecutive layers that XLA can compile fused into one XLA program.

    On a CPU, Keras's elementwise augmentation layers run several times faster compiled: RandomFlip,
    RandomBrightness, RandomContrast and RandomSaturation together take 1.1 instead of 4.4 ms per
    224 px image on 2 cores (docs/benchmarks.md). Layers on ops XLA lacks (ImageProjectiveTransformV3
    in RandomRotation and RandomZoom, the gamma draws of AugMix) run uncompiled, as before. The same
    layers run in the same order with the same settings; their random numbers come from XLA's
    generator rather than TensorFlow's kernels: the same distributions, another stream for a seed.
    """
    if augment is None:
        return None
    stages = list(augment.layers) if isinstance(augment, keras.Sequential) else [augment]
    probe = tf.zeros([2, image_size, image_size, 3], tf.float32)
    runs: list[tuple[bool, list[Callable]]] = []
    for stage in stages:
        compiles = xla_compiles(_chain([stage]), probe, True)
        if runs and runs[-1][0] == compiles:
            runs[-1][1].append(stage)
        else:
            runs.append((compiles, [stage]))
    if not any(compiles for compiles, _ in runs):
        return augment
    parts = [tf.function(_chain(layers), jit_compile=True) if compiles else _chain(layers) for compiles, layers in runs]

    def augmented(images: tf.Tensor, training: bool = True) -> tf.Tensor:
        with tf.device("/CPU:0"):  # tf.data's device, also where a GPU is present
            for part in parts:
                images = part(images, training)
        return images

    return augmented


def _chain(stages: list[Callable]) -> Callable:
    def run(images: tf.Tensor, training: bool = True) -> tf.Tensor:
        for stage in stages:
            images = stage(images, training=training)
        return images

    return run


def xla_compiles(fn: Callable, *args: tf.Tensor, device: str | None = "/CPU:0") -> bool:
    """Whether XLA can compile ``fn(*args)`` on ``device`` (None: where TensorFlow places it).

    Only traced to XLA's HLO, never run, so random layers' states do not move.
    """
    try:
        with tf.device(device) if device else contextlib.nullcontext():
            tf.function(fn, jit_compile=True).experimental_get_compiler_ir(*args)(stage="hlo")
    except Exception:  # whatever keeps XLA from compiling it: an op without an XLA kernel, most often
        return False
    return True
