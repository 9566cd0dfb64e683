"""The private attributes of Keras models and optimizers that imgcls reads or sets.

* ``Model._initial_epoch``: the epoch ``fit()`` starts from instead of its ``initial_epoch``
  argument; ``keras.callbacks.BackupAndRestore`` sets it in ``on_train_begin`` when it restores, and so
  does imgcls's :class:`~imgcls.training.checkpoints.EpochBackup`. It is not reset after ``fit()``.
* ``Optimizer._get_variable_index(variable)``: the position of a trainable variable in the list the
  optimizer was built with. In the TensorFlow backend ``update_step`` receives the ``tf.Variable``
  under a Keras variable, which has no ``path``; this index is how a variable is recognised there.

Every accessor checks the Keras version on each call (cached, so cheap): the first call comes as a
phase starts training, before any epoch runs. ``tests/compat/test_keras_private.py`` checks the names.
"""

from __future__ import annotations

import keras

from imgcls.compat.versions import WrittenFor

KERAS = WrittenFor("keras", "3.15", "3.16")
USER = "imgcls's training loop (imgcls.compat.keras_private: Model._initial_epoch, Optimizer._get_variable_index)"


def restored_epoch(model: keras.Model) -> int | None:
    """The epoch a callback told ``fit()`` to start from (the restored backup's), or None."""
    KERAS.check(USER)
    return model._initial_epoch


def set_restored_epoch(model: keras.Model, epoch: int | None) -> None:
    """Make the next ``fit()`` start at ``epoch`` (from ``on_train_begin``), or clear it with None."""
    KERAS.check(USER)
    model._initial_epoch = epoch


def variable_index(optimizer: keras.optimizers.Optimizer, variable) -> int:
    """The position of ``variable`` (a Keras variable, or the backend variable under it) in the list
    ``optimizer`` was built with."""
    KERAS.check(USER)
    return optimizer._get_variable_index(variable)
