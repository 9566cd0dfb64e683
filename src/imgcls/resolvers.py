"""OmegaConf resolvers the configs use (registered when ``imgcls`` is imported)."""

from __future__ import annotations

import re
import secrets

from omegaconf import OmegaConf

# What a run's name keeps in its folder name; anything else becomes "-".
FOLDER_NAME_CHARACTERS = re.compile(r"[^\w.,=+-]+")
FOLDER_NAME_LENGTH = 60


def metric_direction(metric: str) -> str:
    """``minimize`` for losses, ``maximize`` for every other metric (accuracy, precision, recall, F1)."""
    return "minimize" if metric.endswith("loss") else "maximize"


def means_random_init(weights: object) -> bool:
    """Whether a ``backbone.weights`` value asks for random initialisation (null, or the text null/none/empty)."""
    return weights is None or str(weights).lower() in {"", "null", "none"}


def init_for_weights(weights: object) -> str:
    """``scratch`` for random initialisation (``backbone.weights=null``), ``pretrained`` for any weights."""
    return "scratch" if means_random_init(weights) else "pretrained"


def folder_suffix(name: object = None) -> str:
    """What follows the start time in a run folder's name: ``_<name>_<6 hex digits>``, or ``_<6 hex digits>``.

    The random part keeps folders of runs started in the same second apart; ``name`` (``name=`` on the
    command line) says what the run is, with characters a folder name should not hold replaced by ``-``.
    """
    text = "" if name is None else FOLDER_NAME_CHARACTERS.sub("-", str(name)).strip("-.")[:FOLDER_NAME_LENGTH]
    return f"_{text}_{secrets.token_hex(3)}" if text else f"_{secrets.token_hex(3)}"


def register() -> None:
    """Make ``${imgcls.direction:<metric>}``, ``${imgcls.init:<weights>}`` and ``${imgcls.folder_suffix:<name>}``
    available to configs. The suffix is drawn once per config, like Hydra's ``${now:}``, so every read of a run
    folder's path, and every job of a multirun, sees the same one."""
    OmegaConf.register_resolver("imgcls.direction", metric_direction, replace=True)
    OmegaConf.register_resolver("imgcls.init", init_for_weights, replace=True)
    OmegaConf.register_resolver("imgcls.folder_suffix", folder_suffix, replace=True, use_cache=True)
