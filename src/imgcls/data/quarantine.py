"""Move unusable files out of the class trees, only when the user asked for it (data.on_corrupt=quarantine).

Rules:

* Every destination is compared with every tree after symlinks are resolved. A quarantine folder
  whose ``<tree name>`` sub-folder lies at or under a tree is refused at start (``ConfigError``),
  before anything moves; any single destination that would still land in a tree (a symlink inside
  the quarantine folder, a tree nested in it) is refused for that file.
* A move on one file system is a rename. A move between file systems copies to a hidden temporary
  file next to the destination, checks size and SHA-256 against the original, renames it into
  place and only then removes the original.
* A failure at any step (read-only source, full disk, a destination in a tree) leaves the original
  where it was and removes any copy made. The file is reported as not quarantined, with the
  reason, and is left out of training as with ``data.on_corrupt=skip``.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from imgcls.errors import ConfigError

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class QuarantineResult:
    """Files moved (``from``, ``to``, ``reason``) and files left in place (``path``, ``reason``, ``why_not_moved``)."""

    moved: list[dict[str, str]] = field(default_factory=list)
    not_quarantined: list[dict[str, str]] = field(default_factory=list)


def _resolved(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def _tree_holding(path: Path, trees: dict[str, Path]) -> tuple[str, Path] | None:
    """The (name, root) of the tree that ``path`` (already resolved) lies at or under, if any."""
    for name, root in trees.items():
        real_root = _resolved(root)
        if path == real_root or path.is_relative_to(real_root):
            return name, Path(root)
    return None


def check_quarantine_dir(destination: str | Path | None, trees: dict[str, Path]) -> Path:
    """The quarantine folder, which must be given and whose per-tree folders must lie outside every class tree."""
    if destination is None:
        raise ConfigError("data.on_corrupt=quarantine needs data.quarantine_dir=<folder outside the class trees>.")
    destination = _resolved(destination)
    for candidate in (destination, *(destination / name for name in trees)):
        holder = _tree_holding(_resolved(candidate), trees)
        if holder is not None:
            where = "" if candidate == destination else f"; files of that tree would be moved to {candidate}"
            raise ConfigError(
                f"data.quarantine_dir={destination} lies inside the class tree {holder[1]} "
                f"(data.{holder[0]}_dir){where}. Choose a folder outside data.train_dir and data.test_dir "
                "whose train/ and test/ sub-folders are not the trees themselves."
            )
    return destination


def _free_name(target: Path) -> Path:
    candidate, n = target, 1
    while candidate.exists() or candidate.is_symlink():
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
        n += 1
    return candidate


def _sha256(path: str | Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return those created, deepest first, for cleanup."""
    created = []
    probe = folder
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except BaseException:
        _remove_empty(created)
        raise
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _copy_verified(source: str, target: Path) -> None:
    """Copy ``source`` to ``target`` through a temporary file; the copy exists only once it matches."""
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        if os.path.islink(source):
            os.close(fd)
            os.unlink(temporary)
            link = os.readlink(source)
            os.symlink(
                link if os.path.isabs(link) else os.path.join(os.path.dirname(os.path.abspath(source)), link), temporary
            )
        else:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, _CHUNK)
                out.flush()
                os.fsync(out.fileno())
            shutil.copystat(source, temporary)
            if _sha256(source) != _sha256(temporary):
                raise OSError(errno.EIO, f"the copy at {target.parent} does not match the original (size or SHA-256)")
        os.rename(temporary, target)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise


def move_file(source: str, target: Path) -> None:
    """Move ``source`` to ``target`` (which must not exist); on any failure the original stays and no copy remains."""
    created = _make_parents(target.parent)
    try:
        try:
            os.rename(source, target)
            return
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
        _copy_verified(source, target)
        try:
            os.unlink(source)
        except BaseException:
            os.unlink(target)
            raise
    except BaseException:
        _remove_empty(created)
        raise


def quarantine_files(problems: dict[str, str], trees: dict[str, Path], destination: Path) -> QuarantineResult:
    """Move each file of ``problems`` to ``destination/<tree>/<path inside the tree>``; files that cannot
    be moved safely stay where they are and are listed in ``not_quarantined`` with the reason."""
    result = QuarantineResult()
    for path, reason in sorted(problems.items()):
        tree, root = next((t, r) for t, r in trees.items() if Path(path).is_relative_to(r))
        target = _free_name(destination / tree / os.path.relpath(path, root))
        final = _resolved(target.parent) / target.name
        holder = _tree_holding(final, trees)
        if holder is not None:
            why = (
                f"destination {final} lies inside the class tree {holder[1]}; "
                f"choose a data.quarantine_dir outside data.train_dir and data.test_dir"
            )
        else:
            try:
                move_file(path, target)
                result.moved.append({"from": path, "to": str(target), "reason": reason})
                continue
            except OSError as error:
                why = f"could not move to {target}: {error.strerror or error}"
        result.not_quarantined.append({"path": path, "reason": reason, "why_not_moved": why})
    if result.moved:
        log.warning("Moved %d unusable files to %s (data.on_corrupt=quarantine)", len(result.moved), destination)
    for entry in result.not_quarantined:
        log.warning("Not quarantined, left out of training in place: %s (%s)", entry["path"], entry["why_not_moved"])
    return result
