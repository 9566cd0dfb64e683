"""Where augmentation, mixing and class weights run (``data.augment_on``): decided here, once per run.

The one object this module builds knows the batch transform and its place: the ``tf.data``
pipeline gets it (:attr:`AugmentationPlacement.in_pipeline`) or the model's training step does
(:meth:`AugmentationPlacement.trainee`), never both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

import keras
import tensorflow as tf

from imgcls.config_schema import check_choice
from imgcls.data.augment import BatchAugmentation, build_augmenter, build_mixer
from imgcls.data.balance import class_weights
from imgcls.training.on_device import DeviceAugmentedModel

log = logging.getLogger(__name__)


def has_accelerator() -> bool:
    """Whether TensorFlow sees a GPU or TPU."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def resolve_augment_on(placement: str) -> str:
    """``pipeline`` or ``device``; ``auto`` is ``device`` where there is a GPU or TPU, else ``pipeline``.

    On an accelerator the image ops take microseconds per batch, while in ``tf.data`` they take
    milliseconds of CPU per image and would starve it; on a CPU-only machine ``tf.data`` runs them
    on other cores, overlapped with the training step.
    """
    if check_choice("data.augment_on", placement) == "auto":
        return "device" if has_accelerator() else "pipeline"
    return placement


@dataclasses.dataclass(frozen=True)
class AugmentationPlacement:
    """The training batches' transform and where it runs: ``pipeline`` (tf.data) or ``device`` (training step)."""

    transform: BatchAugmentation | None
    where: str

    @classmethod
    def from_config(cls, cfg: Any, labels: Any, num_classes: int, strategy: tf.distribute.Strategy):
        """The configured augmentation, mixing and class weights, built for where ``cfg.data.augment_on`` puts them."""
        where = resolve_augment_on(cfg.data.augment_on)
        # in the training step, the layers' random states must be the strategy's variables
        with strategy.scope() if where == "device" else contextlib.nullcontext():
            transform = BatchAugmentation.of(
                build_augmenter(cfg.augmentation.layers),
                build_mixer(cfg.mixup.layer),
                class_weights(labels, num_classes, cfg.data.class_weights),
            )
        if transform is not None:
            place = "in the training step" if where == "device" else "in the tf.data pipeline"
            log.info("Augmentation, mixing and class weights run %s (data.augment_on=%s)", place, cfg.data.augment_on)
        return cls(transform, where)

    @property
    def in_pipeline(self) -> BatchAugmentation | None:
        """What ``make_dataset`` applies to training batches: the transform, unless the model applies it."""
        return self.transform if self.where == "pipeline" else None

    def trainee(self, model: keras.Model) -> keras.Model:
        """The model ``fit`` trains: ``model`` itself, or with the transform inside its training step."""
        if self.where == "device" and self.transform is not None:
            return DeviceAugmentedModel(model, self.transform)
        return model
