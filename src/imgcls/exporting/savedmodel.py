"""The TensorFlow SavedModel artifact: written by Keras, served by ``tf.saved_model.load``."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf


def export_savedmodel(model: keras.Model, path: Path) -> None:
    """A SavedModel folder: signature ``serving_default`` and endpoint ``serve``, input ``image``."""
    model.export(str(path), format="tf_saved_model", verbose=False)


def savedmodel_predictor(path: Path):
    """A function from a float32 image batch to the probabilities the SavedModel at ``path`` returns."""
    loaded = tf.saved_model.load(str(path))  # held by the function: its variables go with it
    return lambda images: np.asarray(loaded.serve(tf.constant(images, tf.float32)))
