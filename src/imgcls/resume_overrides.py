"""``resume=<run folder>``: continue a run from its folder alone, without retyping its overrides.

Hydra fixes the run folder while it composes the config, so the command line is rewritten before
Hydra reads it: ``resume=<folder>`` becomes the overrides saved in ``<folder>/.hydra/overrides.yaml``,
then ``resume=true hydra.run.dir=<folder>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from imgcls.errors import ConfigError

RESUME = "resume"
# Values of resume= that are settings, not folders
SETTINGS = {"true", "false", "null", "none", ""}
# Folder names Hydra's override grammar takes unquoted
PLAIN_VALUE = re.compile(r"[\w./~:-]+")


def override_key(override: str) -> str:
    """The key an override sets: ``model.dropout`` of ``+model.dropout=0.2``, ``~model.l2`` or ``model.dropout=0.2``."""
    return override.split("=", 1)[0].lstrip("+~")


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _quoted(value: str) -> str:
    if PLAIN_VALUE.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def resume_folder(arguments: Sequence[str]) -> Path | None:
    """The run folder a ``resume=<folder>`` among ``arguments`` names, or None (no resume=, or true/false)."""
    folders = [
        _unquoted(argument.split("=", 1)[1])
        for argument in arguments
        if not argument.startswith("-") and override_key(argument) == RESUME and "=" in argument
    ]
    if not folders or folders[-1].lower() in SETTINGS:
        return None
    return Path(folders[-1]).expanduser()


def saved_overrides(folder: Path) -> list[str]:
    """The overrides the run in ``folder`` was started with (Hydra's ``.hydra/overrides.yaml``)."""
    if not folder.is_dir():
        raise ConfigError(f"resume={folder}: no such run folder. Give the folder of the run to continue.")
    saved = folder / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise ConfigError(
            f"resume={folder}: the folder has no .hydra/overrides.yaml, so it is not the folder of an imgcls-train "
            f"run. Give a run folder (outputs/<date>/<time>...), or resume with the run's overrides typed again: "
            f"resume=true hydra.run.dir={folder} <its overrides>."
        )
    overrides = yaml.safe_load(saved.read_text(encoding="utf-8")) or []
    if not isinstance(overrides, list):
        raise ConfigError(f"resume={folder}: {saved} is not a list of overrides.")
    return [str(override) for override in overrides]


def expand_resume(arguments: Sequence[str]) -> list[str]:
    """``arguments`` (a command line after the program name, or a list of overrides) with ``resume=<folder>``
    replaced by that run's saved overrides plus ``resume=true hydra.run.dir=<folder>``.

    Other overrides given with it win over the saved ones of the same key; flags such as ``-m`` stay.
    Without ``resume=<folder>`` the arguments come back unchanged.
    """
    folder = resume_folder(arguments)
    if folder is None:
        return list(arguments)
    given = [argument for argument in arguments if argument.startswith("-") or override_key(argument) != RESUME]
    if any(override_key(argument) == "hydra.run.dir" for argument in given):
        raise ConfigError(
            f"resume={folder} sets the run folder itself; leave out hydra.run.dir (or use resume=true "
            "hydra.run.dir=<folder> with the run's overrides)."
        )
    given_keys = {override_key(argument) for argument in given if not argument.startswith("-")}
    kept = [
        override
        for override in saved_overrides(folder)
        if override_key(override) not in given_keys and override_key(override) != RESUME
    ]
    return [*kept, *given, f"{RESUME}=true", f"hydra.run.dir={_quoted(str(folder))}"]
