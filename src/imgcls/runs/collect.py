"""Find imgcls-train run folders and read what each one already holds; nothing here trains or imports Keras."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

# A folder holding one of these is where an imgcls app ran (train, evaluate, predict, export); nothing below it is.
RUN_MARKERS = ("metrics.json", "config.yaml", ".hydra")
# metrics.json keys that are read into their own fields, not the generic scalars
NESTED_KEYS = ("hparams", "epochs_per_phase")


@dataclass(frozen=True)
class Run:
    """What a training run folder says about its run; ``results`` are metrics.json's top-level scalars."""

    folder: Path
    finished: bool
    started: datetime
    hparams: dict[str, Any]
    results: dict[str, Any]
    epochs_per_phase: dict[str, int] = field(default_factory=dict)
    git_commit: str | None = None
    git_dirty: bool | None = None
    overrides: tuple[str, ...] = ()


def find_run_folders(roots: Iterable[Path]) -> list[Path]:
    """Every folder under ``roots`` (or a root itself) that an imgcls app ran in, sorted; hidden folders skipped."""
    found = set()
    for root in roots:
        for folder, subfolders, files in os.walk(root):
            if any(marker in files or marker in subfolders for marker in RUN_MARKERS):
                found.add(Path(folder))
                subfolders.clear()
            else:
                subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
    return sorted(found)


def collect_runs(roots: Iterable[Path]) -> list[Run]:
    """The training runs under ``roots``, finished or not; evaluate, predict and export folders are left out."""
    return [run for run in map(read_run, find_run_folders(roots)) if run is not None]


def read_run(folder: Path) -> Run | None:
    """The run in ``folder``, or None when it is not an imgcls-train run folder."""
    metrics = _json(folder / "metrics.json")
    config = _config(folder)
    if "hparams" not in metrics and not {"hparams", "train"} <= set(config):
        return None
    environment = _flat(_json(folder / "environment.json"))  # imgcls.environment: time, git.commit, git.dirty
    scalars = {key: value for key, value in metrics.items() if key not in NESTED_KEYS and _is_scalar(value)}
    return Run(
        folder=folder,
        finished=any(key.startswith(("val_", "test_")) for key in scalars),
        started=_started(folder, environment),
        hparams=dict(metrics.get("hparams") or _hparams(config)),
        results=scalars,
        epochs_per_phase=dict(metrics.get("epochs_per_phase") or {}),
        git_commit=environment.get("git.commit"),
        git_dirty=environment.get("git.dirty"),
        overrides=tuple(map(str, _yaml(folder / ".hydra" / "overrides.yaml") or ())),
    )


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _json(path: Path) -> dict[str, Any]:
    """A JSON object file's content; {} when it is missing, partly written or not an object."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def _config(folder: Path) -> dict[str, Any]:
    """The run's resolved config.yaml, else Hydra's composed (unresolved) .hydra/config.yaml, else {}."""
    for path in (folder / "config.yaml", folder / ".hydra" / "config.yaml"):
        content = _yaml(path)
        if isinstance(content, dict):
            return content
    return {}


def _hparams(config: dict[str, Any]) -> dict[str, Any]:
    """``config``'s hparams, resolved where they can be (a run that failed before writing config.yaml)."""
    raw = config.get("hparams")
    if not isinstance(raw, dict):
        return {}
    try:
        return OmegaConf.to_container(OmegaConf.create(config).hparams, resolve=True)
    except Exception:  # an interpolation that needs Hydra's runtime (or a missing resolver): the raw values
        return raw


def _flat(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _started(folder: Path, environment: dict[str, Any]) -> datetime:
    """environment.json's start time, else when Hydra wrote .hydra/config.yaml (the job's start), else the mtime."""
    stamp = environment.get("time")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).astimezone()
        except ValueError:
            pass
    hydra_config = folder / ".hydra" / "config.yaml"
    return datetime.fromtimestamp((hydra_config if hydra_config.exists() else folder).stat().st_mtime).astimezone()
