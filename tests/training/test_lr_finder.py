"""The learning-rate finder: weights put back, a geometric sweep of per-batch losses, fastai's suggestion, the plot."""

from __future__ import annotations

import functools
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from imgcls.compat.keras_private import restored_epoch, set_restored_epoch
from imgcls.training.lr_finder import (
    LrFinderResult,
    find_learning_rate,
    lr_find_figure,
    plot_lr_find,
    suggest_learning_rate,
)

CROSSENTROPY = keras.losses.CategoricalCrossentropy()


def conv_net(seed: int = 0) -> keras.Model:
    """A small conv net whose BatchNormalization trains (its moving statistics move) and has dropout."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def images(count: int = 64, batch: int = 16, seed: int = 0) -> tf.data.Dataset:
    """Noisy 32 px images whose mean brightness is their class (of 3), one-hot labelled, batched."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    pixels = (rng.normal(size=(count, 32, 32, 3)) + labels[:, None, None, None]).astype("float32")
    return tf.data.Dataset.from_tensor_slices((pixels, tf.one_hot(labels, 3))).batch(batch)


def blobs(count: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated Gaussian blobs in 8 dimensions, one-hot labelled."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    centres = rng.normal(scale=3.0, size=(3, 8))
    points = (centres[labels] + rng.normal(size=(count, 8))).astype("float32")
    return points, np.eye(3, dtype="float32")[labels]


def dense_net(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3, activation="softmax")]
    )


def recording(factory):
    """``factory`` that also keeps each optimizer it builds in ``.built``."""

    def build(**kwargs):
        optimizer = factory(**kwargs)
        build.built.append(optimizer)
        return optimizer

    build.built = []
    return build


def values(model: keras.Model) -> dict[str, np.ndarray]:
    return {variable.path: variable.numpy() for variable in model.variables}


def test_every_variable_is_put_back_after_the_sweep():
    model = conv_net()
    model.compile(optimizer="sgd", loss="mse", metrics=["accuracy"])  # compiled for something else
    before = values(model)
    assert any("moving_mean" in path for path in before) and any("moving_variance" in path for path in before)
    factory = recording(keras.optimizers.Adam)

    result = find_learning_rate(
        model, images(), loss=CROSSENTROPY, optimizer_factory=factory, start_lr=1e-3, end_lr=1.0, num_steps=12
    )

    assert int(factory.built[0].iterations.numpy()) == len(result.lrs) > 1  # it did train
    after = values(model)
    assert after.keys() == before.keys()
    for path, value in before.items():
        np.testing.assert_array_equal(after[path], value, err_msg=path)


def test_variables_are_put_back_when_the_sweep_raises():
    model = conv_net()
    before = values(model)
    pixels = np.random.default_rng(0).normal(size=(48, 32, 32, 3)).astype("float32")
    pixels[40] = np.nan  # the third batch of 16
    labels = tf.one_hot(np.arange(48) % 3, 3)
    broken = tf.data.Dataset.from_tensor_slices((pixels, labels)).batch(16)
    broken = broken.map(lambda x, y: (tf.debugging.check_numerics(x, "NaN pixel"), y))

    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN pixel"):
        find_learning_rate(model, broken, loss=CROSSENTROPY, optimizer_factory=keras.optimizers.Adam, num_steps=10)

    after = values(model)
    for path, value in before.items():
        np.testing.assert_array_equal(after[path], value, err_msg=path)


def test_rates_run_geometrically_one_per_step_over_a_repeated_dataset():
    points, labels = blobs(64)
    short = tf.data.Dataset.from_tensor_slices((points, labels)).batch(16)  # 4 batches for 20 steps
    model = dense_net()
    set_restored_epoch(model, 3)  # as a resumed phase leaves it: must not stop the sweep from training
    factory = recording(keras.optimizers.SGD)

    result = find_learning_rate(
        model, short, loss=CROSSENTROPY, optimizer_factory=factory, start_lr=1e-5, end_lr=1e-1, num_steps=20
    )

    assert len(result.lrs) == len(result.losses) == len(result.raw_losses) == 20
    assert not result.stopped_early
    assert result.lrs[0] == pytest.approx(1e-5) and result.lrs[-1] == pytest.approx(1e-1)
    np.testing.assert_allclose(np.diff(np.log10(result.lrs)), 4 / 19)
    assert float(factory.built[0].learning_rate.numpy()) == pytest.approx(result.lrs[-1])  # set in the optimizer
    assert restored_epoch(model) == 3


