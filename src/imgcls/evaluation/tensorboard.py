"""A run's hyperparameters and final metrics for TensorBoard's HParams dashboard.

Layout inside a run's ``tensorboard/`` folder (``log_dir``)::

    tensorboard/                 the HParams *session*: its hyperparameters (one SessionStartInfo)
    tensorboard/train/           Keras's TensorBoard callback: epoch_* scalars
    tensorboard/validation/      Keras's TensorBoard callback: epoch_*, evaluation_*_vs_iterations
    tensorboard/evaluation/      final metrics as scalars (val_accuracy, test_accuracy, ...),
                                 next to the figures that evaluation/bundle.py writes

The plugin treats the folder holding a SessionStartInfo as the session and every scalar in it or
below it as that session's metrics (group = sub-folder). Putting the session at ``tensorboard/``
rather than in a sub-folder links the Keras curves to the hyperparameters as well: Time Series
shows each run's hyperparameters next to its train/validation curves, and the HParams table gets
the final ``evaluation`` metrics plus the last epoch's Keras values.

No experiment summary (``hparams_config``) is written, on purpose. Every job of a multirun would
write its own, the plugin uses whichever it finds first, and a discrete domain taken from one job
makes the dashboard's default filter hide the other jobs' values. Without one, the plugin infers
the experiment from all sessions: every hyperparameter seen in any run, its type, its range or
set of values over all runs, and whether it differs between runs.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

# Sub-folder of the run's tensorboard/ folder that holds the final metrics; it is the metric "group".
METRICS_SUBDIR = "evaluation"


@contextmanager
def _summary_writer(folder: Path) -> Iterator[None]:
    """Write summaries into an event file in ``folder`` (created if missing), closed on exit."""
    writer = tf.summary.create_file_writer(str(folder))
    try:
        with writer.as_default():
            yield
    finally:
        writer.close()  # flushes


def _hparam_value(value: Any) -> bool | int | float | str | None:
    """A value TensorBoard can store as a hyperparameter; None stays None (left out)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # a list or other structure: shown as its text rather than failing a finished run


def write_hparams(
    log_dir: Path,
    hparams: dict[str, float | int | str | bool],
    metrics: dict[str, float],
    *,
    run_name: str | None = None,
) -> None:
    """Record the run's hyperparameters and final metrics for TensorBoard's HParams dashboard.

    ``log_dir`` is the run's ``tensorboard/`` folder, the one ``tensorboard --logdir`` finds the
    run in: the session's hyperparameters go into it, the metrics into ``log_dir/evaluation`` as
    scalars at step 0, tagged with their own names (``val_accuracy``, ``test_accuracy``, ... as in
    metrics.json). Call it once per run, when the metrics are final.

    ``hparams`` is the run's flat ``hparams`` block of the config (metrics.json's ``hparams``):
    plain names such as ``"phase1_lr"`` or ``"backbone"``, one dashboard column each. Booleans,
    numbers and strings are stored as such. A ``None`` value is left out: the run has no value for
    that hyperparameter, which the dashboard shows as an empty cell (it keeps empty cells unless a
    filter excludes missing values), and the column keeps its numeric type when other runs set
    it. Writing the text ``"null"`` instead would turn a column such as ``mixup_alpha`` into
    strings for every run. Any other value (a list, say) is stored as its ``str()``.

    ``metrics`` may be the whole metrics.json dict: real numbers are written, and the other entries
    (lists, dicts, strings, booleans) are left out.

    ``run_name`` becomes the session group's name (the dashboard's "Trial ID"). Without one,
    TensorBoard names the group by a hash of the hyperparameters, so runs with identical
    hyperparameters form one group whose metrics are averaged (seed repeats, when the seed is not
    among ``hparams``). Give each run its own name to keep every run on its own row; it must be
    unique across everything one TensorBoard shows (job "0" of two sweeps would share a row), so
    use the run folder's path, e.g. ``"2024-01-01/12-00-00/0"``, rather than the job number alone.
    """
    values = {name: _hparam_value(value) for name, value in hparams.items()}
    session = {name: value for name, value in values.items() if value is not None}
    scalars = {
        tag: float(value)
        for tag, value in metrics.items()
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    }
    with _summary_writer(log_dir):
        hp.hparams(session, trial_id=run_name)
    with _summary_writer(log_dir / METRICS_SUBDIR):
        for tag, value in scalars.items():
            tf.summary.scalar(tag, value, step=0)
