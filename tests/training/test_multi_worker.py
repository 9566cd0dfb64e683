"""strategy=multi_worker: the cluster comes from TF_CONFIG or strategy.workers/index, only the chief
writes the run folder, and two real worker processes on 127.0.0.1 train one model together."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import keras
import pytest
import tensorflow as tf

import imgcls  # noqa: F401  (registers the layers load_model needs)
from helpers import assert_test_metrics_match_predictions, tiny_run_overrides
from imgcls.errors import ConfigError
from imgcls.training.cluster import resolve_cluster
from imgcls.training.multi_worker import multi_worker_strategy
from imgcls.training.workers import is_chief, shard_by_data, worker_count, worker_output_dir

TWO_WORKERS = ["10.0.0.1:2222", "10.0.0.2:2222"]


def tf_config(cluster: dict, task_type: str = "worker", index: int = 0) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


def with_cluster(jobs: dict, task_type: str, task_id: int) -> SimpleNamespace:
    """Stands in for a strategy: is_chief and worker_count only read its cluster resolver."""
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(jobs), task_type=task_type, task_id=task_id
    )
    return SimpleNamespace(cluster_resolver=resolver)


def test_the_config_keys_give_the_cluster():
    cluster = resolve_cluster(TWO_WORKERS, 1, None)
    assert (cluster.jobs, cluster.task_type, cluster.task_id) == ({"worker": TWO_WORKERS}, "worker", 1)
    assert cluster.num_workers == 2


def test_tf_config_gives_the_cluster_with_or_without_a_chief():
    cluster = resolve_cluster(None, None, tf_config({"chief": ["c:1"], "worker": ["w:1", "w:2"]}, "worker", 1))
    assert (cluster.task_type, cluster.task_id, cluster.num_workers) == ("worker", 1, 3)
    assert resolve_cluster(None, None, tf_config({"worker": TWO_WORKERS}, "worker", 0)).jobs == {"worker": TWO_WORKERS}


def test_keys_and_tf_config_may_agree():
    cluster = resolve_cluster(TWO_WORKERS, 1, tf_config({"worker": TWO_WORKERS}, "worker", 1))
    assert cluster.task_id == 1


@pytest.mark.parametrize(
    ("workers", "index", "env", "message"),
    [
        (None, None, None, "set TF_CONFIG on every worker"),
        (None, None, "  ", "set TF_CONFIG on every worker"),
        (TWO_WORKERS, None, None, "strategy.workers is set but strategy.index is not"),
        (None, 0, None, "strategy.index is set but strategy.workers is not"),
        (TWO_WORKERS, 2, None, "0 to 1"),
        (TWO_WORKERS, True, None, "0 to 1"),
        ("10.0.0.1:2222", 0, None, "non-empty list"),
        (["10.0.0.1"], 0, None, "not a host:port"),
        (["h:1", "h:1"], 0, None, "more than once"),
        (TWO_WORKERS, 0, tf_config({"worker": TWO_WORKERS}, "worker", 1), "describe different clusters"),
        (TWO_WORKERS, 0, tf_config({"worker": ["x:1", "y:1"]}), "describe different clusters"),
        (None, None, "{not json", "not valid JSON"),
        (None, None, json.dumps({"cluster": {"worker": TWO_WORKERS}}), 'needs "cluster" and "task"'),
        (None, None, tf_config({"worker": TWO_WORKERS, "ps": ["p:1"]}), "parameter servers"),
        (None, None, tf_config({"worker": TWO_WORKERS, "evaluator": ["e:1"]}, "evaluator"), "does not train here"),
        (None, None, tf_config({"worker": TWO_WORKERS}, "worker", 2), "outside cluster.worker"),
        (None, None, tf_config({"chief": ["c:1", "c:2"], "worker": TWO_WORKERS}), "one at most"),
    ],
)
def test_a_missing_or_inconsistent_cluster_is_a_config_error(workers, index, env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve_cluster(workers, index, env)


def test_the_strategy_checks_its_settings_before_starting_anything(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="strategy.communication"):
        multi_worker_strategy(TWO_WORKERS, 0, communication="mpi")
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        multi_worker_strategy()


def test_the_option_composes_with_tf_config_as_its_default(compose_config):
    strategy = compose_config(["strategy=multi_worker"]).strategy
    assert (strategy.workers, strategy.index, strategy.communication) == (None, None, "auto")
    keys = compose_config(
        ["strategy=multi_worker", "strategy.workers=[127.0.0.1:2222,127.0.0.1:2223]", "strategy.index=1"]
    )
    assert list(keys.strategy.workers) == ["127.0.0.1:2222", "127.0.0.1:2223"] and keys.strategy.index == 1


@pytest.mark.parametrize(
    ("jobs", "task_type", "task_id", "chief"),
    [
        ({"worker": TWO_WORKERS}, "worker", 0, True),
        ({"worker": TWO_WORKERS}, "worker", 1, False),
        ({"chief": ["c:1"], "worker": TWO_WORKERS}, "chief", 0, True),
        ({"chief": ["c:1"], "worker": TWO_WORKERS}, "worker", 0, False),
    ],
)
def test_only_the_chief_task_or_else_worker_0_is_chief(jobs, task_type, task_id, chief):
    assert is_chief(with_cluster(jobs, task_type, task_id)) is chief
    assert worker_count(with_cluster(jobs, task_type, task_id)) == sum(len(tasks) for tasks in jobs.values())


def test_one_machine_is_always_the_chief():
    assert is_chief(tf.distribute.get_strategy()) and worker_count(tf.distribute.get_strategy()) == 1


def test_other_workers_write_into_a_folder_that_is_removed(tmp_path):
    with worker_output_dir(tf.distribute.get_strategy(), tmp_path / "run") as folder:
        assert folder == tmp_path / "run"
    with worker_output_dir(with_cluster({"worker": TWO_WORKERS}, "worker", 1), tmp_path / "run") as folder:
        assert folder != tmp_path / "run" and folder.is_dir()
        (folder / "model.keras").write_bytes(b"")
    assert not folder.exists() and not (tmp_path / "run").exists()


def test_datasets_are_split_between_workers_by_element():
    dataset = shard_by_data(tf.data.Dataset.range(4))
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA
    assert list(dataset.as_numpy_iterator()) == [0, 1, 2, 3]  # one worker: nothing changes


# --- two real workers -------------------------------------------------------------------------

TIMEOUT_S = 300


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def start_workers(image_dataset: Path, tmp_path: Path, extra: tuple[list[str], list[str]] = ([], [])):
    """Start two workers of one tiny run: worker 0 (the chief) gets the cluster from
    strategy.workers/index, worker 1 from TF_CONFIG; ``extra`` holds each one's own overrides.
    Returns (process, run folder) per worker."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    common = tiny_run_overrides(image_dataset, "strategy=multi_worker", "train.tensorboard=true")
    # Two processes share two cores: one thread each for TensorFlow's op pools avoids oversubscription.
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="1")
    launches = [
        ([f"strategy.workers=[{','.join(workers)}]", "strategy.index=0"], env),
        ([], {**env, "TF_CONFIG": tf_config({"worker": workers}, "worker", 1)}),
    ]
    started = []
    try:
        for index, (cluster_args, worker_env) in enumerate(launches):
            run_dir = tmp_path / f"worker{index}"
            with open(tmp_path / f"worker{index}.out", "w") as output:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "imgcls.train",
                        *common,
                        *cluster_args,
                        *extra[index],
                        f"hydra.run.dir={run_dir}",
                    ],
                    cwd=tmp_path,
                    env=worker_env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            started.append((process, run_dir))
    except BaseException:
        for process, _ in started:
            process.kill()
        raise
    return started


