"""Augmentation in the training step: what it changes, what it leaves alone, XLA, and several replicas."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from imgcls.data.augment import BatchAugmentation, build_augmenter, build_mixer
from imgcls.training.checkpoints import inference_view
from imgcls.training.on_device import DeviceAugmentedModel


class CountingAugmentation(keras.layers.Layer):
    """Counts the batches it augments and remembers the dtype it was given."""

    def __init__(self):
        super().__init__(dtype="float32")
        self.batches = self.add_weight(shape=(), initializer="zeros", trainable=False, name="batches")
        self.seen_dtype = None

    def call(self, images, training=None):
        self.seen_dtype = images.dtype
        self.batches.assign_add(1.0)
        return images


class ShiftRight(keras.layers.Layer):
    """Shifts images one pixel right with keras.ops.image.affine_transform; supports_jit left at its default."""

    def call(self, images, training=None):
        shift = tf.constant([[1.0, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0]])
        return keras.ops.image.affine_transform(images, tf.tile(shift, [tf.shape(images)[0], 1]))


def small_classifier(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    images = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3)(keras.layers.Rescaling(1 / 255)(images))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(images, outputs)


def uint8_batches(batches: int = 3, size: int = 8) -> tf.data.Dataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batches * size, 16, 16, 3), dtype=np.uint8)
    labels = np.eye(3, dtype=np.float32)[np.arange(batches * size) % 3]
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(size)


def test_training_batches_are_augmented_as_float32_and_validation_and_prediction_are_not():
    spy = CountingAugmentation()
    model = DeviceAugmentedModel(small_classifier(), BatchAugmentation(augment=spy))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    data = uint8_batches(batches=3)
    model.fit(data, validation_data=data, epochs=1, verbose=0)
    assert float(spy.batches.numpy()) == 3, "one augmentation per training batch, none for validation"
    assert spy.seen_dtype == tf.float32
    model.predict(data, verbose=0)
    model.evaluate(data, verbose=0)
    assert float(spy.batches.numpy()) == 3


def first_step_loss(class_weight: float) -> float:
    transform = BatchAugmentation(
        mix=build_mixer({"_target_": "keras.layers.MixUp", "alpha": 0.4, "seed": 1}),
        class_weights=np.full(3, class_weight, np.float32),
    )
    model = DeviceAugmentedModel(small_classifier(), transform)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="categorical_crossentropy")
    images, labels = next(iter(uint8_batches(batches=1)))
    return float(model.train_on_batch(images, labels, return_dict=True)["loss"])


def test_class_weights_weight_the_loss_inside_the_training_step():
    assert first_step_loss(2.0) == pytest.approx(2 * first_step_loss(1.0), rel=1e-5)


def test_the_trainee_is_the_classifier_its_weights_and_saved_model_are_the_classifiers(tmp_path):
    classifier = small_classifier()
    model = DeviceAugmentedModel(
        classifier,
        BatchAugmentation(augment=build_augmenter([{"_target_": "keras.layers.RandomFlip", "mode": "horizontal"}])),
    )
    assert [id(w) for w in model.weights] == [id(w) for w in classifier.weights]
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(uint8_batches(), epochs=1, verbose=0)
    inference_view(model).save_weights(tmp_path / "trained.weights.h5")
    fresh = small_classifier(seed=5)
    fresh.load_weights(tmp_path / "trained.weights.h5")
    images, _ = next(iter(uint8_batches()))
    np.testing.assert_allclose(fresh.predict(images, verbose=0), classifier.predict(images, verbose=0), rtol=1e-6)


@pytest.mark.parametrize(
    "layer, compiles",
    [
        ({"_target_": "keras.layers.RandomFlip", "mode": "horizontal"}, True),
        ({"_target_": "keras.layers.RandomZoom", "height_factor": [-0.2, 0.0]}, False),
        ("a user's layer on ImageProjectiveTransformV3 that does not say it lacks XLA", False),
    ],
    ids=["RandomFlip", "RandomZoom", "custom"],
)
def test_xla_stays_on_unless_an_augmentation_layer_cannot_be_compiled(layer, compiles):
    augment = build_augmenter([layer]) if isinstance(layer, dict) else ShiftRight()
    model = DeviceAugmentedModel(small_classifier(), BatchAugmentation(augment=augment))
    model.compile(optimizer="sgd", loss="categorical_crossentropy", jit_compile=True)
    plain = small_classifier()
    plain.compile(optimizer="sgd", loss="categorical_crossentropy", jit_compile=True)
    # Keras itself turns XLA off while op determinism is on (seeded CPU runs elsewhere in the suite)
    assert model.jit_compile is (compiles and plain.jit_compile)
    assert model._augmentation_compiles() is compiles
    history = model.fit(uint8_batches(), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


MIRRORED_SCRIPT = textwrap.dedent("""
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from imgcls.data.augment import BatchAugmentation, build_augmenter, build_mixer
    from imgcls.training.on_device import DeviceAugmentedModel

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        transform = BatchAugmentation(
            build_augmenter([{"_target_": "keras.layers.RandomFlip", "mode": "horizontal", "seed": 1},
                             {"_target_": "keras.layers.RandomRotation", "factor": 0.05, "seed": 2}]),
            build_mixer({"_target_": "keras.layers.MixUp", "alpha": 0.2, "seed": 3}),
            np.array([1.0, 2.0, 3.0], np.float32),
        )
        images = keras.Input((16, 16, 3))
        pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(images))
        model = DeviceAugmentedModel(keras.Model(images, keras.layers.Dense(3, activation="softmax")(pooled)),
                                     transform)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
    y = np.eye(3, dtype=np.float32)[np.arange(32) % 3]
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    history = model.fit(data, validation_data=data, epochs=2, verbose=0)
    assert strategy.num_replicas_in_sync == 2
    assert np.all(np.isfinite(history.history["loss"])), history.history
    print("OK", history.history["loss"])
""")


@pytest.mark.slow
def test_augmentation_in_the_training_step_runs_on_two_mirrored_replicas():
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]
