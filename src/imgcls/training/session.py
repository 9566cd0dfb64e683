"""A clean Keras and TensorFlow state at the start of each run, for sweeps whose trials share one process.

With Hydra's basic launcher every trial of a sweep runs in the sweeping process. Keras's
``clear_session`` resets its global state (the counters behind made-up layer names such as
``re_lu_13``, the seed, the dtype policy) and collects garbage. That alone does not free an earlier
run's traced training step: each time Keras traces one, ``tf.distribute``'s all-reduce of the
gradients registers a ``@tf.custom_gradient`` in TensorFlow's global gradient registry, and the
entry holds the traced graph (model and optimizer: about 75 MB a run for ``compact_resnet_s``) for
the life of the process (tensorflow/tensorflow#97697). :func:`forget_custom_gradients` removes those
entries. It is the one use of TensorFlow's private names here; ``tests/training/test_session.py``
checks them. ``benchmarks/sweep_memory.py`` measures the memory of a sweep with and without.
"""

from __future__ import annotations

import logging
from importlib.metadata import version

import keras
from tensorflow.python.framework import ops

log = logging.getLogger(__name__)

# the TensorFlow release (major.minor) the private names below were checked against
WRITTEN_FOR_TENSORFLOW = "2.21"
# the names tensorflow/python/ops/custom_gradient.py gives its graph-mode registrations
CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def forget_custom_gradients() -> int:
    """Remove every ``@tf.custom_gradient`` registered in graph mode so far, and the graphs they hold;
    return how many. Call it between runs: a graph traced before the call, and differentiated for the
    first time after it, could no longer find its custom gradient."""
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):
        log.warning(
            "TensorFlow %s has no gradient registry where imgcls looks for it: the graphs of earlier runs "
            "in this process are not freed (imgcls.training.session)",
            version("tensorflow"),
        )
        return 0
    names = [name for name in registry if isinstance(name, str) and name.startswith(CUSTOM_GRADIENT_PREFIX)]
    for name in names:
        del registry[name]
    return len(names)


def start_clean_session() -> None:
    """Forget the Keras state and free the graphs that earlier runs in this process left behind.

    Call it before seeding: clearing the Keras state also forgets the Keras seed.
    """
    forgotten = forget_custom_gradients()
    keras.backend.clear_session(free_memory=True)  # free_memory: collect the garbage, the freed graphs too
    if forgotten:
        log.debug("Freed the graphs of %d custom gradients left by earlier runs in this process", forgotten)
