"""tf.distribute strategies ("strategy" here always means how training is spread over devices)."""

from __future__ import annotations

import logging

import tensorflow as tf

log = logging.getLogger(__name__)


def auto_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over all GPUs when more than one is visible, else the default strategy."""
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
