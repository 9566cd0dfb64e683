"""Batch mixing that Keras has no single layer for: MixUp or CutMix, chosen per batch (timm's ``switch_prob``)."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="imgcls")
class MixUpOrCutMix(keras.layers.Layer):
    """Per batch, ``keras.layers.CutMix`` with probability ``switch_prob``, else ``keras.layers.MixUp``.

    Takes and returns ``{"images": ..., "labels": ...}`` like the two Keras layers, works eagerly and
    inside ``tf.data.Dataset.map`` (the choice is a ``tf.cond`` on a draw from a Keras
    ``SeedGenerator``), and passes data through unchanged when ``training`` is false.

    Args:
        alpha: MixUp's Beta(alpha, alpha) parameter.
        cutmix_alpha: CutMix's Beta(alpha, alpha) parameter, in (0, 1]: Keras's ``CutMix`` draws
            its Beta parameter uniformly from ``factor``, so ``factor=(cutmix_alpha, cutmix_alpha)``
            fixes it, and Keras rejects values above 1.
        switch_prob: probability that a batch is CutMixed rather than MixUped.
        seed: makes the sequence of choices and mixes repeatable (eagerly, or through a sequential
            ``map``; a parallel ``map`` may hand the generator's states to batches in any order).
            The switch, MixUp and CutMix draw from ``seed``, ``seed + 1`` and ``seed + 2``.
    """

    def __init__(
        self,
        alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        switch_prob: float = 0.5,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= switch_prob <= 1.0:
            raise ValueError(f"switch_prob must lie in [0, 1], got {switch_prob}")
        self.alpha = alpha
        self.cutmix_alpha = cutmix_alpha
        self.switch_prob = switch_prob
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.mixup = keras.layers.MixUp(alpha=alpha, seed=None if seed is None else seed + 1, dtype=self.dtype_policy)
        self.cutmix = keras.layers.CutMix(
            factor=(cutmix_alpha, cutmix_alpha), seed=None if seed is None else seed + 2, dtype=self.dtype_policy
        )

    def build(self, input_shape: Any) -> None:
        # MixUp and CutMix hold no weights; nothing to build beyond marking the layer built.
        pass

    def call(self, data: dict[str, Any], training: bool = True) -> dict[str, Any]:
        if not training:
            return data
        use_cutmix = keras.random.uniform((), seed=self.seed_generator) < self.switch_prob
        # Both Keras layers overwrite entries of the dict they are given: hand each its own copy.
        return tf.cond(
            use_cutmix, lambda: self.cutmix(dict(data), training=True), lambda: self.mixup(dict(data), training=True)
        )

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "alpha": self.alpha,
            "cutmix_alpha": self.cutmix_alpha,
            "switch_prob": self.switch_prob,
            "seed": self.seed,
        }
