"""The run keeps its best phase: a phase 2 made to hurt (a huge learning rate) ends the run on phase 1's weights,
in a fresh run and in a resumed one."""

from __future__ import annotations

import functools
import logging

import keras
import numpy as np
import tensorflow as tf

from helpers import tiny_classifier
from imgcls.models.compact_resnet import CompactResNet
from imgcls.training.best_of_run import BestOfRun
from imgcls.training.checkpoints import PhaseCheckpoints
from imgcls.training.phases import FitSettings, PhasePlan, train_phases
from imgcls.training.schedules import constant

PLANS = [PhasePlan("phase1", 3, 1e-2), PhasePlan("phase2", 2, 30.0, unfreeze=-1)]  # phase 2: Adam at 30


def classifier():
    keras.utils.set_random_seed(0)
    backbone = CompactResNet(input_shape=(16, 16, 3), stem_width=4, stage_widths=(4, 8), blocks_per_stage=(1, 1))
    return tiny_classifier(backbone=backbone, spread=False, dropout=0.0, l2=0.0), backbone


def data():
    images = tf.random.stateless_uniform((24, 16, 16, 3), seed=(3, 4), minval=0, maxval=255)
    labels = tf.one_hot(tf.range(24) % 3, 3)
    images = (
        images
        + 60.0
        * tf.reduce_mean(labels[:, None, None, :], axis=-1, keepdims=True)
        * tf.cast(tf.range(24) % 3, tf.float32)[:, None, None, None]
    )
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)


def run(checkpoints, plans=PLANS):
    model, backbone = classifier()
    settings = FitSettings(
        loss=keras.losses.CategoricalCrossentropy(),
        optimizer_factory=functools.partial(keras.optimizers.Adam),
        schedule_factory=constant,
        early_stopping_patience=10,
        checkpoints=checkpoints,
        jit_compile=False,
        verbose=0,
    )
    ds = data()
    outcome = train_phases(
        model, backbone, plans, settings, train_ds=ds, val_ds=ds, strategy=tf.distribute.get_strategy()
    )
    return model, outcome


def same_weights(model, path):
    reference, _ = classifier()
    reference.load_weights(path)
    return all(np.array_equal(a, b) for a, b in zip(reference.get_weights(), model.get_weights()))


def test_a_phase_that_hurts_is_reported_and_the_run_ends_on_the_best_phase(tmp_path, caplog):
    checkpoints = PhaseCheckpoints(tmp_path / "checkpoints", resume=False)
    with caplog.at_level(logging.WARNING, logger="imgcls"):
        model, outcome = run(checkpoints)
    phase1, phase2 = outcome.best.outcomes["phase1"], outcome.best.outcomes["phase2"]
    assert phase2.best > phase1.best, "the huge rate made phase 2 worse"
    assert outcome.best.phase == "phase1" and phase1.kept and not phase2.kept
    assert outcome.best.epoch == phase1.best_epoch <= 3
    warning = " ".join(record.getMessage() for record in caplog.records)
    assert "phase2 ended worse than phase1 by val_loss" in warning
    assert f"{phase2.best:.6g} against {phase1.best:.6g}" in warning
    assert same_weights(model, tmp_path / "checkpoints" / "phase1.weights.h5"), "the model holds phase 1's weights"
    assert not same_weights(model, tmp_path / "checkpoints" / "phase2.weights.h5")


def test_a_resumed_run_also_ends_on_the_best_phase(tmp_path):
    run(PhaseCheckpoints(tmp_path / "checkpoints", resume=False))
    resumed = PhaseCheckpoints(tmp_path / "checkpoints", resume=True)
    assert resumed.is_finished("phase1") and resumed.is_finished("phase2")
    model, outcome = run(resumed)
    assert outcome.best.phase == "phase1" and not outcome.best.outcomes["phase2"].kept
    assert same_weights(model, tmp_path / "checkpoints" / "phase1.weights.h5")


def test_a_better_later_phase_is_kept():
    model, _ = classifier()
    best = BestOfRun("val_accuracy")
    assert best.offer("phase1", model, 0.5, 2)
    assert best.offer("phase2", model, 0.7, 4) and best.phase == "phase2"
    assert not best.offer("phase3", model, 0.6, 6) and best.phase == "phase2" and best.value == 0.7
    assert best.offer("phase4", model, None, None), "an unknown result (an older checkpoint) is kept, as before"
