"""The names that imgcls.compat.keras_trainer patches still exist with the signatures and behaviour it
wraps. Fast: no cluster; tests/training/test_multi_worker.py trains with two real workers."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.backend.tensorflow import trainer

from imgcls.compat.keras_trainer import fix_multi_worker_trainer
from imgcls.compat.versions import UntestedVersionError


def test_the_patched_functions_keep_their_signatures():
    assert (
        str(inspect.signature(trainer.TensorFlowTrainer._maybe_symbolic_build))
        == "(self, iterator=None, data_batch=None)"
    )
    assert str(inspect.signature(trainer.reduce_per_replica)) == "(values, strategy, reduction)"
    assert str(inspect.signature(trainer._collective_all_reduce_multi_worker)) == "(strategy)"
    assert not trainer._collective_all_reduce_multi_worker(tf.distribute.get_strategy())


def test_the_epoch_iterator_yields_steps_and_an_iterator_of_batches():
    """The fix reads one batch as Keras does: ``for _, _, batches in iterator: next(batches)``."""
    dataset = tf.data.Dataset.from_tensor_slices((np.zeros((4, 3), "float32"), np.zeros((4, 1), "float32"))).batch(2)
    epoch_iterator = trainer.TFEpochIterator(x=dataset, distribute_strategy=tf.distribute.get_strategy())
    for _, _, batches in epoch_iterator:
        x, y = next(batches)
        break
    assert (tuple(x.shape), tuple(y.shape)) == ((2, 3), (2, 1))


def test_a_model_under_a_strategy_knows_it():
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    assert model._distribute_strategy is not None


@pytest.fixture
def restored_trainer(monkeypatch):
    """Lets a test apply the fix: the module's patched names are put back afterwards."""
    monkeypatch.setattr(
        trainer.TensorFlowTrainer, "_maybe_symbolic_build", trainer.TensorFlowTrainer._maybe_symbolic_build
    )
    monkeypatch.setattr(trainer, "reduce_per_replica", trainer.reduce_per_replica)
    monkeypatch.setattr(trainer, "_imgcls_multi_worker_fixed", False, raising=False)
    return trainer


def test_the_fixed_trainer_still_fits_and_evaluates_under_a_strategy(restored_trainer):
    fix_multi_worker_trainer()
    assert restored_trainer._imgcls_multi_worker_fixed
    assert restored_trainer.TensorFlowTrainer._maybe_symbolic_build.__wrapped__ is not None
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
    dataset = tf.data.Dataset.from_tensor_slices((np.ones((4, 3), "float32"), np.ones((4, 1), "float32"))).batch(2)
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0]) and np.isfinite(model.evaluate(dataset, verbose=0))


def test_an_untested_keras_stops_before_anything_is_patched(restored_trainer, monkeypatch):
    monkeypatch.setattr(keras, "__version__", "3.16.0")
    original = restored_trainer.reduce_per_replica
    with pytest.raises(
        UntestedVersionError,
        match=r"strategy=multi_worker .*keras>=3\.15,<3\.16, but keras 3\.16\.0 is "
        r"installed\. Install the tested versions with: pip install -c constraints\.txt -e \.",
    ):
        fix_multi_worker_trainer()
    assert restored_trainer.reduce_per_replica is original and not restored_trainer._imgcls_multi_worker_fixed
