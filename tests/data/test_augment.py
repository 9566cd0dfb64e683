"""Every augmentation policy and every mixing option: eagerly and inside tf.data, values and labels stay valid."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from imgcls.data.augment import build_augmenter, build_mixer
from imgcls.data.mixing import MixUpOrCutMix

CONF = Path(__file__).resolve().parents[2] / "conf"
POLICIES = sorted(path.stem for path in (CONF / "augmentation").glob("*.yaml"))
MIXERS = sorted(path.stem for path in (CONF / "mixup").glob("*.yaml"))


def eager_and_mapped(fn, inputs: tuple, batches: int) -> list:
    """``fn(*inputs)`` called eagerly twice, then ``batches`` times inside a ``tf.data`` map."""
    eager = [fn(*inputs) for _ in range(2)]
    mapped = list(tf.data.Dataset.from_tensors(inputs).repeat(batches).map(fn))
    return eager + mapped


# Augmentation -------------------------------------------------------------------------------------


def extreme_batch(size: int = 24) -> tf.Tensor:
    """Noise, black, white and a 0/255 checkerboard: the inputs most likely to push values out of range."""
    noise = np.random.default_rng(0).uniform(0, 255, (size, size, 3))
    checker = np.broadcast_to((np.indices((size, size)).sum(0) % 2 * 255.0)[..., None], (size, size, 3))
    black, white = np.zeros((size, size, 3)), np.full((size, size, 3), 255.0)
    return tf.constant(np.stack([noise, black, white, checker]), tf.float32)


@pytest.mark.parametrize("policy", POLICIES)
def test_augmentation_policy_keeps_shape_dtype_and_range(compose_config, policy):
    cfg = compose_config([f"augmentation={policy}"])
    augment = build_augmenter(cfg.augmentation.layers)
    if not cfg.augmentation.layers:
        assert augment is None  # the pipeline then skips augmentation
        return
    batch = extreme_batch()
    outputs = eager_and_mapped(lambda x: augment(x, training=True), (batch,), batches=8)
    for out in outputs:
        assert out.shape == batch.shape and out.dtype == tf.float32
        assert float(tf.reduce_min(out)) >= -1e-3 and float(tf.reduce_max(out)) <= 255.0 + 1e-3
    assert any(not np.allclose(out, batch) for out in outputs), "the policy should change some images"


AUGMENTATION_LAYERS = OmegaConf.to_container(OmegaConf.load(CONF / "augmentation" / "basic.yaml").layers)


@pytest.mark.parametrize("layer", AUGMENTATION_LAYERS, ids=lambda c: c["_target_"].rsplit(".", 1)[-1])
def test_augmentation_layer_runs_eagerly_and_in_tf_data(layer):
    augment = build_augmenter([layer])
    batch = tf.random.uniform((4, 16, 16, 3), 0, 255, seed=0)
    eager = augment(batch, training=True)
    mapped = next(iter(tf.data.Dataset.from_tensors(batch).map(lambda x: augment(x, training=True))))
    for out in (eager, mapped):
        assert out.shape == batch.shape and out.dtype == tf.float32
        assert float(tf.reduce_min(out)) >= -1e-3 and float(tf.reduce_max(out)) <= 255.0 + 1e-3


def test_empty_augmentation_and_no_mixing_build_nothing():
    assert build_augmenter([]) is None
    assert build_mixer(None) is None


# Mixing -------------------------------------------------------------------------------------------

N, SIZE = 8, 32
COLOURS = 10.0 + 20.0 * np.arange(N)  # image i is flat colour COLOURS[i] with one-hot label i


def colour_batch() -> tuple[tf.Tensor, tf.Tensor]:
    images = np.broadcast_to(COLOURS[:, None, None, None], (N, SIZE, SIZE, 3))
    return tf.constant(images, tf.float32), tf.one_hot(tf.range(N), N, dtype=tf.float32)


def mixed(mix, images, labels):
    """The call the pipeline makes: a dict of a batch in, mixed images and labels out."""
    out = mix({"images": images, "labels": labels}, training=True)
    return out["images"], out["labels"]


def run_mix(mix, batches: int):
    images, labels = colour_batch()
    outputs = eager_and_mapped(lambda x, y: mixed(mix, x, y), (images, labels), batches)
    return [(x.numpy(), y.numpy()) for x, y in outputs]


def pixel_fractions(image: np.ndarray) -> np.ndarray:
    """Share of the image's pixels in each of the flat colours of :func:`colour_batch`."""
    index = np.rint((image[..., 0] - 10.0) / 20.0).astype(int)
    return np.bincount(index.ravel(), minlength=len(COLOURS)) / index.size


def box_rounding_bound(size: int = SIZE) -> float:
    """How far CutMix's label weights may stray from the pasted pixels' share.

    Keras draws a box with real-valued corners and weights labels by its exact area, but pastes the
    pixels whose integer coordinates fall in it: up to one row and one column more or fewer.
    """
    return (2 * size + 1) / size**2


def kind_of_mix(images: np.ndarray) -> str:
    """'cutmix' if some image holds a pasted box, 'mixup' if images are flat blends, else 'unclear'."""
    if any(np.ptp(image) > 1e-3 for image in images):
        return "cutmix"
    if not np.isin(np.round(images[:, 0, 0, 0], 3), COLOURS).all():
        return "mixup"
    return "unclear"  # e.g. every image paired with itself


