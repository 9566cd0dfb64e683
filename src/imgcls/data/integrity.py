"""Find the image files the tf.data pipeline cannot decode, before training starts.

Each file is decoded once with :func:`imgcls.data.pipeline.decode_rgb`, the pipeline's own decoder,
after its header has been checked against a pixel limit. The SHA-256 of each file that decodes is
kept too, from the bytes already read, so that files with identical content can be found
(:mod:`imgcls.data.overlap`). Verdicts and hashes are cached in SQLite, keyed by path, size and
modification time, so a second scan of an unchanged tree reads nothing. Files are only ever read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

import PIL
import tensorflow as tf
from PIL import BmpImagePlugin, GifImagePlugin, Image, JpegImagePlugin, PngImagePlugin
from tqdm import tqdm

from imgcls.data.pipeline import decode_rgb
from imgcls.errors import DataError

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's default Image.MAX_IMAGE_PIXELS
LIMIT_SETTING = "data.max_image_pixels"  # named in "too large" reasons: the setting a user would change
TF_FORMATS = "JPEG, PNG, GIF, BMP, WebP"
CHECKER_VERSION = 1  # bump when verdicts change meaning; cached verdicts of other versions are ignored
_BATCH = 1024  # paths looked up, screened, decoded in one tf.data pass and written to the cache at a time
_TABLE = "checked_files"  # verdicts with content hashes (version 1 kept verdicts alone in "verdicts")

# Header readers of the formats decode_rgb reads, by leading bytes. They parse the header only and,
# unlike Image.open, neither warn nor raise at Pillow's global MAX_IMAGE_PIXELS. WebP is read by
# _webp_size: Pillow's WebP opener allocates the whole canvas.
_HEADER_READERS = (
    (b"\xff\xd8\xff", JpegImagePlugin.jpeg_factory),  # MPO (camera JPEGs) too
    (b"\x89PNG\r\n\x1a\n", PngImagePlugin.PngImageFile),
    (b"GIF8", GifImagePlugin.GifImageFile),
    (b"BM", BmpImagePlugin.BmpImageFile),
)
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
_TF_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*$")


@dataclass(frozen=True)
class CheckResult:
    """Unusable files with the reason for each, and how each distinct path got its verdict.

    ``checked`` files were examined in this call (decoded, or refused from their metadata or header);
    ``cached`` ones are unchanged since an earlier check and were not opened. Together they count
    the distinct paths. ``digests`` holds the SHA-256 (hex) of the content of each usable file.
    """

    problems: dict[str, str]
    checked: int
    cached: int
    digests: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Verdict:
    path: str
    problem: str | None
    stamp: tuple[int, int] | None  # (size, mtime_ns) the verdict holds for; None: do not cache it
    cached: bool = False
    digest: str | None = None  # SHA-256 of the content of a usable file


class _Transient(Exception):
    """A file that cannot be read now (permissions, I/O, memory); its verdict is not cached."""


def check_images(
    paths: Sequence[str],
    *,
    cache_path: str | Path | None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    progress: bool = True,
    desc: str = "Checking images",
) -> CheckResult:
    """Decode every file of ``paths`` as the pipeline will and report those that cannot be used.

    Images of more than ``max_pixels`` pixels are refused from their header, without decoding.
    ``cache_path`` is an SQLite file that may be shared by concurrent runs (None: no cache).
    ``workers`` threads decode in parallel (default: one per CPU). Duplicate paths are checked once.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    workers = workers or os.cpu_count() or 1
    unique = list(dict.fromkeys(os.fspath(path) for path in paths))
    cache = _VerdictCache.open(cache_path, _checker(max_pixels)) if cache_path is not None else None
    found: dict[str, str] = {}
    digests: dict[str, str] = {}
    fresh: list[_Verdict] = []
    checked = cached = 0
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check-images")
    try:
        with tqdm(total=len(unique), desc=desc, unit="file", disable=not progress) as bar:
            for verdict in _verdicts(pool, unique, cache, max_pixels):
                bar.update()
                if verdict.problem is not None:
                    found[verdict.path] = verdict.problem
                elif verdict.digest is not None:
                    digests[verdict.path] = verdict.digest
                if verdict.cached:
                    cached += 1
                    continue
                checked += 1
                if verdict.stamp is not None:
                    fresh.append(verdict)
                if cache is not None and len(fresh) >= _BATCH:
                    cache.store(fresh)
                    fresh = []
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if cache is not None:
            cache.store(fresh)  # also what an interrupted scan got through
            cache.close()
    problems = {path: found[path] for path in unique if path in found}
    return CheckResult(problems=problems, checked=checked, cached=cached, digests=digests)


