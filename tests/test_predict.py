"""imgcls-predict: finds the files, skips unreadable ones with reasons, and predicts as evaluation does."""

from __future__ import annotations

import csv
import logging
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from helpers import compose_app, run_entrypoint, tiny_classifier
from imgcls.data.pipeline import make_dataset
from imgcls.data.split import Subset
from imgcls.errors import ConfigError, DataError
from imgcls.models.loading import load_trained_model
from imgcls.predict import find_images, image_batches, predict, predict_files, top_k

CLASS_NAMES = ["cat", "dog", "zebra fish"]
GOOD = ["a.png", "b.jpg", "nested/deeper/c.bmp", "nested/zebra 猫.png", "d.webp"]
UNUSABLE = {"corrupt.jpg": "corrupt or truncated", "notes.jpg": "text, not image data"}


def tiny_model() -> keras.Model:
    """The test classifier, with the backbone's built-in preprocessing (see :func:`helpers.tiny_classifier`)."""
    return tiny_classifier(CLASS_NAMES, "builtin", seed=0)


def write_images(root: Path) -> Path:
    """GOOD images of varied sizes and formats, UNUSABLE files named as images, and files to be ignored."""
    rng = np.random.default_rng(3)
    for i, name in enumerate(GOOD):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(30 + 7 * i, 45 - 3 * i, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
    (root / "corrupt.jpg").write_bytes((root / "b.jpg").read_bytes()[:200])
    (root / "notes.jpg").write_text("not a picture\n")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / ".hidden.png")
    (root / "readme.txt").write_text("ignored: not an image extension\n")
    return root


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.keras"
    tiny_model().save(path)
    return path


@pytest.fixture(scope="module")
def model(model_path) -> keras.Model:
    return load_trained_model(model_path)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("photos"))


def good_paths(root: Path) -> list[str]:
    """GOOD as find_images lists them: sorted within each folder, a folder's files before its sub-folders."""
    return [str(root / name) for name in ["a.png", "b.jpg", "d.webp", "nested/zebra 猫.png", "nested/deeper/c.bmp"]]


def evaluation_predictions(model: keras.Model, paths: list[str]) -> np.ndarray:
    """What evaluation gets for these files: the training pipeline's decode, then model.predict."""
    subset = Subset(tuple(paths), np.zeros(len(paths), np.int64))
    dataset = make_dataset(subset, num_classes=3, image_size=32, batch_size=4, training=False, cache="none")
    return model.predict(dataset.map(lambda x, y: x), verbose=0)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_entrypoint("imgcls.predict", args, cwd, timeout=300)


# --- finding files -----------------------------------------------------------------------------


def test_a_folder_is_searched_recursively_for_images_skipping_hidden_and_other_files(images):
    names = ["a.png", "b.jpg", "corrupt.jpg", "d.webp", "notes.jpg", "nested/zebra 猫.png", "nested/deeper/c.bmp"]
    assert find_images(images) == [str(images / name) for name in names]


def test_a_glob_or_a_single_file_is_taken_as_given(images):
    def under_images(*names):
        return [str(images / name) for name in names]

    assert find_images(str(images / "**" / "*.png")) == under_images("a.png", "nested/zebra 猫.png")
    assert find_images(str(images / "nest*")) == under_images("nested/zebra 猫.png", "nested/deeper/c.bmp")  # a folder
    assert find_images(images / "readme.txt") == [str(images / "readme.txt")]  # named explicitly: checked, not filtered


@pytest.mark.parametrize(
    ("what", "message"),
    [("missing", "no such file or folder"), ("*.gif", "no image files found"), ("empty", "no image files found")],
)
def test_no_match_is_a_clear_error(tmp_path, what, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"\0")
    with pytest.raises(DataError, match=message):
        find_images(tmp_path / what)


# --- predicting --------------------------------------------------------------------------------