@pytest.mark.parametrize("option", MIXERS)
def test_mixing_option_keeps_shapes_range_and_label_mass(compose_config, option):
    cfg = compose_config([f"mixup={option}"])
    mix = build_mixer(cfg.mixup.layer)
    if cfg.mixup.layer is None:
        assert mix is None  # the pipeline then leaves labels one-hot
        return
    assert "alpha" in cfg.mixup  # sweeps search mixup.alpha whichever option is picked
    tolerance = box_rounding_bound() * np.ptp(COLOURS)
    outputs = run_mix(mix, batches=6)
    for images, labels in outputs:
        assert images.shape == (N, SIZE, SIZE, 3) and images.dtype == np.float32
        assert labels.shape == (N, N) and labels.dtype == np.float32
        assert np.allclose(labels.sum(axis=1), 1.0, atol=1e-5)
        assert labels.min() >= -1e-6
        # mixing is convex: pixels stay between the darkest and brightest input (so within 0-255)
        assert images.min() >= COLOURS.min() - 1e-3 and images.max() <= COLOURS.max() + 1e-3
        # each image's mean colour is its labels' mix of colours (to CutMix's box rounding)
        assert np.abs(images.mean(axis=(1, 2, 3)) - labels @ COLOURS).max() <= tolerance
    assert any((labels.max(axis=1) < 0.999).any() for _, labels in outputs), "some labels should be mixed"


def test_cutmix_label_weights_are_the_pasted_area(compose_config):
    mix = build_mixer(compose_config(["mixup=cutmix"]).mixup.layer)
    outputs = run_mix(mix, batches=4)
    errors = []
    for images, labels in outputs:
        for image, label in zip(images, labels):
            errors.append(np.abs(pixel_fractions(image) - label).max())
    assert max(errors) <= box_rounding_bound()
    assert np.mean(errors) <= box_rounding_bound() / 4  # rounding, not a systematic offset


def test_cutmix_pastes_one_box(compose_config):
    mix = build_mixer(compose_config(["mixup=cutmix"]).mixup.layer)
    images, _ = mixed(mix, *colour_batch())
    for image, colour in zip(images.numpy()[..., 0], COLOURS):
        rows, cols = np.nonzero(~np.isclose(image, colour))
        if rows.size:  # the pasted pixels fill their bounding box exactly, with one colour
            box = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            assert box.size == rows.size and np.ptp(box) == 0


def test_cutmix_alpha_fixes_the_beta_parameter(compose_config):
    """mixup.alpha becomes CutMix's factor range (alpha, alpha): lambda ~ Beta(alpha, alpha) on every call.

    With alpha 1, lambda is uniform (variance 1/12). Keras's own ``factor=1.0`` would draw the Beta
    parameter from Uniform(0, 1) instead, a wider spread (variance ln(3)/8 = 0.137).
    """
    cfg = compose_config(["mixup=cutmix", "mixup.alpha=1.0", "+mixup.layer.seed=0"])
    mix = build_mixer(cfg.mixup.layer)
    assert mix.factor == (1.0, 1.0)
    n = 128
    images, labels = tf.zeros((n, 4, 4, 3)), tf.one_hot(tf.range(n), n, dtype=tf.float32)
    lambdas = np.concatenate([np.diagonal(mixed(mix, images, labels)[1]) for _ in range(10)])
    # drop images paired with themselves (about one per batch), whose own label stays 1
    lambdas = lambdas[lambdas < 1.0 - 1e-6]
    assert abs(lambdas.mean() - 0.5) < 0.03
    assert abs(lambdas.var() - 1 / 12) < 0.01
    assert compose_config(["mixup=cutmix", "mixup.alpha=0.3"]).mixup.layer.factor == [0.3, 0.3]
    with pytest.raises(ValueError, match="factor"):
        build_mixer(compose_config(["mixup=cutmix", "mixup.alpha=2.0"]).mixup.layer)


def mixup_cutmix(switch_prob: float, seed: int | None = 0) -> MixUpOrCutMix:
    return build_mixer(
        {
            "_target_": "imgcls.data.mixing.MixUpOrCutMix",
            "alpha": 0.8,
            "cutmix_alpha": 1.0,
            "switch_prob": switch_prob,
            "seed": seed,
        }
    )


@pytest.mark.parametrize(
    ("switch_prob", "expected"),
    [(0.5, {"cutmix", "mixup"}), (1.0, {"cutmix"}), (0.0, {"mixup"})],
    ids=["both", "always-cutmix", "always-mixup"],
)
def test_mixup_cutmix_switches_per_batch(switch_prob, expected):
    kinds = {kind_of_mix(images) for images, _ in run_mix(mixup_cutmix(switch_prob), batches=18)}
    assert kinds - {"unclear"} == expected


def test_mixup_cutmix_is_repeatable_with_a_seed_and_idle_out_of_training():
    images, labels = colour_batch()
    first, second = mixup_cutmix(0.5, seed=7), mixup_cutmix(0.5, seed=7)
    for _ in range(4):
        a, b = mixed(first, images, labels), mixed(second, images, labels)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    out = first({"images": images, "labels": labels}, training=False)
    assert out["images"] is images and out["labels"] is labels


def test_mixup_cutmix_round_trips_through_keras_serialization():
    layer = mixup_cutmix(0.3, seed=5)
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, MixUpOrCutMix) and restored.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="switch_prob"):
        mixup_cutmix(1.5)
