"""data_report.json and the log summary of what the data scan found.

One shape for every app that reads labelled trees: imgcls-train reports its train and test trees
(:func:`imgcls.data.prepare.prepare_data`), imgcls-evaluate its test tree alone.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from imgcls.data.scan import ImageFolder, classes_without_images

log = logging.getLogger(__name__)

SHOWN_PER_REASON = 5


def _reason_kind(reason: str) -> str:
    return reason.split(":")[0].split(" (")[0]


def build_report(
    trees: dict[str, ImageFolder],
    *,
    on_corrupt: str,
    integrity: dict[str, int],
    quarantined: list[dict[str, str]],
    not_quarantined: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Everything a user needs to trust the data: usable counts, every file left out and why, odd classes.

    ``trees``: ``{"train": ..., "test": ...}`` for a training run, ``{"test": ...}`` for an evaluation
    (``classes_only_in_train`` is then empty).
    """
    train, test = trees.get("train"), trees["test"]
    test_counts = test.counts()
    only_in_train = [name for name in train.class_names if test_counts.get(name, 0) == 0] if train is not None else []
    return {
        "on_corrupt": on_corrupt,
        "integrity_check": integrity,
        "trees": {
            name: {
                "root": str(tree.root),
                "usable_images": len(tree.paths),
                "usable_per_class": tree.counts(),
                "skipped": [{"path": p, "reason": r} for p, r in sorted(tree.skipped.items())],
            }
            for name, tree in trees.items()
        },
        "classes_without_usable_images": {name: classes_without_images(tree) for name, tree in trees.items()},
        "classes_only_in_train": only_in_train,
        "quarantined": quarantined,
        # Files data.on_corrupt=quarantine could not move safely: left in place, left out of training.
        "not_quarantined": list(not_quarantined or []),
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the report as indented JSON (UTF-8 class and file names kept readable)."""
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def log_summary(report: dict[str, Any], path: Path) -> None:
    """Per-class counts, skipped files grouped by reason, and classes that need attention."""
    for name, tree in report["trees"].items():
        counts = ", ".join(f"{cls}: {n}" for cls, n in tree["usable_per_class"].items())
        log.info("%s tree %s: %d usable images (%s)", name, tree["root"], tree["usable_images"], counts)
        by_kind = Counter(_reason_kind(entry["reason"]) for entry in tree["skipped"])
        for kind, count in by_kind.most_common():
            examples = [e["path"] for e in tree["skipped"] if _reason_kind(e["reason"]) == kind][:SHOWN_PER_REASON]
            more = f" and {count - len(examples)} more" if count > len(examples) else ""
            log.warning("%s: skipped %d file(s), %s: %s%s", name, count, kind, ", ".join(examples), more)
    for name, classes in report["classes_without_usable_images"].items():
        if classes:
            log.warning("%s: classes without any usable image: %s", name, classes)
    if report["classes_only_in_train"]:
        log.warning(
            "Classes in the training set but not in the test set (not evaluated): %s", report["classes_only_in_train"]
        )
    log.info("Data report: %s", path)