# What reading or decoding a file in tf.data raises when it vanished, became unreadable or changed.
READ_ERRORS = (
    tf.errors.NotFoundError,
    tf.errors.PermissionDeniedError,
    tf.errors.InvalidArgumentError,
    tf.errors.DataLossError,
)
SHOWN_CHANGED = 5


@contextmanager
def files_checked_again_on_read_error(
    paths: Sequence[str], *, doing: str, cache_path: str | Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Iterator[None]:
    """Turn a tf.data read or decode error on one of ``paths`` into a one-line :class:`DataError` naming the files.

    Wrap the loop that iterates a dataset of checked files (training, evaluation, prediction): a
    file deleted or changed after :func:`check_images` otherwise ends the run with a raw TensorFlow
    traceback mid-epoch. On such an error ``paths`` are checked again (with ``cache_path``, only the
    files that changed are opened) and the error names what is now missing or undecodable. When
    every file still reads, the error was not about the files and is raised unchanged.
    """
    try:
        yield
    except READ_ERRORS as error:
        problems = check_images(paths, cache_path=cache_path, max_pixels=max_pixels, progress=False).problems
        if not problems:
            raise
        shown = "; ".join(f"{path}: {reason}" for path, reason in list(problems.items())[:SHOWN_CHANGED])
        more = f"; and {len(problems) - SHOWN_CHANGED} more" if len(problems) > SHOWN_CHANGED else ""
        raise DataError(
            f"{len(problems)} image file(s) vanished or changed since the data scan, while {doing}: "
            f"{shown}{more}. Leave the files alone during a run, or run again to scan them afresh."
        ) from error


def _checker(max_pixels: int) -> str:
    versions = f"integrity {CHECKER_VERSION}; tensorflow {tf.__version__}; pillow {PIL.__version__}"
    return f"{versions}; max_pixels {max_pixels}"


def _verdicts(
    pool: ThreadPoolExecutor, paths: list[str], cache: _VerdictCache | None, max_pixels: int
) -> Iterator[_Verdict]:
    """Verdicts a batch at a time (cache use stays in this thread).

    Threads stat, look up and screen each file and hash its content; the files left to decode are decoded
    together in one tf.data pass (graph ops in parallel, not one eager call per file). A file that fails
    there is examined again on its own, for the error that names its problem.
    """
    for start in range(0, len(paths), _BATCH):
        batch = paths[start : start + _BATCH]
        known = cache.lookup(batch) if cache is not None else {}
        screened = list(pool.map(_screen, batch, [known.get(path) for path in batch], repeat(max_pixels)))
        yield from (item for item in screened if isinstance(item, _Verdict))
        waiting = [item for item in screened if isinstance(item, _Undecoded)]
        decoded = _decode_together([item.path for item in waiting])
        yield from (item.verdict() for item in waiting if item.path in decoded)
        failed = [item.path for item in waiting if item.path not in decoded]
        yield from pool.map(_examine, failed, repeat(max_pixels))


@dataclass(frozen=True)
class _Undecoded:
    """A file that passed every check but decoding, with its stamp and content hash."""

    path: str
    stamp: tuple[int, int]
    digest: str

    def verdict(self) -> _Verdict:
        return _Verdict(self.path, None, self.stamp, digest=self.digest)


def _screen(path: str, known: tuple[int, int, str | None, str | None] | None, max_pixels: int) -> _Verdict | _Undecoded:
    """The cached verdict on one file, or one reached without decoding it, or the file's place in the decode."""
    info = _stat(path)
    if isinstance(info, _Verdict):
        return info
    stamp = (info.st_size, info.st_mtime_ns)
    if known is not None and known[:2] == stamp:
        return _Verdict(path, known[2], stamp, cached=True, digest=known[3])
    try:
        problem = _problem_before_decoding(path, info, max_pixels)
        if problem is not None:
            return _Verdict(path, problem, stamp)
        with open(path, "rb") as fp:
            digest = hashlib.file_digest(fp, "sha256").hexdigest()
    except _Transient as error:
        return _Verdict(path, str(error), None)
    except OSError as error:
        return _Verdict(path, f"unreadable: {error.strerror or error}", None)
    return _Undecoded(path, stamp, digest)


def _decode_together(paths: list[str]) -> set[str]:
    """Those of ``paths`` that :func:`decode_rgb` decodes, read and decoded in one parallel tf.data pass."""
    if not paths:
        return set()

    def decodes(path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return path, tf.shape(decode_rgb(tf.io.read_file(path)))  # the shape: so that the decode is not pruned

    dataset = (
        tf.data.Dataset.from_tensor_slices(paths)
        .map(decodes, num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors(log_warning=False)
        .batch(256)  # elements handed to Python one by one would cost more than their decoding
    )
    return {path.decode() for batch, _ in dataset.as_numpy_iterator() for path in batch}


def _examine(path: str, max_pixels: int) -> _Verdict:
    """The verdict on one file, checked now on its own."""
    info = _stat(path)
    if isinstance(info, _Verdict):
        return info
    try:
        problem, digest = _problem(path, info, max_pixels)
    except _Transient as error:
        return _Verdict(path, str(error), None)
    return _Verdict(path, problem, (info.st_size, info.st_mtime_ns), digest=digest)


def _stat(path: str) -> os.stat_result | _Verdict:
    """The file's metadata, or the verdict on a path that has none (missing, a broken link, unreadable)."""
    try:
        return os.stat(path)
    except OSError as error:
        return _Verdict(path, _missing(path, error), None)


def _missing(path: str, error: OSError) -> str:
    if isinstance(error, FileNotFoundError) and os.path.islink(path):
        try:
            return f"broken symlink (to {os.readlink(path)})"
        except OSError:
            return "broken symlink"
    return f"unreadable: {error.strerror or error}"


def _problem(path: str, info: os.stat_result, max_pixels: int) -> tuple[str | None, str | None]:
    """(why the file cannot be used, None) or, when it decodes, (None, SHA-256 of its content)."""
    problem = _problem_before_decoding(path, info, max_pixels)
    if problem is not None:
        return problem, None
    try:
        contents = tf.io.read_file(path)
    except tf.errors.OpError as error:
        raise _Transient(f"unreadable: {_tf_message(error)}") from error
    try:
        decode_rgb(contents)
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as error:
        return _decode_problem(_tf_message(error), contents.numpy()[:512]), None
    except tf.errors.OpError as error:  # out of memory and the like: says nothing about the file
        raise _Transient(f"could not be decoded now ({type(error).__name__}): {_tf_message(error)}") from error
    return None, hashlib.sha256(contents.numpy()).hexdigest()


def _problem_before_decoding(path: str, info: os.stat_result, max_pixels: int) -> str | None:
    """Why the file cannot be used, from its metadata and header alone; None when only decoding can tell."""
    if stat.S_ISDIR(info.st_mode):
        return "a directory, not an image file"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (device, FIFO or socket)"  # reading a FIFO would block
    if info.st_size == 0:
        return "empty file (0 bytes)"
    try:
        header = _header_size(path)
    except OSError as error:
        raise _Transient(f"unreadable: {error.strerror or error}") from error
    if header is not None and header[0] > max_pixels:
        pixels, size = header
        shape = f"{size[0]}x{size[1]} = {pixels}" if size else str(pixels)
        return f"too large: {shape} pixels > {LIMIT_SETTING}={max_pixels}"
    return None


def _header_size(path: str) -> tuple[int, tuple[int, int] | None] | None:
    """(pixels, (width, height)) from the header of a format TF reads; None when Pillow cannot tell."""
    with open(path, "rb") as fp:
        head = fp.read(32)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            size = _webp_size(head)
            return None if size is None else (size[0] * size[1], size)
        for magic, reader in _HEADER_READERS:
            if not head.startswith(magic):
                continue
            fp.seek(0)
            try:
                width, height = reader(fp, path).size
            except Image.DecompressionBombError as error:  # a few readers check Pillow's global limit
                found = _BOMB_PIXELS.search(str(error))
                pixels = int(found.group(1)) if found else 2 * (Image.MAX_IMAGE_PIXELS or 0) + 1
                return pixels, None
            except Exception:  # a header Pillow cannot parse: TF has the last word
                return None
            return width * height, (width, height)
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    """Canvas size from the first 30 bytes of a WebP file (lossy, lossless or extended)."""
    if len(head) < 30:
        return None
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _tf_message(error: tf.errors.OpError) -> str:
    """The first line of a TF error without the ``{{function_node ...}}`` and ``[Op:...]`` noise."""
    lines = [line for line in error.message.strip().splitlines() if line.strip()]
    return _TF_NOISE.sub("", lines[0] if lines else "").strip() or type(error).__name__


def _decode_problem(message: str, head: bytes) -> str:
    if message.startswith("Unknown image file format"):
        return f"not an image TensorFlow can decode ({TF_FORMATS}): {_looks_like(head) or message}"
    if "Animation" in message:  # decode_image reads animated WebP only as RGBA
        return f"animated WebP, which TensorFlow cannot decode to RGB: {message}"
    return f"corrupt or truncated image data: {message}"


def _looks_like(head: bytes) -> str | None:
    """What a file TF does not recognise seems to hold, from its first bytes."""
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "a TIFF image"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head[4:8] == b"ftyp":
        return "an HEIC/AVIF image or other ISO media file"
    if b"\x00" in head:
        return None
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n").lower()
    if text.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in text:
        return "an HTML page (text), not image data"
    if text.startswith("<?xml") or text.startswith("<svg"):
        return "XML/SVG text, not image data"
    if text.count("\ufffd") <= 1 and all(ch.isprintable() or ch in "\t\r\n" for ch in text):
        return "text, not image data"
    return None


class _VerdictCache:
    """Verdicts in SQLite, keyed by absolute path and checker; used only from the thread that opened it."""

    def __init__(self, connection: sqlite3.Connection, checker: str, location: Path):
        self._db: sqlite3.Connection | None = connection
        self._checker = checker
        self._location = location

    @classmethod
    def open(cls, location: str | Path, checker: str) -> _VerdictCache | None:
        """The cache at ``location`` (created with its folders), or None with a warning when unusable."""
        location = Path(location).expanduser()
        try:
            location.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(location, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")  # readers and one writer at a time across processes
            with db:  # a table of its own: older versions of this module keep using "verdicts" alongside
                db.execute(
                    f"CREATE TABLE IF NOT EXISTS {_TABLE} (path TEXT NOT NULL, checker TEXT NOT NULL, "
                    "size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, problem TEXT, sha256 TEXT, "
                    "PRIMARY KEY (path, checker))"
                )
        except (OSError, sqlite3.Error) as error:
            log.warning("Integrity cache %s cannot be used (%s); checking every file.", location, error)
            return None
        return cls(db, checker, location)

    def lookup(self, paths: list[str]) -> dict[str, tuple[int, int, str | None, str | None]]:
        """(size, mtime_ns, problem, sha256) of the cached verdicts on ``paths``, by path as given."""
        if self._db is None:
            return {}
        given = {os.path.abspath(path): path for path in paths}
        marks = ",".join("?" * len(given))
        try:
            rows = self._db.execute(
                f"SELECT path, size, mtime_ns, problem, sha256 FROM {_TABLE} WHERE checker = ? AND path IN ({marks})",
                [self._checker, *given],
            ).fetchall()
        except sqlite3.Error as error:
            self._give_up(error)
            return {}
        return {given[key]: (size, mtime_ns, problem, digest) for key, size, mtime_ns, problem, digest in rows}

    def store(self, verdicts: list[_Verdict]) -> None:
        """Record ``verdicts`` in one short transaction."""
        if self._db is None or not verdicts:
            return
        rows = [(os.path.abspath(v.path), self._checker, *v.stamp, v.problem, v.digest) for v in verdicts if v.stamp]
        try:
            with self._db:
                self._db.executemany(f"INSERT OR REPLACE INTO {_TABLE} VALUES (?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as error:
            self._give_up(error)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _give_up(self, error: sqlite3.Error) -> None:
        log.warning("Integrity cache %s failed (%s); continuing without it.", self._location, error)
        self.close()
