"""Fences around the private code of other packages that imgcls uses or patches: one module per fence.

Each module names the versions it was written and tested for (a :class:`~imgcls.compat.versions.WrittenFor`)
and checks them when it is first used, not when it is imported: importing imgcls (to load a model, say)
works with any version; using a fenced name outside its range stops with an
:class:`~imgcls.compat.versions.UntestedVersionError` that names the package, the version found, the
tested range and the fix. ``tests/compat/`` checks, without training, that every name and signature a
fence touches still exists. The ranges in ``pyproject.toml`` allow no version outside these.

- :mod:`~imgcls.compat.keras_trainer`: the fix of Keras's TensorFlow trainer under
  MultiWorkerMirroredStrategy (keras-team/keras#20585).
- :mod:`~imgcls.compat.keras_private`: ``Model._initial_epoch`` (the epoch fit() starts from after a
  restore) and ``Optimizer._get_variable_index``.
- :mod:`~imgcls.compat.optuna_private`: hydra-optuna-sweeper's parser and config schema, and Optuna's
  live trial by number.
- :mod:`~imgcls.compat.tf2onnx_transpose`: the fix of tf2onnx 1.17's transpose optimizer.

To move to a new version of a package: run ``pytest tests/compat`` (and the tests each module names)
against it, update the module, then its ``WrittenFor`` range, ``pyproject.toml`` and ``constraints.txt``.
"""
