"""``imgcls-evaluate``: the evaluation bundle of any saved model on any class-per-folder tree."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from imgcls.cli import run_job
from imgcls.data.data_report import build_report, log_summary, write_report
from imgcls.data.integrity import check_images, files_checked_again_on_read_error
from imgcls.data.pipeline import make_dataset
from imgcls.data.scan import scan_image_folder
from imgcls.data.split import whole
from imgcls.errors import DataError
from imgcls.evaluation.bundle import predict_split, write_evaluation
from imgcls.models.loading import load_trained_model, model_class_names, model_image_size
from imgcls.targets import TRUSTED_TARGETS

log = logging.getLogger("imgcls.evaluate")


def evaluate(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Evaluate ``cfg.model`` on ``cfg.data.test_dir`` and write the bundle to ``output_dir``.

    data_report.json has imgcls-train's shape, with the test tree alone; unusable files are always left out.
    """
    model = load_trained_model(cfg.model)
    class_names = tuple(model_class_names(model))
    tree = scan_image_folder(cfg.data.test_dir, class_names, what="data.test_dir")
    files = len(tree.paths)
    result = check_images(tree.paths, cache_path=cfg.data.integrity_cache, max_pixels=cfg.data.max_image_pixels)
    tree = tree.without(result.problems)
    report_path = output_dir / "data_report.json"
    report = build_report(
        {"test": tree},
        on_corrupt="skip",
        integrity={
            "files": files,
            "checked": result.checked,
            "from_cache": result.cached,
            "unusable": len(result.problems),
        },
        quarantined=[],
    )
    write_report(report_path, report)
    log_summary(report, report_path)  # skipped files by reason; classes of the model without a usable image
    if not tree.paths:
        raise DataError(f"data.test_dir={tree.root}: no usable image of the model's classes {list(class_names)}.")

    test = whole(tree)
    dataset = make_dataset(
        test,
        num_classes=len(class_names),
        image_size=model_image_size(model),
        batch_size=cfg.data.batch_size,
        training=False,
        cache="none",
    )
    with files_checked_again_on_read_error(
        test.paths, doing="evaluating", cache_path=cfg.data.integrity_cache, max_pixels=cfg.data.max_image_pixels
    ):
        predictions = predict_split(model, dataset, test.paths, test.labels)
    metrics = write_evaluation(
        output_dir,
        class_names=list(class_names),
        test=predictions,
        extra={"model": str(Path(cfg.model).expanduser().resolve()), "test_dir": str(tree.root)},
        tensorboard_dir=output_dir / "tensorboard" if cfg.tensorboard else None,
    )
    log.info("test_accuracy %.4f on %d images. Results: %s", metrics["test_accuracy"], len(test), output_dir)
    return metrics


@hydra.main(config_path="pkg://imgcls.conf", config_name="evaluate", execution_whitelist=TRUSTED_TARGETS)
def main(cfg: DictConfig) -> None:
    """Run :func:`evaluate` into the Hydra run folder; problems a user can fix end with exit code 2."""
    run_job(cfg, lambda: evaluate(cfg, Path(cfg.paths.output_dir)))


if __name__ == "__main__":
    from imgcls_launcher import run_and_exit

    run_and_exit(main)
