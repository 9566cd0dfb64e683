"""Move unusable files out of the class trees, only when the user asked for it (data.on_corrupt=quarantine)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from imgcls.errors import ConfigError

log = logging.getLogger(__name__)


def check_quarantine_dir(destination: str | Path | None, trees: dict[str, Path]) -> Path:
    """The quarantine folder, which must be given and must lie outside every class tree."""
    if destination is None:
        raise ConfigError("data.on_corrupt=quarantine needs data.quarantine_dir=<folder outside the class trees>.")
    destination = Path(destination).expanduser().resolve()
    for root in trees.values():
        if destination.is_relative_to(Path(root).resolve()):
            raise ConfigError(
                f"data.quarantine_dir={destination} lies inside the class tree {root}; "
                "choose a folder outside data.train_dir and data.test_dir."
            )
    return destination


def _free_name(target: Path) -> Path:
    candidate, n = target, 1
    while candidate.exists() or candidate.is_symlink():
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
        n += 1
    return candidate


def quarantine_files(problems: dict[str, str], trees: dict[str, Path], destination: Path) -> list[dict[str, str]]:
    """Move each file of ``problems`` to ``destination/<tree>/<path inside the tree>``; return the moves."""
    moves = []
    for path, reason in sorted(problems.items()):
        tree, root = next((t, r) for t, r in trees.items() if Path(path).is_relative_to(r))
        target = _free_name(destination / tree / os.path.relpath(path, root))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
        moves.append({"from": path, "to": str(target), "reason": reason})
    if moves:
        log.warning("Moved %d unusable files to %s (data.on_corrupt=quarantine)", len(moves), destination)
    return moves
