"""Optimizers built per phase, optionally with a lower learning rate for the backbone."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import keras

from imgcls.compat.keras_private import variable_index


def _with_lr_multiplier(base: type[keras.optimizers.Optimizer]) -> type[keras.optimizers.Optimizer]:
    class ScaledLearningRate(base):
        """``base`` whose update of the chosen variables uses ``lr_multiplier`` times the learning rate."""

        def __init__(self, *args, scaled_variable_paths: Iterable[str] = (), lr_multiplier: float = 1.0, **kwargs):
            super().__init__(*args, **kwargs)
            self._scaled_paths = frozenset(scaled_variable_paths)
            self._lr_multiplier = float(lr_multiplier)
            self._scaled_indices: frozenset[int] = frozenset()

        def build(self, variables):
            super().build(variables)
            self._scaled_indices = frozenset(i for i, v in enumerate(variables) if v.path in self._scaled_paths)

        def update_step(self, gradient, variable, learning_rate):
            if variable_index(self, variable) in self._scaled_indices:
                learning_rate = learning_rate * self._lr_multiplier
            return super().update_step(gradient, variable, learning_rate)

    ScaledLearningRate.__name__ = ScaledLearningRate.__qualname__ = f"{base.__name__}WithBackboneLR"
    return ScaledLearningRate


@functools.cache
def _scaled_class(base: type) -> type:
    return _with_lr_multiplier(base)


def backbone_lr_optimizer(
    factory: Callable[..., keras.optimizers.Optimizer], backbone: keras.Model, multiplier: float
) -> Callable[..., keras.optimizers.Optimizer]:
    """Wrap an optimizer factory (``functools.partial`` of an optimizer class) so that the backbone's
    weights train at ``multiplier`` times the learning rate of the head (discriminative fine-tuning)."""
    if multiplier == 1.0:
        return factory
    if not (isinstance(factory, functools.partial) and isinstance(factory.func, type)):
        raise TypeError("backbone_lr_mult needs the optimizer config to name an optimizer class (_partial_: true)")
    scaled = _scaled_class(factory.func)
    paths = [v.path for v in backbone.trainable_weights]
    return functools.partial(
        scaled, *factory.args, **factory.keywords, scaled_variable_paths=paths, lr_multiplier=multiplier
    )
