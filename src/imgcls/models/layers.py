"""Keras layers of imgcls; registered so a saved model loads after ``import imgcls``."""

from __future__ import annotations

import keras
from keras.applications import imagenet_utils

PREPROCESSING_MODES = ("caffe", "tf", "torch", "builtin")


@keras.saving.register_keras_serializable(package="imgcls")
class BackbonePreprocessing(keras.layers.Layer):
    """Turns raw 0-255 RGB images into what a backbone was trained on.

    ``mode`` is Keras Applications' name for it: ``caffe`` (RGB to BGR, ImageNet mean subtracted),
    ``tf`` (scaled to -1..1), ``torch`` (0..1, ImageNet mean and std), or ``builtin`` for backbones
    that carry their own rescaling.
    """

    def __init__(self, mode: str = "builtin", **kwargs):
        super().__init__(**kwargs)
        if mode not in PREPROCESSING_MODES:
            raise ValueError(f"preprocessing mode must be one of {PREPROCESSING_MODES}, got {mode!r}")
        self.mode = mode

    def call(self, images):
        images = keras.ops.cast(images, self.compute_dtype)
        if self.mode == "builtin":
            return images
        return imagenet_utils.preprocess_input(images, data_format="channels_last", mode=self.mode)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="imgcls")
class ClassProbabilities(keras.layers.Dense):
    """The output layer: Dense with softmax, always float32, carrying the class names of its units.

    A saved model therefore maps its predictions back to folder names:
    ``model.get_layer("predictions").class_names[i]`` is the class of output ``i``.
    """

    def __init__(self, class_names, **kwargs):
        kwargs.pop("units", None)
        kwargs.setdefault("activation", "softmax")
        kwargs["dtype"] = "float32"
        super().__init__(units=len(class_names), **kwargs)
        self.class_names = [str(name) for name in class_names]

    def get_config(self):
        return {**super().get_config(), "class_names": self.class_names}
