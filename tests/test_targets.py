"""A config may name only the constructors imgcls trusts; everything else is refused before it is called."""

from __future__ import annotations

import re
from pathlib import Path

import keras
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from imgcls.errors import ConfigError
from imgcls.targets import TRUSTED_TARGETS, build, trusted_callable

CONF = Path(__file__).resolve().parents[1] / "conf"
CONFIG_NAMES = sorted(
    {
        (match.group(1), match.group(2), path.relative_to(CONF).as_posix())
        for path in CONF.rglob("*.yaml")
        for match in re.finditer(r"^\s*-?\s*(_target_|constructor):\s*([\w.]+)\s*$", path.read_text(), re.MULTILINE)
    }
)


@pytest.mark.parametrize(("key", "name", "where"), CONFIG_NAMES, ids=[f"{w}:{n}" for _, n, w in CONFIG_NAMES])
def test_every_name_in_the_shipped_configs_is_trusted(key, name, where):
    assert callable(trusted_callable(name, key))


def test_the_whitelist_names_no_whole_library():
    assert CONFIG_NAMES, "the pattern found no _target_ in conf/"
    for broad in ("keras.*", "imgcls.*", "tensorflow.*", "optuna.*", "builtins.*"):
        assert broad not in TRUSTED_TARGETS


def _lambda_model(path: Path, marker: Path) -> Path:
    """A model file whose Lambda layer, once deserialized with safe_mode=False, writes ``marker``."""
    inputs = keras.Input((2,))
    touch = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")  # the path is part of the code
    outputs = keras.layers.Lambda(touch)(inputs)
    keras.Model(inputs, outputs).save(path)
    marker.unlink(missing_ok=True)  # building the model ran the Lambda once already
    return path


def test_a_model_loader_as_strategy_is_refused_before_it_runs(compose_config, tmp_path):
    marker = tmp_path / "lambda-ran"
    model = _lambda_model(tmp_path / "evil.keras", marker)
    cfg = compose_config(
        ["strategy._target_=keras.models.load_model", f"+strategy.filepath={model}", "+strategy.safe_mode=false"]
    )
    with pytest.raises(ConfigError, match=r"strategy\._target_=keras\.models\.load_model is not allowed"):
        build(cfg.strategy)
    assert not marker.exists(), "the Lambda layer ran"


@pytest.mark.parametrize(
    "name",
    [
        "keras.models.load_model",
        "keras.saving.load_model",
        "keras.config.enable_unsafe_deserialization",
        "keras.utils.get_file",
        "builtins.eval",
        "os.system",
        "subprocess.run",
        "keras.layers.Lambda",  # in keras.layers, but not a preprocessing layer
        "keras.optimizers.deserialize",  # in keras.optimizers, but a deserializer, not a constructor
        "keras.optimizers.Adam.from_config",
        "imgcls.training.schedules.keras.models.load_model",  # an alias through a trusted module
    ],
)
def test_a_nested_target_outside_the_whitelist_is_refused(name, monkeypatch):
    calls = []
    monkeypatch.setattr(keras.models, "load_model", lambda *a, **k: calls.append(a))
    config = OmegaConf.create(
        {"optimizer": {"_target_": "keras.optimizers.Adam", "learning_rate": {"_target_": name, "_args_": ["x"]}}}
    )
    with pytest.raises(ConfigError, match=rf"optimizer\.learning_rate\._target_={re.escape(name)} is not allowed"):
        build(config.optimizer)
    assert not calls


def test_a_target_in_a_list_is_named_by_its_place(compose_config):
    cfg = compose_config(["augmentation=basic", "augmentation.layers.1._target_=keras.layers.Lambda"])
    with pytest.raises(ConfigError, match=r"augmentation\.layers\[1\]\._target_=keras\.layers\.Lambda"):
        build(cfg.augmentation)


def test_trusted_targets_still_build(compose_config):
    cfg = compose_config(["strategy=default", "optimizer=adamw", "augmentation=basic"])
    assert isinstance(build(cfg.strategy), tf.distribute.Strategy)
    assert isinstance(build(cfg.optimizer)(learning_rate=1e-3), keras.optimizers.AdamW)
    assert all(isinstance(layer, keras.layers.Layer) for layer in build(cfg.augmentation.layers))
    schedule = build(
        {"_target_": "keras.optimizers.schedules.CosineDecay", "initial_learning_rate": 0.1, "decay_steps": 10}
    )
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)


def test_a_name_that_does_not_exist_is_a_config_error():
    with pytest.raises(ConfigError, match="keras.layers.RandomFlipp: no such class or function"):
        trusted_callable("keras.layers.RandomFlipp")
