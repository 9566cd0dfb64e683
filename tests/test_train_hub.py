"""End to end with keras-hub backbones, offline: tiny random ViT and DINOv2 presets, written with keras-hub's own
``save_to_preset``, go through a real two-phase run, evaluation, safe-mode loading, prediction and export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import keras_hub
import numpy as np
import pytest

import imgcls
from helpers import compose_app, tiny_run_overrides
from imgcls.export import export
from imgcls.models.backbone import build_backbone
from imgcls.models.blocks import backbone_blocks
from imgcls.models.classifier import find_backbone
from imgcls.train import train
from imgcls.training.freezing import set_trainable_backbone
from imgcls.training.optimizers import block_lr_multipliers

pytestmark = pytest.mark.slow

IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def tiny_vit() -> tuple[keras.Model, keras.layers.Layer]:
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64
    )
    return backbone, keras_hub.layers.ViTImageConverter(image_size=(32, 32), scale=1 / 127.5, offset=-1.0)


def tiny_dinov2() -> tuple[keras.Model, keras.layers.Layer]:
    backbone = keras_hub.models.DINOV2Backbone(
        patch_size=8,
        num_layers=2,
        hidden_dim=32,
        num_heads=2,
        intermediate_dim=64,
        image_shape=(32, 32, 3),
        position_embedding_shape=(32, 32, 3),
    )
    converter = keras_hub.layers.DINOV2ImageConverter(
        image_size=(32, 32), scale=(1 / (255 * IMAGENET_STD)).tolist(), offset=(-IMAGENET_MEAN / IMAGENET_STD).tolist()
    )
    return backbone, converter


FAMILIES = {"vit_b16": tiny_vit, "dinov2_small": tiny_dinov2}


@pytest.fixture(scope="module")
def presets(tmp_path_factory) -> dict[str, Path]:
    """One local preset folder per family, as keras-hub writes them."""
    folders = {}
    for name, build in FAMILIES.items():
        folder = tmp_path_factory.mktemp(f"{name}-preset")
        backbone, converter = build()
        backbone.save_to_preset(str(folder))
        converter.save_to_preset(str(folder))
        folders[name] = folder
    return folders


def hub_overrides(image_dataset: Path, backbone: str, preset: Path, run: Path, *extra: str) -> list[str]:
    return tiny_run_overrides(
        image_dataset,
        f"backbone={backbone}",
        f"backbone.weights={preset}",
        "backbone.min_image_size=32",
        f"paths.output_dir={run}",
        "augmentation=none",
        "mixup=none",
        *extra,
    )


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_keras_hub_backbone_trains_evaluates_loads_safely_predicts_and_exports(
    family, presets, image_dataset, tmp_path
):
    run = tmp_path / "run"
    cfg = compose_app(
        "train",
        hub_overrides(
            image_dataset,
            family,
            presets[family],
            run,
            "train.phases.phase1.epochs=2",
            "train.phases.phase2.epochs=1",
            "train.phases.phase2.unfreeze=1",
            "train.phases.phase2.layer_decay=0.5",
        ),
    )
    metrics = train(cfg)
    assert metrics["epochs_per_phase"] == {"phase1": 2, "phase2": 1}
    assert metrics["hparams"]["backbone"] == family and metrics["hparams"]["layer_decay"] == 0.5
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["num_test_images"] == 12

    # safe mode (the default) in a fresh interpreter: importing imgcls is all a user needs
    probe = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "probe.npy", probe)
    script = (
        "import numpy as np, imgcls\n"
        "from imgcls.models.loading import load_trained_model\n"
        f"model = load_trained_model({str(run / 'model.keras')!r})\n"
        f"probe = np.load({str(tmp_path / 'probe.npy')!r})\n"
        f"np.save({str(tmp_path / 'fresh.npy')!r}, model.predict(probe, verbose=0))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = keras.models.load_model(run / "model.keras", safe_mode=True)
    expected = loaded.predict(probe, verbose=0)
    np.testing.assert_allclose(np.load(tmp_path / "fresh.npy"), expected, atol=1e-5)
    assert loaded.layers[1].__class__.__module__.startswith("keras_hub"), "the preset's converter is in the model"

    test_files = sorted(str(p) for p in (image_dataset / "test_set").rglob("*.png"))
    records = imgcls.predict_images(run, test_files, progress=False)
    assert len(records) == 12 and all(record["error"] is None for record in records)

    exported = export(
        compose_app(
            "export",
            [
                f"model={run / 'model.keras'}",
                "format=tflite",
                f"paths.output_dir={tmp_path / 'export'}",
                f"data.integrity_cache={tmp_path / 'export' / 'integrity.sqlite'}",
            ],
        )
    )
    report = json.loads(Path(exported["report_json"]).read_text())
    assert report["evaluation"]["agreement"] == 1.0
    assert report["evaluation"]["max_probability_difference"] < 1e-4


def test_phase2_trains_the_last_transformer_blocks_with_layer_wise_decay(presets, image_dataset, tmp_path):
    """unfreeze counts transformer layers; the deepest trained one gets the full rate, each one below a factor less."""
    cfg = compose_app("train", hub_overrides(image_dataset, "vit_b16", presets["vit_b16"], tmp_path / "run"))
    backbone = build_backbone(cfg.backbone, 32)
    names = [block.name for block in backbone_blocks(backbone, cfg.backbone.blocks)]
    assert names == ["stem", "vit_encoder/transformer_block_1", "vit_encoder/transformer_block_2"]
    trained = set_trainable_backbone(backbone, 2, blocks=cfg.backbone.blocks)
    assert [block.name for block in trained] == names[1:]
    multipliers = block_lr_multipliers(trained, backbone_lr_mult=0.5, layer_decay=0.8)
    top = {w.path for w in trained[1].trainable_weights()}
    below = {w.path for w in trained[0].trainable_weights()}
    assert top and below and set(multipliers) == top | below
    assert {multipliers[p] for p in top} == {0.5}
    assert [multipliers[p] for p in below] == pytest.approx([0.4] * len(below))
    assert any(path.endswith("ln/gamma") for path in top), "the final LayerNorm trains with the last block"
    assert not any(w.path.startswith("vit_patching_and_embedding") for w in backbone.trainable_weights)


def test_a_warm_start_continues_from_an_earlier_runs_keras_hub_backbone(presets, image_dataset, tmp_path):
    first = tmp_path / "first"
    train(compose_app("train", hub_overrides(image_dataset, "dinov2_small", presets["dinov2_small"], first)))
    earlier = find_backbone(keras.models.load_model(first / "model.keras"))
    cfg = compose_app(
        "train", hub_overrides(image_dataset, "dinov2_small", first, tmp_path / "second", "backbone.kwargs=null")
    )
    warm = build_backbone(cfg.backbone, 32)
    for mine, theirs in zip(warm.get_weights(), earlier.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
