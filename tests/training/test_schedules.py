"""Learning-rate schedules: warm-up and cosine decay, constant, reduce on plateau."""

from __future__ import annotations

import keras
import pytest

from imgcls.training.schedules import constant, cosine_with_warmup, reduce_on_plateau


def test_cosine_warms_up_linearly_then_decays_to_the_final_fraction():
    schedule, callbacks = cosine_with_warmup(1e-3, total_steps=100, warmup_fraction=0.1, final_lr_fraction=0.01)
    assert callbacks == []
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(5)) == pytest.approx(0.5e-3)
    assert float(schedule(10)) == pytest.approx(1e-3)
    assert float(schedule(55)) == pytest.approx(0.5 * 1e-3 * 1.01, rel=0.02)
    assert float(schedule(100)) == pytest.approx(1e-5)


def test_cosine_without_warmup_starts_at_the_base_rate():
    schedule, _ = cosine_with_warmup(2e-4, total_steps=10, warmup_fraction=0.0)
    assert float(schedule(0)) == pytest.approx(2e-4)


def test_constant_and_plateau_start_at_the_base_rate():
    assert constant(3e-4, 20) == (3e-4, [])
    lr, callbacks = reduce_on_plateau(3e-4, 20, patience=1)
    assert lr == 3e-4 and isinstance(callbacks[0], keras.callbacks.ReduceLROnPlateau)


def test_a_retargeted_cosine_ends_at_its_new_length_and_keeps_its_warmup():
    schedule, _ = cosine_with_warmup(1e-3, total_steps=100, warmup_fraction=0.1)
    schedule.retarget(400)
    assert schedule.total_steps == 400
    assert float(schedule(5)) == pytest.approx(0.5e-3), "the warmup keeps its 10 steps"
    assert float(schedule(10 + 195)) == pytest.approx(0.5e-3, rel=0.02), "halfway through the new decay"
    assert float(schedule(400)) == pytest.approx(0.0, abs=1e-9)
    assert float(schedule(100)) > 0.8e-3, "the old end is no longer the end"


def test_a_cosine_cut_short_keeps_its_warmup_to_its_share_of_the_new_length():
    schedule, _ = cosine_with_warmup(1e-3, total_steps=1000, warmup_fraction=0.05)
    schedule.retarget(80)
    assert schedule.warmup_steps == 4, "5% of 80 steps, not the 50 planned for 1,000"
    assert float(schedule(4)) == pytest.approx(1e-3)
    assert float(schedule(80)) == pytest.approx(0.0, abs=1e-9)
