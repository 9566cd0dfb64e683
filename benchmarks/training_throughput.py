"""Training-step throughput with imgcls's real input pipeline, as a ratio of in-memory tensors.

Same model, same optimizer, same batch size, measured side by side in one run (alternating, best
epoch of each). On a CPU: MobileNetV3-Small at 96 px, float32. On a GPU: ResNet50 at 224 px,
mixed_float16, also reporting images per second. Run from the repository root:

    .venv/bin/python benchmarks/training_throughput.py            # about 5 minutes on 2 CPU cores
    .venv/bin/python benchmarks/training_throughput.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from data_pipeline import build_photo_tree, configured_augmentation, load_config, warm_page_cache

TARGET = 0.95


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1024, help="photos in the tree (default 1024)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per variant, after a warm-up epoch")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/imgcls-bench"), help="where the photos live")
    parser.add_argument("--quick", action="store_true", help="256 images, 1 timed epoch")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.epochs = 256, 1
    return args


def setup_for_device():
    """(backbone option, image size, batch size, precision) for this machine."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "resnet50", 224, 64, "mixed_float16"
    return "mobilenetv3small", 96, 32, "float32"


class EpochTimer:
    """Wall time of each epoch of a fit."""

    def __init__(self):
        import keras

        outer = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                outer.seconds.append(time.perf_counter() - outer.started)

        self.seconds: list[float] = []
        self.callback = Callback()


def build_model(backbone_name: str, image_size: int, class_names):
    from omegaconf import OmegaConf

    from imgcls.models.backbone import build_backbone
    from imgcls.models.classifier import build_classifier
    from imgcls.training.freezing import set_trainable_backbone

    backbone_cfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "backbone" / f"{backbone_name}.yaml")
    backbone_cfg.weights = None  # throughput does not depend on the weights' values; no download
    backbone = build_backbone(backbone_cfg, image_size)
    model = build_classifier(
        backbone,
        class_names=class_names,
        image_size=image_size,
        preprocessing=backbone_cfg.preprocessing,
        dense_units=256,
        dropout=0.3,
        l2=1e-4,
    )
    set_trainable_backbone(backbone, 30)  # the last 30 layers (blocks=None: a layer a block), as measured before
    return model


def in_memory_dataset(folder, image_size: int, batch_size: int):
    """The same images, decoded and resized once into one tensor: the input can cost nothing."""
    import numpy as np
    import tensorflow as tf

    from imgcls.data.pipeline import load_image

    images = np.stack([load_image(tf.constant(p), image_size).numpy() for p in folder.paths])
    labels = tf.one_hot(np.asarray(folder.labels), len(folder.class_names))
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(images), seed=0)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def pipeline_dataset(folder, cfg, image_size: int, batch_size: int, *, augment: bool):
    """imgcls's training pipeline with cache=memory; with ``augment``, the configured augmentation and
    mixing run in it (data.augment_on=pipeline)."""
    from imgcls.data.pipeline import make_dataset
    from imgcls.data.split import Subset

    return make_dataset(
        Subset(folder.paths, folder.labels),
        num_classes=len(folder.class_names),
        image_size=image_size,
        batch_size=batch_size,
        training=True,
        cache="memory",
        shuffle_buffer=cfg.data.shuffle_buffer,
        batch_augmentation=configured_augmentation(cfg) if augment else None,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import keras
    import tensorflow as tf

    from imgcls.data.scan import scan_image_folder
    from imgcls.training.on_device import DeviceAugmentedModel

    backbone_name, image_size, batch_size, precision = setup_for_device()
    keras.mixed_precision.set_global_policy(precision)
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(
        f"{device}: {backbone_name} at {image_size} px, batch {batch_size}, {precision}, "
        f"{args.images} photos, best of {args.epochs} timed epochs each",
        flush=True,
    )

    tree = build_photo_tree(args.workdir / f"photos-{args.images}", args.images)
    folder = scan_image_folder(tree)
    warm_page_cache(folder.paths)
    cfg = load_config()
    model = build_model(backbone_name, image_size, folder.class_names)
    on_device = DeviceAugmentedModel(model, configured_augmentation(cfg))  # data.augment_on=device
    for trainee in (model, on_device):
        trainee.compile(
            optimizer=keras.optimizers.Adam(1e-4), loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1)
        )
    variants = {
        "in-memory tensors": (model, in_memory_dataset(folder, image_size, batch_size)),
        "imgcls pipeline, no augmentation": (
            model,
            pipeline_dataset(folder, cfg, image_size, batch_size, augment=False),
        ),
        "imgcls, basic + mixup in the pipeline": (
            model,
            pipeline_dataset(folder, cfg, image_size, batch_size, augment=True),
        ),
        "imgcls, basic + mixup in the training step": (
            on_device,
            pipeline_dataset(folder, cfg, image_size, batch_size, augment=False),
        ),
    }

    best: dict[str, float] = {}
    for trainee, ds in variants.values():  # warm-up: tracing, and filling the memory caches
        trainee.fit(ds, epochs=1, verbose=0)
    for round_ in range(args.epochs):
        for name, (trainee, ds) in variants.items():
            timer = EpochTimer()
            trainee.fit(ds, epochs=1, verbose=0, callbacks=[timer.callback])
            rate = len(folder.paths) / timer.seconds[0]
            best[name] = max(best.get(name, 0.0), rate)
            print(f"  round {round_ + 1}: {name:44s} {rate:8.1f} images/s", file=sys.stderr, flush=True)

    base = best["in-memory tensors"]
    print(f"\n{'measurement':60s} {'value':>10s} {'target':>8s}")
    print(f"{'in-memory tensors (images/s)':60s} {base:10.1f}")
    for name in list(variants)[1:]:
        ratio = best[name] / base
        verdict = "PASS" if ratio >= TARGET else "FAIL"
        print(f"{name + ' (images/s)':60s} {best[name]:10.1f}")
        print(f"{name + ' / in-memory':60s} {ratio:10.3f} {'>= ' + str(TARGET):>8s}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
