"""Training over several machines with MultiWorkerMirroredStrategy ("strategy" = tf.distribute strategy).

``multi_worker_strategy`` builds it from TF_CONFIG or from config keys; the helpers decide which
worker writes the run folder, how datasets are split between workers, and check that every worker
sees the same data. See docs/distributed.md.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from imgcls.errors import ConfigError, DataError

log = logging.getLogger(__name__)

COMMUNICATION = ("auto", "ring", "nccl")
TRAINING_JOBS = ("chief", "worker")  # the TF_CONFIG jobs that train; an "evaluator" task may be listed too


@dataclass(frozen=True)
class Cluster:
    """The training cluster and this process's task in it."""

    jobs: dict[str, list[str]]
    task_type: str
    task_id: int
    source: str  # "TF_CONFIG" or "strategy.workers"

    @property
    def num_workers(self) -> int:
        return sum(len(self.jobs.get(job, [])) for job in TRAINING_JOBS)

    def describe(self) -> str:
        return f"{self.task_type}:{self.task_id} of {self.num_workers} worker(s), from {self.source}"


def _check_addresses(addresses: object, where: str) -> list[str]:
    if isinstance(addresses, str) or not isinstance(addresses, Sequence) or not addresses:
        raise ConfigError(f"{where} must be a non-empty list of host:port addresses, got {addresses!r}.")
    checked = []
    for address in addresses:
        host, _, port = str(address).rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{where}: {address!r} is not a host:port address (e.g. 10.0.0.1:12345).")
        checked.append(str(address))
    duplicates = sorted({a for a in checked if checked.count(a) > 1})
    if duplicates:
        raise ConfigError(f"{where} lists {duplicates} more than once; every worker needs its own host:port.")
    return checked


def _cluster_from_keys(workers: Sequence[str], index: object) -> Cluster:
    addresses = _check_addresses(workers, "strategy.workers")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(addresses):
        raise ConfigError(
            f"strategy.index must be this worker's position in strategy.workers, 0 to {len(addresses) - 1} "
            f"(0 is the chief), got {index!r}."
        )
    return Cluster({"worker": addresses}, "worker", index, "strategy.workers")


def _cluster_from_tf_config(text: str) -> Cluster:
    try:
        tf_config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({error}): {text!r}") from None
    cluster, task = (tf_config.get("cluster"), tf_config.get("task")) if isinstance(tf_config, dict) else (None, None)
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ConfigError(
            'TF_CONFIG needs "cluster" and "task", e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            f'"task": {{"type": "worker", "index": 0}}}}; got {text!r}.'
        )
    unsupported = sorted(set(cluster) - {*TRAINING_JOBS, "evaluator"})
    if unsupported:
        raise ConfigError(
            f"TF_CONFIG lists job(s) {unsupported}; strategy=multi_worker (MultiWorkerMirroredStrategy) runs "
            f"only {list(TRAINING_JOBS)} tasks (parameter servers are a different strategy)."
        )
    jobs = {job: _check_addresses(cluster[job], f"TF_CONFIG cluster.{job}") for job in TRAINING_JOBS if job in cluster}
    if not jobs:
        raise ConfigError(f"TF_CONFIG's cluster has no chief or worker task: {text!r}.")
    if len(jobs.get("chief", [])) > 1:
        raise ConfigError(f"TF_CONFIG lists {len(jobs['chief'])} chief tasks; there can be one at most.")
    task_type, task_id = task.get("type"), task.get("index", 0)
    if task_type not in jobs:
        raise ConfigError(
            f"TF_CONFIG task type {task_type!r} does not train here; this worker's task must be one of "
            f"{sorted(jobs)} (an evaluator does not run imgcls-train)."
        )
    if isinstance(task_id, bool) or not isinstance(task_id, int) or not 0 <= task_id < len(jobs[task_type]):
        raise ConfigError(
            f"TF_CONFIG task index {task_id!r} is outside cluster.{task_type} "
            f"(0 to {len(jobs[task_type]) - 1})."
        )
    addresses = [address for job in TRAINING_JOBS for address in jobs.get(job, [])]
    if len(set(addresses)) < len(addresses):
        raise ConfigError(f"TF_CONFIG gives two tasks the same host:port: {addresses}.")
    return Cluster(jobs, task_type, task_id, "TF_CONFIG")


