"""Hydra's Optuna sweeper with pruning, a persistent study, and the sweep's result files.

The official plugin (hydra-optuna-sweeper) asks Optuna for trials, launches them as Hydra jobs and
tells Optuna their values. This sweeper reuses its search-space parsing and trial configuration
(``OptunaSweeperImpl``) and replaces its loop so that:

- the study lives in a storage file in the sweep folder by default, and running the same command
  again continues it (several processes or machines can share one storage);
- each job reports its per-epoch validation metric to its own trial through that storage, and the
  study's pruner stops unpromising trials, which are recorded as PRUNED, not failed;
- failures are counted over the whole sweep (``max_failure_rate`` of ``n_trials``), not per batch;
- job folders are named by trial number, so processes sharing a study never collide;
- optimization_results.yaml, sweep_summary.csv and plots are written at the end.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from omegaconf import DictConfig

from imgcls.errors import ImgclsError
from imgcls.sweeps.results import write_results

log = logging.getLogger(__name__)

State = optuna.trial.TrialState
SAMPLER_TARGETS = ("hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*")
PRUNER_TARGETS = ("optuna.pruners.*",)
STORAGE_ATTEMPTS = 5


class SweepFailedError(ImgclsError):
    """More trials failed than ``max_failure_rate`` allows."""


@dataclass
class PruningOptunaSweeperConf(OptunaSweeperConf):
    """The official sweeper's settings plus ``pruner`` (an Optuna pruner's ``_target_`` config, or null)."""

    _target_: str = "imgcls.sweeps.sweeper.PruningOptunaSweeper"
    pruner: Any = None


ConfigStore.instance().store(group="hydra/sweeper", name="imgcls_optuna", node=PruningOptunaSweeperConf,
                             provider="imgcls")


def trial_outcome(ret: JobReturn) -> tuple[State, float | None, str]:
    """How a finished job ends its trial: COMPLETE with a finite value, PRUNED, or FAIL (with why)."""
    try:
        value = float(ret.return_value)
    except optuna.TrialPruned as pruned:
        return State.PRUNED, None, str(pruned)
    except Exception as error:  # whatever the job raised, the trial failed; the sweep goes on
        return State.FAIL, None, f"{type(error).__name__}: {error}"
    if not math.isfinite(value):
        return State.FAIL, None, f"the objective is {value}"
    return State.COMPLETE, value, ""


def fail_interrupted_trials(study: optuna.Study) -> int:
    """Mark RUNNING trials whose sweeping process on this machine is gone as FAIL (an interrupted sweep)."""
    host, failed = socket.gethostname(), 0
    for trial in study.get_trials(deepcopy=False, states=(State.RUNNING,)):
        pid = trial.system_attrs.get("imgcls_pid")
        if trial.system_attrs.get("imgcls_host") != host or pid is None or _alive(int(pid)):
            continue
        study._storage.set_trial_state_values(trial._trial_id, state=State.FAIL)
        failed += 1
    if failed:
        log.warning("Marked %d trial(s) of an interrupted sweep as failed", failed)
    return failed


def _open_study(**kwargs: Any) -> optuna.Study:
    """``optuna.create_study``, retried: processes starting together on a new storage race to create its tables."""
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            return optuna.create_study(**kwargs)
        except sqlalchemy.exc.SQLAlchemyError:
            if attempt == STORAGE_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Impl(OptunaSweeperImpl):
    def __init__(self, *args: Any, pruner: optuna.pruners.BasePruner, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pruner = pruner

    def _storage_url(self, sweep_dir: Path) -> str:
        return self.storage or f"sqlite:///{(sweep_dir / 'optuna.db').resolve()}"

    def sweep(self, arguments: list[str]) -> None:
        self._process_searchspace_config()
        params_conf = [*self._parse_sweeper_params_config(), *arguments]
        distributions, fixed_params, fixed_overrides = create_params_from_overrides(params_conf)
        for name in fixed_params:
            distributions.pop(name, None)

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        storage = self._storage_url(sweep_dir)
        study = _open_study(
            study_name=self.study_name, storage=storage, sampler=self.sampler, pruner=self.pruner,
            directions=self._get_directions(), load_if_exists=True,
        )
        fail_interrupted_trials(study)
        log.info(
            "Study %s in %s: %d earlier trial(s); %d more, %s, %s, directions %s",
            study.study_name, storage, len(study.trials), self.n_trials, type(self.sampler).__name__,
            type(self.pruner).__name__, self._get_directions(),
        )
        failures_allowed = math.floor(self.max_failure_rate * self.n_trials)
        failures, to_go = 0, self.n_trials
        while to_go > 0:
            trials = [study.ask() for _ in range(min(to_go, self.n_jobs))]
            overrides = self._configure_trials(trials, distributions, fixed_params, fixed_overrides)
            overrides = [
                (*job, *self._trial_overrides(trial, study.study_name, storage, sweep_dir))
                for job, trial in zip(overrides, trials)
            ]
            returns = self.launcher.launch(overrides, initial_job_idx=trials[0].number)
            for trial, ret in zip(trials, returns):
                state, value, why = trial_outcome(ret)
                study.tell(trial, state=state, values=None if value is None else [value])
                if state == State.FAIL:
                    failures += 1
                    log.warning("Trial %d failed: %s", trial.number, why)
                elif state == State.PRUNED:
                    log.info("Trial %d pruned: %s", trial.number, why)
            if failures > failures_allowed:
                raise SweepFailedError(
                    f"{failures} trial(s) failed, more than max_failure_rate={self.max_failure_rate} of "
                    f"n_trials={self.n_trials} allows; see the job logs under {sweep_dir}."
                )
            to_go -= len(trials)

        base = [o for o in [*fixed_overrides, *(f"{k}={v}" for k, v in fixed_params.items())]
                if not o.startswith("hparams_search=")]
        write_results(study, sweep_dir, base)

    @staticmethod
    def _trial_overrides(trial: optuna.trial.Trial, study_name: str, storage: str, sweep_dir: Path) -> tuple[str, ...]:
        """Hydra overrides that put the job in the folder of its trial number and tell it its trial."""
        trial.set_user_attr("run_dir", str(sweep_dir / str(trial.number)))
        trial.storage.set_trial_system_attr(trial._trial_id, "imgcls_host", socket.gethostname())
        trial.storage.set_trial_system_attr(trial._trial_id, "imgcls_pid", os.getpid())
        return (
            f"hydra.sweep.subdir={trial.number}",
            f"trial.number={trial.number}",
            f"trial.study_name='{study_name}'",
            f"trial.storage='{storage}'",
        )


class PruningOptunaSweeper(Sweeper):
    """Hydra sweeper (``hydra/sweeper=imgcls_optuna``): the Optuna sweeper with pruning and result files."""

    def __init__(self, sampler: Any, direction: Any, storage: Any, study_name: str | None, n_trials: int,
                 n_jobs: int, max_failure_rate: float, custom_search_space: str | None, params: DictConfig | None,
                 pruner: Any = None) -> None:
        self.sweeper = _Impl(
            instantiate(sampler, _execution_whitelist_=SAMPLER_TARGETS), direction, storage, study_name, n_trials,
            n_jobs, max_failure_rate, custom_search_space, params,
            pruner=instantiate(pruner, _execution_whitelist_=PRUNER_TARGETS) if pruner else optuna.pruners.NopPruner(),
        )

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweeper.sweep(arguments)
