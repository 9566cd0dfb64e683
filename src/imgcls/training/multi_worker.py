"""Training over several machines with MultiWorkerMirroredStrategy ("strategy" = tf.distribute strategy).

``multi_worker_strategy`` builds it over the cluster of :mod:`imgcls.training.cluster`, with Keras's
trainer fixed for it (:mod:`imgcls.compat.keras_trainer`). Which worker writes the run folder, how
datasets are split between workers and the check that every worker sees the same data live in
:mod:`imgcls.training.workers`. See docs/distributed.md.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Sequence

import tensorflow as tf

from imgcls.compat.keras_trainer import fix_multi_worker_trainer
from imgcls.errors import ConfigError
from imgcls.training.cluster import resolve_cluster

log = logging.getLogger(__name__)

COMMUNICATION = ("auto", "ring", "nccl")


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
    fix_multi_worker_trainer()
    strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver, communication_options=options)
    log.info(
        "MultiWorkerMirroredStrategy: %s:%d of cluster %s, %s communication, %d replica(s) in all",
        task_type,
        task_id,
        cluster,
        options.implementation.name,
        strategy.num_replicas_in_sync,
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
    return _multi_worker_strategy(
        json.dumps(cluster.jobs, sort_keys=True), cluster.task_type, cluster.task_id, communication
    )