def resolve_cluster(workers: Sequence[str] | None, index: int | None, tf_config: str | None) -> Cluster:
    """The cluster from ``strategy.workers`` and ``strategy.index``, or else from ``TF_CONFIG``.

    Raises ConfigError when neither is given, when only one of the two keys is, or when both the
    keys and TF_CONFIG are given and describe different clusters or tasks.
    """
    tf_config = tf_config if tf_config and tf_config.strip() else None
    if workers is None and index is None:
        if tf_config is None:
            raise ConfigError(
                "strategy=multi_worker needs to know the cluster: set TF_CONFIG on every worker, or pass "
                "strategy.workers=[host:port,...] (the same list everywhere, the chief first) and "
                "strategy.index=<this worker's position in it>. See docs/distributed.md."
            )
        return _cluster_from_tf_config(tf_config)
    if workers is None or index is None:
        given, missing = ("strategy.workers", "strategy.index") if index is None else ("strategy.index", "strategy.workers")
        raise ConfigError(f"{given} is set but {missing} is not; strategy=multi_worker needs both (or neither, and TF_CONFIG).")
    cluster = _cluster_from_keys(workers, index)
    if tf_config is not None:
        from_env = _cluster_from_tf_config(tf_config)
        if (from_env.jobs, from_env.task_type, from_env.task_id) != (cluster.jobs, cluster.task_type, cluster.task_id):
            raise ConfigError(
                f"strategy.workers/strategy.index ({cluster.jobs}, worker {cluster.task_id}) and TF_CONFIG "
                f"({from_env.jobs}, {from_env.task_type} {from_env.task_id}) describe different clusters; "
                "give one of them (unset TF_CONFIG, or drop strategy.workers and strategy.index)."
            )
    return cluster


def _communication(name: str) -> tf.distribute.experimental.CommunicationOptions:
    """auto: NCCL when this machine has a GPU, ring all-reduce (which works on CPUs) otherwise.

    TensorFlow's own AUTO picks ring all-reduce on GPUs too, unless NCCL is asked for explicitly.
    """
    if name == "auto":
        name = "nccl" if tf.config.list_physical_devices("GPU") else "ring"
    implementation = tf.distribute.experimental.CommunicationImplementation[name.upper()]
    return tf.distribute.experimental.CommunicationOptions(implementation=implementation)


@functools.cache
def _multi_worker_strategy(cluster: str, task_type: str, task_id: int, communication: str) -> tf.distribute.Strategy:
    # Cached: a process can set up collective ops only once, so building the same strategy again in
    # one process returns the first one instead of failing.
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(json.loads(cluster)), task_type=task_type, task_id=task_id, rpc_layer="grpc"
    )
    options = _communication(communication)
    _fix_keras_for_multi_worker()
    strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver, communication_options=options)
    log.info(
        "MultiWorkerMirroredStrategy: %s:%d of cluster %s, %s communication, %d replica(s) in all",
        task_type, task_id, cluster, options.implementation.name, strategy.num_replicas_in_sync,
    )
    return strategy


def multi_worker_strategy(
    workers: Sequence[str] | None = None, index: int | None = None, communication: str = "auto"
) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy over the cluster of ``workers`` (this one at ``index``), or TF_CONFIG's.

    Every worker runs the same command; it must be built before any other TensorFlow work of the
    process (TensorFlow configures collective ops once, at start-up).
    """
    if communication not in COMMUNICATION:
        raise ConfigError(f"strategy.communication must be one of {COMMUNICATION}, got {communication!r}.")
    cluster = resolve_cluster(workers, index, os.environ.get("TF_CONFIG"))
    log.info("Cluster: %s", cluster.describe())
    return _multi_worker_strategy(json.dumps(cluster.jobs, sort_keys=True), cluster.task_type, cluster.task_id, communication)


def _task(strategy: tf.distribute.Strategy) -> tuple[str | None, int, dict[str, list[str]]]:
    resolver = strategy.cluster_resolver
    if resolver is None:
        return None, 0, {}
    return resolver.task_type, resolver.task_id or 0, resolver.cluster_spec().as_dict()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files: the "chief" task, or worker 0 when no task is "chief".

    Strategies without a cluster (one machine) are always the chief.
    """
    task_type, task_id, jobs = _task(strategy)
    if task_type is None or not jobs:
        return True
    if "chief" in jobs:
        return task_type == "chief"
    return task_type == "worker" and task_id == 0


