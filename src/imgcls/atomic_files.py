"""Write a file so that a kill at any moment leaves its old content or its new one, never part of one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """``write(temporary)`` beside ``path``, flush it to disk, then rename it to ``path``.

    The temporary name keeps ``path``'s suffix (Keras wants ``*.weights.h5``) and holds the process
    id, so processes writing the same file (sweep workers sharing a study) never share one. On an
    error (a full disk) the partial file is removed and the old ``path`` stays.
    """
    path = Path(path)
    partial = path.with_name(f".partial-{os.getpid()}-{path.name}")
    try:
        write(partial)
        _fsync(partial)
        os.replace(partial, path)
        _fsync(path.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
