"""The HParams summary of a run: what lands in the event files, and what a real TensorBoard serves."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.util import tensor_util

from imgcls.evaluation.bundle import write_tensorboard_image
from imgcls.evaluation.tensorboard import METRICS_SUBDIR, write_hparams

HPARAMS = {
    "backbone.name": "resnet50",
    "data.image_size": 224,
    "model.dropout": 0.2,
    "train.phases.phase1.lr": 1e-3,
    "train.phases.phase2.unfreeze": 30,
    "augmentation.name": "basic",
    "mixup.alpha": 0.2,
    "train.deterministic": True,
}
METRICS = {"val_accuracy": 0.9, "val_loss": 0.3, "test_accuracy": 0.88, "test_loss": 0.35}


def session_start_info(log_dir: Path):
    events = EventAccumulator(str(log_dir))
    events.Reload()
    assert events.Tags()["tensors"] == [hparams_metadata.SESSION_START_INFO_TAG]
    content = events.SummaryMetadata(hparams_metadata.SESSION_START_INFO_TAG).plugin_data.content
    return hparams_metadata.parse_session_start_info_plugin_data(content)


def scalars(log_dir: Path) -> dict[str, float]:
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {
        tag: float(tensor_util.make_ndarray(events.Tensors(tag)[-1].tensor_proto))
        for tag in events.Tags()["tensors"]
        if events.SummaryMetadata(tag).plugin_data.plugin_name == "scalars"
    }


def test_hparams_and_metrics_are_in_the_event_files(tmp_path):
    log_dir = tmp_path / "tensorboard"
    metrics_json = {
        **METRICS,
        "epochs_trained": 7,
        "class_names": ["cat", "dog"],
        "test_per_class": {"cat": {}},
        "precision_policy": "float32",
        "train_seconds": 12.5,
    }
    hparams = {
        **HPARAMS,
        "mixup.alpha": None,
        "train.phases.phase2.unfreeze_from": None,
        "seed": np.int64(3),
        "data.extensions": [".jpg", ".png"],
    }
    write_hparams(log_dir, hparams, metrics_json, run_name="multirun/2024-01-01/12-00-00/0")

    start = session_start_info(log_dir)
    assert start.group_name == "multirun/2024-01-01/12-00-00/0"
    values = {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}
    assert values == {
        "backbone.name": "resnet50",
        "data.image_size": 224,
        "model.dropout": 0.2,
        "train.phases.phase1.lr": 1e-3,
        "train.phases.phase2.unfreeze": 30,
        "augmentation.name": "basic",
        "train.deterministic": True,
        "seed": 3,
        "data.extensions": "['.jpg', '.png']",
    }, "None values are left out; numpy scalars become numbers; a list is kept as its text"
    assert start.hparams["train.deterministic"].WhichOneof("kind") == "bool_value"
    assert start.hparams["data.image_size"].WhichOneof("kind") == "number_value"

    # Only real numbers become metric scalars, under the metrics.json names.
    assert scalars(log_dir / METRICS_SUBDIR) == pytest.approx(
        {**METRICS, "epochs_trained": 7, "train_seconds": 12.5}, rel=1e-6
    )


def test_without_a_run_name_identical_hyperparameters_share_a_group(tmp_path):
    write_hparams(tmp_path / "a", HPARAMS, METRICS)
    write_hparams(tmp_path / "b", dict(reversed(HPARAMS.items())), METRICS)
    write_hparams(tmp_path / "c", {**HPARAMS, "model.dropout": 0.5}, METRICS)
    groups = [session_start_info(tmp_path / name).group_name for name in "abc"]
    assert groups[0] == groups[1] != groups[2]


# --- A real TensorBoard over a multirun folder -------------------------------------------------

JOBS = [
    ({**HPARAMS}, {"val_accuracy": 0.91, "val_loss": 0.31, "test_accuracy": 0.89}),
    (
        {
            **HPARAMS,
            "backbone.name": "efficientnetb0",
            "model.dropout": 0.3,
            "train.phases.phase1.lr": 3e-4,
            "train.phases.phase2.unfreeze": -1,
            "augmentation.name": "randaugment",
            "mixup.alpha": 0.4,
        },
        {"val_accuracy": 0.95, "val_loss": 0.22, "test_accuracy": 0.93},
    ),
    (
        {
            **HPARAMS,
            "backbone.name": "mobilenetv3small",
            "data.image_size": 32,
            "model.dropout": 0.0,
            "train.phases.phase2.unfreeze": 0,
            "augmentation.name": "none",
            "mixup.alpha": None,
            "train.deterministic": False,
        },
        {"val_accuracy": 0.72, "val_loss": 0.81, "test_accuracy": 0.70},
    ),
]


def write_fake_multirun(root: Path) -> None:
    """``root/<job>/tensorboard`` as a finished job leaves it: Keras's curves, the confusion matrix, hparams."""
    png = tf.io.encode_png(tf.zeros((8, 8, 4), tf.uint8)).numpy()
    for job, (hparams, metrics) in enumerate(JOBS):
        log_dir = root / str(job) / "tensorboard"
        for split, accuracies in (("train", [0.5, 0.7, 0.8]), ("validation", [0.4, 0.6, metrics["val_accuracy"]])):
            writer = tf.summary.create_file_writer(str(log_dir / split))
            with writer.as_default():
                for epoch, accuracy in enumerate(accuracies):
                    tf.summary.scalar("epoch_accuracy", accuracy, step=epoch)
                    tf.summary.scalar("epoch_loss", 1.0 - accuracy, step=epoch)
            writer.close()
        write_tensorboard_image(log_dir / "evaluation", "test/confusion_matrix", png, step=3)
        write_hparams(log_dir, hparams, metrics, run_name=str(job))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(base: str, route: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{base}/data/plugin/hparams/{route}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_until_serving(server: subprocess.Popen, base: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"tensorboard exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/data/runs", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    pytest.fail(f"tensorboard did not answer within {timeout} s:\n{log.read_text()}")


@pytest.mark.slow
def test_tensorboard_shows_every_job_of_a_multirun(tmp_path):
    root = tmp_path / "multirun" / "2024-01-01" / "12-00-00"
    write_fake_multirun(root)
    port, log = free_port(), tmp_path / "tensorboard.log"
    command = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(root),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        # the pure-Python reader, loading everything once before serving: no polling for data in the test
        "--load_fast=false",
        "--reload_interval=0",
        "--reload_task=blocking",
    ]
    # TMPDIR: tensorboard.manager's info file goes to tmp_path, not the machine's /tmp.
    env = {**os.environ, "TMPDIR": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with log.open("wb") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, base, log)

        # What the dashboard asks first: the experiment, inferred from the three sessions.
        experiment = post(base, "experiment", {"experimentName": "", "includeMetrics": True})
        infos = {info["name"]: info for info in experiment["hparamInfos"]}
        assert set(infos) == set(HPARAMS)
        assert infos["backbone.name"]["type"] == "DATA_TYPE_STRING"
        assert sorted(infos["backbone.name"]["domainDiscrete"]) == ["efficientnetb0", "mobilenetv3small", "resnet50"]
        assert infos["mixup.alpha"]["type"] == "DATA_TYPE_FLOAT64", "a None in one job keeps the column numeric"
        assert infos["mixup.alpha"]["domainInterval"] == {"minValue": 0.2, "maxValue": 0.4}
        assert infos["train.deterministic"]["type"] == "DATA_TYPE_BOOL"
        assert all(info.get("differs") for info in infos.values())
        metric_names = {(m["name"].get("group", ""), m["name"]["tag"]) for m in experiment["metricInfos"]}
        assert {("evaluation", tag) for tag in ("val_accuracy", "val_loss", "test_accuracy")} <= metric_names
        assert ("validation", "epoch_accuracy") in metric_names, "Keras's curves belong to the session too"

        # The session groups, sorted by val_accuracy (best first), as the table and parallel coordinates get them.
        val_accuracy = {"group": "evaluation", "tag": "val_accuracy"}
        response = post(
            base,
            "session_groups",
            {
                "experimentName": "",
                "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
                "colParams": [{"metric": val_accuracy, "order": "ORDER_DESC"}],
                "startIndex": 0,
                "sliceSize": 100,
            },
        )
        assert response["totalSize"] == 3
        groups = response["sessionGroups"]
        assert [group["name"] for group in groups] == ["1", "0", "2"]
        for group in groups:
            hparams, metrics = JOBS[int(group["name"])]
            assert group["hparams"] == {name: value for name, value in hparams.items() if value is not None}
            [session] = group["sessions"]
            assert session["name"] == f"{group['name']}/tensorboard"
            values = {
                m["name"]["tag"]: m["value"] for m in session["metricValues"] if m["name"].get("group") == "evaluation"
            }
            assert values == pytest.approx(metrics, rel=1e-6)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
