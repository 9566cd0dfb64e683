"""A fix of Keras 3's TensorFlow trainer for several workers (keras-team/keras#20585, tensorflow/tensorflow#72388).

Both bugs are in code that only runs under MultiWorkerMirroredStrategy across workers:

* Before fit and evaluate, Keras averages one input batch over all replicas with ``strategy.reduce``
  just to learn the input shapes; that reduce fails ("Attempt to convert a value (PerReplica...) to a
  Tensor"). Shapes and dtypes are all it needs: it gets this worker's first local batch instead.
* It averages each step's logs (loss, metrics) over replicas with ``strategy.reduce("MEAN", v,
  axis=0)``, which fails on scalars ("Invalid reduction dimension 0 for input with 0 dimensions") and
  would also average over the batch for other shapes. ``axis=None`` averages over replicas only, as
  Keras does on one machine.

Patched names, in ``keras.src.backend.tensorflow.trainer``: ``TensorFlowTrainer._maybe_symbolic_build``
(and the ``_distribute_strategy`` it reads), ``reduce_per_replica`` and
``_collective_all_reduce_multi_worker``; ``tests/compat/test_keras_trainer.py`` checks them without
training, ``tests/training/test_multi_worker.py`` with two real workers. When moving to a new Keras,
check whether #20585 is fixed there and this module can go.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from imgcls.compat.versions import WrittenFor

KERAS = WrittenFor("keras", "3.15", "3.16")
USER = "strategy=multi_worker (imgcls.compat.keras_trainer, the fix of keras-team/keras#20585)"


def _first_local(strategy: tf.distribute.Strategy, value):
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def fix_multi_worker_trainer() -> None:
    """Patch Keras's TensorFlow trainer for MultiWorkerMirroredStrategy, once per process.

    Checks the Keras version first, when a multi-worker strategy is built (before any training):
    raises :class:`~imgcls.compat.versions.UntestedVersionError` outside the tested range.
    """
    KERAS.check(USER)
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_imgcls_multi_worker_fixed", False):
        return

    maybe_symbolic_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    @functools.wraps(maybe_symbolic_build)
    def build_from_local_batch(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is not None and strategy is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(functools.partial(_first_local, strategy), next(batches))
                break
            iterator = None
        return maybe_symbolic_build(self, iterator=iterator, data_batch=data_batch)

    reduce_per_replica = trainer.reduce_per_replica

    @functools.wraps(reduce_per_replica)
    def mean_over_replicas(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = build_from_local_batch
    trainer.reduce_per_replica = mean_over_replicas
    trainer._imgcls_multi_worker_fixed = True
