"""Phase mechanics: discriminative learning rates, unfreezing by name, stopping on NaN, checkpoints."""

from __future__ import annotations

import functools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import tiny_classifier, tiny_dense_problem
from imgcls.errors import ConfigError
from imgcls.models.classifier import find_backbone
from imgcls.models.compact_resnet import CompactResNet
from imgcls.training.checkpoints import PhaseCheckpoints
from imgcls.training.freezing import set_trainable_backbone
from imgcls.training.optimizers import backbone_lr_optimizer, block_lr_multipliers
from imgcls.training.phases import FitSettings, PhasePlan, TrainingDivergedError, fit_phase, train_phases
from imgcls.training.schedules import constant


def classifier(seed=0):
    model = tiny_classifier(spread=False, dropout=0.0, l2=0.0, seed=seed)
    return model, find_backbone(model)


def batch():
    images = tf.random.stateless_uniform((8, 32, 32, 3), seed=(1, 2), minval=0, maxval=255)
    return images, tf.one_hot(tf.range(8) % 3, 3)


RESNET_BLOCKS = r"(stage\d+_block\d+)_.*"  # conf/backbone/compact_resnet_s.yaml


def one_step_deltas(multiplier, layer_decay=None):
    """One SGD step's change of every trainable weight, and the block (name) of each backbone weight."""
    keras.utils.set_random_seed(0)
    backbone = CompactResNet(
        input_shape=(32, 32, 3),
        stem_width=4,
        stage_widths=(4, 8, 8),
        blocks_per_stage=(1, 1, 1),
        stage_strides=(2, 2, 2),
    )
    model = tiny_classifier(backbone=backbone, spread=False, dropout=0.0, l2=0.0, seed=0)
    trained = set_trainable_backbone(backbone, -1, blocks=RESNET_BLOCKS)
    multipliers = block_lr_multipliers(trained, multiplier, layer_decay)
    factory = backbone_lr_optimizer(functools.partial(keras.optimizers.SGD), multipliers)
    model.compile(optimizer=factory(learning_rate=0.1), loss="categorical_crossentropy")
    before = {w.path: w.numpy().copy() for w in model.trainable_weights}
    model.train_on_batch(*batch())
    block_of = {w.path: block.name for block in trained for w in block.trainable_weights()}
    return {w.path: w.numpy() - before[w.path] for w in model.trainable_weights}, block_of


def update_factors(scaled: dict, full: dict, block_of: dict) -> dict[str, set[float]]:
    """For each block (and the head), the ratios of its weights' updates in ``scaled`` to those in ``full``."""
    factors: dict[str, set[float]] = {}
    for path, delta in full.items():
        size = np.abs(delta)
        assert size.max() > 1e-7, f"{path} barely moved: its updates are below float32's resolution"
        big = size > size.max() * 1e-2
        factor = float(np.median(scaled[path][big] / delta[big]))
        factors.setdefault(block_of.get(path, "head"), set()).add(round(factor, 3))
    return factors


def test_backbone_learning_rate_multiplier_scales_only_backbone_updates():
    full, block_of = one_step_deltas(1.0)
    scaled, _ = one_step_deltas(0.1)
    factors = update_factors(scaled, full, block_of)
    assert factors.pop("head") == {1.0}
    assert len(factors) == 4 and all(found == {0.1} for found in factors.values())


def test_layer_decay_gives_the_top_block_the_full_rate_and_each_block_below_a_factor_less():
    full, block_of = one_step_deltas(1.0)
    decayed, _ = one_step_deltas(1.0, layer_decay=0.5)
    factors = update_factors(decayed, full, block_of)
    assert factors == {
        "head": {1.0},
        "stage3_block1": {1.0},
        "stage2_block1": {0.5},
        "stage1_block1": {0.25},
        "stem": {0.125},
    }


def test_unfreeze_from_a_layer_name():
    _, backbone = classifier()
    names = [layer.name for layer in backbone.layers]
    start = names[-20]
    trained = set_trainable_backbone(backbone, 0, from_layer=start)
    assert all(not layer.trainable for layer in backbone.layers[:-20])
    assert {block.name for block in trained} <= set(names[-20:]) and trained
    with pytest.raises(ConfigError, match=r"no such block or layer.*Did you mean"):
        set_trainable_backbone(backbone, 0, from_layer=start + "x")


@pytest.mark.slow
def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_epoch(tmp_path):
    model, backbone = classifier()
    set_trainable_backbone(backbone, 0)
    images, labels = batch()
    train_ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)

    def explodes_in_epoch_2(base_lr, total_steps):
        steps_per_epoch = total_steps // 4
        return keras.optimizers.schedules.PiecewiseConstantDecay([steps_per_epoch], [base_lr, 1e38]), []

    checkpoints = PhaseCheckpoints(tmp_path / "checkpoints", resume=False)
    settings = FitSettings(
        loss=keras.losses.CategoricalCrossentropy(),
        optimizer_factory=functools.partial(keras.optimizers.SGD),
        schedule_factory=explodes_in_epoch_2,
        checkpoints=checkpoints,
        verbose=0,
        early_stopping_patience=10,
    )
    plan = PhasePlan("phase1", epochs=4, lr=1e-3)
    with pytest.raises(TrainingDivergedError, match=r"phase1, epoch 2.*train\.phases\.phase1\.lr"):
        fit_phase(
            model,
            plan,
            settings,
            train_ds=train_ds,
            val_ds=train_ds,
            initial_epoch=0,
            strategy=tf.distribute.get_strategy(),
        )
    backup = tmp_path / "checkpoints" / "phase1"
    metadata = json.loads((backup / "training_metadata.json").read_text())
    assert metadata["epoch"] == 1
    restored, _ = classifier(seed=1)
    restored.load_weights(backup / metadata["weights"], skip_mismatch=True)
    assert all(np.isfinite(w.numpy()).all() for w in restored.weights)


