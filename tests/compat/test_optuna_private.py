"""The sweeper's fence refuses versions of Optuna and hydra-optuna-sweeper it was not written for.

The names it uses, and what they return, are checked in tests/sweeps/test_private_apis.py."""

from __future__ import annotations

import hydra_plugins.hydra_optuna_sweeper
import optuna
import pytest

from imgcls.compat.optuna_private import check_versions
from imgcls.compat.versions import UntestedVersionError


@pytest.mark.parametrize(
    ("module", "package", "untested"),
    [(optuna, "optuna", "6.0.0"), (hydra_plugins.hydra_optuna_sweeper, "hydra-optuna-sweeper", "1.5.0")],
)
def test_the_sweeper_refuses_an_untested_version(monkeypatch, module, package, untested):
    monkeypatch.setattr(module, "__version__", untested)
    with pytest.raises(
        UntestedVersionError,
        match=rf"imgcls's sweeper .* {package} {untested} is installed\. "
        r"Install the tested versions with: pip install -c constraints.txt -e \.",
    ):
        check_versions()