def test_raw_losses_are_each_batch_own_loss_not_a_running_mean():
    points, labels = blobs(32)
    labels[16:] = np.roll(labels[16:], 1, axis=1)  # the second batch's labels are other classes: another loss
    model = dense_net()
    batches = [(points[:16], labels[:16]), (points[16:], labels[16:])]
    per_batch = [float(CROSSENTROPY(y, model(x, training=False))) for x, y in batches]
    assert max(per_batch) > 1.5 * min(per_batch)
    two_batches = tf.data.Dataset.from_tensor_slices((points, labels)).batch(16)

    # Rates so small that the weights do not move: every step's loss is its batch's loss under these weights.
    result = find_learning_rate(
        model,
        two_batches,
        loss=CROSSENTROPY,
        optimizer_factory=keras.optimizers.SGD,
        start_lr=1e-12,
        end_lr=1e-11,
        num_steps=8,
    )

    expected = np.array(per_batch * 4)
    np.testing.assert_allclose(result.raw_losses, expected, rtol=1e-5)
    running_means = np.cumsum(expected) / np.arange(1, 9)
    assert not np.allclose(result.raw_losses[1:], running_means[1:], rtol=1e-2)
    average, smoothed = 0.0, []
    for step, loss in enumerate(expected, start=1):  # fastai's bias-corrected moving average, beta 0.98
        average = 0.98 * average + 0.02 * loss
        smoothed.append(average / (1 - 0.98**step))
    np.testing.assert_allclose(result.losses, smoothed, rtol=1e-5)
    assert result.losses[0] == pytest.approx(per_batch[0], rel=1e-5)  # bias-corrected: no pull towards 0


def test_a_sweep_to_a_huge_rate_stops_early_on_divergence():
    result = find_learning_rate(
        conv_net(), images(), loss=CROSSENTROPY, optimizer_factory=keras.optimizers.Adam, end_lr=1e6, num_steps=100
    )

    assert result.stopped_early
    assert len(result.lrs) < 100
    last, lowest = result.losses[-1], min(result.losses)
    assert not math.isfinite(last) or last > 4 * lowest
    assert all(loss <= 4 * lowest for loss in result.losses[:-1])  # it stopped at the first diverged step
    assert result.suggestion < result.lrs[-1]


def test_the_suggestion_on_a_separable_problem_is_a_rate_that_trains():
    points, labels = blobs(256)
    train = tf.data.Dataset.from_tensor_slices((points, labels)).shuffle(256, seed=0).batch(32)
    model = dense_net()
    factory = functools.partial(keras.optimizers.AdamW, weight_decay=1e-4)

    result = find_learning_rate(model, train, loss=CROSSENTROPY, optimizer_factory=factory)

    assert 1e-4 < result.suggestion < 1
    assert result.rule == "minimum"
    assert result.suggestion == pytest.approx(result.lrs[result.suggestion_index] / 10), "a tenth of the rate"
    assert result.losses[result.suggestion_index] == min(result.losses[10:-5]), "at the lowest loss it reads"
    assert result.seconds < 30
    model.compile(optimizer=factory(learning_rate=result.suggestion), loss=CROSSENTROPY)
    start = model.evaluate(points, labels, verbose=0)
    model.fit(train, epochs=3, verbose=0, shuffle=False)
    assert model.evaluate(points, labels, verbose=0) < 0.5 * start


U_LRS = np.logspace(-7, 1, 100)
U_LOSSES = (np.log10(U_LRS) + 2) ** 2 + 1  # lowest at 1e-2


def test_the_minimum_rule_suggests_a_tenth_of_the_rate_at_the_lowest_loss():
    lr, index = suggest_learning_rate(U_LRS, U_LOSSES, "minimum")

    assert index == int(np.argmin(U_LOSSES))
    assert lr == pytest.approx(U_LRS[index] / 10)
    assert lr == pytest.approx(1e-3, rel=0.1), "the curve is lowest at 1e-2"


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="rule must be one of minimum, valley"):
        suggest_learning_rate(U_LRS, U_LOSSES, "steep")


