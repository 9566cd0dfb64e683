"""The train entrypoint: ``imgcls-train`` / ``python -m imgcls.train`` (a Hydra app over conf/train.yaml)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import keras
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from imgcls.cli import run_job
from imgcls.config_schema import check_config
from imgcls.data.integrity import files_checked_again_on_read_error
from imgcls.data.pipeline import make_dataset
from imgcls.data.prepare import prepare_data
from imgcls.errors import ConfigError, DiskFullError, ImgclsError
from imgcls.evaluation.bundle import predict_split, write_evaluation, write_training_curves
from imgcls.evaluation.calibration import with_temperature
from imgcls.evaluation.tensorboard import write_hparams
from imgcls.models.backbone import build_backbone, build_preprocessing
from imgcls.models.classifier import build_classifier
from imgcls.resume_overrides import expand_resume
from imgcls.sweeps.pruning import pruning_callbacks
from imgcls.targets import TRUSTED_TARGETS, build
from imgcls.training.augmentation_placement import AugmentationPlacement
from imgcls.training.checkpoints import PhaseCheckpoints, inference_view
from imgcls.training.feature_cache import FeatureCache, wanted
from imgcls.training.phases import FitSettings, phase_plans, train_phases
from imgcls.training.precision import apply_precision
from imgcls.training.reproducibility import seed_everything
from imgcls.training.run_folder import check_run_folder, is_out_of_space, run_fingerprint
from imgcls.training.session import start_clean_session
from imgcls.training.time_budget import TimeBudget, process_started
from imgcls.training.workers import check_same_on_every_worker, shard_by_data, worker_count, worker_output_dir

log = logging.getLogger("imgcls.train")
# Set by the command line (main) for its first run: that run's time budget counts from the process's start.
_budget_from_process_start = False


def _pruner_config(cfg: DictConfig) -> Any:
    """The sweeper's pruner config when this run is a trial of a pruning sweep, else None."""
    if cfg.trial.number is None or not HydraConfig.initialized():
        return None
    return HydraConfig.get().sweeper.get("pruner")


