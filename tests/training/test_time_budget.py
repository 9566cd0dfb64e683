"""train.budget_minutes: the last phase trains as long as the budget allows, earlier ones keep their plan, and the
cosine schedule ends where training ends."""

from __future__ import annotations

import functools
import time

import keras
import pytest
import tensorflow as tf

from helpers import tiny_dense_problem
from imgcls.training.phases import FitSettings, PhasePlan, train_phases
from imgcls.training.schedules import cosine_with_warmup
from imgcls.training.time_budget import VALIDATION_STEP_FRACTION, TimeBudget


def budget_run(plans, seconds, min_epoch_steps=1):
    schedules = []

    def recorded_cosine(base_lr, total_steps):
        schedules.append(cosine_with_warmup(base_lr, total_steps, warmup_fraction=0.1)[0])
        return schedules[-1], []

    model, backbone, data = tiny_dense_problem()  # 3 steps a pass
    started = time.monotonic()
    budget = TimeBudget(seconds / 60, started, val_batches=3, test_batches=3, evaluation_fixed_seconds=0.0)
    settings = FitSettings(
        loss=keras.losses.CategoricalCrossentropy(),
        optimizer_factory=functools.partial(keras.optimizers.SGD),
        schedule_factory=recorded_cosine,
        early_stopping_patience=100_000,
        jit_compile=False,
        verbose=0,
        budget=budget,
        min_epoch_steps=min_epoch_steps,
    )
    outcome = train_phases(
        model, backbone, plans, settings, train_ds=data, val_ds=data, strategy=tf.distribute.get_strategy()
    )
    return model, outcome, schedules, time.monotonic() - started, budget


def test_the_last_phase_fills_the_budget_and_its_cosine_spans_what_it_trained():
    model, outcome, (schedule,), seconds, budget = budget_run([PhasePlan("scratch", 2, 0.1)], seconds=4.0)
    trained = outcome.epochs["scratch"]
    assert trained > 2, "two planned epochs take milliseconds: the budget lengthened the phase"
    assert outcome.lengths["scratch"].epochs == trained
    assert outcome.lengths["scratch"].reason == "train.budget_minutes=0.0666667"
    assert seconds <= 4.0 + 1.0, "it ended by the deadline (give or take an epoch)"
    assert seconds >= 2.0, "it used most of the budget"
    assert schedule.total_steps == trained * 3 == int(model.optimizer.iterations)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-6), "the cosine reached its end"
    assert budget.seconds_per_eval_batch is not None, "validation was timed for the final evaluation's estimate"


def test_earlier_phases_keep_their_planned_length_within_their_share():
    plans = [PhasePlan("phase1", 3, 0.1), PhasePlan("scratch", 2, 0.1)]
    _, outcome, schedules, _, _ = budget_run(plans, seconds=3.0)
    assert outcome.epochs["phase1"] == 3, "phase 1 fits in its share, so it keeps its plan (never more)"
    assert outcome.epochs["scratch"] > 2
    assert schedules[1].total_steps == outcome.epochs["scratch"] * 3


def test_a_budget_shorter_than_one_epoch_ends_the_phase_inside_it_at_the_end_of_its_cosine():
    plan = PhasePlan("scratch", 1, 0.1, steps=300_000)  # one epoch of 300,000 steps: minutes
    model, outcome, (schedule,), seconds, _ = budget_run([plan], seconds=2.0, min_epoch_steps=300_000)
    length = outcome.lengths["scratch"]
    assert outcome.epochs["scratch"] == 1
    assert length.cut_steps is not None and length.steps < length.steps_per_epoch, "stopped inside the epoch"
    assert schedule.total_steps == length.steps == int(model.optimizer.iterations)
    assert outcome.phase_records()["scratch"]["steps"] == length.steps, "metrics.json counts the steps trained"
    assert schedule.warmup_steps == round(0.1 * length.steps), "the warmup shrank with the phase"
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-3), "the cosine reached its end"
    assert seconds <= 2.0 + 1.0
    assert outcome.best.value is not None, "the cut epoch was validated"


def test_the_evaluation_estimate_reads_the_test_files_once_and_the_cache_after():
    budget = TimeBudget(1.0, 0.0, val_batches=2, test_batches=10, evaluation_passes=2, evaluation_fixed_seconds=3.0)
    assert budget.evaluation_seconds() == 3.0, "nothing timed yet"
    budget.seconds_per_step = 0.2  # the first training steps are timed before any validation pass
    assert budget.evaluation_seconds() == pytest.approx(3.0 + (2 * 2 + 10 * 2) * 0.2 * VALIDATION_STEP_FRACTION)
    budget.observe_validation(seconds=2.0, batches=4)  # the first pass decodes its files: 0.5 s a batch
    budget.observe_validation(seconds=0.4, batches=4)  # later ones come from the cache: 0.1 s a batch
    budget.observe_validation(seconds=0.8, batches=4)  # a slower pass changes neither rate
    assert (budget.seconds_per_read_batch, budget.seconds_per_eval_batch) == (0.5, 0.1)
    # fixed 3 s; validation 2 batches x 2 passes from the cache; test 10 batches read once, then once cached
    assert budget.evaluation_seconds() == pytest.approx(3.0 + 2 * 2 * 0.1 + 10 * (0.5 + 0.1))
    assert budget.training_end() == pytest.approx(60.0 - budget.evaluation_seconds())
