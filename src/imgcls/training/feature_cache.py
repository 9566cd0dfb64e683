"""Linear probes at full speed: a frozen backbone's features are computed once, and the head trains on them.

A phase whose backbone is frozen, fed un-augmented images, runs the backbone on the same images every epoch
for the same features. ``train.feature_cache`` (auto, true, false) replaces those passes by one: the pooled
features of the training and validation images are computed once per run, and the phase fits a model made of
the classifier's own head layers (the same weights) on them. N head epochs cost one backbone pass.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from imgcls.config_schema import check_choice
from imgcls.data.pipeline import make_dataset, training_file_order
from imgcls.errors import ConfigError
from imgcls.training.workers import shard_by_data

log = logging.getLogger(__name__)

EXTRACTION_BATCH = 128
FEATURES_LAYER = "head_pool"  # the classifier's pooled backbone features; every layer after it is the head


def head_model(classifier: keras.Model) -> keras.Model:
    """A model from the pooled features to the classifier's output, made of the classifier's own head layers."""
    names = [layer.name for layer in classifier.layers]
    pool = classifier.get_layer(FEATURES_LAYER)
    features = keras.Input(shape=tuple(pool.output.shape[1:]), name="features")
    x = features
    for layer in classifier.layers[names.index(FEATURES_LAYER) + 1 :]:
        x = layer(x)
    return keras.Model(features, x, name=f"{classifier.name}_head")


def feature_extractor(classifier: keras.Model) -> keras.Model:
    """The classifier up to its pooled features (preprocessing and backbone included, in inference mode)."""
    return keras.Model(classifier.inputs, classifier.get_layer(FEATURES_LAYER).output, name="features")


def wanted(setting: Any, *, augmented: bool, workers: int = 1) -> bool:
    """Whether ``train.feature_cache`` asks for the cache in frozen-backbone phases: ``auto`` when training
    applies no augmentation, mixing or class weights and runs on one worker; ``true`` always (they are then left
    out of those phases), except on several workers, which it cannot serve: their cached batches cannot be split
    between workers the way image batches are (TensorFlow fails in the first step)."""
    setting = check_choice("train.feature_cache", setting)
    if workers > 1:
        if setting is True:
            raise ConfigError(
                f"train.feature_cache=true does not work with {workers} workers (strategy=multi_worker): "
                "use train.feature_cache=auto (off there) or false."
            )
        if setting == "auto" and not augmented:
            log.info("train.feature_cache=auto: off with %d workers; frozen-backbone phases run on images", workers)
        return False
    if setting == "auto":
        return not augmented
    return bool(setting)


@dataclass
class FeatureCache:
    """The classifier's head and the features of the training and validation images, computed on first use."""

    classifier: keras.Model
    train: Any  # data Subset (paths, labels) of the training images
    val: Any
    pipeline: dict  # make_dataset's shared arguments (num_classes, image_size, batch_size, cache, cache_dir)
    seed: int
    shuffle_buffer: int = 2048
    augmented: bool = False
    _datasets: tuple | None = field(default=None, repr=False)
    _head: keras.Model | None = field(default=None, repr=False)

    def head(self) -> keras.Model:
        if self._head is None:
            self._head = head_model(self.classifier)
        return self._head

    def datasets(self) -> tuple[tf.data.Dataset, tf.data.Dataset]:
        """(training, validation) batches of (features, one-hot labels). The training batches hold the features
        of the images that the training pipeline's batches would hold, in the same order, epoch after epoch, so
        the head sees what it would see without the cache (see :func:`~imgcls.data.pipeline.training_file_order`).
        """
        if self._datasets is None:
            started = time.monotonic()
            if self.augmented:
                log.warning(
                    "train.feature_cache=true: the frozen-backbone phases train on the features of un-augmented "
                    "images (augmentation, mixing and class weights are left out of them)"
                )
            extractor = feature_extractor(self.classifier)
            # not "train": a disk cache of that name holds the training images in shuffled file order
            train_features, train_labels = self._features(extractor, self.train, "train_in_file_order")
            val_features, val_labels = self._features(extractor, self.val, "val")
            batch = self.pipeline["batch_size"]
            order = training_file_order(
                len(train_features),
                batch_size=batch,
                cache=self.pipeline["cache"],
                shuffle_buffer=self.shuffle_buffer,
                seed=self.seed,
            )
            features, labels = tf.constant(train_features), tf.constant(train_labels)
            train_ds = order.map(lambda index: (tf.gather(features, index), tf.gather(labels, index))).prefetch(
                tf.data.AUTOTUNE
            )
            val_ds = tf.data.Dataset.from_tensor_slices((val_features, val_labels)).batch(batch)
            self._datasets = (shard_by_data(train_ds), shard_by_data(val_ds))
            log.info(
                "Feature cache: %d training and %d validation feature vectors of %d values, computed once in %.1f s",
                len(train_features),
                len(val_features),
                train_features.shape[-1],
                time.monotonic() - started,
            )
        return self._datasets

    def _features(self, extractor: keras.Model, subset: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
        # in file order; in batches of at least EXTRACTION_BATCH, which a backbone's forward pass runs faster
        pipeline = {**self.pipeline, "batch_size": max(EXTRACTION_BATCH, self.pipeline["batch_size"])}
        images = make_dataset(subset, training=False, name=name, **pipeline)
        features = extractor.predict(shard_by_data(images.map(lambda x, _: x)), verbose=0)
        labels = np.eye(self.pipeline["num_classes"], dtype=np.float32)[np.asarray(subset.labels)]
        return np.asarray(features, dtype=np.float32), labels