def _data_fingerprint(manifest_path: Path) -> str:
    """What every worker of a multi-worker run must agree on: classes, split sizes and file lists."""
    manifest = json.loads(manifest_path.read_text())
    return json.dumps([manifest["class_names"], manifest["images"], manifest["file_list_sha256"]], sort_keys=True)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, evaluate and save one model as ``cfg`` says; return the metrics written to metrics.json."""
    check_config(cfg)  # every setting, before anything reads the data (imgcls.config_schema)
    started = time.monotonic()
    global _budget_from_process_start
    budget_origin = (process_started() if _budget_from_process_start else None) or started
    _budget_from_process_start = False
    # A sweep's trials share this process (Hydra's basic launcher): each starts from a clean Keras state, so
    # layer names do not depend on earlier runs, whose graphs are freed. Before seeding, which clearing undoes.
    start_clean_session()
    seed_everything(cfg.seed, cfg.train.deterministic)
    policy = apply_precision(cfg.precision)
    strategy = build(cfg.strategy)  # before other TensorFlow work: a multi-worker strategy must come first
    log.info(
        "Precision policy %s; %s with %d replica(s)", policy, type(strategy).__name__, strategy.num_replicas_in_sync
    )
    if cfg.resume and worker_count(strategy) > 1:
        raise ConfigError(
            "resume=true is not supported with several workers (each would need the chief's checkpoints): start "
            "the run again without it, or continue it on one machine from the chief's run folder "
            "(strategy=auto resume=true hydra.run.dir=<that folder>). See docs/distributed.md."
        )
    # Only the chief writes the run folder; other workers compute the same but write into a temporary folder.
    with worker_output_dir(strategy, Path(cfg.paths.output_dir)) as output_dir:
        output_dir.mkdir(parents=True, exist_ok=True)
        check_run_folder(output_dir, cfg, output_dir / "checkpoints" / "state.json")  # before writing into it
        try:
            OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)
            return _train(cfg, strategy, output_dir, policy=policy, started=started, budget_origin=budget_origin)
        except Exception as error:
            if not is_out_of_space(error):
                raise
            raise DiskFullError(
                f"No space left on the device of the run folder {output_dir}. Free space, then continue the run "
                f"where its last checkpoint left it: resume={output_dir}"
            ) from error


def _train(
    cfg: DictConfig, strategy: Any, output_dir: Path, *, policy: str, started: float, budget_origin: float
) -> dict[str, Any]:
    """The run itself, writing into ``output_dir`` (the run folder on the chief, see :func:`train`)."""
    data = prepare_data(cfg.data, seed=cfg.seed, output_dir=output_dir)
    check_same_on_every_worker(strategy, _data_fingerprint(output_dir / "manifest.json"), "data")
    class_names, size = data.class_names, int(cfg.data.image_size)
    replicas = strategy.num_replicas_in_sync
    lr_scale = replicas if cfg.train.lr_scaling == "linear" else 1
    if replicas > 1:
        log.info(
            "%d replicas: global batch %d (data.batch_size %d per replica), learning rates x%d (train.lr_scaling=%s)",
            replicas,
            cfg.data.batch_size * replicas,
            cfg.data.batch_size,
            lr_scale,
            cfg.train.lr_scaling,
        )
    pipeline = dict(
        num_classes=len(class_names),
        image_size=size,
        batch_size=cfg.data.batch_size * replicas,
        cache=cfg.data.cache,
        cache_dir=cfg.data.cache_dir,
    )
    augmentation = AugmentationPlacement.from_config(cfg, data.train.labels, len(class_names), strategy)
    train_ds = make_dataset(
        data.train,
        training=True,
        name="train",
        shuffle_buffer=cfg.data.shuffle_buffer,
        seed=cfg.seed,
        batch_augmentation=augmentation.in_pipeline,
        **pipeline,
    )
    val_ds = make_dataset(data.val, training=False, name="val", **pipeline)
    test_ds = make_dataset(data.test, training=False, name="test", **pipeline)
    # several workers: each takes its part of every global batch (see shard_by_data)
    train_ds, val_ds, test_ds = (shard_by_data(ds) for ds in (train_ds, val_ds, test_ds))

    recipe = cfg.train.recipes[cfg.train.init]
    log.info(
        "init=%s (backbone.weights=%s): phases %s, BatchNormalization %s",
        cfg.train.init,
        cfg.backbone.weights,
        " -> ".join(recipe.phases),
        "frozen" if recipe.freeze_batchnorm else "trains",
    )
    with strategy.scope():
        backbone = build_backbone(cfg.backbone, size)
        model = build_classifier(
            backbone,
            class_names=class_names,
            image_size=size,
            preprocessing=build_preprocessing(cfg.backbone, size),
            pooling=cfg.backbone.get("pooling", "avg"),
            dense_units=cfg.model.dense_units,
            dropout=cfg.model.dropout,
            l2=cfg.model.l2,
            freeze_batchnorm=recipe.freeze_batchnorm,
            bn_momentum=cfg.model.bn_momentum,
        )
        trainee = augmentation.trainee(model)
    settings = FitSettings(
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.train.label_smoothing),
        optimizer_factory=build(cfg.optimizer),
        schedule_factory=build(cfg.schedule),
        early_stopping_monitor=cfg.train.early_stopping.monitor,
        early_stopping_patience=cfg.train.early_stopping.patience,
        freeze_batchnorm=recipe.freeze_batchnorm,
        jit_compile=cfg.train.jit_compile,
        tensorboard=bool(cfg.train.tensorboard),
        checkpoints=PhaseCheckpoints(
            output_dir / "checkpoints",
            resume=cfg.resume,
            fingerprint=run_fingerprint(cfg, output_dir / "manifest.json"),
        ),
        extra_callbacks=tuple(pruning_callbacks(cfg.trial, cfg.optimized_metric, _pruner_config(cfg))),
        verbose=cfg.train.verbose,
        train_images=len(data.train.paths),
        blocks=cfg.backbone.get("blocks"),
        feature_cache=_feature_cache(
            cfg, model, data, pipeline, augmented=augmentation.transform is not None, workers=worker_count(strategy)
        ),
        min_epoch_steps=int(cfg.train.min_epoch_steps),
        budget=_time_budget(cfg, budget_origin, val_ds, test_ds),
        run_dir=output_dir,
        lr_finder_rule=cfg.train.lr_finder_rule,
    )
    plans = phase_plans(cfg.train.phases, recipe.phases, lr_scale)
    with files_checked_again_on_read_error(
        data.train.paths + data.val.paths,
        doing="training",
        cache_path=cfg.data.integrity_cache,
        max_pixels=cfg.data.max_image_pixels,
    ):
        outcome = train_phases(trainee, backbone, plans, settings, train_ds=train_ds, val_ds=val_ds, strategy=strategy)
    epochs, phases = outcome.epochs, outcome.phase_records()
    log.info(
        "The model is %s's best epoch (%d, %s %s)%s",
        outcome.best.phase,
        outcome.best.epoch or 0,
        outcome.best.monitor,
        "unknown" if outcome.best.value is None else f"{outcome.best.value:.4f}",
        "" if len(epochs) < 2 else f"; phases {', '.join(f'{name} {n} epochs' for name, n in epochs.items())}",
    )

    inference_view(model).save(output_dir / "model.keras")
    settings.checkpoints.remove()
    write_training_curves(output_dir, epochs, monitor=cfg.train.early_stopping.monitor)
    with files_checked_again_on_read_error(
        data.val.paths + data.test.paths,
        doing="evaluating",
        cache_path=cfg.data.integrity_cache,
        max_pixels=cfg.data.max_image_pixels,
    ):
        val = predict_split(model, val_ds, data.val.paths, data.val.labels, tta=cfg.eval.tta)
        test = predict_split(model, test_ds, data.test.paths, data.test.labels, tta=cfg.eval.tta)
    metrics = write_evaluation(
        output_dir,
        class_names=list(class_names),
        val=val,
        test=test,
        extra=dict(
            hparams=OmegaConf.to_container(cfg.hparams, resolve=True),
            epochs_trained=sum(epochs.values()),
            epochs_per_phase=epochs,
            steps_trained=sum(phase["steps"] for phase in phases.values()),
            phases=phases,
            best_phase=outcome.best.phase,
            best_epoch=outcome.best.epoch,
            precision_policy=policy,
            train_seconds=round(time.monotonic() - started, 1),
        ),
        tensorboard_dir=output_dir / "tensorboard" if cfg.train.tensorboard else None,
        step=sum(epochs.values()),
    )
    if cfg.eval.calibrate:
        with_temperature(model, metrics["temperature"]).save(output_dir / "model_calibrated.keras")
    if cfg.train.tensorboard:
        run_name = os.path.relpath(output_dir, Path(cfg.paths.log_dir).expanduser())
        decided = {  # what the run decided, beside what it was asked: each phase's length and what set it
            f"{name}_{key}": phase[key]
            for name, phase in metrics["phases"].items()
            for key in ("epochs", "steps", "reason")
        }
        write_hparams(output_dir / "tensorboard", {**metrics["hparams"], **decided}, metrics, run_name=run_name)
    log.info(
        "Done in %.0f s: val_accuracy %.4f, test_accuracy %.4f. Run folder: %s",
        metrics["train_seconds"],
        metrics["val_accuracy"],
        metrics["test_accuracy"],
        output_dir,
    )
    return metrics


def _time_budget(cfg: DictConfig, started: float, val_ds: Any, test_ds: Any) -> TimeBudget | None:
    """``train.budget_minutes`` as a deadline from ``started``, with what the run's final evaluation predicts."""
    if cfg.train.budget_minutes is None:
        return None
    return TimeBudget(
        float(cfg.train.budget_minutes),
        started,
        val_batches=int(val_ds.cardinality()),
        test_batches=int(test_ds.cardinality()),
        evaluation_passes=2 if cfg.eval.tta else 1,
    )


