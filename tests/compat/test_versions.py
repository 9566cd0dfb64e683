"""Every fence of imgcls.compat accepts the installed versions, refuses others with a message that says
how to fix it, and pyproject.toml allows no version a fence was not written for."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from imgcls.compat import keras_private, keras_trainer, optuna_private, tf2onnx_transpose
from imgcls.compat.versions import UntestedVersionError, WrittenFor
from imgcls.errors import ConfigError

FENCES = [keras_trainer.KERAS, keras_private.KERAS, *optuna_private.WRITTEN_FOR, tf2onnx_transpose.TF2ONNX]
PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


@pytest.mark.parametrize("fence", FENCES, ids=lambda fence: fence.package)
def test_the_installed_versions_are_the_ones_each_fence_was_written_for(fence):
    assert fence.is_installed(), fence.message("this test")


def test_an_untested_version_stops_with_the_package_the_version_the_range_and_the_fix(monkeypatch):
    import keras

    monkeypatch.setattr(keras, "__version__", "3.16.0")
    with pytest.raises(UntestedVersionError) as raised:
        WrittenFor("keras", "3.15", "3.16").check("the thing that needs it")
    assert isinstance(raised.value, ConfigError)  # run_job reports it like any setting a user can fix
    assert str(raised.value) == (
        "the thing that needs it uses private code of keras, written and tested for keras>=3.15,<3.16, but keras "
        "3.16.0 is installed. Install the tested versions with: pip install -c constraints.txt -e ."
    )


@pytest.mark.parametrize(
    ("found", "allowed"),
    [
        ("3.15.0", True),
        ("3.15.9", True),
        ("3.14.2", False),
        ("3.16.0rc1", False),
        ("3.16.0.dev20260101", False),
        ("4.0.0", False),
    ],
)
def test_the_range_is_read_as_pip_reads_it(monkeypatch, found, allowed):
    import keras

    monkeypatch.setattr(keras, "__version__", found)
    assert WrittenFor("keras", "3.15", "3.16").is_installed() is allowed


def _bounds(requirement: Requirement) -> tuple[Version | None, Version | None]:
    """The lowest version ``requirement`` allows and the first it does not, from its >=, <, == clauses."""
    lowest = first_excluded = None
    for clause in requirement.specifier:
        version = Version(clause.version.removesuffix(".*"))
        if clause.operator in (">=", "==") and (lowest is None or version > lowest):
            lowest = version
        if clause.operator == "<" and (first_excluded is None or version < first_excluded):
            first_excluded = version
        if clause.operator == "==" and not clause.version.endswith(".*"):
            first_excluded = min(first_excluded or version, Version(f"{version}post0"))  # just above it
    return lowest, first_excluded


def test_pyproject_allows_only_versions_the_fences_were_written_for():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    requirements = {}
    for text in [*project["dependencies"], *project["optional-dependencies"]["export"]]:
        requirement = Requirement(text)
        requirements[requirement.name] = requirement
    for fence in FENCES:
        lowest, first_excluded = _bounds(requirements[fence.package])
        assert lowest is not None and lowest >= Version(fence.lowest), (fence.package, str(requirements[fence.package]))
        assert first_excluded is not None and first_excluded <= Version(fence.first_untested), (
            fence.package,
            str(requirements[fence.package]),
            fence.range,
        )
