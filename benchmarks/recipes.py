"""Do imgcls's recipes beat the script a user would write? Side by side on real images, in one run.

    .venv/bin/python benchmarks/recipes.py             # digits, and Fashion-MNIST where installed (~20 min)
    .venv/bin/python benchmarks/recipes.py --quick     # smoke run: fewer images and epochs (~4 min)

Data sets, made from files on this machine (nothing is downloaded):

- ``digits``: scikit-learn's 1,797 handwritten digits, the tree ``experiment=demo`` trains on.
- ``fashion``: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package (``apt-get install
  dataset-fashion-mnist``; skipped with a note where it is missing): real 28 px grayscale product
  photos, 600 training images per class drawn with a fixed seed (6,000), and all 10,000 test images.

Contenders, each a fresh process timed from its start to its end (imports, data loading, the
integrity scan of a first run, training, evaluation; ``--warm-scan`` lets imgcls reuse its scan cache):

1. ``keras``: what a user writes by hand: ``keras.utils.image_dataset_from_directory`` and the
   two-conv CNN of TensorFlow's tutorial (Conv 32 5x5, pool, Conv 64 5x5, pool, Dense 1024,
   Dropout 0.4, softmax), 10 epochs of Adam 1e-3 at batch 64, on the whole training set.
2. ``imgcls scratch``: ``imgcls-train`` with the data set's experiment (``experiment=small_images``
   for Fashion-MNIST, ``experiment=demo`` for the digits): a compact ResNet trained from scratch in one
   phase, 15% of the training set held out for validation.
3. ``transfer``: the classes split in two halves. imgcls trains from scratch on the first half (all
   its images), then warm-starts (``backbone.weights=<that run>``) on the second half with only 40
   training images per class, using the pretrained recipe's defaults. Beside it, the same experiment
   from scratch on the same 40 images per class.

Targets (issue 10): imgcls scratch >= the Keras script's test accuracy in <= 1.0x its wall time; the
warm start >= 10 points above scratch on the few-shot half. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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


def run_imgcls(tree: Path, run_dir: Path, overrides: list[str], env: dict[str, str]) -> dict:
    shutil.rmtree(run_dir, ignore_errors=True)
    seconds, result = timed(
        [
            sys.executable,
            "-m",
            "imgcls.train",
            f"data.train_dir={tree / 'training_set'}",
            f"data.test_dir={tree / 'test_set'}",
            f"hydra.run.dir={run_dir}",
            "train.verbose=2",
            *overrides,
        ],
        env,
    )
    if result.returncode:
        raise RuntimeError(f"imgcls-train {' '.join(overrides)} failed:\n{result.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "test_accuracy": metrics["test_accuracy"],
        "val_accuracy": metrics["val_accuracy"],
        "seconds": seconds,
        "epochs": metrics["epochs_per_phase"],
    }


# Report ----------------------------------------------------------------------------------------


def show(name: str, result: dict) -> None:
    epochs = f"  epochs {result['epochs']}" if "epochs" in result else ""
    print(f"  {name:<34} test accuracy {result['test_accuracy']:.4f}   {result['seconds']:6.1f} s{epochs}", flush=True)


def benchmark(
    name: str,
    arrays: dict,
    class_names: list[str],
    *,
    experiment: str,
    train_per_class: int | None,
    pretrain_per_class: int | None,
    keras_epochs: int,
    extra: list[str],
    workdir: Path,
    warm_scan: bool,
) -> dict:
    print(f"\n{name}", flush=True)
    classes = list(range(len(class_names)))
    cache = workdir / "imgcls-cache"
    if not warm_scan:
        shutil.rmtree(cache, ignore_errors=True)
    env = {"IMGCLS_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "2"}
    full = write_tree(workdir / name / "full", arrays, class_names, classes, {"training_set": train_per_class})
    image_size = 32
    results = {"keras": run_keras(full, image_size, keras_epochs, env)}
    show("keras script (tutorial CNN)", results["keras"])
    results["scratch"] = run_imgcls(
        full, workdir / name / "runs" / "scratch", [f"experiment={experiment}", *extra], env
    )
    show(f"imgcls scratch (experiment={experiment})", results["scratch"])

    first, second = classes[: len(classes) // 2], classes[len(classes) // 2 :]
    half_a = write_tree(workdir / name / "half_a", arrays, class_names, first, {"training_set": pretrain_per_class})
    few_b = write_tree(workdir / name / "few_shot_b", arrays, class_names, second, {"training_set": FEW_SHOT_PER_CLASS})
    pretrained = workdir / name / "runs" / "pretrain_a"
    results["pretrain_a"] = run_imgcls(half_a, pretrained, [f"experiment={experiment}", *extra], env)
    show(f"imgcls on classes {first[0]}-{first[-1]} (all images)", results["pretrain_a"])
    results["warm_b"] = run_imgcls(
        few_b,
        workdir / name / "runs" / "warm_b",
        [f"experiment={experiment}", f"backbone.weights={pretrained}", *extra],
        env,
    )
    show(f"warm start, {FEW_SHOT_PER_CLASS}/class of {second[0]}-{second[-1]}", results["warm_b"])
    results["scratch_b"] = run_imgcls(
        few_b, workdir / name / "runs" / "scratch_b", [f"experiment={experiment}", *extra], env
    )
    show(f"scratch, {FEW_SHOT_PER_CLASS}/class of {second[0]}-{second[-1]}", results["scratch_b"])

    keras_result, scratch = results["keras"], results["scratch"]
    print(
        f"  imgcls scratch / keras script: accuracy {scratch['test_accuracy'] - keras_result['test_accuracy']:+.4f} "
        f"(target >= 0), wall time {scratch['seconds'] / keras_result['seconds']:.2f}x (target <= 1.0)"
    )
    gain = results["warm_b"]["test_accuracy"] - results["scratch_b"]["test_accuracy"]
    print(f"  warm start - scratch on the few-shot half: {100 * gain:+.1f} points (target >= +10)", flush=True)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "imgcls-bench-recipes",
        help="where the image trees and runs go (default: %(default)s)",
    )
    parser.add_argument("--datasets", nargs="+", default=["digits", "fashion"], choices=["digits", "fashion"])
    parser.add_argument("--warm-scan", action="store_true", help="let imgcls reuse the integrity scan of earlier runs")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 100 Fashion-MNIST images a class, 2 epochs everywhere"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--keras-child", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.keras_child:
        train_dir, test_dir, image_size, epochs = args.keras_child
        print(json.dumps(keras_script(train_dir, test_dir, int(image_size), int(epochs))))
        return
    quick = ["train.phases.scratch.epochs=2", "train.phases.phase1.epochs=1", "train.phases.phase2.epochs=1"]
    extra = quick if args.quick else []
    workdir = args.workdir / ("quick" if args.quick else "full")
    results = {}
    if "digits" in args.datasets:
        results["digits"] = benchmark(
            "digits",
            digits_arrays(),
            [str(d) for d in range(10)],
            experiment="demo",
            train_per_class=None,
            pretrain_per_class=None,
            keras_epochs=2 if args.quick else 10,
            extra=extra,
            workdir=workdir,
            warm_scan=args.warm_scan,
        )
    if "fashion" in args.datasets:
        if not FASHION_DIR.is_dir():
            print(f"\nfashion: skipped, {FASHION_DIR} not found (apt-get install dataset-fashion-mnist)")
        else:
            results["fashion"] = benchmark(
                "fashion",
                fashion_arrays(),
                FASHION_CLASSES,
                experiment="small_images",
                train_per_class=100 if args.quick else 600,
                pretrain_per_class=200 if args.quick else 1000,
                keras_epochs=2 if args.quick else 10,
                extra=extra,
                workdir=workdir,
                warm_scan=args.warm_scan,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
