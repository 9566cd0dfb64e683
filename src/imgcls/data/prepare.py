"""From config to checked, split data: scan both trees, drop unusable files, split, write report and manifest."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgcls.config_schema import check_choice
from imgcls.data.data_report import build_report, log_summary, write_report
from imgcls.data.demo import ensure_digits_dataset
from imgcls.data.integrity import check_images
from imgcls.data.manifest import build_manifest, write_manifest
from imgcls.data.overlap import check_distinct_trees, check_on_overlap, find_overlap, handle_overlap
from imgcls.data.quarantine import check_quarantine_dir, quarantine_files
from imgcls.data.scan import ImageFolder, classes_without_images, scan_image_folder
from imgcls.data.split import Subset, stratified_split, whole
from imgcls.errors import DataError

log = logging.getLogger(__name__)

SHOWN_PROBLEMS = 10


@dataclass(frozen=True)
class PreparedData:
    """Class names in index order and the three splits."""

    class_names: tuple[str, ...]
    train: Subset
    val: Subset
    test: Subset


def _is_under(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def scan_trees(cfg: Any) -> dict[str, ImageFolder]:
    """List the training and test trees named by ``cfg`` (the ``data`` node), writing the demo data first if needed."""
    train_dir = Path(cfg.train_dir).expanduser()
    test_dir = Path(cfg.test_dir).expanduser()
    demo_root = Path(cfg.demo_root).expanduser()
    if _is_under(train_dir, demo_root) or _is_under(test_dir, demo_root):
        ensure_digits_dataset(demo_root)
    train = scan_image_folder(train_dir, what="data.train_dir")
    test = scan_image_folder(test_dir, train.class_names, what="data.test_dir")
    return {"train": train, "test": test}


def _problem_list(problems: dict[str, str]) -> str:
    shown = [f"{path}: {reason}" for path, reason in sorted(problems.items())[:SHOWN_PROBLEMS]]
    more = len(problems) - len(shown)
    return "\n  ".join(shown) + (f"\n  ... and {more} more" if more > 0 else "")


def prepare_data(cfg: Any, *, seed: int, output_dir: Path) -> PreparedData:
    """Scan, check and split the trees named by ``cfg`` (the ``data`` config node).

    Writes ``data_report.json`` and ``manifest.json`` to ``output_dir``. Unusable files are
    left out (``on_corrupt=skip``), stop the run (``fail``) or are moved to ``quarantine_dir``
    (``quarantine``); user files are never changed otherwise. Test files that are also training
    files, and duplicates inside the training tree, are logged and reported; with
    ``on_overlap=fail`` test files in the training set stop the run.
    """
    check_choice("data.on_corrupt", cfg.on_corrupt)
    on_overlap = check_on_overlap(cfg.get("on_overlap", "warn"))
    check_distinct_trees(cfg.train_dir, cfg.test_dir)
    trees = scan_trees(cfg)
    roots = {name: tree.root for name, tree in trees.items()}
    destination = check_quarantine_dir(cfg.quarantine_dir, roots) if cfg.on_corrupt == "quarantine" else None

    all_paths = [path for tree in trees.values() for path in tree.paths]
    result = check_images(all_paths, cache_path=cfg.integrity_cache, max_pixels=cfg.max_image_pixels)
    log.info(
        "Integrity check: %d files, %d checked, %d unchanged since an earlier check, %d unusable",
        len(all_paths),
        result.checked,
        result.cached,
        len(result.problems),
    )
    moves = quarantine_files(result.problems, roots, destination) if destination and result.problems else None
    trees = {name: tree.without(result.problems) for name, tree in trees.items()}
    overlap = find_overlap(trees["train"].paths, trees["test"].paths, result.digests)

    report_path = output_dir / "data_report.json"
    report = build_report(
        trees,
        on_corrupt=cfg.on_corrupt,
        integrity={
            "files": len(all_paths),
            "checked": result.checked,
            "from_cache": result.cached,
            "unusable": len(result.problems),
        },
        quarantined=moves.moved if moves else [],
        not_quarantined=moves.not_quarantined if moves else [],
    )
    report["overlap"] = overlap.as_report()
    write_report(report_path, report)
    log_summary(report, report_path)
    handle_overlap(overlap, on_overlap, report_path)

    if cfg.on_corrupt == "fail" and result.problems:
        raise DataError(
            f"{len(result.problems)} unusable image file(s) and data.on_corrupt=fail:\n  "
            f"{_problem_list(result.problems)}\nFull list: {report_path}. "
            "Fix or remove them, or run with data.on_corrupt=skip to leave them out."
        )
    empty = classes_without_images(trees["train"])
    if empty:
        raise DataError(
            f"data.train_dir: no usable image in class folder(s) {empty} of {trees['train'].root} "
            f"(skipped files and reasons: {report_path}). Add images or remove those folders."
        )

    train, val = stratified_split(trees["train"], cfg.val_split, seed)
    test = whole(trees["test"])
    manifest = build_manifest(
        trees["train"].class_names,
        {"train": (train, roots["train"]), "val": (val, roots["train"]), "test": (test, roots["test"])},
        seed=seed,
        val_split=cfg.val_split,
    )
    write_manifest(output_dir / "manifest.json", manifest)
    log.info(
        "Data: %d classes; %d train, %d validation (held out of the training set), %d test images",
        len(manifest["class_names"]),
        len(train),
        len(val),
        len(test),
    )
    return PreparedData(trees["train"].class_names, train, val, test)
