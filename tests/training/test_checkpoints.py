"""Checkpoints a run can trust: atomic writes, a damaged backup falls back, a changed run is refused."""

from __future__ import annotations

import json
import logging
import os

import keras
import numpy as np
import pytest

from helpers import compose_app, small_disk
from imgcls.errors import ConfigError
from imgcls.training.checkpoints import EpochBackup, PhaseCheckpoints, write_atomically
from imgcls.training.run_folder import check_run_folder, config_fingerprint, differences, is_out_of_space


def small_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def fit(model, backup, epochs):
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 2), "float32")
    return model.fit(x, y, epochs=epochs, callbacks=[backup], verbose=0)


def test_write_atomically_keeps_the_old_file_when_a_write_fails(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("good")

    def fails_half_way(partial):
        partial.write_text("half")
        raise OSError("killed")

    with pytest.raises(OSError):
        write_atomically(path, fails_half_way)
    assert path.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"], "no partial file is left behind"


def test_a_truncated_latest_backup_falls_back_to_the_previous_one(tmp_path, caplog):
    fit(small_model(), EpochBackup(tmp_path), epochs=2)
    metadata = json.loads((tmp_path / "training_metadata.json").read_text())
    assert (metadata["epoch"], metadata["previous"]["epoch"]) == (2, 1)
    assert sorted(p.name for p in tmp_path.glob("*.weights.h5")) == ["epoch-0001.weights.h5", "epoch-0002.weights.h5"]
    latest = tmp_path / metadata["weights"]
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])  # killed in the middle of a write

    resumed = small_model(seed=1)
    with caplog.at_level(logging.WARNING):
        history = fit(resumed, EpochBackup(tmp_path), epochs=3)
    assert "cannot be read" in caplog.text and "Resumed from the previous backup" in caplog.text
    assert history.epoch == [1, 2], "continues after epoch 1, the previous good backup"


def test_a_kept_backup_is_never_overwritten_in_place(tmp_path):
    fit(small_model(), EpochBackup(tmp_path), epochs=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch-0002.weights.h5",
        "epoch-0003.weights.h5",
        "training_metadata.json",
    ]


def tiny(*overrides):
    return compose_app("train", ["debug=tiny", "paths.output_dir=/tmp/not-written", *overrides])


def test_fingerprint_names_what_changed_and_ignores_outputs():
    before = config_fingerprint(tiny())
    after = config_fingerprint(
        tiny(
            "data.image_size=48",
            "model.dropout=0.4",
            "train.phases.phase2.lr=1e-4",
            "paths.output_dir=/elsewhere",
            "train.verbose=2",
            "train.tensorboard=false",
            "trial.number=3",
        )
    )
    assert differences(before, after) == [
        "data.image_size 32 -> 48",
        "model.dropout 0.3 -> 0.4",
        "train.phases.phase2.lr 1e-05 -> 0.0001",
    ]
    assert any(
        key.startswith("backbone.")
        for key in differences(before, config_fingerprint(tiny("backbone=compact_resnet_s")))
    )


def test_a_used_folder_is_refused_unless_resumed(tmp_path):
    state = tmp_path / "checkpoints" / "state.json"
    check_run_folder(tmp_path, tiny(), state)  # Hydra's own files only: no run yet
    with pytest.raises(ConfigError, match="holds no checkpoints to continue"):
        check_run_folder(tmp_path, tiny("resume=true"), state)
    PhaseCheckpoints(tmp_path / "checkpoints", resume=False, fingerprint=config_fingerprint(tiny()))
    with pytest.raises(ConfigError, match=rf"{tmp_path} already holds a run \(checkpoints\).*resume={tmp_path}"):
        check_run_folder(tmp_path, tiny(), state)
    check_run_folder(tmp_path, tiny("resume=true", "train.verbose=2"), state)
    with pytest.raises(ConfigError, match=r"model\.dropout 0\.3 -> 0\.5.*hydra\.run\.dir=<new folder>"):
        check_run_folder(tmp_path, tiny("resume=true", "model.dropout=0.5"), state)
    (tmp_path / "model.keras").write_bytes(b"")
    with pytest.raises(ConfigError, match="has finished"):
        check_run_folder(tmp_path, tiny("resume=true"), state)


def test_other_data_is_refused_on_resume(tmp_path):
    fingerprint = {"model.dropout": 0.3, "manifest.file_list_sha256.train": "aaa"}
    PhaseCheckpoints(tmp_path, resume=False, fingerprint=fingerprint)
    with pytest.raises(ConfigError, match="manifest.file_list_sha256.train aaa -> bbb"):
        PhaseCheckpoints(tmp_path, resume=True, fingerprint={**fingerprint, "manifest.file_list_sha256.train": "bbb"})
    assert PhaseCheckpoints(tmp_path, resume=True, fingerprint=fingerprint).state == {}


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs."""
    with small_disk(tmp_path / "tmpfs", "1m") as mount:
        yield mount


def test_a_full_disk_is_recognised_and_keeps_the_previous_file(full_disk):
    """Python's OSError here; h5py's RuntimeError (Keras weights) only says so in its message. The real
    h5py failure in a run is tested end to end in tests/test_resume.py (in a subprocess: HDF5 can crash
    the interpreter at exit after a failed write)."""
    path = full_disk / "state.json"
    path.write_text("good")
    with pytest.raises(OSError) as raised:
        write_atomically(path, lambda partial: partial.write_bytes(b"0" * (2 << 20)))
    assert is_out_of_space(raised.value)
    assert os.listdir(full_disk) == ["state.json"] and path.read_text() == "good"
    h5py_says = RuntimeError(
        "Can't write data (file write failed: errno = 28, error message = 'No space left on device')"
    )
    assert is_out_of_space(h5py_says) and not is_out_of_space(RuntimeError("Can't write data"))
