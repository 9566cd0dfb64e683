"""What a run folder may hold before a run writes into it, and what a resumed run must agree on.

A fresh run never appends to an earlier run's history or TensorBoard log; ``resume=true`` continues
only a folder whose checkpoints were made with the same settings and the same data (the fingerprint).
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from imgcls.errors import ConfigError

# What a run leaves in its folder. Hydra's own files (.hydra/, the log) and config.yaml, manifest.json or
# data_report.json (written before training) do not make a folder "used".
RUN_MARKERS = ("history.csv", "checkpoints", "model.keras", "metrics.json")

# Config keys that cannot change the weights or the data a run trains on: where outputs and caches go, how
# much it logs, the run's name, resuming itself, the sweep's trial, what it reports afterwards. Prefixes of dotted keys.
NOT_FINGERPRINTED = (
    "paths",
    "name",
    "resume",
    "trial",
    "hparams",
    "optimized_metric",
    "eval",
    "train.verbose",
    "train.tensorboard",
    "data.cache_dir",
    "data.integrity_cache",
    "data.quarantine_dir",
)
MANIFEST_PREFIX = "manifest.file_list_sha256."


def _excluded(key: str) -> bool:
    return any(key == prefix or key.startswith(prefix + ".") for prefix in NOT_FINGERPRINTED)


def _flatten(node: DictConfig, prefix: str, out: dict[str, Any]) -> None:
    for key in node:
        name = f"{prefix}{key}"
        if _excluded(name):
            continue
        value = node[key]  # resolves interpolations of this key only, never those of excluded ones
        if isinstance(value, DictConfig):
            _flatten(value, name + ".", out)
        elif isinstance(value, ListConfig):
            out[name] = OmegaConf.to_container(value, resolve=True)
        else:
            out[name] = value


def config_fingerprint(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as flat ``{dotted.key: value}``, less the keys in :data:`NOT_FINGERPRINTED`."""
    out: dict[str, Any] = {}
    _flatten(cfg, "", out)
    return json.loads(json.dumps(out, default=str))  # as it reads back from state.json


def run_fingerprint(cfg: DictConfig, manifest_path: Path) -> dict[str, Any]:
    """:func:`config_fingerprint` plus the manifest's file-list hash of each split."""
    manifest = json.loads(Path(manifest_path).read_text())
    hashes = {f"{MANIFEST_PREFIX}{split}": digest for split, digest in manifest["file_list_sha256"].items()}
    return {**config_fingerprint(cfg), **hashes}


def differences(old: dict[str, Any], new: dict[str, Any], *, only_config: bool = False) -> list[str]:
    """``key old -> new`` for every key whose value differs (``<unset>`` where one side lacks it)."""
    keys = sorted(set(old) | set(new))
    if only_config:
        keys = [key for key in keys if not key.startswith(MANIFEST_PREFIX)]
    missing = "<unset>"
    return [
        f"{key} {old.get(key, missing)} -> {new.get(key, missing)}"
        for key in keys
        if old.get(key, missing) != new.get(key, missing)
    ]


def refuse_different_run(folder: Path, changed: list[str]) -> None:
    """Raise the ConfigError that says a resumed run differs from the one that made ``folder``'s checkpoints."""
    raise ConfigError(
        f"resume=true refused: {folder} holds checkpoints of a run with other settings or data: "
        f"{'; '.join(changed)}. Resume with that run's settings ({folder / 'config.yaml'} before this attempt; "
        f".hydra/overrides.yaml lists its overrides), or start a fresh run without resume=true in a new "
        f"folder (hydra.run.dir=<new folder>)."
    )


def check_run_folder(folder: Path, cfg: DictConfig, state_path: Path) -> None:
    """Refuse, before anything is written, a run that would mix with what ``folder`` already holds.

    A fresh run needs a folder that holds no run (:data:`RUN_MARKERS`). ``resume=true`` needs an
    unfinished run's checkpoints (``state_path``) made with the same config; the data's file lists are
    compared once the data is scanned (:class:`~imgcls.training.checkpoints.PhaseCheckpoints`).
    """
    folder = Path(folder)
    fresh_folder = "start it in a fresh folder (hydra.run.dir=<new folder>)"
    if not cfg.resume:
        used = [name for name in RUN_MARKERS if (folder / name).exists()]
        if used:
            raise ConfigError(
                f"{folder} already holds a run ({', '.join(used)}); a new run would mix with it. Continue that "
                f"run with resume={folder}, or {fresh_folder}."
            )
        return
    if (folder / "model.keras").exists():
        raise ConfigError(
            f"resume=true refused: the run in {folder} has finished (model.keras is saved), there is nothing to "
            f"continue. To train again, {fresh_folder} without resume=true."
        )
    if not state_path.exists():
        raise ConfigError(
            f"resume=true refused: {folder} holds no checkpoints to continue (hydra.run.dir must be the folder of "
            f"an interrupted run). To train from the beginning, run without resume=true; {fresh_folder} if "
            f"this one holds other files."
        )
    saved = json.loads(state_path.read_text()).get("fingerprint")
    if saved is not None:
        changed = differences(saved, config_fingerprint(cfg), only_config=True)
        if changed:
            refuse_different_run(folder, changed)


def is_out_of_space(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the disk is full: OSError ENOSPC, or h5py's and
    TensorFlow's RuntimeError-like wrappers of it, which only say so in their message."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(error) or f"errno = {errno.ENOSPC}," in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False
