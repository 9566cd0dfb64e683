"""Augmentation and mixing inside the training step, on the accelerator, instead of in tf.data."""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

from imgcls.data.augment import BatchAugmentation
from imgcls.data.pipeline import xla_compiles

log = logging.getLogger(__name__)


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
        self._xla_ok: bool | None = None

    def compile(self, *args, jit_compile: bool | str = "auto", **kwargs) -> None:
        """Keras's compile; XLA is off when the augmentation cannot be XLA-compiled here (RandomZoom...)."""
        if jit_compile and not self._augmentation_compiles():
            if jit_compile is True:
                log.warning(
                    "train.jit_compile=true ignored: the augmentation cannot be XLA-compiled inside the "
                    "training step (data.augment_on=pipeline keeps it out of the step)"
                )
            jit_compile = False
        super().compile(*args, jit_compile=jit_compile, **kwargs)

    def _augmentation_compiles(self) -> bool:
        if self._xla_ok is None:
            images = tf.zeros([2, *self.inputs[0].shape[1:]], tf.float32)
            labels = tf.zeros([2, self.outputs[0].shape[-1]], tf.float32)
            self._xla_ok = xla_compiles(self._batch_augmentation, images, labels, device=None)
        return self._xla_ok

    def train_step(self, data):
        images, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("DeviceAugmentedModel weights examples itself (BatchAugmentation.class_weights)")
        return super().train_step(self._batch_augmentation(tf.cast(images, tf.float32), labels))
