"""Every conf/backbone/*.yaml is well formed: cheap checks on the files alone, no model is built."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import keras_hub
import pytest
import yaml

from imgcls.config_schema import CHOICES
from imgcls.targets import trusted_callable

BACKBONE_DIR = Path(__file__).resolve().parents[2] / "conf" / "backbone"
CONFIG_FILES = sorted(BACKBONE_DIR.glob("*.yaml"))
SOURCES = ("keras_applications", "keras_hub")
POOLINGS = CHOICES["backbone.pooling"]


def _load(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _hub_configs() -> list[Path]:
    return [path for path in CONFIG_FILES if _load(path).get("source") == "keras_hub"]


def test_there_are_backbone_configs():
    assert CONFIG_FILES, f"no backbone configs in {BACKBONE_DIR}"
    assert _hub_configs(), "no keras_hub backbone configs"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda path: path.stem)
def test_backbone_config(path: Path):
    cfg = _load(path)
    assert cfg["name"] == path.stem
    assert cfg["source"] in SOURCES
    trusted_callable(cfg["constructor"], "backbone.constructor")
    assert cfg["pooling"] in POOLINGS
    assert int(cfg["min_image_size"]) <= int(cfg["image_size"])
    if cfg.get("blocks") is not None:
        re.compile(cfg["blocks"])


@pytest.mark.parametrize("path", _hub_configs(), ids=lambda path: path.stem)
def test_keras_hub_backbone_config(path: Path):
    cfg = _load(path)
    constructor = trusted_callable(cfg["constructor"], "backbone.constructor")
    assert issubclass(constructor, keras_hub.models.Backbone)
    assert cfg["preset"] in constructor.presets, f"{cfg['preset']} is not a preset of {cfg['constructor']}"
    assert cfg["preprocessing"] == "preset"
    converter = cfg["converter"]
    assert isinstance(converter, Mapping) and converter.get("class_name")
    converter_class = trusted_callable(converter["class_name"], "backbone.converter.class_name")
    assert issubclass(converter_class, keras_hub.layers.ImageConverter)
    assert "image_size" not in converter, "the converter's image_size comes from data.image_size"
    assert isinstance(cfg["blocks"], str)
    re.compile(cfg["blocks"])
    assert isinstance(cfg["kwargs"], Mapping) and cfg["kwargs"], "kwargs: the architecture, for weights: null"
    assert "image_shape" not in cfg["kwargs"], "the image shape comes from data.image_size"