def test_a_u_shaped_curve_gets_a_rate_on_its_way_down():
    lr, index = suggest_learning_rate(U_LRS, U_LOSSES, "valley")

    assert U_LRS[0] < lr < 1e-2
    assert lr == U_LRS[index] and U_LOSSES[index - 1] > U_LOSSES[index] > U_LOSSES[index + 1]


def test_the_valley_rule_counts_as_fastai_does():
    # The longest decreasing run is 9, 8, ..., 2, 1.5 (indices 3 to 11, length 9): fastai's start is 11 - 9 = 2,
    # and the point is 2 + int(9 / 3) + int(9 / 6) = 6.
    losses = [1, 2, 3, 9, 8, 7, 6, 5, 4, 3, 2, 1.5, 5, 6]
    lrs = np.logspace(-5, 0, len(losses))

    assert suggest_learning_rate(lrs, losses, "valley") == (lrs[6], 6)


@pytest.mark.parametrize(
    "losses",
    [[2.0] * 10, list(np.linspace(1, 3, 10)), [2.0, 1.0], [3.0, 1.0, 2.0, 4.0, 5.0]],
    ids=["flat", "rising", "two points", "no three falling"],
)
def test_a_curve_without_a_valley_gets_a_tenth_of_the_rate_at_its_minimum(losses):
    lrs = np.logspace(-5, 0, len(losses))
    lowest = int(np.argmin(losses))

    lr, index = suggest_learning_rate(lrs, losses, "valley")

    assert (lr, index) == (pytest.approx(lrs[lowest] / 10), lowest)


def test_losses_from_the_first_nan_on_are_ignored():
    losses = np.concatenate([U_LOSSES[:70], [np.nan, 1.0, 0.5]])

    for rule in ("minimum", "valley"):
        assert suggest_learning_rate(U_LRS[:73], losses, rule) == suggest_learning_rate(U_LRS[:70], U_LOSSES[:70], rule)
    assert suggest_learning_rate([1e-3, 1e-2], [np.nan, np.inf]) == (pytest.approx(1e-4), 0)
    with pytest.raises(ValueError, match="one loss per rate"):
        suggest_learning_rate([1e-3, 1e-2], [1.0])


def diverged_result() -> LrFinderResult:
    lrs = U_LRS[:80]
    losses = np.concatenate([U_LOSSES[:79], [np.inf]])
    losses[70:79] = np.geomspace(5, 500, 9)  # the diverged tail
    raw = losses + np.random.default_rng(0).normal(scale=0.2, size=80)
    lr, index = suggest_learning_rate(lrs, losses)
    return LrFinderResult(tuple(lrs), tuple(losses), tuple(raw), lr, index, True, 1.5)


def test_the_plot_is_a_png_with_the_suggestion_and_without_the_diverged_tail(tmp_path):
    result = diverged_result()

    path = plot_lr_find(result, tmp_path / "lr_find.png")

    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (800, 500)
    figure = lr_find_figure(result)
    ax = figure.axes[0]
    low, high = ax.get_ylim()
    assert low < min(result.losses) and max(result.losses[:10]) < high < 100  # the tail reaches 500
    assert ax.get_xscale() == "log"
    assert f"suggestion {result.suggestion:.2g}" in ax.get_legend_handles_labels()[1]
    assert f"{result.suggestion:.2g}" in ax.get_title() and "stopped early" in ax.get_title()


def test_the_result_round_trips_through_strict_json():
    result = diverged_result()

    text = json.dumps(result.to_json(), allow_nan=False)
    again = LrFinderResult.from_json(json.loads(text))

    assert json.loads(text)["losses"][-1] is None
    assert again.suggestion == result.suggestion and again.suggestion_index == result.suggestion_index
    assert again.rule == result.rule == "minimum"
    np.testing.assert_array_equal(again.lrs, result.lrs)
    np.testing.assert_array_equal(again.losses[:-1], result.losses[:-1])
    np.testing.assert_array_equal(again.raw_losses[:-1], result.raw_losses[:-1])
    assert math.isnan(again.losses[-1])  # the diverged step's infinity, read back as "no number"


def test_a_backwards_range_is_refused_before_training():
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        find_learning_rate(
            dense_net(), images(), loss=CROSSENTROPY, optimizer_factory=keras.optimizers.SGD, start_lr=1, end_lr=1e-3
        )
