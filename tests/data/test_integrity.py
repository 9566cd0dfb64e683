"""The integrity scan: files the pipeline cannot decode are found, with a reason, before training."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imgcls.data.integrity as integrity
from imgcls.data.integrity import check_images

NOT_DECODABLE = "not an image TensorFlow can decode (JPEG, PNG, GIF, BMP, WebP): "


def noise(width: int = 40, height: int = 30, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def halved(source: Path, target: Path) -> None:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])


def webp_header(width: int, height: int) -> bytes:
    """An extended (VP8X) WebP header announcing a canvas of width x height, and no image data."""
    vp8x = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + len(vp8x).to_bytes(4, "little") + vp8x
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def write_usable(folder: Path) -> dict[str, Path]:
    """One file of every kind the pipeline reads, all 40x30."""
    folder.mkdir()
    image = noise()
    frames = [image.convert("P"), image.rotate(180).convert("P")]
    files = {
        "rgb jpeg": (image, "rgb.jpg", {}),
        "rgb png": (image, "rgb.png", {}),
        "png named .jpg": (image, "png_inside.jpg", {"format": "PNG"}),
        "grayscale png": (image.convert("L"), "gray.png", {}),
        "palette png": (image.convert("P"), "palette.png", {}),
        "rgba png": (image.convert("RGBA"), "rgba.png", {}),
        "16-bit grayscale png": (Image.fromarray(np.full((30, 40), 40000, dtype=np.uint16)), "gray16.png", {}),
        "cmyk jpeg": (image.convert("CMYK"), "cmyk.jpg", {}),
        "animated gif": (frames[0], "animated.gif", {"save_all": True, "append_images": frames[1:]}),
        "bmp": (image, "image.bmp", {}),
        "lossy webp": (image, "lossy.webp", {}),
        "lossless webp": (image, "lossless.webp", {"lossless": True}),
        "mpo jpeg (camera)": (image, "camera.jpg", {"format": "MPO", "save_all": True, "append_images": [image]}),
    }
    paths = {}
    for name, (picture, filename, options) in files.items():
        picture.save(folder / filename, **options)
        paths[name] = folder / filename
    assert Image.open(paths["16-bit grayscale png"]).mode == "I;16"
    assert Image.open(paths["cmyk jpeg"]).mode == "CMYK"
    assert getattr(Image.open(paths["animated gif"]), "n_frames", 1) == 2
    return paths


def write_unusable(folder: Path, usable: dict[str, Path]) -> dict[str, tuple[Path, str]]:
    """Files the pipeline cannot use, each with the start of the reason expected for it."""
    folder.mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    halved(usable["rgb jpeg"], folder / "truncated.jpg")
    halved(usable["rgb png"], folder / "truncated.png")
    (folder / "notes.jpg").write_text("labels: cat, dog\nsource: survey 2021\n")
    (folder / "page.png").write_text("<!DOCTYPE html>\n<html><body><h1>404 Not Found</h1></body></html>\n")
    noise().save(folder / "scan.jpg", format="TIFF")
    Image.new("1", (20000, 20000)).save(folder / "bomb.png")  # 400 M pixels in a 49 kB file
    (folder / "bomb.webp").write_bytes(webp_header(16384, 16384))
    image = noise()
    image.save(folder / "animated.webp", save_all=True, append_images=[image.rotate(180)])
    (folder / "broken.jpg").symlink_to(folder / "gone.jpg")
    (folder / "a folder.jpg").mkdir()
    return {
        "zero-byte file": (folder / "empty.jpg", "empty file (0 bytes)"),
        "truncated jpeg": (folder / "truncated.jpg", "corrupt or truncated image data: jpeg::Uncompress failed"),
        "truncated png": (folder / "truncated.png", "corrupt or truncated image data: Invalid PNG data"),
        "text named .jpg": (folder / "notes.jpg", NOT_DECODABLE + "text, not image data"),
        "html named .png": (folder / "page.png", NOT_DECODABLE + "an HTML page"),
        "tiff named .jpg": (folder / "scan.jpg", NOT_DECODABLE + "a TIFF image"),
        "huge png": (folder / "bomb.png", "too large: 20000x20000 = 400000000 pixels > data.max_image_pixels=89478485"),
        "huge webp": (
            folder / "bomb.webp",
            "too large: 16384x16384 = 268435456 pixels > data.max_image_pixels=89478485",
        ),
        "animated webp": (folder / "animated.webp", "animated WebP, which TensorFlow cannot decode to RGB"),
        "broken symlink": (folder / "broken.jpg", f"broken symlink (to {folder / 'gone.jpg'})"),
        "missing path": (folder / "never-existed.png", "unreadable: No such file or directory"),
        "directory": (folder / "a folder.jpg", "a directory, not an image file"),
    }


def snapshot(root: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Every case written once and scanned once: (usable, unusable, before, after, result)."""
    root = tmp_path_factory.mktemp("zoo")
    usable = write_usable(root / "good")
    unusable = write_unusable(root / "bad", usable)
    paths = [str(p) for p in usable.values()] + [str(p) for p, _ in unusable.values()]
    before = snapshot(root)
    cache = tmp_path_factory.mktemp("cache") / "verdicts.sqlite"
    result = check_images(paths, cache_path=cache, progress=False)
    return usable, unusable, before, snapshot(root), result


