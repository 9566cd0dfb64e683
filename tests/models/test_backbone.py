"""Backbones build from their configs at tiny sizes; weights come from ImageNet, a file, or nowhere."""

from __future__ import annotations

import re
import urllib.error
from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from imgcls.errors import ConfigError, WeightsError
from imgcls.models.backbone import build_backbone
from imgcls.models.blocks import backbone_blocks
from imgcls.models.classifier import build_classifier

CONF = Path(__file__).resolve().parents[2] / "conf" / "backbone"
BACKBONES = sorted(p.stem for p in CONF.glob("*.yaml") if "source: keras_hub" not in p.read_text())


def backbone_config(name: str, **overrides):
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    return OmegaConf.merge(cfg, overrides)


@pytest.mark.parametrize("name", BACKBONES)
def test_each_backbone_builds_with_random_weights_at_its_minimum_size(name):
    cfg = backbone_config(name, weights=None)
    backbone = build_backbone(cfg, cfg.min_image_size)
    out = backbone(np.zeros((1, cfg.min_image_size, cfg.min_image_size, 3), "float32"))
    assert out.shape[0] == 1 and len(out.shape) == 4, "a feature map, not class scores"
    blocks = backbone_blocks(backbone, cfg.blocks)
    assert blocks[0].name == "stem" and len(blocks) >= 4, "backbone.blocks describes the network's own blocks"
    assert sum(len(block.layers) for block in blocks) == len(backbone.layers), "every layer is in one block"


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


def saved_run(tmp_path, name: str, image_size: int = 32):
    """A run folder holding a model.keras whose backbone is ``name``, and that backbone."""
    cfg = backbone_config(name, weights=None)
    backbone = build_backbone(cfg, image_size)
    model = build_classifier(
        backbone,
        class_names=["a", "b"],
        image_size=image_size,
        preprocessing=cfg.preprocessing,
        dense_units=4,
        dropout=0.0,
        l2=0.0,
    )
    run = tmp_path / "earlier-run"
    run.mkdir()
    model.save(run / "model.keras")
    return run, backbone


def test_warm_start_takes_the_backbone_of_an_earlier_run(tmp_path):
    run, trained = saved_run(tmp_path, "compact_resnet_s")
    for weights in (run, run / "model.keras"):
        warm = build_backbone(backbone_config("compact_resnet_s", weights=str(weights)), 48)
        assert warm.input_shape[1] == 48, "a convolutional backbone warm-starts at another image size"
        for expected, actual in zip(trained.get_weights(), warm.get_weights(), strict=True):
            np.testing.assert_array_equal(expected, actual)


def test_warm_start_from_another_architecture_names_both(tmp_path):
    run, _ = saved_run(tmp_path, "compact_resnet_s")
    with pytest.raises(WeightsError) as raised:
        build_backbone(backbone_config("compact_resnet_m", weights=str(run)), 32)
    message = str(raised.value)
    assert "compact_resnet_m" in message and str(run / "model.keras") in message and "does not match" in message
    with pytest.raises(WeightsError, match="does not match backbone=mobilenetv3small"):
        build_backbone(backbone_config("mobilenetv3small", weights=str(run)), 32)


def test_warm_start_from_a_file_that_is_no_model_is_a_clear_error(tmp_path):
    bogus = tmp_path / "model.keras"
    bogus.write_text("not a model")
    with pytest.raises(WeightsError, match="not an imgcls model to warm-start from"):
        build_backbone(backbone_config("compact_resnet_s", weights=str(bogus)), 32)


@pytest.mark.parametrize("constructor", ["builtins.dict", "keras.models.load_model", "os.system"])
def test_a_constructor_outside_the_whitelist_is_refused_before_it_is_called(constructor, monkeypatch):
    calls = []
    monkeypatch.setattr(keras.models, "load_model", lambda *a, **k: calls.append(a))
    cfg = backbone_config("compact_resnet_s", weights=None, constructor=constructor)
    with pytest.raises(ConfigError, match=rf"backbone\.constructor={re.escape(constructor)} is not allowed"):
        build_backbone(cfg, cfg.min_image_size)
    assert not calls
