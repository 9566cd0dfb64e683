"""Optimizers built per phase, optionally with lower learning rates for the backbone: one factor for all of it
(discriminative fine-tuning), and a factor less for each block further from the head (layer-wise decay)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import keras

from imgcls.compat.keras_private import variable_index
from imgcls.models.blocks import Block


def _with_lr_multiplier(base: type[keras.optimizers.Optimizer]) -> type[keras.optimizers.Optimizer]:
    class ScaledLearningRate(base):
        """``base`` whose update of each variable in ``lr_multipliers`` (by path) uses that many times the rate."""

        def __init__(self, *args, lr_multipliers: Mapping[str, float] | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self._multiplier_by_path = dict(lr_multipliers or {})
            self._multiplier_by_index: dict[int, float] = {}

        def build(self, variables):
            super().build(variables)
            by_path = self._multiplier_by_path
            self._multiplier_by_index = {i: by_path[v.path] for i, v in enumerate(variables) if v.path in by_path}

        def update_step(self, gradient, variable, learning_rate):
            multiplier = self._multiplier_by_index.get(variable_index(self, variable), 1.0)
            if multiplier != 1.0:
                learning_rate = learning_rate * multiplier
            return super().update_step(gradient, variable, learning_rate)

    ScaledLearningRate.__name__ = ScaledLearningRate.__qualname__ = f"{base.__name__}WithBackboneLR"
    return ScaledLearningRate


@functools.cache
def _scaled_class(base: type) -> type:
    return _with_lr_multiplier(base)


def block_lr_multipliers(
    blocks: Sequence[Block], backbone_lr_mult: float, layer_decay: float | None
) -> dict[str, float]:
    """The learning-rate factor of each trainable backbone weight (by path): ``backbone_lr_mult`` for the block
    nearest the head (the last of ``blocks``, input side first), times ``layer_decay`` for each block below it."""
    decay = 1.0 if layer_decay is None else float(layer_decay)
    multipliers = {}
    for depth, block in enumerate(reversed(blocks)):
        for weight in block.trainable_weights():
            multipliers[weight.path] = backbone_lr_mult * decay**depth
    return multipliers


def backbone_lr_optimizer(
    factory: Callable[..., keras.optimizers.Optimizer], multipliers: Mapping[str, float]
) -> Callable[..., keras.optimizers.Optimizer]:
    """Wrap an optimizer factory (``functools.partial`` of an optimizer class) so that each weight named in
    ``multipliers`` trains at that many times the learning rate of the head."""
    if all(value == 1.0 for value in multipliers.values()):
        return factory
    if not (isinstance(factory, functools.partial) and isinstance(factory.func, type)):
        raise TypeError(
            "backbone_lr_mult and layer_decay need the optimizer config to name an optimizer class (_partial_: true)"
        )
    scaled = _scaled_class(factory.func)
    return functools.partial(scaled, *factory.args, **factory.keywords, lr_multipliers=dict(multipliers))


def compile_for_fit(model: keras.Model, **compile_kwargs) -> None:
    """``model.compile(**compile_kwargs)``, then the optimizer's variables built for ``model``'s trainable weights.

    Keras builds them inside the first traced training step when the model has no distribution strategy of its
    own; variables created there make TensorFlow trace the whole step a second time, seconds on a CPU.
    """
    model.compile(**compile_kwargs)
    with model.distribute_strategy.scope():
        model.optimizer.build(model.trainable_variables)