@pytest.mark.parametrize(
    "case",
    [
        "rgb jpeg",
        "rgb png",
        "png named .jpg",
        "grayscale png",
        "palette png",
        "rgba png",
        "16-bit grayscale png",
        "cmyk jpeg",
        "animated gif",
        "bmp",
        "lossy webp",
        "lossless webp",
        "mpo jpeg (camera)",
    ],
)
def test_files_the_pipeline_decodes_are_usable(zoo, case):
    usable, _, _, _, result = zoo
    assert str(usable[case]) not in result.problems


@pytest.mark.parametrize(
    "case",
    [
        "zero-byte file",
        "truncated jpeg",
        "truncated png",
        "text named .jpg",
        "html named .png",
        "tiff named .jpg",
        "huge png",
        "huge webp",
        "animated webp",
        "broken symlink",
        "missing path",
        "directory",
    ],
)
def test_unusable_files_are_reported_with_what_is_wrong(zoo, case):
    _, unusable, _, _, result = zoo
    path, reason = unusable[case]
    assert result.problems.get(str(path), "").startswith(reason), result.problems.get(str(path))


def test_the_scan_reports_only_unusable_files_and_counts_each_once(zoo):
    usable, unusable, _, _, result = zoo
    assert set(result.problems) == {str(p) for p, _ in unusable.values()}
    assert (result.checked, result.cached) == (len(usable) + len(unusable), 0)
    assert all("{{" not in reason and "[Op:" not in reason for reason in result.problems.values())


def test_the_scan_never_changes_the_files(zoo):
    _, unusable, before, after, _ = zoo
    assert after == before
    assert unusable["broken symlink"][0].is_symlink() and unusable["directory"][0].is_dir()


@pytest.fixture
def decoded(monkeypatch):
    """The files the scan decodes (a file that fails is decoded again alone, for its error: counted once)."""
    paths = []
    real = integrity._decode_together

    def counting(batch):
        paths.extend(batch)
        return real(batch)

    monkeypatch.setattr(integrity, "_decode_together", counting)
    return paths


def test_images_over_the_limit_are_refused_from_their_header_without_decoding(zoo, decoded):
    usable, unusable, _, _, _ = zoo
    huge = [str(unusable["huge png"][0]), str(unusable["huge webp"][0])]
    result = check_images(huge, cache_path=None, progress=False)
    assert set(result.problems) == set(huge) and decoded == []

    formats = ["rgb jpeg", "rgb png", "animated gif", "bmp", "lossy webp", "lossless webp", "mpo jpeg (camera)"]
    small = [str(usable[name]) for name in formats]
    result = check_images(small, cache_path=None, max_pixels=100, progress=False)
    assert result.problems == {p: "too large: 40x30 = 1200 pixels > data.max_image_pixels=100" for p in small}
    assert decoded == []
    assert check_images(small, cache_path=None, max_pixels=1200, progress=False).problems == {}
    assert len(decoded) == len(small)


