"""What each worker of a tf.distribute strategy does: which one writes the run folder, how datasets are
split between workers, and the check that every worker sees the same data.

On one machine (any strategy without a cluster) there is one worker, the chief. See docs/distributed.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import tensorflow as tf

from imgcls.errors import DataError
from imgcls.training.cluster import TRAINING_JOBS

log = logging.getLogger(__name__)


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
        "at the end (the chief writes the run folder)",
        task_type,
        task_id,
        scratch,
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
