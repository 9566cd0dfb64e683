"""The version check that every fence of :mod:`imgcls.compat` shares."""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from importlib.metadata import version

from packaging.specifiers import SpecifierSet

from imgcls.errors import ConfigError

INSTALL_TESTED = "pip install -c constraints.txt -e ."


class UntestedVersionError(ConfigError):
    """An installed package is outside the versions that a fence of imgcls was written and tested for."""


@functools.cache
def _within(found: str, tested: str) -> bool:
    # as pip reads pyproject.toml: "<3.16" excludes 3.16's pre-releases (3.16.0rc1, 3.16.0.dev1) too
    return SpecifierSet(tested).contains(found, prereleases=True)


@dataclass(frozen=True)
class WrittenFor:
    """The versions ``>=lowest,<first_untested`` of ``package`` that a fence was written and tested for.

    ``package`` is the name pip and ``pyproject.toml`` use; the version is read from ``module.__version__``
    (``module`` defaults to ``package``), or from the package's metadata if the module has none.
    """

    package: str
    lowest: str
    first_untested: str
    module: str | None = None

    @property
    def range(self) -> str:
        return f">={self.lowest},<{self.first_untested}"

    def found(self) -> str:
        """The installed version (imports the module)."""
        module = importlib.import_module(self.module or self.package)
        return str(getattr(module, "__version__", None) or version(self.package))

    def is_installed(self) -> bool:
        """Whether the installed version is one the fence was written for."""
        return _within(self.found(), self.range)

    def message(self, user: str) -> str:
        """Why ``user`` (what relies on the fence, e.g. "the multi-worker fix of Keras's trainer") refuses to run."""
        return (
            f"{user} uses private code of {self.package}, written and tested for {self.package}{self.range}, but "
            f"{self.package} {self.found()} is installed. Install the tested versions with: {INSTALL_TESTED}"
        )

    def check(self, user: str) -> None:
        """Raise :class:`UntestedVersionError` unless the installed version is one the fence was written for.

        Cheap enough to call on every use: the comparison is cached per version.
        """
        if not self.is_installed():
            raise UntestedVersionError(self.message(user))