def test_pillows_global_pixel_limit_neither_decides_nor_changes(zoo, tmp_path, monkeypatch, recwarn):
    usable, *_ = zoo
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a user's own setting, far below the images
    # The GIF's frame (40x30) overflows its declared screen (10x10): Pillow checks its limit while reading it.
    buffer = tmp_path / "overflowing.gif"
    noise().convert("P").save(buffer)
    overflowing = bytearray(buffer.read_bytes())
    overflowing[6:10] = (10).to_bytes(2, "little") * 2
    buffer.write_bytes(bytes(overflowing))
    paths = [str(p) for p in usable.values()] + [str(buffer)]

    assert check_images(paths, cache_path=None, progress=False).problems == {}
    refused = check_images([str(buffer)], cache_path=None, max_pixels=1000, progress=False).problems
    assert refused == {str(buffer): "too large: 1200 pixels > data.max_image_pixels=1000"}
    assert Image.MAX_IMAGE_PIXELS == 100
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


@pytest.fixture
def small_tree(tmp_path):
    """Three usable images and a text file named .png."""
    folder = tmp_path / "images"
    folder.mkdir()
    for seed in range(3):
        noise(seed=seed).save(folder / f"img_{seed}.jpg")
    (folder / "readme.png").write_text("not an image")
    return sorted(str(p) for p in folder.iterdir())


def test_a_second_scan_of_an_unchanged_tree_decodes_nothing(small_tree, tmp_path, decoded):
    cache = tmp_path / "state" / "nested" / "integrity.sqlite"
    first = check_images(small_tree, cache_path=cache, progress=False)
    assert (first.checked, first.cached, len(decoded)) == (4, 0, 4)
    assert list(first.problems) == [p for p in small_tree if p.endswith("readme.png")]
    assert cache.is_file()

    second = check_images(small_tree, cache_path=cache, progress=False)
    assert (second.checked, second.cached, len(decoded)) == (0, 4, 4)
    assert second.problems == first.problems


def test_a_changed_file_is_checked_again_and_its_new_verdict_reported(small_tree, tmp_path, decoded):
    cache = tmp_path / "integrity.sqlite"
    check_images(small_tree, cache_path=cache, progress=False)
    image = Path(small_tree[0])
    halved(image, image)  # the file is now truncated: smaller, and newer

    result = check_images(small_tree, cache_path=cache, progress=False)
    assert (result.checked, result.cached) == (1, 3)
    assert result.problems[str(image)].startswith("corrupt or truncated image data")

    stat = os.stat(small_tree[1])
    os.utime(small_tree[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # same size, new mtime
    assert check_images(small_tree, cache_path=cache, progress=False).checked == 1


def test_a_new_pixel_limit_checks_every_file_again(small_tree, tmp_path):
    cache = tmp_path / "integrity.sqlite"
    check_images(small_tree, cache_path=cache, progress=False)
    strict = check_images(small_tree, cache_path=cache, max_pixels=100, progress=False)
    assert (strict.checked, strict.cached) == (4, 0)
    assert sum(reason.startswith("too large") for reason in strict.problems.values()) == 3
    assert check_images(small_tree, cache_path=cache, progress=False).checked == 0  # earlier verdicts kept


def test_without_a_cache_every_scan_decodes_and_nothing_is_written(small_tree, tmp_path, decoded):
    for _ in range(2):
        result = check_images(small_tree, cache_path=None, progress=False)
        assert (result.checked, result.cached, len(result.problems)) == (4, 0, 1)
    assert len(decoded) == 8
    assert [p.name for p in tmp_path.iterdir()] == ["images"]


def test_duplicate_paths_are_checked_once(small_tree, decoded):
    result = check_images(small_tree + small_tree[::-1], cache_path=None, progress=False)
    assert (result.checked, len(decoded), len(result.problems)) == (4, 4, 1)


def test_an_unusable_cache_file_does_not_stop_the_scan(small_tree, tmp_path, caplog):
    cache = tmp_path / "integrity.sqlite"
    cache.write_bytes(b"this is not an SQLite database" * 100)
    with caplog.at_level(logging.WARNING):
        result = check_images(small_tree, cache_path=cache, progress=False)
    assert (result.checked, len(result.problems)) == (4, 1)
    assert "Integrity cache" in caplog.text
    assert cache.read_bytes() == b"this is not an SQLite database" * 100


def test_progress_bar_is_shown_only_when_asked(small_tree, capsys):
    check_images(small_tree, cache_path=None, progress=False)
    assert capsys.readouterr() == ("", "")
    check_images(small_tree, cache_path=None, desc="Checking training images")
    err = capsys.readouterr().err
    assert "Checking training images" in err and "4/4" in err and "file" in err
