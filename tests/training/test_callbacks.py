"""What each epoch leaves behind: the learning rate in history.csv, one readable line in the log."""

from __future__ import annotations

import csv
import functools
import logging
import re

import keras
import pytest
import tensorflow as tf

from imgcls.models.blocks import backbone_blocks
from imgcls.training.callbacks import epoch_line
from imgcls.training.phases import FitSettings, PhasePlan, fit_phase
from imgcls.training.schedules import cosine_with_warmup

IMAGES = 10  # 3 batches of 4, the last one of 2
LINE = re.compile(
    r"^phase1 epoch (\d)/3: loss \d+\.\d{4} accuracy \d\.\d{4} \| val_loss \d+\.\d{4} val_accuracy \d\.\d{4} "
    r"\| lr \S+ \| \d+\.\d s, \d+ img/s$"
)


def tiny_model():
    keras.utils.set_random_seed(0)
    backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="relu")], name="backbone")
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(backbone(inputs))), backbone


def datasets():
    x = tf.random.stateless_uniform((IMAGES, 4), seed=(1, 2))
    y = tf.one_hot(tf.range(IMAGES) % 3, 3)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(4), tf.data.Dataset.from_tensor_slices((x, y)).batch(4)


def fit(tmp_path, schedule_factory, *, epochs=3, initial_epoch=0, backbone_lr_mult=1.0):
    model, backbone = tiny_model()
    settings = FitSettings(
        loss=keras.losses.CategoricalCrossentropy(),
        optimizer_factory=functools.partial(keras.optimizers.SGD),
        schedule_factory=schedule_factory,
        early_stopping_patience=10,
        run_dir=tmp_path,
        tensorboard=True,
        train_images=IMAGES,
        jit_compile=False,
        verbose=0,
    )
    train_ds, val_ds = datasets()
    fit_phase(
        model,
        PhasePlan("phase1", epochs, 0.1, backbone_lr_mult=backbone_lr_mult),
        settings,
        train_ds=train_ds,
        val_ds=val_ds,
        initial_epoch=initial_epoch,
        strategy=tf.distribute.get_strategy(),
        trained_blocks=backbone_blocks(backbone, None),
    )


def history(tmp_path):
    with open(tmp_path / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def halve_every_epoch(base_lr, total_steps):
    # min_delta so large that no epoch counts as an improvement after the first
    return base_lr, [keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=1e9)]


def test_epoch_line_puts_each_loss_first_then_rate_time_and_throughput():
    logs = {"accuracy": 0.88712, "loss": 0.41234, "val_accuracy": 0.90123, "val_loss": 0.381, "lr": 1.2e-5}
    assert epoch_line("phase2", 7, 10, logs, 12.34, 415.2) == (
        "phase2 epoch 7/10: loss 0.4123 accuracy 0.8871 | val_loss 0.3810 val_accuracy 0.9012 | lr 1.2e-05 "
        "| 12.3 s, 415 img/s"
    )
    assert epoch_line("phase1", 1, None, {"loss": 1.0}, 2.0, None) == "phase1 epoch 1: loss 1.0000 | 2.0 s"


def test_history_records_the_rate_each_epoch_trained_with_and_the_log_has_one_line_per_epoch(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="imgcls"):
        fit(tmp_path, halve_every_epoch, backbone_lr_mult=0.1)
    rows = history(tmp_path)
    assert [float(row["lr"]) for row in rows] == pytest.approx([0.1, 0.1, 0.05])  # the head's, base rate
    lines = [record.getMessage() for record in caplog.records if record.name == "imgcls.training.callbacks"]
    assert [int(LINE.match(line).group(1)) for line in lines] == [1, 2, 3], lines
    assert lines[-1].split(" | ")[2] == "lr 0.05"


def test_a_schedule_is_read_at_the_optimizer_step(tmp_path):
    fit(tmp_path, cosine_with_warmup)
    schedule, _ = cosine_with_warmup(0.1, 9)
    expected = [float(schedule(3 * epoch)) for epoch in (1, 2, 3)]
    assert [float(row["lr"]) for row in history(tmp_path)] == pytest.approx(expected)


def test_a_resumed_history_keeps_the_columns_of_its_header(tmp_path):
    old_header = "epoch,accuracy,loss,val_accuracy,val_loss"
    (tmp_path / "history.csv").write_text(f"{old_header}\n0,0.5,1.0,0.5,1.0\n")
    fit(tmp_path, halve_every_epoch, epochs=1, initial_epoch=1)
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0] == old_header and len(lines) == 3
    assert [row["epoch"] for row in history(tmp_path)] == ["0", "1"]
    assert all(len(line.split(",")) == 5 for line in lines)
