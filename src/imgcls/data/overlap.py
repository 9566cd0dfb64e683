"""Files the training and test trees share, and exact duplicates inside the training tree.

A test image that is also a training image (the same file, or a byte-identical copy) inflates
test accuracy; duplicates inside the training tree can land on both sides of the validation
split and inflate validation accuracy. Content is compared by the SHA-256 that
:func:`imgcls.data.integrity.check_images` keeps in its cache, so a repeat scan reads nothing.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgcls.config_schema import check_choice
from imgcls.errors import DataError

log = logging.getLogger(__name__)

SHOWN = 5


@dataclass(frozen=True)
class Overlap:
    """``shared``: (test path, training path, "same file" or "identical content") for each test file
    also in the training tree; ``train_duplicates``: groups of training paths with identical content."""

    shared: list[tuple[str, str, str]]
    train_duplicates: list[list[str]]

    def as_report(self) -> dict[str, Any]:
        return {
            "test_files_in_training_set": len(self.shared),
            "shared": [{"test": test, "train": train, "how": how} for test, train, how in self.shared],
            "training_duplicate_groups": len(self.train_duplicates),
            "training_duplicates": self.train_duplicates,
        }


def check_on_overlap(value: str) -> str:
    """``data.on_overlap``, validated."""
    return check_choice("data.on_overlap", value)


def check_distinct_trees(train_dir: str | Path, test_dir: str | Path) -> None:
    """Refuse one folder (after resolving symlinks) as both data.train_dir and data.test_dir."""
    train, test = Path(train_dir).expanduser().resolve(), Path(test_dir).expanduser().resolve()
    if train == test:
        raise DataError(
            f"data.train_dir and data.test_dir are the same folder ({train}): every test image would also be "
            "a training image. Point data.test_dir at a separate test set."
        )


def find_overlap(train_paths: Sequence[str], test_paths: Sequence[str], digests: dict[str, str]) -> Overlap:
    """Test files that are training files (same path once symlinks are resolved, or the same
    ``digests`` content hash), and groups of training files with identical content.

    Files without a digest (left out as unusable) are compared by path only.
    """
    by_real = {os.path.realpath(path): path for path in train_paths}
    by_digest: dict[str, list[str]] = defaultdict(list)
    for path in train_paths:
        if path in digests:
            by_digest[digests[path]].append(path)
    shared = []
    for path in test_paths:
        same = by_real.get(os.path.realpath(path))
        if same is not None:
            shared.append((path, same, "same file"))
        elif digests.get(path) in by_digest:
            shared.append((path, by_digest[digests[path]][0], "identical content"))
    duplicates = [group for group in by_digest.values() if len(group) > 1]
    return Overlap(shared=shared, train_duplicates=duplicates)


def handle_overlap(overlap: Overlap, on_overlap: str, report_path: Path) -> None:
    """Log what ``overlap`` found (counts and a few examples; the full list is in ``report_path``);
    with ``on_overlap=fail``, test files in the training set stop the run with a :class:`DataError`."""
    if overlap.shared:
        examples = ", ".join(f"{test} = {train}" for test, train, _ in overlap.shared[:SHOWN])
        more = f" and {len(overlap.shared) - SHOWN} more" if len(overlap.shared) > SHOWN else ""
        same_file = sum(how == "same file" for _, _, how in overlap.shared)
        summary = (
            f"{len(overlap.shared)} test file(s) are also in the training set ({same_file} the same file, "
            f"{len(overlap.shared) - same_file} identical content): {examples}{more}. Full list: {report_path}"
        )
        if on_overlap == "fail":
            raise DataError(
                f"{summary}. data.on_overlap=fail: remove them from one tree, or run with data.on_overlap=warn."
            )
        log.warning("%s. Test accuracy will be optimistic; data.on_overlap=fail stops the run instead.", summary)
    if overlap.train_duplicates:
        copies = sum(len(group) - 1 for group in overlap.train_duplicates)
        examples = ", ".join(" = ".join(group) for group in overlap.train_duplicates[:SHOWN])
        log.warning(
            "%d group(s) of identical files in the training set (%d extra copies), which can land on both sides "
            "of the validation split: %s. Full list: %s",
            len(overlap.train_duplicates),
            copies,
            examples,
            report_path,
        )
