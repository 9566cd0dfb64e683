"""Benchmark imgcls's tf.data input pipeline against a bare decode-and-resize loop and Keras's loader.

    .venv/bin/python benchmarks/data_pipeline.py            # full run, about 12 minutes on 2 CPU cores
    .venv/bin/python benchmarks/data_pipeline.py --quick    # smoke run, about a minute

Every ratio is measured side by side in one run, on the same JPEG files, with the OS page cache
warm (every file is read once before any timing). Competing pipelines are timed in turns, and each
rate is the best of ``--repeats`` rounds: background load from other processes only ever slows a
round down, so the best is the closest to what the machine can do. The pipeline rates (a, b) are
steady-state: three epochs after a few warm-up batches, since tf.data's autotuner needs about as
long as one short epoch to raise its parallelism; the cache ratio (c) compares whole epochs. The
CPU time other processes took during the timed parts is printed too, as a check on how quiet the
machine was.

The images are real photographs: random crops of the two sample photos scikit-learn ships
(``sklearn.datasets.load_sample_images``), resized to 500x375 (one in five 375x500), flipped at
random, colour-jittered and saved as JPEG quality 90 in 10 class folders. They are built once under
``--workdir`` and reused. The large tree for the memory test is hard links to the same files under
other names (the decode cost per file is the same).

Results of a full run on the project's 2-core machine are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMAGE_SIZE = 224
CLASSES = 10
PHOTO_SIZE = (500, 375)  # width, height of a landscape photo; portraits are the transpose
JPEG_QUALITY = 90
TREE_VERSION = 1  # bump when the generated photos change


# Command line -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Targets: (a) >= 0.9 of a bare decode+resize loop; (b) >= 1.0 of "
        "keras.utils.image_dataset_from_directory; (c) cache=memory epoch 2 >= 5x epoch 1; "
        "(e) peak RSS independent of the number of images.",
    )
    parser.add_argument("--images", type=int, default=2000, help="photos in the main tree (default 2000)")
    parser.add_argument(
        "--big-images", type=int, default=20000, help="files in the linked tree for the memory test (default 20000)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "imgcls-bench",
        help="where the image trees and caches are kept (default: %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per rate; the best counts (default 3)")
    parser.add_argument("--no-disk", action="store_true", help="skip the peak-RSS runs with cache=disk")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 128 photos, 512 linked files, 1 repeat, no cache=disk run (about a minute); "
        "the numbers only show that everything runs",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        metavar="SECONDS",
        help="before each timed round, wait up to this long for other processes to leave the CPUs idle "
        "(default 20; 0 with --quick)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help=argparse.SUPPRESS)
    # internal: one peak-RSS measurement in a fresh process
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.big_images, args.repeats, args.no_disk = 128, 512, 1, True
    if args.quiet_wait is None:
        args.quiet_wait = 0.0 if args.quick else 20.0
    if args.images < CLASSES or args.big_images < args.images or args.repeats < 1:
        parser.error("need --images >= 10, --big-images >= --images and --repeats >= 1")
    return args


class Progress:
    """Numbered, timed progress lines on stderr."""

    def __init__(self, steps: int):
        self.steps, self.step, self.start = steps, 0, time.monotonic()

    def __call__(self, message: str) -> None:
        self.step += 1
        elapsed = time.monotonic() - self.start
        print(f"[{self.step:2d}/{self.steps}] {elapsed:6.0f}s  {message}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        print(f"        {time.monotonic() - self.start:6.0f}s  {message}", file=sys.stderr, flush=True)


# Image trees ------------------------------------------------------------------------------------


def _tree_ready(root: Path, spec: dict) -> bool:
    marker = root / ".complete.json"
    return marker.is_file() and json.loads(marker.read_text()) == spec


def build_photo_tree(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` JPEG photos in ``CLASSES`` class folders, from crops of scikit-learn's sample photos."""
    spec = {"version": TREE_VERSION, "count": count, "seed": seed}
    if _tree_ready(root, spec):
        return root
    import numpy as np
    from PIL import Image, ImageEnhance
    from sklearn.datasets import load_sample_images

    shutil.rmtree(root, ignore_errors=True)
    sources = [Image.fromarray(array) for array in load_sample_images().images]  # china.jpg, flower.jpg: 640x427
    rng = np.random.default_rng(seed)
    for i in range(count):
        source = sources[rng.integers(len(sources))]
        portrait = rng.random() < 0.2
        aspect = PHOTO_SIZE[1] / PHOTO_SIZE[0] if portrait else PHOTO_SIZE[0] / PHOTO_SIZE[1]  # width / height
        height = int(source.height * rng.uniform(0.55, 1.0))
        width = min(source.width, int(height * aspect))
        height = int(width / aspect)
        left, top = rng.integers(0, source.width - width + 1), rng.integers(0, source.height - height + 1)
        photo = source.crop((left, top, left + width, top + height))
        photo = photo.resize(PHOTO_SIZE[::-1] if portrait else PHOTO_SIZE, Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            photo = enhancer(photo).enhance(rng.uniform(0.85, 1.15))
        folder = root / f"class_{i % CLASSES:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        photo.save(folder / f"photo_{i:06d}.jpg", quality=JPEG_QUALITY)
        if (i + 1) % 500 == 0:
            print(f"        built {i + 1}/{count} photos", file=sys.stderr, flush=True)
    (root / ".complete.json").write_text(json.dumps(spec))
    return root


def build_linked_tree(root: Path, base: Path, count: int) -> Path:
    """``count`` files in the same class folders: hard links (copies where linking fails) to ``base``'s photos."""
    spec = {"version": TREE_VERSION, "count": count, "base": str(base)}
    if _tree_ready(root, spec):
        return root
    shutil.rmtree(root, ignore_errors=True)
    photos = sorted(base.glob("class_*/*.jpg"))
    for i in range(count):
        source = photos[i % len(photos)]
        folder = root / source.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"copy{i // len(photos):03d}_{source.name}"
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    (root / ".complete.json").write_text(json.dumps(spec))
    return root


def warm_page_cache(paths: Iterable[str]) -> int:
    total = 0
    for path in paths:
        with open(path, "rb") as fp:
            total += len(fp.read())
    return total


# What is measured ------------------------------------------------------------------------------


def load_config():
    """The real conf/train.yaml with its defaults (augmentation=basic, mixup=mixup)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="imgcls.conf"):
        cfg = compose(config_name="train")
    GlobalHydra.instance().clear()
    return cfg


def configured_augmentation(cfg):
    """The config's augmentation and mixing as one BatchAugmentation (no class weights), as a run builds it."""
    from imgcls.data.augment import BatchAugmentation, build_augmenter, build_mixer

    return BatchAugmentation.of(build_augmenter(cfg.augmentation.layers), build_mixer(cfg.mixup.layer), None)


def imgcls_train(folder, cfg, *, batch_size: int, augment: bool, cache: str = "none", cache_dir=None):
    """imgcls's training pipeline; with ``augment`` the configured augmentation and mixing run in it
    (``data.augment_on=pipeline``, the default without a GPU). Without, it is also exactly what the
    pipeline does with ``data.augment_on=device`` (the default with a GPU): the training step augments."""
    from imgcls.data.pipeline import make_dataset
    from imgcls.data.split import Subset

    return make_dataset(
        Subset(folder.paths, folder.labels),
        num_classes=len(folder.class_names),
        image_size=IMAGE_SIZE,
        batch_size=batch_size,
        training=True,
        cache=cache,
        cache_dir=cache_dir,
        name="bench",
        shuffle_buffer=cfg.data.shuffle_buffer,
        batch_augmentation=configured_augmentation(cfg) if augment else None,
    )


def bare_loop(paths, batch_size: int):
    """The ceiling: read, decode, resize to 224 (plain bilinear), batch, prefetch; nothing else."""
    import tensorflow as tf

    def load(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return tf.image.resize(image, [IMAGE_SIZE, IMAGE_SIZE])

    ds = tf.data.Dataset.from_tensor_slices(list(paths)).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def keras_loader(root: Path, batch_size: int):
    import keras

    return keras.utils.image_dataset_from_directory(
        root, image_size=(IMAGE_SIZE, IMAGE_SIZE), batch_size=batch_size, verbose=False
    )


class CpuMeter:
    """CPU seconds used by other processes (all busy time minus this process's) while timing."""

    def __init__(self):
        self.other = 0.0
        self.wall = 0.0
        self.quiet_wait = 0.0

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as fp:
            fields = [int(v) for v in fp.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    def __enter__(self):
        self._start = (time.perf_counter(), self._busy(), sum(os.times()[:2]))
        return self

    def __exit__(self, *exc):
        wall, busy, own = self._start
        self.wall += time.perf_counter() - wall
        self.other += max(0.0, (self._busy() - busy) - (sum(os.times()[:2]) - own))

    @property
    def other_cores(self) -> float:
        return self.other / self.wall if self.wall else 0.0

    def wait_for_quiet(self, threshold: float = 0.15) -> None:
        """Wait up to ``quiet_wait`` seconds for a second in which other processes use < ``threshold`` cores."""
        deadline = time.monotonic() + self.quiet_wait
        while time.monotonic() < deadline:
            busy, own = self._busy(), sum(os.times()[:2])
            time.sleep(1.0)
            if (self._busy() - busy) - (sum(os.times()[:2]) - own) < threshold:
                return


METER = CpuMeter()


CPU_MS: dict[str, float] = {}  # label: the least CPU time (all threads of this process) per image of an epoch


def timed_rate(batches: Iterable, label: str | None = None) -> float:
    """Images per second over ``batches`` (one epoch when given a dataset; batches of images, or (images, labels,
    ...)); the CPU ms per image goes to ``CPU_MS[label]``."""
    with METER:
        start, cpu, count = time.perf_counter(), sum(os.times()[:2]), 0
        for batch in batches:
            images = batch[0] if isinstance(batch, tuple) else batch
            count += int(images.shape[0])
        seconds = time.perf_counter() - start
    if label is not None:
        CPU_MS[label] = min(CPU_MS.get(label, float("inf")), 1000.0 * (sum(os.times()[:2]) - cpu) / count)
    return count / seconds


WARMUP_BATCHES = 16  # tf.data's autotuner starts each iterator at low parallelism and ramps up
STEADY_EPOCHS = 3


def steady_rate(ds, label: str | None = None) -> float:
    """Images per second once the pipeline runs at full speed: ``STEADY_EPOCHS`` epochs of
    ``ds.repeat()`` timed after ``WARMUP_BATCHES`` untimed batches.

    A single epoch of 2,000 images lasts 1-3 s on 2 cores, about as long as the autotuner takes to
    raise a map's parallelism, so single-epoch rates jump between one-thread and two-thread speeds.
    """
    epoch_batches = sum(1 for _ in ds)
    iterator = iter(ds.repeat())
    for _ in range(WARMUP_BATCHES):
        next(iterator)
    return timed_rate(itertools.islice(iterator, STEADY_EPOCHS * epoch_batches), label)


def best_rates(
    datasets: dict[str, object], repeats: int, progress: Progress | None = None, rate: Callable = timed_rate
) -> dict[str, float]:
    """The best ``rate`` of each dataset, the datasets timed in turns, ``repeats`` rounds."""
    rates: dict[str, list[float]] = {name: [] for name in datasets}
    for round_ in range(repeats):
        METER.wait_for_quiet()
        for name, ds in datasets.items():
            rates[name].append(rate(ds, name))
        if progress:
            progress.note(f"round {round_ + 1}/{repeats}: " + ", ".join(f"{n} {r[-1]:.0f}/s" for n, r in rates.items()))
    return {name: max(values) for name, values in rates.items()}


def layer_ms_per_image(fn: Callable, batch_size: int, batches: int, repeats: int) -> float:
    """Wall milliseconds per image of ``fn`` on in-memory float32 batches, parallel tf.data map on all cores."""
    import tensorflow as tf

    images = tf.random.stateless_uniform((batch_size, IMAGE_SIZE, IMAGE_SIZE, 3), (1, 2), 0.0, 255.0)
    ds = tf.data.Dataset.from_tensors(images).repeat(batches).map(fn, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return 1000.0 / max(timed_rate(ds) for _ in range(repeats + 1))  # +1: the first epoch compiles


def peak_rss_child(args: argparse.Namespace) -> None:
    """One epoch of the configured training pipeline over ``args.rss_child``; prints JSON with VmHWM."""
    from imgcls.data.scan import scan_image_folder

    def status_kb(key: str) -> int:
        with open("/proc/self/status") as fp:
            return next(int(line.split()[1]) for line in fp if line.startswith(key + ":"))

    folder = scan_image_folder(args.rss_child)
    cache_dir = args.workdir / "tfdata-rss" if args.cache == "disk" else None
    if cache_dir is not None:
        shutil.rmtree(cache_dir, ignore_errors=True)
    ds = imgcls_train(
        folder, load_config(), batch_size=args.batch_size, augment=True, cache=args.cache, cache_dir=cache_dir
    )
    before = status_kb("VmRSS")
    start, count, step, timeline = time.perf_counter(), 0, max(1, len(folder.paths) // 10), []
    for images, *_ in ds:
        count += int(images.shape[0])
        if count // step != (count - int(images.shape[0])) // step:  # every tenth of the epoch
            timeline.append(status_kb("VmRSS"))
            print(f"          child: {count}/{len(folder.paths)} images", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    if cache_dir is not None:
        shutil.rmtree(cache_dir, ignore_errors=True)
    print(
        json.dumps(
            {
                "images": count,
                "seconds": seconds,
                "rss_before_kb": before,
                "peak_kb": status_kb("VmHWM"),
                "timeline_kb": timeline,
            }
        )
    )


def peak_rss(args: argparse.Namespace, tree: Path, cache: str) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--rss-child",
        str(tree),
        "--cache",
        cache,
        "--workdir",
        str(args.workdir),
        "--batch-size",
        str(args.batch_size),
    ]
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# The run ---------------------------------------------------------------------------------------


def measure_cache(folder, cfg, batch: int, repeats: int, progress: Progress) -> dict[str, tuple[float, float]]:
    """(epoch 1, epoch 2) rates with cache=memory, a fresh dataset per round, iterated twice."""
    epochs: dict[str, list[list[float]]] = {"imgcls": [[], []], "imgcls+aug": [[], []]}
    for round_ in range(repeats):
        METER.wait_for_quiet()
        for name, rates in epochs.items():
            ds = imgcls_train(folder, cfg, batch_size=batch, augment=name.endswith("aug"), cache="memory")
            rates[0].append(timed_rate(ds, f"{name} memory 1"))
            rates[1].append(timed_rate(ds, f"{name} memory 2"))
            del ds
        progress.note(
            f"round {round_ + 1}/{repeats}: "
            + ", ".join(f"{name} {r[0][-1]:.0f}/s then {r[1][-1]:.0f}/s" for name, r in epochs.items())
        )
    return {name: (max(rates[0]), max(rates[1])) for name, rates in epochs.items()}


def measure_scan(paths: list[str], workdir: Path, repeats: int) -> tuple[float, float]:
    """check_images files/s with a fresh cache file, then again with the same cache."""
    from imgcls.data.integrity import check_images

    scans: list[list[float]] = [[], []]
    for _ in range(repeats):
        METER.wait_for_quiet()
        with tempfile.TemporaryDirectory(dir=workdir) as scratch:
            for again in (False, True):
                with METER:
                    start = time.perf_counter()
                    result = check_images(paths, cache_path=Path(scratch) / "integrity.sqlite", progress=False)
                    scans[again].append(len(paths) / (time.perf_counter() - start))
                assert not result.problems and (result.cached if again else result.checked) == len(paths)
    return max(scans[0]), max(scans[1])


def measure_stages(folder, cfg, batch: int, repeats: int) -> list[tuple[str, float | tuple[float, float]]]:
    """Wall ms per image of each stage: file reading, decoding, resizing, batching, each augmentation layer."""
    import keras
    import tensorflow as tf

    from imgcls.data import pipeline
    from imgcls.data.augment import build_augmenter, build_mixer

    paths, autotune = list(folder.paths), tf.data.AUTOTUNE
    stages: list[tuple[str, float | tuple[float, float]]] = []

    def per_file(name: str, fn: Callable) -> None:
        ds = tf.data.Dataset.from_tensor_slices(paths).map(fn, num_parallel_calls=autotune)
        rate = best_rates({name: ds.batch(batch).prefetch(autotune)}, repeats, rate=steady_rate)[name]
        stages.append((name, 1000.0 / rate))

    def decode(path):
        return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)

    per_file("read file", lambda path: tf.strings.length(tf.io.read_file(path)))
    per_file("read + decode", lambda path: decode(path)[:8, :8])
    per_file("read + decode + bilinear resize (the bare loop)", lambda path: tf.image.resize(decode(path), [224, 224]))
    per_file(
        "read + decode + resize + round to uint8 (imgcls's per-file map)",
        lambda path: tf.cast(tf.round(pipeline.load_image(path, IMAGE_SIZE)), tf.uint8),
    )
    in_memory = imgcls_train(folder, cfg, batch_size=batch, augment=False, cache="memory")
    for _ in in_memory:  # fill the cache
        pass
    name = "imgcls batches from the memory cache (shuffle, batch, one-hot; uint8 images)"
    stages.append((name, 1000.0 / best_rates({name: in_memory}, repeats)[name]))

    batches = max(4, len(paths) // batch // 4)
    stages.append(
        (
            "tf.data map overhead (x + 0 on in-memory batches)",
            layer_ms_per_image(lambda x: x + 0.0, batch, batches, repeats),
        )
    )
    as_run = getattr(pipeline, "xla_compiled", lambda augment, size: augment)  # what make_dataset does to augment
    augmenter = build_augmenter(cfg.augmentation.layers)
    if augmenter is not None:
        for layer in [*augmenter.layers, augmenter]:
            compiled = as_run(layer if layer is augmenter else keras.Sequential([layer]), IMAGE_SIZE)
            graph = layer_ms_per_image(lambda x, fn=layer: fn(x, training=True), batch, batches, repeats)
            fast = layer_ms_per_image(lambda x, fn=compiled: fn(x, training=True), batch, batches, repeats)
            what = f"all {len(augmenter.layers)} layers" if layer is augmenter else layer.__class__.__name__
            stages.append((f"augment: {what} (TF graph / as make_dataset runs it)", (graph, fast)))
    mixer = build_mixer(cfg.mixup.layer)
    if mixer is not None:
        labels = tf.one_hot(tf.range(batch) % CLASSES, CLASSES)
        ms = layer_ms_per_image(
            lambda x: mixer({"images": x, "labels": labels}, training=True)["images"], batch, batches, repeats
        )
        stages.append((f"mix: {mixer.__class__.__name__}", ms))
    return stages


def print_report(args, info: dict, rates: dict, cache_rates: dict, scans: tuple, stages: list, rss: dict) -> None:
    print()
    print(f"imgcls data pipeline benchmark: {os.cpu_count()} CPU cores, {info['gpus']} GPUs, {info['versions']}")
    print(
        f"{args.images} JPEG photos (500x375 / 375x500, q{JPEG_QUALITY}) in {CLASSES} classes; image_size "
        f"{IMAGE_SIZE}, batch {args.batch_size}; rates: best of {args.repeats} rounds, page cache warm"
    )
    print(f"imgcls+aug = the default training config: {info['configured']}")
    print(f"other processes used {METER.other_cores:.2f} of {os.cpu_count()} cores on average while timing")
    print()
    print(
        f"Images/s (best of the repeats; the first four rows: {STEADY_EPOCHS} epochs after {WARMUP_BATCHES} warm-up "
        "batches, the cache rows: one epoch each) and CPU ms per image (all threads, least of the repeats)"
    )
    rows = [
        ("bare tf.data loop: read, decode_image, resize (bilinear), batch, prefetch", rates["bare"], "bare"),
        ("keras.utils.image_dataset_from_directory", rates["keras"], "keras"),
        (
            "imgcls make_dataset(training=True, cache=none), no augmentation in it (also augment_on=device)",
            rates["imgcls"],
            "imgcls",
        ),
        ("imgcls make_dataset(training=True, cache=none), imgcls+aug", rates["imgcls+aug"], "imgcls+aug"),
        ("imgcls cache=memory, no augmentation: epoch 1", cache_rates["imgcls"][0], "imgcls memory 1"),
        ("imgcls cache=memory, no augmentation: epoch 2", cache_rates["imgcls"][1], "imgcls memory 2"),
        ("imgcls cache=memory, imgcls+aug: epoch 1", cache_rates["imgcls+aug"][0], "imgcls+aug memory 1"),
        ("imgcls cache=memory, imgcls+aug: epoch 2", cache_rates["imgcls+aug"][1], "imgcls+aug memory 2"),
        ("check_images, fresh cache (files/s)", scans[0], None),
        ("check_images, same cache again (files/s)", scans[1], None),
    ]
    print(f"  {'per s':>9}  {'CPU ms':>6}")
    for name, value, label in rows:
        cpu = f"{CPU_MS[label]:6.2f}" if label in CPU_MS else " " * 6
        print(f"  {value:9.1f}  {cpu}  {name}")
    print()
    print("Per-stage cost: ms of wall time per image, tf.data on all cores (best of the repeats)")
    for name, value in stages:
        shown = f"{value[0]:5.2f} / {value[1]:5.2f}" if isinstance(value, tuple) else f"{value:5.2f}"
        print(f"  {shown:>13}  {name}")
    if rss:
        print()
        print("Peak RSS of one training epoch of imgcls+aug (a fresh process each; VmHWM)")
        for key, value in rss.items():
            print(
                f"  {value['peak_kb'] / 1024:6.0f} MB  cache={key.split('-')[0]}, {value['images']} images "
                f"(RSS {value['rss_before_kb'] / 1024:.0f} MB before the epoch; epoch {value['seconds']:.0f}s)"
            )
            tenths = " ".join(f"{kb / 1024:.0f}" for kb in value["timeline_kb"])
            print(f"{'':12}RSS after each tenth of the epoch, MB: {tenths}")

    table = [
        (
            "(a) imgcls+aug, data.augment_on=device (auto with a GPU): the pipeline / bare loop",
            rates["imgcls"] / rates["bare"],
            ">= 0.9",
            0.9,
        ),
        (
            "(a) imgcls+aug, data.augment_on=pipeline (auto without a GPU) / bare loop",
            rates["imgcls+aug"] / rates["bare"],
            ">= 0.9",
            0.9,
        ),
        ("(b) imgcls, no augmentation / keras loader", rates["imgcls"] / rates["keras"], ">= 1.0", 1.0),
        ("(b) imgcls+aug / keras loader", rates["imgcls+aug"] / rates["keras"], ">= 1.0", 1.0),
        (
            "(c) cache=memory epoch 2 / epoch 1, no augmentation",
            cache_rates["imgcls"][1] / cache_rates["imgcls"][0],
            ">= 5",
            5.0,
        ),
        (
            "(c) cache=memory epoch 2 / epoch 1, imgcls+aug",
            cache_rates["imgcls+aug"][1] / cache_rates["imgcls+aug"][0],
            ">= 5",
            5.0,
        ),
        ("(d) check_images files/s, same cache / fresh cache", scans[1] / scans[0], "(info)", None),
    ]
    held_kb = (args.big_images - args.images) * IMAGE_SIZE * IMAGE_SIZE * 3 / 1024  # the extra images as uint8
    for cache in ("none", "disk"):
        if f"{cache}-small" in rss:
            small_kb, big_kb = rss[f"{cache}-small"]["peak_kb"], rss[f"{cache}-big"]["peak_kb"]
            table.append(
                (
                    f"(e) peak RSS, {args.big_images} / {args.images} images, cache={cache}",
                    big_kb / small_kb,
                    "(info)",
                    None,
                )
            )
            table.append(
                (
                    f"(e) RSS growth / holding the extra {args.big_images - args.images} images, cache={cache}",
                    (big_kb - small_kb) / held_kb,
                    "<= 0.1",
                    -0.1,
                )
            )
            timeline = rss[f"{cache}-big"]["timeline_kb"]
            half = len(timeline) // 2
            drift_kb = sum(timeline[half:]) / (len(timeline) - half) - sum(timeline[:half]) / half
            table.append(
                (
                    f"(e) within the {args.big_images}-image epoch: RSS drift, 2nd half - 1st half, "
                    f"/ holding those images, cache={cache}",
                    drift_kb / (held_kb * args.big_images / 2 / (args.big_images - args.images)),
                    "<= 0.1",
                    -0.1,
                )
            )
    print()
    width = max(len(row[0]) for row in table)
    print(f"| {'measurement':<{width}} | {'value':>7} | {'target':<13} | result |")
    print(f"|{'-' * (width + 2)}|{'-' * 9}|{'-' * 15}|--------|")
    for name, value, target, bound in table:
        if bound is None:
            result = "info"
        else:  # a negative bound is an upper limit
            result = "PASS" if (value >= bound if bound > 0 else value <= -bound) else "FAIL"
        print(f"| {name:<{width}} | {value:7.2f} | {target:<13} | {result:<6} |")
    if METER.other_cores > 0.2:
        print(
            f"\nWARNING: other processes used {METER.other_cores:.2f} cores while timing; "
            "the rates are lower than on a quiet machine."
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rss_child is not None:
        peak_rss_child(args)
        return 0
    METER.quiet_wait = args.quiet_wait
    progress = Progress(steps=9 if not args.no_disk else 8)
    args.workdir.mkdir(parents=True, exist_ok=True)
    progress(f"image trees under {args.workdir} ({args.images} photos, {args.big_images} linked files)")
    small = build_photo_tree(args.workdir / f"photos-{args.images}", args.images)
    big = build_linked_tree(args.workdir / f"linked-{args.big_images}-from-{args.images}", small, args.big_images)

    import keras
    import tensorflow as tf

    from imgcls.data.scan import scan_image_folder

    cfg = load_config()
    folder = scan_image_folder(small)
    paths, batch, repeats = list(folder.paths), args.batch_size, args.repeats
    megabytes = warm_page_cache(paths) / 2**20
    versions = f"TF {tf.__version__}, Keras {keras.__version__}"
    progress(f"page cache warmed: {len(paths)} files, {megabytes:.0f} MB; {versions}")
    layers = [str(layer["_target_"]).rsplit(".", 1)[-1] for layer in cfg.augmentation.layers]
    mixing = str(cfg.mixup.layer["_target_"]).rsplit(".", 1)[-1] if cfg.mixup.layer else "no mixing"
    info = {
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "versions": versions,
        "configured": f"{' + '.join(layers) or 'no augmentation'}, then {mixing}",
    }

    progress(f"(a, b) {STEADY_EPOCHS} epochs each after a warm-up, timed in turns, best of {repeats}, cache=none")
    contenders = {
        "bare": bare_loop(paths, batch),
        "keras": keras_loader(small, batch),
        "imgcls": imgcls_train(folder, cfg, batch_size=batch, augment=False),
        "imgcls+aug": imgcls_train(folder, cfg, batch_size=batch, augment=True),
    }
    rates = best_rates(contenders, repeats, progress, rate=steady_rate)
    del contenders
    progress(f"(c) cache=memory: epochs 1 and 2 of one dataset, best of {repeats}")
    cache_rates = measure_cache(folder, cfg, batch, repeats, progress)
    progress(f"(d) integrity scan (check_images), best of {repeats}")
    scans = measure_scan(paths, args.workdir, repeats)
    progress("per-stage costs")
    stages = measure_stages(folder, cfg, batch, repeats)
    rss: dict[str, dict] = {}
    for cache in ("none",) if args.no_disk else ("none", "disk"):
        progress(f"(e) peak RSS, cache={cache}: {len(paths)}, then {args.big_images} images, a fresh process each")
        rss[f"{cache}-small"] = peak_rss(args, small, cache)
        rss[f"{cache}-big"] = peak_rss(args, big, cache)
        progress.note(", ".join(f"{k} {v['peak_kb'] / 1024:.0f} MB in {v['seconds']:.0f}s" for k, v in rss.items()))
    progress("done")
    print_report(args, info, rates, cache_rates, scans, stages, rss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
