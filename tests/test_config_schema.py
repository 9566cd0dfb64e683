"""The config is checked when it is composed: a bad setting stops the run before any image is read."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import imgcls.train
from helpers import compose_app, run_entrypoint
from imgcls.config_schema import check_choice, check_config, config_problems
from imgcls.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"
OPTIONS = [
    f"{group.name}={path.stem}"
    for group in sorted(CONF.iterdir())
    if group.is_dir() and not group.name.startswith("_")
    for path in sorted(group.glob("*.yaml"))
]

# override, then what the message must say: the key and the bad value, the allowed values, a close match
BAD_SETTINGS = [
    ("data.cache=memroy", "data.cache=memroy is not one of memory, disk, none (did you mean memory?)"),
    ("data.on_corrupt=bogus", "data.on_corrupt=bogus is not one of skip, fail, quarantine"),
    ("train.lr_scaling=lineer", "train.lr_scaling=lineer is not one of linear, none (did you mean linear?)"),
    ("data.augment_on=gpu", "data.augment_on=gpu is not one of auto, pipeline, device"),
    ("data.on_overlap=warning", "data.on_overlap=warning is not one of warn, fail (did you mean warn?)"),
    ("data.class_weights=balance", "data.class_weights=balance is not one of none, balanced (did you mean balanced?)"),
    ("precision=mixed_float61", "precision=mixed_float61 is not one of auto, float32, mixed_float16, mixed_bfloat16"),
    ("train.deterministic=ture", "train.deterministic=ture is not one of auto, true, false (did you mean true?)"),
    ("train.verbose=3", "train.verbose=3 is not one of auto, 0, 1, 2"),
    ("eval.tta=yes", "eval.tta=yes is not one of true, false"),
    ("train.early_stopping.monitor=val_acc", "monitor=val_acc is not one of val_loss, val_accuracy, loss, accuracy"),
    ("optimized_metric=test_accuracy", "optimized_metric=test_accuracy is not one of val_accuracy, val_loss"),
    ("train.init=frozen", "train.init=frozen has no recipe (train.recipes), not one of pretrained, scratch"),
    ("data.val_split=1.5", "data.val_split=1.5 is not a number in (0, 1)"),
    ("data.batch_size=0", "data.batch_size=0 is not an integer >= 1"),
    ("model.dropout=1.0", "model.dropout=1 is not a number in [0, 1)"),
    ("train.phases.phase1.lr=0", "train.phases.phase1.lr=0 is not a number > 0"),
    ("train.phases.phase2.epochs=-1", "train.phases.phase2.epochs=-1 is not an integer >= 0"),
    ("data.image_size=16", "data.image_size=16 is below resnet50's minimum of 32 px"),
    ("data.on_corrupt=quarantine", "data.on_corrupt=quarantine needs data.quarantine_dir=<folder outside the class"),
]


@pytest.fixture
def unreadable_data(tmp_path) -> Path:
    """training_set/ and test_set/ of two classes whose .png files are garbage: any scan of them would fail."""
    for tree in ("training_set", "test_set"):
        for name in ("cat", "dog"):
            folder = tmp_path / "data" / tree / name
            folder.mkdir(parents=True)
            for i in range(3):
                (folder / f"img_{i}.png").write_bytes(b"\x00not an image" * (i + 1))
    return tmp_path / "data"


def _run_overrides(data: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        f"data.train_dir={data / 'training_set'}",
        f"data.test_dir={data / 'test_set'}",
        f"paths.output_dir={tmp_path / 'run'}",
        f"data.integrity_cache={tmp_path / 'integrity.sqlite'}",
        f"data.cache_dir={tmp_path / 'tfdata'}",
        *extra,
    ]


@pytest.mark.parametrize(("override", "message"), BAD_SETTINGS, ids=[o for o, _ in BAD_SETTINGS])
def test_a_bad_setting_stops_the_run_before_any_scan(unreadable_data, tmp_path, monkeypatch, override, message):
    def no_scan(*args, **kwargs):
        raise AssertionError("the data was read before the config was checked")

    monkeypatch.setattr(imgcls.train, "prepare_data", no_scan)
    monkeypatch.setattr("imgcls.data.prepare.scan_trees", no_scan)
    cfg = compose_app("train", _run_overrides(unreadable_data, tmp_path, override))
    with pytest.raises(ConfigError, match=re.escape(message)):
        imgcls.train.train(cfg)
    # nothing was written or cached: no run folder (data_report.json, manifest.json), no integrity verdicts
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "integrity.sqlite").exists()


def test_every_bad_setting_is_named_in_one_message(compose_config):
    cfg = compose_config(["data.cache=memroy", "data.on_corrupt=bogus", "train.lr_scaling=lineer"])
    with pytest.raises(ConfigError) as raised:
        check_config(cfg)
    message = str(raised.value)
    assert message.startswith("3 settings cannot work:")
    assert all(key in message for key in ("data.cache=memroy", "data.on_corrupt=bogus", "train.lr_scaling=lineer"))


@pytest.mark.parametrize("option", [*OPTIONS, "experiment=demo debug=tiny"])
def test_every_option_of_every_group_passes(compose_config, option):
    assert config_problems(compose_config(option.split())) == []


@pytest.mark.parametrize(
    "override",
    [
        "data.cache=none",
        "data.cache=disk",
        "train.deterministic=true",
        "train.jit_compile=false",
        "train.verbose=0",
        "train.verbose='2'",
        "precision=mixed_bfloat16",
        "data.augment_on=device",
        "train.init=scratch",
        "data.on_corrupt=quarantine data.quarantine_dir=/elsewhere",
        "train.phases.phase1.lr='1e-3'",
        "model.dropout=0",
        "optimized_metric=val_f1",
        "train.early_stopping.monitor=val_accuracy",
    ],
)
def test_what_the_code_accepts_passes(compose_config, override):
    assert config_problems(compose_config(override.split())) == []


def test_phases_the_recipe_does_not_run_are_not_checked(compose_config):
    # a sweep may set every phase's rate; only the phases of train.init's recipe are read
    assert config_problems(compose_config(["train.init=scratch", "train.phases.phase1.lr=0"])) == []


def test_the_code_that_reads_a_setting_checks_it_against_the_table():
    from imgcls.data.balance import class_weights
    from imgcls.data.pipeline import make_dataset
    from imgcls.data.split import Subset

    assert check_choice("data.cache", "disk") == "disk"
    with pytest.raises(ConfigError, match=r"data\.cache=memroy is not one of memory, disk, none \(did you mean"):
        make_dataset(
            Subset((), np.zeros(0, np.int32)), num_classes=2, image_size=8, batch_size=1, training=False, cache="memroy"
        )
    with pytest.raises(ConfigError, match=r"data\.class_weights=balance is not one of none, balanced"):
        class_weights([0, 1], 2, "balance")


@pytest.mark.slow
def test_the_cli_ends_a_bad_setting_with_its_message_and_exit_code_2(unreadable_data, tmp_path):
    args = [*_run_overrides(unreadable_data, tmp_path, "data.cache=memroy"), f"hydra.run.dir={tmp_path / 'run'}"]
    args.remove(f"paths.output_dir={tmp_path / 'run'}")
    result = run_entrypoint("imgcls.train", args, cwd=tmp_path, env={"IMGCLS_CACHE_DIR": str(tmp_path / "cache")})
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "data.cache=memroy is not one of memory, disk, none (did you mean memory?)" in output
    assert "Traceback" not in output
    assert not (tmp_path / "run" / "data_report.json").exists()
    assert not (tmp_path / "integrity.sqlite").exists()


@pytest.mark.slow
def test_a_sweep_with_a_bad_fixed_setting_stops_before_listing_the_data_or_running_a_trial(unreadable_data, tmp_path):
    args = [
        "-m",
        "hparams_search=optuna",
        "debug=tiny",
        "data.on_corrupt=bogus",
        f"paths.log_dir={tmp_path}",
        f"data.train_dir={unreadable_data / 'training_set'}",
        f"data.test_dir={unreadable_data / 'test_set'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    result = run_entrypoint("imgcls.train", args, cwd=tmp_path, env={"IMGCLS_CACHE_DIR": str(tmp_path / "cache")})
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "data.on_corrupt=bogus is not one of skip, fail, quarantine" in output and "Traceback" not in output
    assert not (tmp_path / "sweep").exists(), "no study, no trial"
