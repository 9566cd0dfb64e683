"""data.augment_on: one decision, which gives the transform to the pipeline or to the model, never both."""

from __future__ import annotations

import pytest
import tensorflow as tf

from helpers import tiny_classifier
from imgcls.errors import ConfigError
from imgcls.training import augmentation_placement
from imgcls.training.augmentation_placement import AugmentationPlacement, resolve_augment_on
from imgcls.training.on_device import DeviceAugmentedModel


def test_auto_puts_augmentation_on_the_device_only_where_there_is_an_accelerator(monkeypatch):
    monkeypatch.setattr(augmentation_placement, "has_accelerator", lambda: True)
    assert resolve_augment_on("auto") == "device"
    monkeypatch.setattr(augmentation_placement, "has_accelerator", lambda: False)
    assert resolve_augment_on("auto") == "pipeline"
    assert resolve_augment_on("device") == "device" and resolve_augment_on("pipeline") == "pipeline"
    with pytest.raises(ConfigError, match="data.augment_on"):
        resolve_augment_on("gpu")


@pytest.mark.parametrize("where", ["pipeline", "device"])
def test_the_transform_goes_to_exactly_one_place(compose_config, where):
    cfg = compose_config([f"data.augment_on={where}", "augmentation=basic", "mixup=mixup"])
    placement = AugmentationPlacement.from_config(cfg, [0, 1, 2], 3, tf.distribute.get_strategy())
    assert placement.transform is not None and placement.where == where
    model = tiny_classifier(["a", "b", "c"], "builtin", spread=False)
    trainee = placement.trainee(model)
    if where == "pipeline":
        assert placement.in_pipeline is placement.transform and trainee is model
    else:
        assert placement.in_pipeline is None and isinstance(trainee, DeviceAugmentedModel)


def test_nothing_to_do_leaves_the_model_and_the_pipeline_alone(compose_config):
    cfg = compose_config(["data.augment_on=device", "augmentation=none", "mixup=none"])
    placement = AugmentationPlacement.from_config(cfg, [0, 1], 2, tf.distribute.get_strategy())
    model = tiny_classifier(["a", "b"], "builtin", spread=False)
    assert placement.transform is None and placement.in_pipeline is None and placement.trainee(model) is model
