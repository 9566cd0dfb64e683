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
class ClassToken(keras.layers.Layer):
    """The first token of a transformer's output sequence (batch, tokens, width): its class token."""

    def call(self, tokens):
        return tokens[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


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


@keras.saving.register_keras_serializable(package="imgcls")
class TemperatureScaling(keras.layers.Layer):
    """Maps class probabilities ``p`` to ``softmax(log p / temperature)``, always in float32.

    Placed after the ``predictions`` layer, it calibrates a model's confidence without changing its
    predicted classes (see :mod:`imgcls.evaluation.calibration`).
    """

    def __init__(self, temperature: float, epsilon: float = 1e-12, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        self.temperature = float(temperature)
        self.epsilon = float(epsilon)

    def call(self, probabilities):
        probabilities = keras.ops.cast(probabilities, "float32")
        logits = keras.ops.log(keras.ops.clip(probabilities, self.epsilon, 1.0))
        return keras.ops.softmax(logits / self.temperature, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "epsilon": self.epsilon}