def _feature_cache(cfg: DictConfig, model: keras.Model, data: Any, pipeline: dict, *, augmented: bool, workers: int):
    """The frozen-backbone phases' feature cache, when ``train.feature_cache`` asks for it (feature_cache.wanted)."""
    if not wanted(cfg.train.feature_cache, augmented=augmented, workers=workers):
        return None
    return FeatureCache(
        model,
        data.train,
        data.val,
        pipeline,
        seed=cfg.seed,
        shuffle_buffer=cfg.data.shuffle_buffer,
        augmented=augmented,
    )


@hydra.main(config_path="pkg://imgcls.conf", config_name="train", execution_whitelist=TRUSTED_TARGETS)
def hydra_main(cfg: DictConfig) -> float:
    """Run :func:`train` and return ``cfg.optimized_metric`` for Hydra sweepers."""
    metrics = run_job(cfg, lambda: train(cfg))
    return float(metrics[cfg.optimized_metric])


def main() -> None:
    """``imgcls-train``: Hydra's command line over conf/train.yaml, with ``resume=<run folder>`` expanded first."""
    try:
        sys.argv[1:] = expand_resume(sys.argv[1:])
    except ImgclsError as error:
        print(f"imgcls-train: {error}", file=sys.stderr)
        sys.exit(2)
    global _budget_from_process_start
    _budget_from_process_start = True
    hydra_main()


if __name__ == "__main__":
    from imgcls_launcher import run_and_exit

    run_and_exit(main)
