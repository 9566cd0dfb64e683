"""keras-hub backbones from their configs, offline: the architecture in the YAML, local presets, warm starts,
and one clear message when a preset would need the internet."""

from __future__ import annotations

from pathlib import Path

import keras_hub
import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from imgcls.errors import WeightsError
from imgcls.models.backbone import build_backbone, build_preprocessing
from imgcls.models.blocks import backbone_blocks
from imgcls.models.classifier import build_classifier
from imgcls.models.hub_backbone import resolve_hub_weights

CONF = Path(__file__).resolve().parents[2] / "conf" / "backbone"
HUB = {
    p.stem: yaml.safe_load(p.read_text()) for p in sorted(CONF.glob("*.yaml")) if "source: keras_hub" in p.read_text()
}
# built offline from their YAML architecture in a few seconds each; the larger ones are checked by
# tests/models/test_backbone_configs.py without building
SMALL = sorted(
    name
    for name, cfg in HUB.items()
    if cfg["constructor"].rsplit(".", 1)[-1] != "MobileNetV5Backbone"
    and getattr(keras_hub.models, cfg["constructor"].rsplit(".", 1)[-1]).presets[cfg["preset"]]["metadata"]["params"]
    < 30_000_000
)


def hub_config(name: str, **overrides):
    return OmegaConf.merge(OmegaConf.load(CONF / f"{name}.yaml"), overrides)


def test_the_catalogue_covers_the_modern_families():
    families = {cfg["constructor"].rsplit(".", 1)[-1] for cfg in HUB.values()}
    assert {"ViTBackbone", "DeiTBackbone", "DINOV2Backbone", "SwinTransformerBackbone"} <= families
    assert {"dinov2_small", "dinov2_base"} <= set(HUB)
    assert families & {"EfficientNetBackbone", "HGNetV2Backbone"} and "MobileNetV5Backbone" in families


@pytest.mark.parametrize("name", SMALL)
def test_a_small_hub_backbone_builds_offline_from_its_yaml_and_takes_raw_rgb(name):
    cfg = hub_config(name, weights=None)
    size = int(cfg.min_image_size) if cfg.min_image_size >= 32 else 56
    backbone = build_backbone(cfg, size)
    assert len(backbone_blocks(backbone, cfg.blocks)) >= 3
    model = build_classifier(
        backbone,
        class_names=["a", "b"],
        image_size=size,
        preprocessing=build_preprocessing(cfg, size),
        dense_units=8,
        dropout=0.0,
        l2=0.0,
        pooling=cfg.pooling,
    )
    probabilities = model.predict(np.full((1, size, size, 3), 128.0, "float32"), verbose=0)
    assert probabilities.shape == (1, 2)


@pytest.mark.parametrize("weights", ["preset", None])
def test_an_offline_preset_download_ends_in_one_message_naming_the_three_ways_out(weights, monkeypatch, tmp_path):
    """A proxy on a closed loopback port stands for a machine without internet: nothing leaves this machine."""
    for variable in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    cfg = hub_config("dinov2_small", weights=weights, kwargs=None)
    with pytest.raises(WeightsError) as caught:
        build_backbone(cfg, 28)
    message = str(caught.value)
    assert "Could not load the keras-hub preset dinov2_small" in message and "internet" in message
    for way_out in ("a local preset folder", "an earlier run's model.keras", "null (random initialisation)"):
        assert way_out in message
    assert "\n" not in message


def test_weights_that_are_neither_a_preset_folder_nor_a_model_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="not a keras-hub preset folder"):
        resolve_hub_weights(str(tmp_path / "empty"), "dinov2_small")
    assert resolve_hub_weights("preset", "dinov2_small").location == "dinov2_small"
    assert resolve_hub_weights(None, "dinov2_small").kind == "random"


def test_a_preset_folder_for_another_model_names_the_folder(tmp_path):
    keras_hub.layers.ViTImageConverter(image_size=(32, 32)).save_to_preset(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    cfg = hub_config("dinov2_small", weights=str(tmp_path))
    with pytest.raises(WeightsError, match=f"The preset folder {tmp_path} does not hold a backbone"):
        build_backbone(cfg, 28)


def test_without_preset_weights_the_yaml_converter_normalises_as_the_preset_would():
    cfg = hub_config("dinov2_small", weights=None)
    converter = build_preprocessing(cfg, 28)
    assert type(converter).__name__ == "DINOV2ImageConverter"
    white = np.asarray(converter(np.full((1, 28, 28, 3), 255.0, "float32")))[0, 0, 0]
    np.testing.assert_allclose(
        white, (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]), rtol=1e-4
    )
