"""What several test modules do alike: compose the real configs, run an entry point, kill a run mid-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from collections.abc import Callable, Sequence
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
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
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
    process: subprocess.Popen, reached: Callable[[], bool], *, timeout: float = 300, poll: float = 0.05,
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
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def tiny_classifier(class_names: Sequence[str], preprocessing: str, *, spread: bool = True):
    """An untrained MobileNetV3-Small classifier on 32 px images, built as imgcls builds one.

    A random backbone's features are tiny (~1e-11); with ``spread`` the first head BatchNormalization
    is set to standardize them, so the softmax differs clearly from image to image and a mix-up of
    images, outputs or artifacts cannot match by accident.
    """
    import keras
    import numpy as np

    from imgcls.models.classifier import build_classifier

    backbone = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3))
    model = build_classifier(
        backbone, class_names=list(class_names), image_size=32, preprocessing=preprocessing, dense_units=8,
        dropout=0.2, l2=1e-4,
    )
    if not spread:
        return model
    probe = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    features = keras.Model(model.inputs, model.get_layer("head_pool").output).predict(probe, verbose=0)
    bn = model.get_layer("head_bn1")
    _, beta, _, variance = bn.get_weights()
    bn.set_weights([np.sqrt(variance + bn.epsilon) / (features.std(0) + 1e-30), beta, features.mean(0), variance])
    return model
