"""Assemble the classifier: raw 0-255 RGB -> backbone preprocessing -> backbone -> head."""

from __future__ import annotations

import keras

from imgcls.models.layers import BackbonePreprocessing, ClassProbabilities, ClassToken


def pooling_layer(pooling: str, output_rank: int) -> keras.layers.Layer:
    """``avg``: the mean over a feature map's positions (rank 4) or a sequence's tokens (rank 3);
    ``cls_token``: a transformer's class token."""
    if pooling == "cls_token":
        if output_rank != 3:
            raise ValueError("backbone.pooling=cls_token needs a backbone that outputs tokens (batch, tokens, width)")
        return ClassToken(name="head_pool")
    if output_rank == 3:
        return keras.layers.GlobalAveragePooling1D(name="head_pool")
    return keras.layers.GlobalAveragePooling2D(name="head_pool")


def build_classifier(
    backbone: keras.Model,
    *,
    class_names: list[str] | tuple[str, ...],
    image_size: int,
    preprocessing: str | keras.layers.Layer,
    dense_units: int,
    dropout: float,
    l2: float,
    freeze_batchnorm: bool = True,
    bn_momentum: float = 0.9,
    pooling: str = "avg",
) -> keras.Model:
    """Pooling (see :func:`pooling_layer`) -> BN -> Dense(ReLU, L2) -> BN -> Dropout -> Dense(softmax, float32)
    on top of ``backbone``.

    ``preprocessing`` is a Keras Applications mode (see :class:`BackbonePreprocessing`) or a layer, such as a
    keras-hub image converter; either way the model takes raw 0-255 RGB. The output layer carries
    ``class_names`` (see :func:`class_names_of`).
    With ``freeze_batchnorm`` the backbone is always called in inference mode, so its
    BatchNormalization statistics never change, even once its layers are unfrozen. The head's
    BatchNormalization layers average their statistics with ``bn_momentum`` (0.9, PyTorch's
    default; Keras's 0.99 leaves them far from the data after a few dozen steps, so a short run
    or a small data set scores at chance in evaluation while training accuracy is high).
    """
    images = keras.Input(shape=(image_size, image_size, 3), name="image")
    if isinstance(preprocessing, str):
        preprocessing = BackbonePreprocessing(preprocessing, name="backbone_preprocessing")
    x = preprocessing(images)
    if isinstance(backbone.input, dict):  # keras-hub backbones that name their one input ({"images": ...})
        x = {name: x for name in backbone.input}
    x = backbone(x, training=False) if freeze_batchnorm else backbone(x)
    if isinstance(x, dict):  # a feature pyramid (keras-hub's HGNetV2): its last, deepest map
        x = list(x.values())[-1]
    x = pooling_layer(pooling, len(x.shape))(x)
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
