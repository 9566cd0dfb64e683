"""The private attributes of Keras models and optimizers that imgcls reads or sets.

* ``Model._initial_epoch``: the epoch ``fit()`` starts from instead of its ``initial_epoch``
  argument; ``keras.callbacks.BackupAndRestore`` sets it in ``on_train_begin`` when it restores, and so
  does imgcls's :class:`~imgcls.training.checkpoints.EpochBackup`. It is not reset after ``fit()``.
* ``Layer._flatten_layers(include_self=False, recursive=False)``: the layers a (non-functional) layer tracks,
  in order: how the blocks of a keras-hub backbone (transformer layers inside an encoder layer) are found.
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
USER = (
    "imgcls's training loop (imgcls.compat.keras_private: Model._initial_epoch, Optimizer._get_variable_index, "
    "Layer._flatten_layers)"
)


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


def sublayers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The layers directly inside ``layer``: a functional model's in graph order, any other layer's in the order
    it tracked them (``Layer._flatten_layers``; Keras has no public accessor for the latter)."""
    if isinstance(layer, keras.Model) and hasattr(layer, "_operations"):  # functional
        return list(layer.layers)
    KERAS.check(USER)
    return list(layer._flatten_layers(include_self=False, recursive=False))


def all_sublayers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Every layer inside ``layer``, at any depth, each once."""
    found, seen = [], set()
    stack = list(reversed(sublayers(layer)))
    while stack:
        child = stack.pop()
        if id(child) in seen:
            continue
        seen.add(id(child))
        found.append(child)
        stack.extend(reversed(sublayers(child)))
    return found
