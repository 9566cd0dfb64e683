"""What several test modules do alike: compose the real configs, run an entry point, kill a run mid-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig


def compose_app(config_name: str, overrides: Sequence[str] = (), *, return_hydra_config: bool = False) -> DictConfig:
    """One of imgcls's packaged configs (train, evaluate, predict, export) composed with ``overrides``."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="imgcls.conf"):
            return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)
    finally:
        GlobalHydra.instance().clear()


def run_entrypoint(
    module: str, args: Sequence[str], cwd: Path, *, env: dict[str, str] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` in ``cwd`` with this environment plus ``env``; output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def data_config(root: Path, tmp_path: Path, **overrides) -> DictConfig:
    """A ``data`` config node for ``root/training_set`` and ``root/test_set`` with its caches in ``tmp_path``."""
    from omegaconf import OmegaConf

    cfg = {
        "demo_root": str(tmp_path / "no-demo"),
        "train_dir": str(root / "training_set"),
        "test_dir": str(root / "test_set"),
        "val_split": 0.25,
        "on_corrupt": "skip",
        "on_overlap": "warn",
        "quarantine_dir": None,
        "max_image_pixels": 89478485,
        "integrity_cache": str(tmp_path / "integrity.sqlite"),
    }
    return OmegaConf.create({**cfg, **overrides})


def kill_when(
    process: subprocess.Popen,
    reached: Callable[[], bool],
    *,
    timeout: float = 300,
    poll: float = 0.05,
    signal_number: int = signal.SIGKILL,
):
    """Send ``signal_number`` (SIGKILL) to ``process`` as soon as ``reached()``, then wait for it to end;
    fail if it exits or ``timeout`` seconds pass first."""
    try:
        deadline = time.monotonic() + timeout
        while not reached():
            assert process.poll() is None, process.stdout.read()[-3000:] if process.stdout else "it ended early"
            assert time.monotonic() < deadline, "the process did not get there in time"
            time.sleep(poll)
        process.send_signal(signal_number)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()


@contextmanager
def small_disk(mount_point: Path, size: str = "1m"):
    """A tmpfs of ``size`` mounted at ``mount_point`` (root only; skips the test where it cannot be mounted)."""
    import pytest

    mount_point.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)]
    mounted = subprocess.run(mount, capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def tiny_run_overrides(image_dataset: Path, *extra: str) -> list[str]:
    """The command line of a tiny run (conf/debug/tiny.yaml) on ``image_dataset`` (training_set/ and
    test_set/, as the conftest fixture writes it), followed by ``extra``."""
    return [
        "debug=tiny",
        f"data.train_dir={image_dataset / 'training_set'}",
        f"data.test_dir={image_dataset / 'test_set'}",
        *extra,
    ]


def tiny_classifier(
    class_names: Sequence[str] = ("a", "b", "c"),
    preprocessing: str = "builtin",
    *,
    spread: bool = True,
    backbone=None,
    dropout: float = 0.2,
    l2: float = 1e-4,
    freeze_batchnorm: bool = True,
    seed: int | None = None,
):
    """An untrained classifier built as imgcls builds one: by default on MobileNetV3-Small with random
    weights at 32 px; ``backbone`` puts another one (any size) under the head. Find the backbone again
    with ``imgcls.models.classifier.find_backbone``.

    A random backbone's features are tiny (~1e-11); with ``spread`` the first head BatchNormalization
    is set to standardize them, so the softmax differs clearly from image to image and a mix-up of
    images, outputs or artifacts cannot match by accident. With ``seed`` the same seed builds the
    same weights (a ``backbone`` given is built before: seed it yourself).
    """
    import keras
    import numpy as np

    from imgcls.models.classifier import build_classifier

    if seed is not None:
        keras.utils.set_random_seed(seed)
    if backbone is None:
        backbone = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3))
    image_size = backbone.input_shape[1]
    model = build_classifier(
        backbone,
        class_names=list(class_names),
        image_size=image_size,
        preprocessing=preprocessing,
        dense_units=8,
        dropout=dropout,
        l2=l2,
        freeze_batchnorm=freeze_batchnorm,
    )
    if not spread:
        return model
    probe = np.random.default_rng(0).uniform(0, 255, (16, image_size, image_size, 3)).astype("float32")
    features = keras.Model(model.inputs, model.get_layer("head_pool").output).predict(probe, verbose=0)
    bn = model.get_layer("head_bn1")
    _, beta, _, variance = bn.get_weights()
    bn.set_weights([np.sqrt(variance + bn.epsilon) / (features.std(0) + 1e-30), beta, features.mean(0), variance])
    return model


def tiny_dense_problem(images: int = 12, batch: int = 4):
    """A Dense "backbone" under a softmax head, and ``images`` random 4-feature examples of 3 classes in batches
    of ``batch``: the cheapest model and data that phase mechanics (lengths, budgets, schedules) run on."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="relu")], name="backbone")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(backbone(inputs)))
    x = tf.random.stateless_uniform((images, 4), seed=(1, 2))
    data = tf.data.Dataset.from_tensor_slices((x, tf.one_hot(tf.range(images) % 3, 3))).batch(batch)
    return model, backbone, data


def assert_test_metrics_match_predictions(folder: Path, metrics: dict | None = None) -> None:
    """``metrics.json``'s test accuracy and loss (or ``metrics``') are those of ``test_predictions.csv`` beside it:
    the share of rows predicted right and the mean of -log(probability of the true class)."""
    import csv
    import json

    import numpy as np
    import pytest

    metrics = metrics or json.loads((folder / "metrics.json").read_text())
    with open(folder / "test_predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == metrics["num_test_images"]
    correct = [row["true_label"] == row["predicted_label"] for row in rows]
    assert metrics["test_accuracy"] == pytest.approx(float(np.mean(correct)))
    true_probability = np.array([float(row["true_label_probability"]) for row in rows])
    assert metrics["test_loss"] == pytest.approx(float(np.mean(-np.log(np.maximum(true_probability, 1e-7)))), rel=1e-3)
    for row in rows:
        assert float(row["true_label_probability"]) <= float(row["confidence"]) + 1e-6
        assert (row["true_label"] == row["predicted_label"]) == (row["true_label_probability"] == row["confidence"])


def assert_png_figure(path: Path, min_side: int = 300) -> None:
    """``path`` is a PNG image, at least ``min_side`` pixels each way, that is not one flat colour."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= min_side, (path.name, image.format, image.size)
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 1.0, f"{path.name} is blank"
