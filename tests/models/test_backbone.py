"""Backbones build from their configs at tiny sizes; weights come from ImageNet, a file, or nowhere."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from imgcls.errors import ConfigError, WeightsError
from imgcls.models.backbone import build_backbone

CONF = Path(__file__).resolve().parents[2] / "conf" / "backbone"
BACKBONES = sorted(p.stem for p in CONF.glob("*.yaml"))


def backbone_config(name: str, **overrides):
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    return OmegaConf.merge(cfg, overrides)


@pytest.mark.parametrize("name", BACKBONES)
def test_each_backbone_builds_with_random_weights_at_its_minimum_size(name):
    cfg = backbone_config(name, weights=None)
    backbone = build_backbone(cfg, cfg.min_image_size)
    out = backbone(np.zeros((1, cfg.min_image_size, cfg.min_image_size, 3), "float32"))
    assert out.shape[0] == 1 and len(out.shape) == 4, "a feature map, not class scores"


def test_image_size_below_minimum_is_a_clear_error():
    with pytest.raises(ConfigError, match="minimum of 32 px"):
        build_backbone(backbone_config("mobilenetv3small", weights=None), 16)


def test_weights_file_is_loaded(tmp_path):
    cfg = backbone_config("mobilenetv3small", weights=None)
    source = build_backbone(cfg, 32)
    path = tmp_path / "mine.weights.h5"
    source.save_weights(path)
    loaded = build_backbone(backbone_config("mobilenetv3small", weights=str(path)), 32)
    for expected, actual in zip(source.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(expected, actual)


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_file_for_another_architecture_is_a_clear_error(tmp_path):
    path = tmp_path / "other.weights.h5"
    build_backbone(backbone_config("mobilenetv3small", weights=None), 32).save_weights(path)
    with pytest.raises(WeightsError, match=r"does not fit efficientnetb0"):
        build_backbone(backbone_config("efficientnetb0", weights=str(path)), 32)


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match="no such file"):
        build_backbone(backbone_config("resnet50", weights=str(tmp_path / "nope.h5")), 32)


def test_offline_imagenet_download_names_the_fix(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.src.utils.file_utils, "urlretrieve", offline)
    with pytest.raises(WeightsError) as raised:
        build_backbone(backbone_config("mobilenetv3small"), 32)
    message = str(raised.value)
    assert "backbone.weights=null" in message and "backbone.weights=/path/to" in message
    assert "Traceback" not in message and "\n" not in message
