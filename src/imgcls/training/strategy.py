"""tf.distribute strategies on one machine ("strategy" here always means how training is spread over devices).

Multi-machine training lives in :mod:`imgcls.training.multi_worker`.
"""

from __future__ import annotations

import tensorflow as tf


def auto_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over all GPUs when more than one is visible, else the default strategy."""
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
