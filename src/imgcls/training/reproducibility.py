"""Seeds and deterministic kernels, so that a seed means the same run."""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

log = logging.getLogger(__name__)


def resolve_deterministic(deterministic: bool | str) -> bool:
    """``auto`` is deterministic on a CPU and not on a GPU, where deterministic kernels cost speed."""
    if deterministic == "auto":
        return not tf.config.list_physical_devices("GPU")
    return bool(deterministic)


def seed_everything(seed: int, deterministic: bool | str = "auto") -> bool:
    """Seed Python, NumPy, TensorFlow and Keras; with ``deterministic``, also make TensorFlow's
    kernels and tf.data's random ops repeatable. Returns whether determinism is on."""
    keras.utils.set_random_seed(seed)
    enabled = resolve_deterministic(deterministic)
    if enabled:
        tf.config.experimental.enable_op_determinism()
    log.info("Seed %d; deterministic ops %s", seed, "on" if enabled else "off")
    return enabled
