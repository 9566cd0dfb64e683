"""A built wheel carries every config, and the installed package finds them without the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_the_configs_and_runs_from_them(tmp_path):
    # Build from a copy: building writes build/ and *.egg-info next to the sources.
    source = tmp_path / "source"
    skip = shutil.ignore_patterns("*.egg-info", "__pycache__")
    for folder in ("src", "conf"):
        shutil.copytree(REPO / folder, source / folder, ignore=skip)
    for file in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / file, source / file)
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("imgcls-*.whl")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("imgcls/conf/")}
    expected = {f"imgcls/conf/{p.relative_to(REPO / 'conf')}" for p in (REPO / "conf").rglob("*.yaml")}
    assert expected <= shipped

    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import imgcls, imgcls.conf; print(imgcls.__file__)"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr[-2000:]
    config = subprocess.run(
        [sys.executable, "-m", "imgcls.train", "--cfg", "job", "backbone=efficientnetb0", "experiment=demo"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert config.returncode == 0, config.stderr[-2000:]
    assert "name: efficientnetb0" in config.stdout and "bn_momentum: 0.9" in config.stdout
