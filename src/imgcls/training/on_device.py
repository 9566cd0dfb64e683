"""Augmentation and mixing inside the training step, on the accelerator, instead of in tf.data."""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

from imgcls.data.augment import BatchAugmentation
from imgcls.errors import ConfigError

log = logging.getLogger(__name__)

PLACEMENTS = ("auto", "pipeline", "device")


def has_accelerator() -> bool:
    """Whether TensorFlow sees a GPU or TPU."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def resolve_augment_on(placement: str) -> str:
    """``pipeline`` or ``device``; ``auto`` is ``device`` where there is a GPU or TPU, else ``pipeline``.

    On an accelerator the image ops take microseconds per batch, while in ``tf.data`` they take
    milliseconds of CPU per image and would starve it; on a CPU-only machine ``tf.data`` runs them
    on other cores, overlapped with the training step.
    """
    if placement not in PLACEMENTS:
        raise ConfigError(f"data.augment_on must be one of {PLACEMENTS}, got {placement!r}.")
    if placement == "auto":
        return "device" if has_accelerator() else "pipeline"
    return placement


class DeviceAugmentedModel(keras.Model):
    """The classifier, trained on batches that :class:`BatchAugmentation` changes inside each training step.

    It is the classifier's own functional graph (same layers, weights, inputs and outputs, so
    checkpoints and saved models are the classifier's); only ``train_step`` differs: it casts the
    uint8 batch to float32 and augments, mixes and weights it where the step runs (the GPU), then
    trains as Keras does. Validation, evaluation and prediction see the images untouched.
    """

    def __init__(self, classifier: keras.Model, batch_augmentation: BatchAugmentation, **kwargs):
        super().__init__(classifier.inputs, classifier.outputs, name=classifier.name, **kwargs)
        self._batch_augmentation = batch_augmentation  # not a tracked layer: weights stay the classifier's

    def compile(self, *args, jit_compile: bool | str = "auto", **kwargs) -> None:
        """Keras's compile; XLA is off when a layer of the augmentation cannot be compiled (RandomZoom...)."""
        blocking = sorted({type(layer).__name__ for layer in self._batch_augmentation.layers() if not layer.supports_jit})
        if jit_compile and blocking:
            if jit_compile is True:
                log.warning("train.jit_compile=true ignored: %s cannot be XLA-compiled inside the training step "
                            "(data.augment_on=pipeline keeps them out of it)", ", ".join(blocking))
            jit_compile = False
        super().compile(*args, jit_compile=jit_compile, **kwargs)

    def train_step(self, data):
        images, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("DeviceAugmentedModel weights examples itself (BatchAugmentation.class_weights)")
        return super().train_step(self._batch_augmentation(tf.cast(images, tf.float32), labels))
