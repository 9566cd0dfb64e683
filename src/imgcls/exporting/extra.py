"""Imports of the packages of the optional ``imgcls[export]`` extra, failing with the command that installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from imgcls.errors import ConfigError

INSTALL = "pip install 'imgcls[export]'"


def import_extra(module: str, *, needed_for: str) -> ModuleType:
    """``import module``, or a :class:`ConfigError` that says to install the ``export`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ConfigError(
            f"{needed_for} needs the Python package {module!r}, which is not installed ({error}). "
            f"Install the export extra: {INSTALL}"
        ) from error