def worker_count(strategy: tf.distribute.Strategy) -> int:
    """Processes that train together: 1 on one machine, the chief and worker tasks of a cluster."""
    _, _, jobs = _task(strategy)
    return max(1, sum(len(jobs.get(job, [])) for job in TRAINING_JOBS))


@contextlib.contextmanager
def worker_output_dir(strategy: tf.distribute.Strategy, run_dir: Path) -> Iterator[Path]:
    """Where this process writes the run's files: ``run_dir`` on the chief.

    Other workers compute everything the chief does (fit, evaluate, predict and saving may run
    collective operations that need every worker), but write into a temporary folder that is
    removed afterwards, as the Keras multi-worker guide recommends.
    """
    if is_chief(strategy):
        yield run_dir
        return
    task_type, task_id, _ = _task(strategy)
    scratch = Path(tempfile.mkdtemp(prefix=f"imgcls-{task_type}{task_id}-"))
    log.info(
        "%s:%d is not the chief: it trains in step with the others; its files go to %s and are removed "
        "at the end (the chief writes the run folder)", task_type, task_id, scratch,
    )
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Split ``dataset`` between workers by element: each worker takes its part of every global batch.

    The datasets are built from in-memory lists of file paths, so tf.data cannot split them by
    file (its AUTO policy would fall back to this, with a warning). Every worker reads and decodes
    every image (cached after the first epoch) but trains on its own part of each batch; as the
    worker's batches and their count follow the global batches, every worker runs the same number
    of steps, and predictions come back in file order. No effect without several workers.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def check_same_on_every_worker(strategy: tf.distribute.Strategy, text: str, what: str) -> None:
    """Raise DataError unless ``text`` (e.g. the data manifest's hashes) is the same on every worker.

    Workers that split differently sized datasets would wait on each other forever, or silently
    train on overlapping data; this all-gathers a hash of ``text`` so all workers stop instead.
    """
    if worker_count(strategy) <= 1:
        return
    digest = hashlib.sha256(text.encode("utf-8")).digest()[:16]
    local = tf.constant([[int.from_bytes(digest[i : i + 4], "big", signed=True) for i in range(0, 16, 4)]], tf.int32)
    gather = tf.function(lambda: strategy.gather(strategy.run(lambda: tf.identity(local)), axis=0))
    gathered = gather().numpy()
    if (gathered != gathered[0]).any():
        raise DataError(
            f"The workers do not see the same {what} (their hashes differ). Every worker needs the same "
            "image trees (same class folders and files, relative to data.train_dir and data.test_dir), "
            "the same data.* settings and the same seed."
        )


def _fix_keras_for_multi_worker() -> None:
    """Work around two bugs of Keras 3's TensorFlow trainer with several workers (TF 2.21, Keras 3.15).

    Both are in code that only runs under MultiWorkerMirroredStrategy across workers
    (keras-team/keras#20585, tensorflow/tensorflow#72388), and are patched once per process:

    * Before fit and evaluate, Keras averages one input batch over all replicas with
      ``strategy.reduce`` just to learn the input shapes; that reduce fails ("Attempt to convert a
      value (PerReplica...) to a Tensor"). Shapes and dtypes are all it needs: it gets this worker's
      first local batch instead.
    * It averages each step's logs (loss, metrics) over replicas with ``strategy.reduce("MEAN", v,
      axis=0)``, which fails on scalars ("Invalid reduction dimension 0 for input with 0
      dimensions") and would also average over the batch for other shapes. ``axis=None`` averages
      over replicas only, as Keras does on one machine.
    """
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_imgcls_multi_worker_fixed", False):
        return

    def first_local(strategy, value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    maybe_symbolic_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    @functools.wraps(maybe_symbolic_build)
    def build_from_local_batch(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is not None and strategy is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(functools.partial(first_local, strategy), next(batches))
                break
            iterator = None
        return maybe_symbolic_build(self, iterator=iterator, data_batch=data_batch)

    reduce_per_replica = trainer.reduce_per_replica

    @functools.wraps(reduce_per_replica)
    def mean_over_replicas(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = build_from_local_batch
    trainer.reduce_per_replica = mean_over_replicas
    trainer._imgcls_multi_worker_fixed = True
