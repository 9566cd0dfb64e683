"""The precision setting: auto picks mixed_float16 only where a GPU runs it fast; the policy is Keras's global one."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf

from imgcls.errors import ConfigError
from imgcls.training import precision
from imgcls.training.precision import apply_precision, resolve_precision


def test_auto_is_float32_on_cpu_and_mixed_float16_on_a_recent_gpu(monkeypatch):
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    assert resolve_precision("auto") == ("mixed_float16" if on_gpu else "float32")
    monkeypatch.setattr(precision, "_gpu_supports_float16", lambda: True)
    assert resolve_precision("auto") == "mixed_float16"
    monkeypatch.setattr(precision, "_gpu_supports_float16", lambda: False)
    assert resolve_precision("auto") == "float32"


def test_named_policies_are_kept_and_bad_values_are_refused():
    assert resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert resolve_precision("float32") == "float32"
    with pytest.raises(ConfigError, match="precision"):
        resolve_precision("fp8")


def test_apply_sets_the_global_keras_policy():
    try:
        assert apply_precision("mixed_float16") == "mixed_float16"
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
