"""Every option of every config group composes, and what it names can be built."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest
import tensorflow as tf
from hydra.utils import get_method

from helpers import compose_app
from imgcls.errors import ConfigError
from imgcls.targets import build
from imgcls.train import check_config

CONF = Path(__file__).resolve().parents[1] / "conf"
# conf/hydra/ holds Hydra's own settings (hydra/app: tool, shared by evaluate, predict and export), no user's choice.
GROUPS = sorted(path.name for path in CONF.iterdir() if path.is_dir() and path.name[0] != "_" and path.name != "hydra")
OPTIONS = [(group, path.stem) for group in GROUPS for path in sorted((CONF / group).glob("*.yaml"))]


def test_every_group_has_options():
    """The groups read from conf/ (which the test below runs option by option) are the ones the installed
    imgcls offers, with the same options: a group or option added to conf/ is tested without a word here."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.object_type import ObjectType

    assert {group for group, _ in OPTIONS} == set(GROUPS), "a folder of conf/ without options"
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="imgcls.conf"):
            loader = GlobalHydra.instance().config_loader()
            offered = {
                group: loader.get_group_options(group, results_filter=ObjectType.CONFIG)
                for group in loader.list_groups("")
                if group != "hydra"
            }
    finally:
        GlobalHydra.instance().clear()
    assert offered == {group: [option for g, option in OPTIONS if g == group] for group in GROUPS}


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_builds(compose_config, group, option):
    cfg = compose_config([f"{group}={option}"])
    assert cfg.data.image_size >= cfg.backbone.min_image_size
    assert callable(get_method(cfg.backbone.constructor))
    optimizer = build(cfg.optimizer)(learning_rate=1e-3)
    assert isinstance(optimizer, keras.optimizers.Optimizer)
    learning_rate, callbacks = build(cfg.schedule)(1e-3, 20)
    assert float(learning_rate(0) if callable(learning_rate) else learning_rate) >= 0.0
    if option == "multi_worker":  # needs a cluster (TF_CONFIG or strategy.workers); tests/training/test_multi_worker.py
        with pytest.raises(ConfigError, match="TF_CONFIG"):
            build(cfg.strategy)
    else:
        assert isinstance(build(cfg.strategy), tf.distribute.Strategy)
    layers = [build(layer) for layer in cfg.augmentation.layers]
    assert all(isinstance(layer, keras.layers.Layer) for layer in layers)
    if cfg.mixup.layer is not None:
        assert isinstance(build(cfg.mixup.layer), keras.layers.Layer)


def test_defaults_follow_the_design(compose_config):
    cfg = compose_config()
    assert cfg.backbone.name == "resnet50" and cfg.backbone.weights == "imagenet"
    assert cfg.data.image_size == 224
    assert cfg.augmentation.layers and cfg.mixup.layer is not None
    assert cfg.train.label_smoothing == 0.1
    assert (
        cfg.train.phases.phase1.epochs > 0
        and cfg.train.phases.phase2.epochs > 0
        and cfg.train.phases.phase2.unfreeze > 0
    )
    assert cfg.train.phases.phase2.lr < cfg.train.phases.phase1.lr
    assert cfg.optimized_metric == "val_accuracy"


def test_image_size_follows_the_backbone_unless_overridden(compose_config):
    assert compose_config(["backbone=mobilenetv3small"]).data.image_size == 224
    assert compose_config(["backbone=mobilenetv3small", "data.image_size=96"]).data.image_size == 96


def test_demo_experiment_needs_no_download(compose_config):
    cfg = compose_config(["experiment=demo"])
    assert cfg.backbone.weights is None
    assert cfg.data.image_size <= 64


def test_optimized_metric_must_be_a_validation_metric(compose_config):
    check_config(compose_config(["optimized_metric=val_loss"]))
    with pytest.raises(ConfigError, match=r"train.init=frozen has no recipe.*pretrained"):
        check_config(compose_config(["train.init=frozen"]))
    with pytest.raises(ConfigError, match="test_accuracy"):
        check_config(compose_config(["optimized_metric=test_accuracy"]))


def test_init_follows_the_weights_unless_set(compose_config):
    assert compose_config().train.init == "pretrained"
    assert compose_config(["backbone.weights=/some/run/model.keras"]).train.init == "pretrained"
    assert compose_config(["backbone.weights=null"]).train.init == "scratch"
    assert compose_config(["backbone=compact_resnet_s"]).train.init == "scratch"
    assert compose_config(["backbone.weights=null", "train.init=pretrained"]).train.init == "pretrained"
    cfg = compose_config(["experiment=demo"])
    assert cfg.train.init == "scratch" and cfg.hparams.init == "scratch"
    assert cfg.train.recipes.scratch.phases == ["scratch"] and not cfg.train.recipes.scratch.freeze_batchnorm
    assert cfg.train.recipes.pretrained.phases == ["phase1", "phase2"] and cfg.train.recipes.pretrained.freeze_batchnorm


def test_scratch_search_space_searches_the_scratch_phase_and_keeps_the_rest_of_optuna():
    scratch = compose_app("train", ["hparams_search=optuna_scratch", "experiment=demo"], return_hydra_config=True)
    tuned = compose_app("train", ["hparams_search=optuna"], return_hydra_config=True)
    searched = {name for name, space in scratch.hydra.sweeper.params.items() if "," in space or "interval" in space}
    assert "train.phases.scratch.lr" in searched
    assert not any(name.startswith(("train.phases.phase1", "train.phases.phase2")) for name in searched)
    assert scratch.hydra.sweeper.pruner == tuned.hydra.sweeper.pruner
