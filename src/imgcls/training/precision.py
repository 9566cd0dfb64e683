"""Choose and apply the Keras mixed-precision policy."""

from __future__ import annotations

import keras
import tensorflow as tf

from imgcls.config_schema import check_choice


def _gpu_supports_float16() -> bool:
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        if tuple(capability) >= (7, 0):
            return True
    return False


def resolve_precision(precision: str) -> str:
    """``auto`` is mixed_float16 on a GPU of compute capability 7.0 or higher, float32 otherwise."""
    if check_choice("precision", precision) == "auto":
        return "mixed_float16" if _gpu_supports_float16() else "float32"
    return precision


def apply_precision(precision: str) -> str:
    """Set the global Keras dtype policy and return its name."""
    policy = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy
