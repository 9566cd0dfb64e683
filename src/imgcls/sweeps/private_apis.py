"""What the sweeper needs from hydra-optuna-sweeper and Optuna beyond their public APIs, checked against their versions.

- hydra-optuna-sweeper: its parser from Hydra's sweep grammar (``interval(...)``, ``choice(...)``,
  ``tag(log, ...)``) to Optuna distributions lives in the private ``_impl`` module; its config
  dataclass is the schema of ``hydra/sweeper``.
- Optuna: a job finds its running trial by number to report to it. Optuna can ``tell`` a trial by
  number, but has no public way to get the live ``Trial`` of a number.

``tests/sweeps/test_private_apis.py`` checks these names and what they return.
"""

from __future__ import annotations

from importlib.metadata import version

import optuna
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from packaging.version import Version

from imgcls.errors import ConfigError

# [lowest tested, first untested) for each distribution whose private names are used here
WRITTEN_FOR = {
    "hydra-optuna-sweeper": (Version("1.4.0rc3"), Version("1.5")),
    "optuna": (Version("5.0"), Version("6")),
}

__all__ = ["OptunaSweeperConf", "check_versions", "create_params_from_overrides", "trial_by_number"]


def check_versions() -> None:
    """Raise :class:`ConfigError` if an installed version is outside what this module was written for."""
    for name, (lowest, first_untested) in WRITTEN_FOR.items():
        found = Version(version(name))
        if not lowest <= found < first_untested:
            raise ConfigError(
                f"imgcls's sweeper was written for {name} >={lowest},<{first_untested}, found {found}: "
                "install the tested versions with pip install -c constraints.txt -e ."
            )


def trial_by_number(study: optuna.Study, number: int) -> optuna.trial.Trial:
    """The live trial ``number`` of ``study``, to report intermediate values and ask the pruner."""
    frozen = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if frozen is None:
        raise KeyError(f"study {study.study_name} has no trial {number}")
    return optuna.trial.Trial(study, frozen._trial_id)
