"""imgcls from Python (a notebook, a script): train and predict without knowing Hydra.

    import imgcls
    run = imgcls.train_model(["experiment=demo", "name=first-try"])
    run.metrics["val_accuracy"], run.run_dir
    rows = imgcls.predict_images(run.run_dir, ["photo1.jpg", "photos/"])

:func:`train_model` runs exactly what ``imgcls-train <overrides>`` runs, through Hydra, in this process: the
same run folder with its config, log, metrics and figures.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.initialize import get_gh_backup, restore_gh_from_backup
from hydra.utils import execution_whitelist
from omegaconf import DictConfig

from imgcls.resume_overrides import expand_resume
from imgcls.targets import TRUSTED_TARGETS

log = logging.getLogger("imgcls.api")

PathLike = str | os.PathLike


@dataclass(frozen=True)
class TrainingResult:
    """What a finished training run left: its folder and the metrics of its metrics.json."""

    run_dir: Path
    metrics: dict[str, Any]

    @property
    def model_path(self) -> Path:
        """The trained model (``model.keras``: takes raw 0-255 RGB, carries its class names)."""
        return self.run_dir / "model.keras"


def train_model(overrides: Sequence[str] = ()) -> TrainingResult:
    """Train, evaluate and save a model as ``imgcls-train <overrides>`` would; return its folder and metrics.

    ``overrides`` are the command line's ``key=value`` words, e.g. ``["experiment=demo", "backbone=efficientnetb0",
    "train.phases.phase2.epochs=3", "name=b0"]``; ``resume=<run folder>`` continues an interrupted run. A problem
    with the settings or the data raises :class:`imgcls.errors.ImgclsError` with the message the command prints.
    Hydra state the caller set up (``hydra.initialize``) is put back afterwards.
    """
    from imgcls.cli import run_job
    from imgcls.train import train

    def task(cfg: DictConfig) -> TrainingResult:
        metrics = run_job(cfg, lambda: train(cfg), exit_on_error=False)
        return TrainingResult(Path(cfg.paths.output_dir).expanduser().resolve(), metrics)  # where train() wrote

    saved_hydra = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="imgcls.conf", job_name="train"):
            with execution_whitelist(TRUSTED_TARGETS):
                job = GlobalHydra.instance().hydra.run(
                    config_name="train", task_function=task, overrides=expand_resume(overrides)
                )
        return job.return_value  # raises the run's exception if it failed
    finally:
        restore_gh_from_backup(saved_hydra)


def _model(model: Any) -> Any:
    """A loaded model from a keras.Model, a model.keras file or a run folder holding one."""
    import keras

    from imgcls.models.loading import load_trained_model

    if isinstance(model, keras.Model):
        return model
    path = Path(model).expanduser()
    return load_trained_model(path / "model.keras" if path.is_dir() else path)


def load_images(files: Sequence[PathLike], image_size: int) -> Any:
    """``files`` as one float32 array ``(len(files), image_size, image_size, 3)`` of 0-255 RGB, decoded and resized
    (bilinear) exactly as training, evaluation and ``imgcls-predict`` do: what a ``model.keras`` takes."""
    import numpy as np

    from imgcls.predict import image_batches

    paths = [os.fspath(Path(file).expanduser()) for file in files]
    batches = [batch.numpy() for batch in image_batches(paths, int(image_size), batch_size=64)]
    return np.concatenate(batches) if batches else np.empty((0, image_size, image_size, 3), np.float32)


def predict_images(
    model: Any,
    images: PathLike | Sequence[PathLike],
    *,
    top_k: int = 5,
    batch_size: int = 32,
    tta: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """The ``top_k`` classes of each image, as records (``pandas.DataFrame(records)`` makes a table).

    ``model``: a trained keras.Model, its ``model.keras``, or the run folder holding it. ``images``: an image
    file, a folder (searched recursively), a glob pattern, or a list of any of these. Images are decoded and
    resized exactly as ``imgcls-predict`` and training do. One record per file found, in order:
    ``file, top1_class, top1_probability, ..., error`` where ``error`` says why a file that cannot be decoded
    was skipped (its classes are then None).
    """
    from imgcls.data.integrity import check_images
    from imgcls.errors import ConfigError
    from imgcls.models.loading import model_class_names
    from imgcls.predict import find_images, predict_files
    from imgcls.predict import top_k as most_probable

    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}.")
    loaded = _model(model)
    class_names = model_class_names(loaded)
    k = min(top_k, len(class_names))
    given = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    files = list(dict.fromkeys(file for item in given for file in find_images(item)))
    problems = check_images(files, cache_path=None, progress=False).problems
    usable = [file for file in files if file not in problems]
    probabilities = predict_files(loaded, usable, batch_size=batch_size, tta=tta, progress=progress)
    indices, values = most_probable(probabilities, k)
    found = {file: (row_indices, row_values) for file, row_indices, row_values in zip(usable, indices, values)}
    records = []
    for file in files:
        record: dict[str, Any] = {"file": file}
        row_indices, row_values = found.get(file, ([None] * k, [None] * k))
        for rank, (index, value) in enumerate(zip(row_indices, row_values), start=1):
            record[f"top{rank}_class"] = None if index is None else class_names[index]
            record[f"top{rank}_probability"] = None if value is None else float(value)
        record["error"] = problems.get(file)
        records.append(record)
    if problems:
        log.warning(
            "%d of %d file(s) could not be decoded and have no prediction (see their 'error')",
            len(problems),
            len(files),
        )
    return records
