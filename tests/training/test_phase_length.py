"""Phase lengths in epochs or steps, a floor in steps, Keras epochs of at least min_epoch_steps, and the cosine
schedule spanning the length actually trained."""

from __future__ import annotations

import functools
import json

import keras
import pytest
import tensorflow as tf

from helpers import assert_png_figure, tiny_dense_problem
from imgcls.training.phase_length import plan_length
from imgcls.training.phases import FitSettings, PhasePlan, fit_phase
from imgcls.training.schedules import cosine_with_warmup


def length(epochs=10, steps=None, min_steps=0, steps_per_pass=6, min_epoch_steps=1):
    return plan_length(
        "scratch",
        epochs=epochs,
        steps=steps,
        min_steps=min_steps,
        steps_per_pass=steps_per_pass,
        min_epoch_steps=min_epoch_steps,
    )


def test_epochs_are_passes_over_the_training_set():
    plan = length(epochs=10, steps_per_pass=6)
    assert (plan.epochs, plan.steps, plan.passes) == (10, 60, 10)
    assert plan.reason == "train.phases.scratch.epochs=10"


def test_steps_fix_the_updates_whatever_the_data_set_size():
    small, large = length(steps=1000, steps_per_pass=6), length(steps=1000, steps_per_pass=844)
    assert small.steps == 1002 and small.epochs == 167  # whole passes: 167 x 6
    assert large.steps == 1688 and large.epochs == 2
    assert small.reason == large.reason == "train.phases.scratch.steps=1000"


def test_a_floor_in_steps_lengthens_a_phase_on_few_images_only():
    few = length(epochs=10, min_steps=600, steps_per_pass=3)
    assert few.steps >= 600 and few.passes == 200
    assert few.reason.startswith("train.phases.scratch.min_steps=600")
    many = length(epochs=10, min_steps=600, steps_per_pass=100)
    assert many.steps == 1000 and many.reason == "train.phases.scratch.epochs=10"


def test_a_keras_epoch_holds_several_passes_over_a_small_training_set():
    plan = length(epochs=40, steps_per_pass=6, min_epoch_steps=50)
    assert plan.passes_per_epoch == 10 and plan.epochs == 4 and plan.steps_per_epoch == 60
    assert plan.passes == 40, "no pass more than asked when they divide evenly"
    uneven = length(epochs=25, steps_per_pass=6, min_epoch_steps=50)
    assert uneven.epochs == 2 and uneven.passes_per_epoch == 13 and uneven.passes - 25 < uneven.epochs
    assert length(epochs=3, steps_per_pass=6, min_epoch_steps=50).epochs == 1, "a short phase is one epoch"
    assert length(epochs=5, steps_per_pass=844, min_epoch_steps=50).passes_per_epoch == 1


def tiny_fit(plan, *, min_epoch_steps=1, run_dir=None):
    """Fit the tiny dense model for ``plan``; return it, the phase's result and the cosine schedule it trained with."""
    schedules = []

    def recorded_cosine(base_lr, total_steps):
        schedules.append(cosine_with_warmup(base_lr, total_steps, warmup_fraction=0.0)[0])
        return schedules[-1], []

    model, _, data = tiny_dense_problem()  # 3 steps a pass
    settings = FitSettings(
        loss=keras.losses.CategoricalCrossentropy(),
        optimizer_factory=functools.partial(keras.optimizers.SGD),
        schedule_factory=recorded_cosine,
        early_stopping_patience=1000,
        jit_compile=False,
        verbose=0,
        min_epoch_steps=min_epoch_steps,
        run_dir=run_dir,
    )
    result = fit_phase(
        model, plan, settings, train_ds=data, val_ds=data, initial_epoch=0, strategy=tf.distribute.get_strategy()
    )
    return model, result, schedules[0]


def test_a_phase_in_steps_trains_that_many_updates_and_its_cosine_ends_there():
    model, result, schedule = tiny_fit(PhasePlan("scratch", epochs=1, lr=0.1, steps=10))
    assert int(model.optimizer.iterations) == 12  # 4 whole passes of 3 steps
    assert schedule.total_steps == 12
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9), "the rate reached its end"
    assert result.end == 4


def test_passes_grouped_into_epochs_validate_once_per_epoch():
    model, result, schedule = tiny_fit(PhasePlan("scratch", epochs=20, lr=0.1), min_epoch_steps=15)
    assert int(model.optimizer.iterations) == 60, "20 passes of 3 steps"
    assert result.end == 4, "4 Keras epochs of 5 passes, each validated once"
    assert schedule.total_steps == 60


def test_lr_auto_trains_at_the_finders_suggestion_and_draws_its_plot(tmp_path):
    _, _, schedule = tiny_fit(PhasePlan("scratch", epochs=2, lr="auto"), run_dir=tmp_path)
    found = json.loads((tmp_path / "lr_find_scratch.json").read_text())
    assert_png_figure(tmp_path / "lr_find_scratch.png")
    assert schedule.base_lr == pytest.approx(found["suggestion"], rel=1e-5), "the phase trained at the suggestion"
