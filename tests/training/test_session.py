"""A clean session frees what an earlier run traced, and the private TensorFlow names it uses still hold."""

from __future__ import annotations

import gc
import weakref
from importlib.metadata import version

import keras
import numpy as np
import pytest
from tensorflow.python.framework import ops
from tensorflow.python.framework.func_graph import FuncGraph

from imgcls.training.session import CUSTOM_GRADIENT_PREFIX, WRITTEN_FOR_TENSORFLOW, start_clean_session


def custom_gradients() -> set[str]:
    return {name for name in ops._gradient_registry._registry if str(name).startswith(CUSTOM_GRADIENT_PREFIX)}


def live_graphs() -> list[weakref.ref]:
    gc.collect()
    return [weakref.ref(o) for o in gc.get_objects() if isinstance(o, FuncGraph)]


def test_installed_tensorflow_is_the_one_the_session_module_was_written_for():
    assert version("tensorflow").startswith(WRITTEN_FOR_TENSORFLOW + "."), (
        "check imgcls.training.session against this TensorFlow (does the test below still pass without "
        "forget_custom_gradients?), then update WRITTEN_FOR_TENSORFLOW"
    )


@pytest.mark.slow
def test_a_clean_session_frees_the_graphs_an_earlier_fit_traced():
    before_graphs = {id(ref()) for ref in live_graphs()}
    before_gradients = custom_gradients()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((8, 4)), np.zeros((8, 2)), epochs=1, verbose=0)
    assert custom_gradients() - before_gradients, "Keras's training step registers a custom gradient"
    traced = [ref for ref in live_graphs() if id(ref()) not in before_graphs]
    assert traced

    del model
    keras.backend.clear_session(free_memory=True)
    assert any(ref() is not None for ref in traced), (
        "TensorFlow frees a fitted model's graphs without forget_custom_gradients now: it can go"
    )

    start_clean_session()
    assert not custom_gradients()
    assert all(ref() is None for ref in traced), "the graphs of the earlier fit are freed"
