"""Assemble the classifier: raw 0-255 RGB -> backbone preprocessing -> backbone -> head."""

from __future__ import annotations

import keras

from imgcls.models.layers import BackbonePreprocessing, ClassProbabilities


def build_classifier(
    backbone: keras.Model,
    *,
    class_names: list[str] | tuple[str, ...],
    image_size: int,
    preprocessing: str,
    dense_units: int,
    dropout: float,
    l2: float,
    freeze_batchnorm: bool = True,
    bn_momentum: float = 0.9,
) -> keras.Model:
    """GAP -> BN -> Dense(ReLU, L2) -> BN -> Dropout -> Dense(softmax, float32) on top of ``backbone``.

    The output layer carries ``class_names`` (see :func:`class_names_of`).
    With ``freeze_batchnorm`` the backbone is always called in inference mode, so its
    BatchNormalization statistics never change, even once its layers are unfrozen. The head's
    BatchNormalization layers average their statistics with ``bn_momentum`` (0.9, PyTorch's
    default; Keras's 0.99 leaves them far from the data after a few dozen steps, so a short run
    or a small data set scores at chance in evaluation while training accuracy is high).
    """
    images = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = BackbonePreprocessing(preprocessing, name="backbone_preprocessing")(images)
    x = backbone(x, training=False) if freeze_batchnorm else backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.BatchNormalization(momentum=bn_momentum, name="head_bn1")(x)
    x = keras.layers.Dense(
        dense_units, activation="relu", kernel_regularizer=keras.regularizers.L2(l2), name="head_dense"
    )(x)
    x = keras.layers.BatchNormalization(momentum=bn_momentum, name="head_bn2")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = ClassProbabilities(class_names, name="predictions")(x)
    return keras.Model(images, outputs, name=f"imgcls_{backbone.name}")


def find_backbone(model: keras.Model) -> keras.Model:
    """The backbone sub-model of a classifier built by :func:`build_classifier`."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"expected one backbone inside {model.name}, found {len(nested)}")
    return nested[0]


def class_names_of(model: keras.Model) -> list[str]:
    """The class name of each output of a classifier built by :func:`build_classifier`."""
    return list(model.get_layer("predictions").class_names)