def test_predict_files_gives_what_evaluation_gives_in_file_order(model, images):
    paths = good_paths(images)
    expected = evaluation_predictions(model, paths)
    probabilities = predict_files(model, paths, batch_size=2, progress=False)  # batches of 2, 2 and 1
    assert probabilities.shape == (5, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
    assert np.ptp(probabilities[:, 0]) > 0.05, "the test model must tell images apart"


def test_tta_averages_each_image_and_its_horizontal_flip(model, images):
    paths = good_paths(images)
    decoded = np.concatenate(list(image_batches(paths, 32, batch_size=4)))
    plain = model.predict(decoded, verbose=0)
    mirrored = model.predict(decoded[:, :, ::-1], verbose=0)
    assert np.abs(plain - mirrored).max() > 1e-3, "the flip must change the test model's output"
    tta = predict_files(model, paths, batch_size=3, tta=True, progress=False)
    np.testing.assert_allclose(tta, (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)


def test_top_k_is_most_probable_first_with_ties_in_class_order():
    indices, values = top_k(np.array([[0.2, 0.5, 0.3], [0.4, 0.2, 0.4]], np.float32), 2)
    assert indices.tolist() == [[1, 2], [0, 2]]
    np.testing.assert_allclose(values, [[0.5, 0.3], [0.4, 0.4]])


def test_predict_writes_top_k_rows_for_good_images_and_lists_the_skipped(model, model_path, images, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="imgcls.predict")
    cfg = compose_app("predict", [f"model={model_path}", f"input={images}", "top_k=10", f"paths.output_dir={tmp_path}"])
    summary = predict(cfg)

    rows = read_csv(tmp_path / "predictions.csv")
    assert list(rows[0]) == [
        "file",
        "top1_class",
        "top1_probability",
        "top2_class",
        "top2_probability",
        "top3_class",
        "top3_probability",
    ]  # top_k capped at 3 classes
    assert [row["file"] for row in rows] == good_paths(images)
    expected = evaluation_predictions(model, good_paths(images))
    for row, probabilities in zip(rows, expected):
        classes = [row[f"top{i}_class"] for i in (1, 2, 3)]
        values = [float(row[f"top{i}_probability"]) for i in (1, 2, 3)]
        assert sorted(classes) == sorted(CLASS_NAMES)
        assert values == sorted(values, reverse=True)
        np.testing.assert_allclose(values, [probabilities[CLASS_NAMES.index(name)] for name in classes], atol=1e-6)
        assert classes[0] == CLASS_NAMES[int(np.argmax(probabilities))]

    skipped = {row["file"]: row["reason"] for row in read_csv(tmp_path / "skipped.csv")}
    assert set(skipped) == {str(images / name) for name in UNUSABLE}
    for name, reason in UNUSABLE.items():
        assert reason in skipped[str(images / name)]
        assert f"Skipped {images / name}: " in caplog.text
    assert summary["num_images"] == 5 and summary["num_skipped"] == 2
    assert f"Predictions: {tmp_path / 'predictions.csv'}" in caplog.text


def test_glob_and_single_file_inputs_and_an_output_path(model_path, images, tmp_path):
    out = tmp_path / "elsewhere" / "p.csv"
    cfg = compose_app(
        "predict",
        [
            f"model={model_path}",
            f"input={images}/*.jpg",
            "top_k=1",
            f"output={out}",
            f"paths.output_dir={tmp_path / 'run'}",
        ],
    )
    predict(cfg)
    rows = read_csv(out)
    assert [row["file"] for row in rows] == [str(images / "b.jpg")]  # corrupt.jpg and notes.jpg skipped
    assert list(rows[0]) == ["file", "top1_class", "top1_probability"]
    assert len(read_csv(tmp_path / "run" / "skipped.csv")) == 2

    single = str(images / "nested" / "zebra 猫.png")
    # Hydra's override grammar needs non-ASCII values quoted (on a shell: "input='...'")
    predict(
        compose_app("predict", [f"model={model_path}", f"input='{single}'", f"paths.output_dir={tmp_path / 'one'}"])
    )
    assert [row["file"] for row in read_csv(tmp_path / "one" / "predictions.csv")] == [single]
    assert read_csv(tmp_path / "one" / "skipped.csv") == []


def test_user_errors_are_imgcls_errors(model_path, images, tmp_path):
    def run(*overrides):
        predict(compose_app("predict", [f"paths.output_dir={tmp_path}", *overrides]))

    with pytest.raises(ConfigError, match="model=.*file not found"):
        run(f"model={tmp_path / 'nope.keras'}", f"input={images}")
    (tmp_path / "junk.keras").write_text("not a model")
    with pytest.raises(ConfigError, match="cannot be loaded as a Keras model"):
        run(f"model={tmp_path / 'junk.keras'}", f"input={images}")
    with pytest.raises(ConfigError, match="input= is required"):
        run(f"model={model_path}")
    with pytest.raises(ConfigError, match="top_k must be at least 1"):
        run(f"model={model_path}", f"input={images}", "top_k=0")
    with pytest.raises(DataError, match="none of the 2 file"):
        run(f"model={model_path}", f"input='{images}/[cn]*.jpg'")
    assert len(read_csv(tmp_path / "skipped.csv")) == 2


# --- the command line --------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_predicts_a_folder_into_the_run_folder(model, model_path, images, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli([f"model={model_path}", f"input={images}", "top_k=2", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_csv(run_dir / "predictions.csv")
    assert [row["file"] for row in rows] == good_paths(images)
    expected = evaluation_predictions(model, good_paths(images))
    top1 = [CLASS_NAMES.index(row["top1_class"]) for row in rows]
    assert top1 == expected.argmax(axis=1).tolist()
    np.testing.assert_allclose([float(row["top1_probability"]) for row in rows], expected.max(axis=1), atol=1e-6)
    assert all(float(row["top1_probability"]) >= float(row["top2_probability"]) for row in rows)
    log = (run_dir / "predict.log").read_text(encoding="utf-8")
    for name in UNUSABLE:
        assert f"Skipped {images / name}: " in log
    assert f"Predictions: {run_dir / 'predictions.csv'}" in log
    assert len(read_csv(run_dir / "skipped.csv")) == 2
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert "image/s" in result.stderr  # the tqdm progress bar


@pytest.mark.slow
def test_cli_missing_input_is_a_clean_error_in_outputs_predict(model_path, tmp_path):
    result = run_cli(
        [f"model={model_path}", f"input={tmp_path / 'no_such_folder'}", f"paths.log_dir={tmp_path}"], cwd=tmp_path
    )
    assert result.returncode == 2
    assert "no such file or folder" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    (run,) = tmp_path.glob("outputs/predict/*/*")
    assert "no such file or folder" in (run / "predict.log").read_text(encoding="utf-8")


@pytest.mark.slow
def test_cli_help_shows_examples_and_keys(tmp_path):
    result = run_cli(["--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for text in ("imgcls-predict model=RUN/model.keras input=photos/", "tta: false", "top_k: 5", "skipped.csv"):
        assert text in result.stdout
    assert "backbone:" not in result.stdout  # imgcls-train's config groups do not apply here
