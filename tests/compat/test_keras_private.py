"""The private Keras attributes behind imgcls.compat.keras_private still exist and do what training relies on."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

from imgcls.compat.keras_private import all_sublayers, restored_epoch, set_restored_epoch, sublayers, variable_index
from imgcls.compat.versions import UntestedVersionError


def tiny_model() -> keras.Model:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_fit_starts_from_the_restored_epoch_and_keeps_it():
    model = tiny_model()
    assert restored_epoch(model) is None  # Trainer.__init__ sets it
    set_restored_epoch(model, 2)
    history = model.fit(np.ones((4, 3)), np.ones((4, 1)), epochs=3, initial_epoch=0, verbose=0)
    assert history.epoch == [2] and restored_epoch(model) == 2
    set_restored_epoch(model, None)
    assert model.fit(np.ones((4, 3)), np.ones((4, 1)), epochs=2, verbose=0).epoch == [0, 1]


def test_backup_and_restore_sets_the_same_attribute():
    """EpochBackup restores as Keras's own callback does: a sign the attribute is still how fit() is told."""
    source = inspect.getsource(keras.callbacks.BackupAndRestore)
    assert "self.model._initial_epoch = " in source


def test_the_variable_index_is_the_position_in_the_built_list():
    assert str(inspect.signature(keras.optimizers.Optimizer._get_variable_index)) == "(self, variable)"
    model = tiny_model()
    optimizer = keras.optimizers.SGD()
    optimizer.build(model.trainable_variables)
    for index, variable in enumerate(model.trainable_variables):
        # update_step gets the backend variable under a Keras variable in the TensorFlow backend
        assert variable_index(optimizer, variable) == variable_index(optimizer, variable.value) == index


@pytest.mark.parametrize(
    "use",
    [
        lambda model: restored_epoch(model),
        lambda model: set_restored_epoch(model, 1),
        lambda model: variable_index(model.optimizer, model.trainable_variables[0]),
    ],
    ids=["restored_epoch", "set_restored_epoch", "variable_index"],
)
def test_an_untested_keras_stops_on_first_use(monkeypatch, use):
    model = tiny_model()
    model.optimizer.build(model.trainable_variables)
    monkeypatch.setattr(keras, "__version__", "3.16.0")
    with pytest.raises(
        UntestedVersionError,
        match=r"imgcls's training loop .* keras 3\.16\.0 is installed\. "
        r"Install the tested versions with: pip install -c constraints\.txt -e \.",
    ):
        use(model)


def test_sublayers_are_a_layers_direct_children_in_the_order_it_made_them():
    assert str(inspect.signature(keras.layers.Layer._flatten_layers)) == "(self, include_self=True, recursive=True)"

    class Pair(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.second = keras.layers.Dense(2, name="second")
            self.first = keras.layers.Dense(2, name="first")
            self.inner = keras.Sequential([keras.layers.Dense(2, name="deep")], name="inner")

        def call(self, x):
            return self.inner(self.first(self.second(x)))

    inputs = keras.Input((3,))
    model = keras.Model(inputs, Pair(name="pair")(inputs))
    assert [layer.name for layer in sublayers(model)] == [model.layers[0].name, "pair"]
    assert [layer.name for layer in sublayers(model.get_layer("pair"))] == ["second", "first", "inner"]
    found = [layer.name for layer in all_sublayers(model)]
    assert found[1:5] == ["pair", "second", "first", "inner"] and found[-1] == "deep", "depth first, in order"
