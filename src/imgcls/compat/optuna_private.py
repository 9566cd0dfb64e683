"""What the sweeper needs from hydra-optuna-sweeper and Optuna beyond their public APIs, checked against their versions.

- hydra-optuna-sweeper: its parser from Hydra's sweep grammar (``interval(...)``, ``choice(...)``,
  ``tag(log, ...)``) to Optuna distributions lives in the private ``_impl`` module; its config
  dataclass is the schema of ``hydra/sweeper``.
- Optuna: a job finds its running trial by number to report to it. Optuna can ``tell`` a trial by
  number, but has no public way to get the live ``Trial`` of a number.

:func:`check_versions` runs when the sweeper is created, before the first trial.
``tests/sweeps/test_private_apis.py`` checks these names and what they return.
"""

from __future__ import annotations

import optuna
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf

from imgcls.compat.versions import WrittenFor

# for each package whose private names are used here
WRITTEN_FOR = (
    WrittenFor("hydra-optuna-sweeper", "1.4.0rc3", "1.5", module="hydra_plugins.hydra_optuna_sweeper"),
    WrittenFor("optuna", "5.0", "6"),
)

__all__ = ["OptunaSweeperConf", "check_versions", "create_params_from_overrides", "trial_by_number"]


def check_versions() -> None:
    """Raise :class:`~imgcls.compat.versions.UntestedVersionError` (a ConfigError) if an installed version
    is outside what this module was written for."""
    for package in WRITTEN_FOR:
        package.check("imgcls's sweeper (hydra/sweeper=imgcls_optuna)")


def trial_by_number(study: optuna.Study, number: int) -> optuna.trial.Trial:
    """The live trial ``number`` of ``study``, to report intermediate values and ask the pruner."""
    frozen = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if frozen is None:
        raise KeyError(f"study {study.study_name} has no trial {number}")
    return optuna.trial.Trial(study, frozen._trial_id)
