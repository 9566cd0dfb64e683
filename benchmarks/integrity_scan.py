"""The integrity scan (``imgcls.data.integrity.check_images``) against checking one file at a time, side by side.

    .venv/bin/python benchmarks/integrity_scan.py            # about 4 minutes on 2 CPU cores
    .venv/bin/python benchmarks/integrity_scan.py --quick    # a smoke run

"One file at a time" is the per-file check the scan used before it decoded in batches, and still uses for a
file that fails in the batch: two eager TensorFlow ops a file (read, decode) in a pool of one thread per CPU.
Both run without the SQLite cache, on trees written once and then read from the page cache:

- ``fashion``: Fashion-MNIST's 28x28 PNGs (Debian's ``dataset-fashion-mnist``), all 70,000 by default;
- ``photos``: 500x375 JPEG crops of scikit-learn's sample photos (``benchmarks/data_pipeline.py``'s tree).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import data_pipeline  # noqa: E402
import recipes  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fashion-images", type=int, default=70_000, help="Fashion-MNIST files (default: all)")
    parser.add_argument("--photos", type=int, default=2000, help="JPEG photos (default 2000)")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of each; the best counts (default 2)")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "imgcls-bench-scan", help="where trees go"
    )
    parser.add_argument("--quick", action="store_true", help="2,000 Fashion-MNIST files, 200 photos, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.fashion_images, args.photos, args.repeats = 2000, 200, 1
    return args


def fashion_paths(root: Path, count: int) -> list[str] | None:
    if recipes._fashion_missing():
        print(f"fashion: skipped ({recipes._fashion_missing()})", flush=True)
        return None
    arrays, names = recipes._fashion()
    per_class = {"training_set": None, "test_set": None}
    if count < 70_000:  # the test split's share of a smaller set, as in the whole one
        per_class = {"training_set": max(1, count * 6 // 70), "test_set": max(1, count // 70)}
    tree = recipes.write_tree(root / f"fashion-{count}", arrays, names, list(range(10)), per_class)
    return sorted(str(p) for p in tree.rglob("*.png"))


def photo_paths(root: Path, count: int) -> list[str]:
    tree = data_pipeline.build_photo_tree(root / f"photos-{count}", count)
    return sorted(str(p) for p in tree.rglob("*.jpg"))


def one_file_at_a_time(paths: list[str]) -> dict[str, str | None]:
    from imgcls.data import integrity

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        verdicts = list(pool.map(integrity._examine, paths, repeat(integrity.DEFAULT_MAX_PIXELS)))
    return {verdict.path: verdict.problem for verdict in verdicts}


def batched(paths: list[str]) -> dict[str, str | None]:
    from imgcls.data.integrity import check_images

    result = check_images(paths, cache_path=None, progress=False)
    return {path: result.problems.get(path) for path in paths}


def measure(name: str, paths: list[str], repeats: int) -> float:
    """Files a second of each way, best of ``repeats`` rounds in turns; returns the ratio batched / one at a time."""
    rates = {"one file at a time": 0.0, "check_images": 0.0}
    verdicts = {}
    for _ in range(repeats):
        for way, check in (("one file at a time", one_file_at_a_time), ("check_images", batched)):
            start = time.perf_counter()
            verdicts[way] = check(paths)
            rates[way] = max(rates[way], len(paths) / (time.perf_counter() - start))
    if verdicts["one file at a time"] != verdicts["check_images"]:
        raise SystemExit(f"{name}: the two ways disagree on some files")
    ratio = rates["check_images"] / rates["one file at a time"]
    print(
        f"{name}: {len(paths)} files; one file at a time {rates['one file at a time']:.0f} files/s, "
        f"check_images {rates['check_images']:.0f} files/s: {ratio:.2f}x "
        f"({len(paths) / rates['check_images']:.1f} s against {len(paths) / rates['one file at a time']:.1f} s)",
        flush=True,
    )
    return ratio


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    fashion = fashion_paths(args.workdir, args.fashion_images)
    if fashion:
        measure("fashion", fashion, args.repeats)
    measure("photos", photo_paths(args.workdir, args.photos), args.repeats)


if __name__ == "__main__":
    main()