def wait_all(started, tmp_path: Path) -> list[int]:
    """Exit codes of every worker; on a timeout or a failure, kill what still runs and show its output."""
    deadline = time.monotonic() + TIMEOUT_S
    try:
        codes = [process.wait(timeout=max(1.0, deadline - time.monotonic())) for process, _ in started]
    except subprocess.TimeoutExpired:
        pytest.fail(f"the workers did not finish within {TIMEOUT_S} s:\n{tails(tmp_path)}")
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.kill()
                process.wait()
    return codes


def tails(tmp_path: Path) -> str:
    return "\n".join(f"--- {path.name}:\n{path.read_text()[-3000:]}" for path in sorted(tmp_path.glob("worker*.out")))


@pytest.mark.slow
def test_two_workers_train_one_model_and_only_the_chief_writes(image_dataset, tmp_path):
    began = time.monotonic()
    started = start_workers(image_dataset, tmp_path)
    codes = wait_all(started, tmp_path)
    assert codes == [0, 0], tails(tmp_path)
    (_, chief), (_, other) = started

    metrics = json.loads((chief / "metrics.json").read_text())
    assert metrics["num_test_images"] == 12
    assert_test_metrics_match_predictions(chief, metrics)
    assert metrics["epochs_per_phase"] == {"phase1": 1, "phase2": 1}
    model = keras.models.load_model(chief / "model.keras")
    assert model.get_layer("predictions").class_names == ["cat", "dog", "zebra fish"]
    assert [line.split(",")[0] for line in (chief / "history.csv").read_text().splitlines()[1:]] == ["0", "1"]
    assert any((chief / "tensorboard").rglob("events.out.tfevents.*"))
    log = (chief / "train.log").read_text()
    assert "with 2 replica(s)" in log
    assert "2 replicas: global batch 16 (data.batch_size 8 per replica)" in log

    # The other worker ran the same training to the end but left nothing except its process's own records:
    # Hydra's files, its log and its environment.json.
    assert sorted(path.name for path in other.iterdir()) == [".hydra", "environment.json", "train.log"]
    other_log = (other / "train.log").read_text()
    scratch = re.search(r"its files go to (\S+) and are removed", other_log)
    assert scratch and not Path(scratch.group(1)).exists()
    assert "Done in" in other_log
    print(f"two workers: {time.monotonic() - began:.0f} s")


@pytest.mark.slow
def test_workers_that_see_different_data_stop_with_a_clear_error(image_dataset, tmp_path):
    # Another seed holds out another validation split: the workers' file lists differ.
    started = start_workers(image_dataset, tmp_path, ([], ["seed=7"]))
    codes = wait_all(started, tmp_path)
    assert codes == [2, 2], tails(tmp_path)
    assert "The workers do not see the same data" in tails(tmp_path)
