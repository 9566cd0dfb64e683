"""The training cluster of strategy=multi_worker, from TF_CONFIG or from strategy.workers and strategy.index.

Only parsing and checking: :mod:`imgcls.training.multi_worker` builds the strategy over the cluster.
See docs/distributed.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from imgcls.errors import ConfigError

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
            f"TF_CONFIG task index {task_id!r} is outside cluster.{task_type} (0 to {len(jobs[task_type]) - 1})."
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
        given, missing = (
            ("strategy.workers", "strategy.index") if index is None else ("strategy.index", "strategy.workers")
        )
        raise ConfigError(
            f"{given} is set but {missing} is not; strategy=multi_worker needs both (or neither, and TF_CONFIG)."
        )
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
