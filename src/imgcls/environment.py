"""``environment.json``: what a run ran on (versions, devices, command, git commit), to reproduce or compare it."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tensorflow as tf

from imgcls.atomic_files import write_atomically

PACKAGES = ("imgcls", "tensorflow", "keras", "hydra-core", "optuna")
GIT_TIMEOUT_S = 5
ENVIRONMENT_FILE = "environment.json"


def package_versions() -> dict[str, str | None]:
    """Python's version and each of :data:`PACKAGES`' installed version (None when it is not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def devices() -> list[dict[str, Any]]:
    """TensorFlow's physical devices; a GPU's entry adds its details (``device_name``, ``compute_capability``)."""
    found = []
    for device in tf.config.list_physical_devices():
        entry: dict[str, Any] = {"name": device.name, "type": device.device_type}
        if device.device_type == "GPU":
            entry.update(tf.config.experimental.get_device_details(device))
        found.append(entry)
    return found


def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit checked out where ``folder`` lies, and whether tracked files differ from it.

    None outside a git work tree, without a commit, or without git. Untracked files (run folders
    a repository does not ignore) do not count as changes.
    """

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=True
        ).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return None


def collect_environment() -> dict[str, Any]:
    """Time, command line, machine, versions, devices and git state of this process."""
    cwd = Path.cwd()
    return {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": list(sys.argv),
        "cwd": str(cwd),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "versions": package_versions(),
        "devices": devices(),
        "git": git_state(cwd),
    }


def write_environment(run_dir: Path) -> Path:
    """Write :func:`collect_environment` to ``run_dir/environment.json``; return its path."""
    path = Path(run_dir) / ENVIRONMENT_FILE
    text = json.dumps(collect_environment(), indent=2, default=str) + "\n"
    write_atomically(path, lambda partial: partial.write_text(text))
    return path
