"""Linear probes at full speed: phase 1 on a frozen backbone with and without ``train.feature_cache``, side by side.

    .venv/bin/python benchmarks/feature_cache.py            # Fashion-MNIST where installed, else digits (~10 min)
    .venv/bin/python benchmarks/feature_cache.py --quick    # smoke run, fewer images and epochs

Each variant is a real ``imgcls.train_model`` run (phase 1 only: 10 head epochs on the frozen backbone, no
augmentation, early stopping out of the way), at 64 px, the same seed, in one process:

- ``vit``: a small keras-hub ViT (patch 8, 4 layers, width 128), random weights (no preset can be
  downloaded here): what a keras-hub transformer costs per pass;
- ``mobilenetv3small``: Keras Applications' MobileNetV3-Small, warm-started from a short from-scratch run
  on the other half of the classes (no ImageNet weights here), so that its features carry information.

Phase-1 wall time runs from the log line that starts the phase to the last epoch's line, so it includes the
one backbone pass that fills the cache. Validation accuracy is the final model's, from metrics.json.
Target (issue 14): >= 5x faster with the cache, at the same validation accuracy (+-0.5 point).
Real images: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (or scikit-learn's digits).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from recipes import FASHION_CLASSES, FASHION_DIR, digits_arrays, fashion_arrays, write_tree

TARGET_SPEEDUP = 5.0
TARGET_ACCURACY_POINTS = 0.5
VIT = [
    "backbone=vit_b16",
    "backbone.weights=null",
    "backbone.kwargs.patch_size=8",
    "backbone.kwargs.num_layers=4",
    "backbone.kwargs.num_heads=4",
    "backbone.kwargs.hidden_dim=128",
    "backbone.kwargs.mlp_dim=256",
    "backbone.min_image_size=64",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/imgcls-bench-feature-cache"))
    parser.add_argument("--per-class", type=int, default=400, help="training images per class (default 400)")
    parser.add_argument("--epochs", type=int, default=10, help="phase-1 head epochs (default 10)")
    parser.add_argument("--quick", action="store_true", help="100 images per class, 3 epochs")
    args = parser.parse_args(argv)
    if args.quick:
        args.per_class, args.epochs = 100, 3
    return args


def data_trees(workdir: Path, per_class: int) -> tuple[str, Path, Path]:
    """(data set name, pretraining tree on classes 0-4, probe tree on classes 5-9)."""
    if FASHION_DIR.is_dir():
        name, arrays, names = "fashion", fashion_arrays(), [n.replace(" ", "_") for n in FASHION_CLASSES]
    else:
        name, arrays, names = "digits", digits_arrays(), [str(i) for i in range(10)]
    counts = {"training_set": per_class, "test_set": max(50, per_class // 4)}
    pretrain = write_tree(workdir / f"{name}-{per_class}-pretrain", arrays, names, [0, 1, 2, 3, 4], counts)
    probe = write_tree(workdir / f"{name}-{per_class}-probe", arrays, names, [5, 6, 7, 8, 9], counts)
    return name, pretrain, probe


class PhaseClock(logging.Handler):
    """The times of the log lines that start phase 1 and end each of its epochs."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.started: float | None = None
        self.last_epoch: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("phase1: ") and "backbone blocks" in message:
            self.started = record.created
        elif message.startswith("phase1 epoch "):
            self.last_epoch = record.created

    @property
    def seconds(self) -> float:
        return self.last_epoch - self.started


def tree_overrides(tree: Path, run: Path) -> list[str]:
    return [
        f"data.train_dir={tree / 'training_set'}",
        f"data.test_dir={tree / 'test_set'}",
        f"paths.output_dir={run}",
        "data.image_size=64",
        "data.batch_size=32",
        "train.verbose=0",
        "train.tensorboard=false",
    ]


def probe_run(tree: Path, run: Path, backbone: list[str], epochs: int, cache: bool) -> dict:
    import imgcls

    clock = PhaseClock()
    logger = logging.getLogger("imgcls")
    logger.addHandler(clock)
    try:
        result = imgcls.train_model(
            [
                *tree_overrides(tree, run),
                *backbone,
                "train.init=pretrained",
                "augmentation=none",
                "mixup=none",
                f"train.phases.phase1.epochs={epochs}",
                "train.phases.phase2.epochs=0",
                f"train.early_stopping.patience={epochs}",
                f"train.feature_cache={str(cache).lower()}",
            ]
        )
    finally:
        logger.removeHandler(clock)
    return {"seconds": clock.seconds, "val_accuracy": result.metrics["val_accuracy"]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import imgcls

    dataset, pretrain_tree, probe_tree = data_trees(args.workdir, args.per_class)
    stamp = time.strftime("%H%M%S")
    print(
        f"Data: {dataset}, {args.per_class} training images per class, 64 px; {args.epochs} head epochs",
        file=sys.stderr,
    )
    pretrained = imgcls.train_model(
        [
            *tree_overrides(pretrain_tree, args.workdir / f"pretrain-{stamp}"),
            "backbone=mobilenetv3small",
            "backbone.weights=null",
            "train.init=scratch",
            "train.phases.scratch.epochs=4",
            "backbone.bn_momentum=0.9",  # a short run: BatchNormalization's statistics must keep up
            "augmentation=none",
            "mixup=none",
        ]
    )
    print(
        f"MobileNetV3-Small pretrained on classes 0-4: val_accuracy {pretrained.metrics['val_accuracy']:.4f}",
        file=sys.stderr,
    )
    backbones = {
        "vit (keras-hub, random)": VIT,
        "mobilenetv3small (warm start)": ["backbone=mobilenetv3small", f"backbone.weights={pretrained.run_dir}"],
    }
    rows, passed = [], True
    for label, backbone in backbones.items():
        results = {}
        for cache in (False, True):
            run = args.workdir / f"probe-{stamp}-{label.split()[0]}-{'cache' if cache else 'nocache'}"
            results[cache] = probe_run(probe_tree, run, backbone, args.epochs, cache)
            print(f"  {label} feature_cache={cache}: {results[cache]}", file=sys.stderr)
        speedup = results[False]["seconds"] / results[True]["seconds"]
        points = 100 * abs(results[True]["val_accuracy"] - results[False]["val_accuracy"])
        ok = speedup >= TARGET_SPEEDUP and points <= TARGET_ACCURACY_POINTS
        passed &= ok
        rows.append((label, results, speedup, points, ok))

    print(f"\nPhase 1 ({args.epochs} head epochs, frozen backbone, 64 px) on {dataset}, with and without the cache")
    print(
        f"{'backbone':32} {'no cache s':>10} {'cache s':>8} {'speedup':>8} "
        f"{'val acc no cache':>17} {'cache':>7} {'diff pt':>8}"
    )
    for label, results, speedup, points, ok in rows:
        print(
            f"{label:32} {results[False]['seconds']:10.1f} {results[True]['seconds']:8.1f} {speedup:7.1f}x "
            f"{results[False]['val_accuracy']:17.4f} {results[True]['val_accuracy']:7.4f} {points:8.2f}"
            f"  {'meets' if ok else 'MISSES'} the target (>= {TARGET_SPEEDUP:g}x, <= {TARGET_ACCURACY_POINTS} pt)"
        )
    (args.workdir / "feature_cache.json").write_text(
        json.dumps(
            [
                {
                    "backbone": r[0],
                    "speedup": r[2],
                    "accuracy_points": r[3],
                    "results": {str(k): v for k, v in r[1].items()},
                }
                for r in rows
            ],
            indent=2,
        )
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