def test_finished_phase_is_restored_not_rerun(tmp_path):
    model, _ = classifier()
    checkpoints = PhaseCheckpoints(tmp_path / "c", resume=False)
    checkpoints.finish_phase("phase1", model, first_epoch=0, epochs=3)
    expected = [w.numpy().copy() for w in model.weights]

    other, _ = classifier(seed=5)
    resumed = PhaseCheckpoints(tmp_path / "c", resume=True)
    assert resumed.is_finished("phase1") and not resumed.is_finished("phase2") and resumed.epochs_done() == 3
    resumed.restore_phase("phase1", other)
    for a, b in zip(expected, other.weights):
        np.testing.assert_array_equal(a, b.numpy())

    assert not PhaseCheckpoints(tmp_path / "c", resume=False).is_finished("phase1"), "a fresh run starts over"


def compact_classifier(freeze_batchnorm):
    """The tiny classifier on a 16 px CompactResNet."""
    keras.utils.set_random_seed(0)
    backbone = CompactResNet(input_shape=(16, 16, 3), stem_width=4, stage_widths=(4, 8), blocks_per_stage=(1, 1))
    model = tiny_classifier(backbone=backbone, spread=False, dropout=0.0, l2=0.0, freeze_batchnorm=freeze_batchnorm)
    return model, backbone


def run_phases(model, backbone, plans, freeze_batchnorm):
    images = tf.random.stateless_uniform((16, 16, 16, 3), seed=(3, 4), minval=0, maxval=255)
    data = tf.data.Dataset.from_tensor_slices((images, tf.one_hot(tf.range(16) % 3, 3))).batch(8)
    settings = FitSettings(
        loss=keras.losses.CategoricalCrossentropy(),
        optimizer_factory=functools.partial(keras.optimizers.Adam),
        schedule_factory=constant,
        freeze_batchnorm=freeze_batchnorm,
        verbose=0,
    )
    return train_phases(
        model, backbone, plans, settings, train_ds=data, val_ds=data, strategy=tf.distribute.get_strategy()
    )


def snapshot(backbone):
    return {w.path: w.numpy().copy() for w in backbone.weights}


def changed(before, backbone):
    return {w.path for w in backbone.weights if not np.array_equal(before[w.path], w.numpy())}


def test_scratch_trains_every_backbone_weight_and_batchnorm_from_its_first_epoch():
    model, backbone = compact_classifier(freeze_batchnorm=False)
    before = snapshot(backbone)
    epochs = run_phases(model, backbone, [PhasePlan("scratch", 1, 1e-2, unfreeze=-1)], freeze_batchnorm=False)
    assert epochs.epochs == {"scratch": 1}
    assert changed(before, backbone) == set(before), "every kernel, BN scale/offset and BN statistic moved"
    assert any("moving_mean" in path for path in before)


def test_pretrained_keeps_batchnorm_frozen_and_trains_the_backbone_only_in_phase2():
    model, backbone = compact_classifier(freeze_batchnorm=True)
    bn = {
        w.path for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization) for w in layer.weights
    }
    before = snapshot(backbone)
    head_before = model.get_layer("head_dense").kernel.numpy().copy()
    run_phases(model, backbone, [PhasePlan("phase1", 1, 1e-2)], freeze_batchnorm=True)
    assert not changed(before, backbone), "phase 1 trains the head on a frozen backbone"
    assert not np.array_equal(head_before, model.get_layer("head_dense").kernel.numpy())
    run_phases(model, backbone, [PhasePlan("phase2", 1, 1e-2, unfreeze=-1)], freeze_batchnorm=True)
    moved = changed(before, backbone)
    assert moved and not moved & bn, "phase 2 trains convolutions, never BatchNormalization"


def test_a_phase_traces_its_training_step_once():
    """Adam's slots are built before fit: created inside the first trace, they make TensorFlow trace the step twice."""
    model, _, data = tiny_dense_problem()
    traces = []
    train_step = model.train_step

    def counted_train_step(batch):
        traces.append(batch)
        return train_step(batch)

    model.train_step = counted_train_step
    settings = FitSettings(
        loss=keras.losses.CategoricalCrossentropy(),
        optimizer_factory=functools.partial(keras.optimizers.Adam),
        schedule_factory=constant,
        jit_compile=False,
        verbose=0,
    )
    plan = PhasePlan("scratch", epochs=2, lr=0.01)
    fit_phase(model, plan, settings, train_ds=data, val_ds=data, initial_epoch=0, strategy=tf.distribute.get_strategy())
    assert int(model.optimizer.iterations) == 6, "2 epochs of 3 steps"
    assert len(traces) == 1
