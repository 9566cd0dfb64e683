"""Do imgcls's recipes beat the script a user would write, in the same wall time? Side by side on real images.

    .venv/bin/python benchmarks/recipes.py --json results.json  # five data sets and every check (about 75 min)
    .venv/bin/python benchmarks/recipes.py --datasets digits --twenty-minute-sets --transfer-sets --lr-sets  # minutes
    .venv/bin/python benchmarks/recipes.py --quick              # smoke run: tiny sets, 2 script epochs (a few min)

Data sets, made from files on this machine (nothing is downloaded; a set whose package is missing is
skipped with a one-line reason), each written once as ``<split>/<class>/<index>.png`` and trained at 32 px:

- ``digits``: scikit-learn's 1,797 handwritten 8x8 digits, the split ``experiment=demo`` trains on
  (1,437 training, 360 test). Not mirror-symmetric: imgcls runs it with ``augmentation=none eval.tta=false``.
- ``fashion600``, ``fashion6000``, ``fashion60000``: Fashion-MNIST from Debian's ``dataset-fashion-mnist``
  (28 px grayscale product photos): 60 training images a class and 200 test images a class; 600 a class
  and all 10,000 test images; all 60,000 and all 10,000. Subsets are drawn with a fixed seed.
- ``photos``: 64 px crops of the twelve nature photographs of Debian's ``mate-backgrounds``
  (``benchmarks/real_photos.py``): 60 training and 40 test crops a class, 12 classes.

Contenders, each a fresh process timed from its start to its end (imports, data loading, the integrity
scan of a first run, training, evaluation). Each data set gets a fresh imgcls cache (``IMGCLS_CACHE_DIR``),
so its first run scans its tree; ``--warm-scan`` keeps the cache of earlier runs.

1. ``keras script``: what a user writes by hand: ``keras.utils.image_dataset_from_directory`` and the
   two-conv CNN of TensorFlow's tutorial (Conv 32 5x5, pool, Conv 64 5x5, pool, Dense 1024, Dropout 0.4,
   softmax), 10 epochs of Adam 1e-3 at batch 64, on the whole training set.
2. ``imgcls``: ``imgcls-train experiment=small_images`` (plus the set's extras) with
   ``train.budget_minutes`` set to the script's measured wall time: the same clock, fitted by imgcls.
   Beside it, the same recipe at its own length (no budget), except on ``fashion60000``.

Checks beside the comparison:

- ``--twenty-minute-sets`` (default ``fashion60000``): ``train.budget_minutes=20``, for the target of
  >= 0.95 test accuracy on the whole of Fashion-MNIST in <= 20 minutes.
- ``--transfer-sets`` (default ``fashion6000``): imgcls from scratch on the first half of the classes,
  then a warm start (``backbone.weights=<that run>``) on 40 training images a class of the second half,
  the same warm start with phase 2 skipped (the run's phase-1 result), and scratch on the same 40 a class.
- ``--lr-sets`` (default ``digits fashion600 photos``): the scratch phase at five learning rates
  (1e-3 to 2e-2), each ``--lr-steps`` optimizer steps long, and once at ``train.phases.scratch.lr=auto``
  (the learning-rate finder's suggestion, from ``lr_find_scratch.json``) at the same length. The grid's
  best rate is chosen by validation accuracy: the test set never chooses.

Targets: imgcls's test accuracy >= the script's, in <= 1.0x its wall time, on every set; the warm start
>= 10 points above scratch on the few-shot half, and >= its own phase-1 result; the finder's suggestion
within 2x of the grid's best rate. The run ends with one markdown table of every set and target.
Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from real_photos import photo_arrays, photos_missing

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = [
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FEW_SHOT_PER_CLASS = 40
SEED = 0
IMAGE_SIZE = 32
KERAS_EPOCHS = 10
LR_GRID = (1e-3, 2e-3, 5e-3, 1e-2, 2e-2)
LR_STEPS = 400
LR_RULE = "minimum"  # train.lr_finder_rule of the lr=auto run
TARGET_TRANSFER_GAIN = 0.10
TARGET_LR_FACTOR = 2.0
TWENTY_MINUTES = 20.0
TARGET_TWENTY_MINUTES_ACCURACY = 0.95
# --quick: a smoke run of every code path in a few minutes
QUICK_KERAS_EPOCHS = 2
QUICK_FEW_SHOT_PER_CLASS = 10
QUICK_LR_GRID = (1e-3, 1e-2)
QUICK_LR_STEPS = 40
# --quick: the unbudgeted runs (transfer) short too; the budgeted comparison is fitted to the script's clock
QUICK_TRAIN = [
    "train.phases.scratch.epochs=2",
    "train.phases.scratch.min_steps=0",
    "train.phases.phase1.epochs=1",
    "train.phases.phase1.min_steps=0",
    "train.phases.phase2.epochs=1",
    "train.phases.phase2.min_steps=0",
]


# Data ------------------------------------------------------------------------------------------


def _idx(path: Path, header: int) -> np.ndarray:
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=header)


def fashion_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fashion-MNIST's training and test images (N, 28, 28) and labels, from the Debian package."""
    arrays = {}
    for split, prefix in (("training_set", "train"), ("test_set", "t10k")):
        images = _idx(FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
        arrays[split] = (images, _idx(FASHION_DIR / f"{prefix}-labels-idx1-ubyte.gz", 8))
    return arrays


def digits_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The demo's digits split (the same stratified split ``experiment=demo`` reads), as 8x8 0-255 arrays."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from imgcls.data.demo import SPLIT_SEED, TEST_FRACTION

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    train, test = train_test_split(
        np.arange(len(images)), test_size=TEST_FRACTION, stratify=digits.target, random_state=SPLIT_SEED
    )
    return {"training_set": (images[train], digits.target[train]), "test_set": (images[test], digits.target[test])}


def write_tree(
    root: Path, arrays: dict, class_names: list[str], classes: list[int], per_class: dict[str, int | None]
) -> Path:
    """``root/<split>/<class>/<index>.png`` for ``classes``, at most ``per_class[split]`` images each (seeded)."""
    from PIL import Image

    if (root / "done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(SEED)
    for split, (images, labels) in arrays.items():
        for label in classes:
            chosen = np.flatnonzero(labels == label)
            if per_class.get(split) is not None and per_class[split] < len(chosen):
                chosen = np.sort(rng.choice(chosen, per_class[split], replace=False))
            folder = root / split / class_names[label]
            folder.mkdir(parents=True, exist_ok=True)
            for index in chosen:
                Image.fromarray(images[index]).save(folder / f"{index:05d}.png")
    (root / "done").touch()
    return root


@functools.cache
def _fashion() -> tuple[dict, list[str]]:
    return fashion_arrays(), FASHION_CLASSES


def _fashion_missing() -> str | None:
    return None if FASHION_DIR.is_dir() else f"{FASHION_DIR} not found (install: apt-get install dataset-fashion-mnist)"


def _digits() -> tuple[dict, list[str]]:
    return digits_arrays(), [str(d) for d in range(10)]


def _digits_missing() -> str | None:
    return None if importlib.util.find_spec("sklearn") else "scikit-learn is not installed"


@dataclasses.dataclass(frozen=True)
class DataSet:
    """A benchmark data set: its arrays and what is missing for them, images a class per split (None: all),
    the first half's images a class when it is pretrained on (None: as many as it trains on), imgcls's extra
    overrides, and the sizes ``--quick`` uses instead."""

    load: Callable[[], tuple[dict, list[str]]]
    missing: Callable[[], str | None]
    train_per_class: int | None = None
    test_per_class: int | None = None
    pretrain_per_class: int | None = None
    extra: tuple[str, ...] = ()
    unbudgeted: bool = True  # also run the recipe at its own length, without a time budget
    quick: dict = dataclasses.field(default_factory=dict)

    def sized(self, quick: bool) -> DataSet:
        """This set, with its ``--quick`` sizes when ``quick``."""
        return dataclasses.replace(self, **self.quick, quick={}) if quick else self

    @property
    def pretrain(self) -> int | None:
        return self.train_per_class if self.pretrain_per_class is None else self.pretrain_per_class


DATA_SETS = {
    "digits": DataSet(_digits, _digits_missing, extra=("augmentation=none", "eval.tta=false")),
    "fashion600": DataSet(
        _fashion,
        _fashion_missing,
        train_per_class=60,
        test_per_class=200,
        quick=dict(train_per_class=20, test_per_class=50),
    ),
    "fashion6000": DataSet(
        _fashion,
        _fashion_missing,
        train_per_class=600,
        pretrain_per_class=1000,
        quick=dict(train_per_class=60, test_per_class=100, pretrain_per_class=100),
    ),
    "fashion60000": DataSet(
        _fashion, _fashion_missing, unbudgeted=False, quick=dict(train_per_class=200, test_per_class=200)
    ),
    "photos": DataSet(photo_arrays, photos_missing, quick=dict(train_per_class=20, test_per_class=20)),
}


# Contenders ------------------------------------------------------------------------------------


def keras_script(train_dir: str, test_dir: str, image_size: int, epochs: int) -> dict:
    """The hand-written baseline: Keras's directory loader and TensorFlow's two-conv tutorial CNN."""
    import keras

    keras.utils.set_random_seed(SEED)
    load = lambda folder, shuffle: keras.utils.image_dataset_from_directory(  # noqa: E731
        folder, image_size=(image_size, image_size), batch_size=64, shuffle=shuffle, seed=SEED, verbose=False
    )
    train = load(train_dir, True).cache().prefetch(-1)
    test = load(test_dir, False).cache().prefetch(-1)
    num_classes = len(os.listdir(train_dir))
    model = keras.Sequential(
        [
            keras.Input((image_size, image_size, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(32, 5, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 5, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(1024, activation="relu"),
            keras.layers.Dropout(0.4),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train, epochs=epochs, verbose=2)
    _, accuracy = model.evaluate(test, verbose=0)
    return {"test_accuracy": float(accuracy)}


def timed(command: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env})
    return time.monotonic() - started, result


def run_keras(tree: Path, image_size: int, epochs: int, env: dict[str, str]) -> dict:
    seconds, result = timed(
        [
            sys.executable,
            __file__,
            "--keras-child",
            str(tree / "training_set"),
            str(tree / "test_set"),
            str(image_size),
            str(epochs),
        ],
        env,
    )
    if result.returncode:
        raise RuntimeError(f"the Keras script failed:\n{result.stderr[-3000:]}")
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "seconds": seconds}


def merged(overrides: list[str]) -> list[str]:
    """Hydra overrides with one value per key: a later ``key=value`` replaces an earlier one in its place."""
    by_key = {}
    for override in overrides:
        by_key[override.split("=", 1)[0]] = override
    return list(by_key.values())


SECONDS_FILE = "benchmark_seconds.json"  # a run's wall time as measured here, kept in its folder for --reuse-runs


def _finished_run(run_dir: Path, arguments: list[str]) -> dict | None:
    """The metrics and measured seconds of a finished run in ``run_dir`` started with the same ``arguments``."""
    try:
        recorded = (run_dir / ".hydra" / "overrides.yaml").read_text().splitlines()
        metrics = json.loads((run_dir / "metrics.json").read_text())
        seconds = json.loads((run_dir / SECONDS_FILE).read_text())["seconds"]
    except (OSError, ValueError, KeyError):
        return None
    same = [line.removeprefix("- ") for line in recorded] == [a for a in arguments if not a.startswith("hydra.")]
    return {**metrics, "seconds": seconds} if same else None


def run_imgcls(tree: Path, run_dir: Path, overrides: list[str], env: dict[str, str], reuse: bool = False) -> dict:
    """``imgcls-train`` in ``run_dir`` with ``overrides``, timed as a fresh process; with ``reuse``, a finished run
    there with the same overrides is read instead of run again (a benchmark that stopped continues)."""
    overrides = merged(overrides)
    arguments = [
        f"data.train_dir={tree / 'training_set'}",
        f"data.test_dir={tree / 'test_set'}",
        f"hydra.run.dir={run_dir}",
        "train.verbose=2",
        *overrides,
    ]
    metrics = _finished_run(run_dir, arguments) if reuse else None
    if metrics is None:
        shutil.rmtree(run_dir, ignore_errors=True)
        seconds, result = timed([sys.executable, "-m", "imgcls.train", *arguments], env)
        if result.returncode:
            raise RuntimeError(f"imgcls-train {' '.join(overrides)} failed:\n{result.stderr[-3000:]}")
        (run_dir / SECONDS_FILE).write_text(json.dumps({"seconds": seconds}) + "\n")
        metrics = {**json.loads((run_dir / "metrics.json").read_text()), "seconds": seconds}
    return {
        "test_accuracy": metrics["test_accuracy"],
        "val_accuracy": metrics["val_accuracy"],
        "val_loss": metrics["val_loss"],
        "seconds": metrics["seconds"],
        "train_seconds": metrics.get("train_seconds"),
        "epochs": metrics["epochs_per_phase"],
        "steps": metrics.get("steps_trained"),
        "phases": metrics.get("phases", {}),
        "best_phase": metrics.get("best_phase"),
    }


# Checks ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Bench:
    """What the checks of one data set share: the set at its size, its arrays, folders and environment, and
    the run's lengths (the script's epochs, the few-shot size, the learning-rate grid and its steps)."""

    name: str
    data_set: DataSet
    arrays: dict
    class_names: list[str]
    folder: Path
    env: dict[str, str]
    quick: bool
    keras_epochs: int
    few_shot: int
    lr_grid: tuple[float, ...]
    lr_steps: int
    reuse: bool = False

    def tree(self, name: str, classes: list[int], train_per_class: int | None) -> Path:
        """The set's tree of ``classes`` under ``name``, written once, with the set's test images a class."""
        per_class = {"training_set": train_per_class, "test_set": self.data_set.test_per_class}
        return write_tree(self.folder / name, self.arrays, self.class_names, classes, per_class)

    def full(self) -> Path:
        return self.tree("full", list(range(len(self.class_names))), self.data_set.train_per_class)

    def run_dir(self, run: str) -> Path:
        return self.folder / "runs" / run

    def imgcls(self, tree: Path, run: str, *overrides: str) -> dict:
        """``experiment=small_images`` at 32 px with the set's extras and ``overrides``, in run folder ``run``."""
        base = ["experiment=small_images", f"data.image_size={IMAGE_SIZE}", *self.data_set.extra]
        return run_imgcls(tree, self.run_dir(run), [*base, *overrides], self.env, self.reuse)


def target(bench: Bench, what: str, met: bool, *, difference: str = "", ratio: str = "") -> dict:
    return {"set": bench.name, "target": what, "met": bool(met), "difference": difference, "ratio": ratio}


def compare(bench: Bench) -> dict:
    """The Keras script, then imgcls with the script's measured wall time as its budget."""
    full = bench.full()
    keras_result = run_keras(full, IMAGE_SIZE, bench.keras_epochs, bench.env)
    show(f"keras script ({bench.keras_epochs} epochs)", keras_result)
    budget = keras_result["seconds"] / 60
    ours = bench.imgcls(full, "budgeted", f"train.budget_minutes={budget:.4f}")
    show(f"imgcls (budget {budget:.2f} min)", ours)
    default = None
    if bench.data_set.unbudgeted:
        default = bench.imgcls(full, "default")
        show("imgcls (the recipe's own length)", default)
    difference = ours["test_accuracy"] - keras_result["test_accuracy"]
    ratio = ours["seconds"] / keras_result["seconds"]
    print(
        f"  imgcls - keras script: accuracy {100 * difference:+.2f} points (target >= 0), "
        f"wall time {ratio:.2f}x (target <= 1.0)",
        flush=True,
    )
    return {
        "keras": keras_result,
        "imgcls": ours,
        "imgcls_default": default,
        "budget_minutes": budget,
        "difference": difference,
        "ratio": ratio,
        "targets": [
            target(bench, "imgcls accuracy >= script's", difference >= 0, difference=f"{100 * difference:+.2f} points"),
            target(bench, "imgcls time <= 1.0x script's", ratio <= 1.0, ratio=f"{ratio:.2f}x"),
        ],
    }


def twenty_minutes(bench: Bench) -> dict:
    """imgcls with ``train.budget_minutes=20`` on the whole set: the full Fashion-MNIST target."""
    ours = bench.imgcls(bench.full(), "twenty_minutes", f"train.budget_minutes={TWENTY_MINUTES:g}")
    show(f"imgcls (budget {TWENTY_MINUTES:g} min)", ours)
    met = ours["test_accuracy"] >= TARGET_TWENTY_MINUTES_ACCURACY and ours["seconds"] <= 60 * TWENTY_MINUTES
    return {
        "imgcls": ours,
        "targets": [
            target(
                bench,
                f"test accuracy >= {TARGET_TWENTY_MINUTES_ACCURACY:.2f} in <= {TWENTY_MINUTES:g} min",
                met,
                difference=f"{ours['test_accuracy']:.4f} in {ours['seconds'] / 60:.1f} min",
            )
        ],
    }


def _phase_bests(run: dict) -> str:
    """Each phase's best val_loss (the early-stopping monitor) and whether the run kept it."""
    return ", ".join(
        f"{name} {phase['best']:.4f}{'' if phase.get('kept', True) else ' (not kept)'}"
        for name, phase in run["phases"].items()
        if phase.get("best") is not None
    )


def transfer(bench: Bench) -> dict:
    """Pretrain on the first half of the classes; warm start, its phase 1 alone, and scratch on few of the second."""
    classes = list(range(len(bench.class_names)))
    first, second = classes[: len(classes) // 2], classes[len(classes) // 2 :]
    half_a = bench.tree("half_a", first, bench.data_set.pretrain)
    few_b = bench.tree("few_shot_b", second, bench.few_shot)
    short = QUICK_TRAIN if bench.quick else []
    warm = f"backbone.weights={bench.run_dir('pretrain_a')}"
    skip_phase2 = ("train.phases.phase2.epochs=0", "train.phases.phase2.min_steps=0")
    few = f"{bench.few_shot}/class of {second[0]}-{second[-1]}"
    runs = {
        "pretrain_a": (half_a, (), f"imgcls on classes {first[0]}-{first[-1]}"),
        "warm_b": (few_b, (warm,), f"warm start, {few}"),
        "phase1_b": (few_b, (warm, *skip_phase2), f"warm start phase 1 only, {few}"),
        "scratch_b": (few_b, (), f"scratch, {few}"),
    }
    results = {}
    for run, (tree, overrides, label) in runs.items():
        results[run] = bench.imgcls(tree, run, *short, *overrides)
        show(label, results[run])
    warm_b = results["warm_b"]
    gain = warm_b["test_accuracy"] - results["scratch_b"]["test_accuracy"]
    over_phase1 = warm_b["test_accuracy"] - results["phase1_b"]["test_accuracy"]
    print(f"  warm start - scratch: {100 * gain:+.1f} points (target >= +{100 * TARGET_TRANSFER_GAIN:.0f})")
    print(f"  warm start - its phase 1 alone: {100 * over_phase1:+.1f} points (target >= 0)")
    print(f"  warm start kept {warm_b['best_phase']}; best val_loss per phase: {_phase_bests(warm_b)}", flush=True)
    return {
        **results,
        "gain": gain,
        "over_phase1": over_phase1,
        "kept_phase": warm_b["best_phase"],
        "targets": [
            target(
                bench,
                f"warm start - scratch >= +{100 * TARGET_TRANSFER_GAIN:.0f} points",
                gain >= TARGET_TRANSFER_GAIN,
                difference=f"{100 * gain:+.1f} points",
            ),
            target(
                bench,
                "warm start >= its phase 1 alone",
                over_phase1 >= 0,
                difference=f"{100 * over_phase1:+.1f} points",
            ),
        ],
    }


def _suggestion(run_dir: Path) -> float:
    path = run_dir / "lr_find_scratch.json"
    if not path.is_file():
        raise RuntimeError(f"lr=auto wrote no {path}")
    return float(json.loads(path.read_text())["suggestion"])


def lr_check(bench: Bench) -> dict:
    """The scratch phase at each rate of the grid and at ``lr=auto``, all ``lr_steps`` steps long."""
    full = bench.full()
    fixed = (f"train.phases.scratch.steps={bench.lr_steps}", "train.phases.scratch.min_steps=0")
    grid = {}
    for lr in bench.lr_grid:
        grid[lr] = bench.imgcls(full, f"lr_{lr:g}", *fixed, f"train.phases.scratch.lr={lr:g}")
        show(f"lr {lr:g}, {bench.lr_steps} steps (val {grid[lr]['val_accuracy']:.4f})", grid[lr])
    # validation chooses, never the test set; val_loss breaks ties of val_accuracy (a few hundred images tie often)
    best = max(grid, key=lambda lr: (grid[lr]["val_accuracy"], -grid[lr]["val_loss"]))
    auto = bench.imgcls(full, "lr_auto", *fixed, "train.phases.scratch.lr=auto", f"train.lr_finder_rule={LR_RULE}")
    suggestion = _suggestion(bench.run_dir("lr_auto"))
    show(f"lr auto ({suggestion:.3g}), {bench.lr_steps} steps", auto)
    ratio = suggestion / best
    within = 1 / TARGET_LR_FACTOR <= ratio <= TARGET_LR_FACTOR
    print(
        f"  grid's best rate by val_accuracy (then val_loss) {best:g} (test accuracy "
        f"{grid[best]['test_accuracy']:.4f}), finder's suggestion {suggestion:.3g} (test accuracy "
        f"{auto['test_accuracy']:.4f}): ratio {ratio:.2f} (target within {TARGET_LR_FACTOR:g}x)",
        flush=True,
    )
    return {
        "grid": {f"{lr:g}": run for lr, run in grid.items()},
        "auto": auto,
        "best_lr": best,
        "suggestion": suggestion,
        "ratio": ratio,
        "targets": [
            target(
                bench,
                f"lr suggestion within {TARGET_LR_FACTOR:g}x of the grid's best ({best:g})",
                within,
                difference=f"test {100 * (auto['test_accuracy'] - grid[best]['test_accuracy']):+.2f} points",
                ratio=f"{ratio:.2f}x",
            )
        ],
    }


# which check runs on which sets: (results key, the option listing its sets, the check)
CHECKS = (
    ("compare", "datasets", compare),
    ("twenty_minutes", "twenty_minute_sets", twenty_minutes),
    ("transfer", "transfer_sets", transfer),
    ("lr", "lr_sets", lr_check),
)


# Report ----------------------------------------------------------------------------------------


def show(name: str, result: dict) -> None:
    epochs = f"  epochs {result['epochs']}" if "epochs" in result else ""
    steps = f" steps {result['steps']}" if result.get("steps") is not None else ""
    print(
        f"  {name:<40} test accuracy {result['test_accuracy']:.4f}   {result['seconds']:6.1f} s{epochs}{steps}",
        flush=True,
    )


def summary_rows(results: dict) -> list[list[str]]:
    """One row per compared set (or skipped set, or failed check), then one per target."""
    rows, targets = [], []
    for name, checks in results.items():
        if "skipped" in checks:
            rows.append([name, f"skipped: {checks['skipped']}", "", "", "", "", "", ""])
            continue
        for check, result in checks.items():
            if "error" in result:
                rows.append([f"{name} {check}", "failed (see above)", "", "", "", "", "", "not met"])
            targets += result.get("targets", [])
        if "targets" in checks.get("compare", {}):
            run = checks["compare"]
            keras_result, ours = run["keras"], run["imgcls"]
            rows.append(
                [
                    name,
                    f"{keras_result['test_accuracy']:.2%}",
                    f"{keras_result['seconds']:.1f} s",
                    f"{ours['test_accuracy']:.2%}",
                    f"{ours['seconds']:.1f} s",
                    f"{100 * run['difference']:+.2f} points",
                    f"{run['ratio']:.2f}x",
                    "",
                ]
            )
            if run.get("imgcls_default"):
                default = run["imgcls_default"]
                rows.append(
                    [
                        f"{name}, no budget (the recipe's own length)",
                        "",
                        "",
                        f"{default['test_accuracy']:.2%}",
                        f"{default['seconds']:.1f} s",
                        f"{100 * (default['test_accuracy'] - keras_result['test_accuracy']):+.2f} points",
                        f"{default['seconds'] / keras_result['seconds']:.2f}x",
                        "",
                    ]
                )
    for t in targets:
        met = "met" if t["met"] else "not met"
        rows.append([f"target ({t['set']}): {t['target']}", "", "", "", "", t["difference"], t["ratio"], met])
    return rows


def print_summary(results: dict) -> None:
    header = [
        "row",
        "script accuracy",
        "script time",
        "imgcls accuracy",
        "imgcls time",
        "difference",
        "ratio",
        "target",
    ]
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in summary_rows(results):
        print("| " + " | ".join(row) + " |")


# Command line ----------------------------------------------------------------------------------

# each set list's default: (a full run, --quick)
DEFAULT_SETS = {
    "datasets": (list(DATA_SETS), ["digits", "fashion600"]),
    "transfer_sets": (["fashion6000"], ["fashion600"]),
    "lr_sets": (["digits", "fashion600", "photos"], ["fashion600"]),
    "twenty_minute_sets": (["fashion60000"], []),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "imgcls-bench-recipes",
        help="where the image trees and runs go (default: %(default)s)",
    )
    sets = dict(nargs="*", choices=list(DATA_SETS), metavar="SET")
    parser.add_argument("--datasets", **sets, help=f"sets to compare on (default: all: {' '.join(DATA_SETS)})")
    parser.add_argument("--transfer-sets", **sets, help="sets of the few-shot transfer check (default: fashion6000)")
    parser.add_argument(
        "--lr-sets", **sets, help="sets of the learning-rate finder check (default: digits fashion600 photos)"
    )
    parser.add_argument(
        "--twenty-minute-sets", **sets, help="sets trained with train.budget_minutes=20 (default: fashion60000)"
    )
    parser.add_argument("--lr-steps", type=int, help=f"optimizer steps of each lr check run (default {LR_STEPS})")
    parser.add_argument(
        "--reuse-runs",
        action="store_true",
        help="read a finished run with the same overrides instead of running it again (from a run with the same "
        "--workdir; a benchmark that stopped continues)",
    )
    parser.add_argument("--warm-scan", action="store_true", help="let imgcls reuse the integrity scan of earlier runs")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: digits, fashion600 at 20 a class (transfer, lr on fashion600), {QUICK_KERAS_EPOCHS} script "
        f"epochs, lr grid {' '.join(f'{lr:g}' for lr in QUICK_LR_GRID)} of {QUICK_LR_STEPS} steps",
    )
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument("--keras-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for option, (full, quick) in DEFAULT_SETS.items():
        if getattr(args, option) is None:
            setattr(args, option, quick if args.quick else full)
    if args.lr_steps is None:
        args.lr_steps = QUICK_LR_STEPS if args.quick else LR_STEPS
    return args


def bench_for(name: str, args: argparse.Namespace) -> Bench:
    """Set ``name`` at its size for this run, with a fresh imgcls cache unless ``--warm-scan``."""
    workdir = args.workdir / ("quick" if args.quick else "full")
    cache = workdir / "imgcls-cache"
    if not args.warm_scan:
        shutil.rmtree(cache, ignore_errors=True)
    data_set = DATA_SETS[name].sized(args.quick)
    arrays, class_names = data_set.load()
    return Bench(
        name=name,
        data_set=data_set,
        arrays=arrays,
        class_names=class_names,
        folder=workdir / name,
        env={"IMGCLS_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "2"},
        quick=args.quick,
        keras_epochs=QUICK_KERAS_EPOCHS if args.quick else KERAS_EPOCHS,
        few_shot=QUICK_FEW_SHOT_PER_CLASS if args.quick else FEW_SHOT_PER_CLASS,
        lr_grid=QUICK_LR_GRID if args.quick else LR_GRID,
        lr_steps=args.lr_steps,
        reuse=args.reuse_runs,
    )


def run_set(name: str, args: argparse.Namespace, checks: list) -> dict:
    """The checks asked of set ``name``; one that fails is reported and recorded, and the run goes on."""
    reason = DATA_SETS[name].missing()
    if reason:
        print(f"  skipped: {reason}", flush=True)
        return {"skipped": reason}
    bench = bench_for(name, args)
    results = {}
    for key, check in checks:
        try:
            results[key] = check(bench)
        except RuntimeError as error:
            print(f"  {key} failed: {error}", flush=True)
            results[key] = {"error": str(error)}
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.keras_child:
        train_dir, test_dir, image_size, epochs = args.keras_child
        print(json.dumps(keras_script(train_dir, test_dir, int(image_size), int(epochs))))
        return
    results = {}
    for name in DATA_SETS:
        checks = [(key, check) for key, option, check in CHECKS if name in getattr(args, option)]
        if checks:
            print(f"\n{name}", flush=True)
            results[name] = run_set(name, args, checks)
    print_summary(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
