"""Hydra's Optuna sweeper with pruning, a persistent study that knows its question, and result files kept.

hydra-optuna-sweeper asks Optuna for trials, launches them as Hydra jobs and tells Optuna their
values. This sweeper keeps its configuration and search-space grammar and runs its own loop, so that:

- the study lives in a storage file in the sweep folder by default, and running the same command
  again continues it; several processes or machines can share one storage;
- every start and every process seeds its sampler on its own, and a proposal that repeats a trial
  with a result (or one running) is not run again;
- the study stores its definition (metric, search space, fixed overrides, data) and a start that
  asks another question is refused;
- each job reports its per-epoch validation metric to its trial, and the pruner stops unpromising
  trials (recorded as PRUNED, not failed);
- ``total_trials`` bounds the whole study, ``n_trials`` this start;
- the result files are written however the sweep ends: finished, too many failures, or a signal.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.engine
import sqlalchemy.exc
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imgcls.compat.optuna_private import OptunaSweeperConf, check_versions, create_params_from_overrides
from imgcls.config_schema import check_config
from imgcls.errors import ConfigError, ImgclsError
from imgcls.sweeps.interrupts import SweepInterrupted, raise_if_interrupted, signals_raise_interrupted
from imgcls.sweeps.results import write_results
from imgcls.sweeps.study_definition import check_study_definition, data_fingerprint, study_definition
from imgcls.sweeps.trials import (
    State,
    close_as_duplicate,
    counts_toward_total,
    derive_sampler_seed,
    earlier_trial_with_same_params,
    fail_interrupted_trials,
    mark_as_this_process,
    record_job_results,
    trial_outcome,
)

log = logging.getLogger(__name__)

SAMPLER_TARGETS = ("hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*")
PRUNER_TARGETS = ("optuna.pruners.*",)
STORAGE_ATTEMPTS = 5
# Proposals in a row that repeat earlier trials before the search space counts as exhausted.
MAX_REPEATS = 20


class SweepFailedError(ImgclsError):
    """More trials failed than ``max_failure_rate`` allows."""


@dataclass
class PruningOptunaSweeperConf(OptunaSweeperConf):
    """The official sweeper's settings plus pruning, a total budget, per-start seeds and the study check."""

    _target_: str = "imgcls.sweeps.sweeper.PruningOptunaSweeper"
    # an Optuna pruner's _target_ config, or null for none
    pruner: Any = None
    # stop once the study holds this many finished or running trials (null: no total, only n_trials)
    total_trials: Any = None
    # derive the sampler's seed from sampler.seed, host, process and the study's trial count
    seed_per_start: bool = True
    # continue a study whose stored definition differs (not its direction)
    allow_changed_study: bool = False


ConfigStore.instance().store(
    group="hydra/sweeper", name="imgcls_optuna", node=PruningOptunaSweeperConf, provider="imgcls"
)


def failures_allowed(max_failure_rate: float, n_trials: int) -> int:
    """Failed trials a start tolerates: ``max_failure_rate`` of ``n_trials``, at least one unless the rate is 0."""
    if max_failure_rate == 0:
        return 0
    return max(1, math.floor(max_failure_rate * n_trials))


def _direction(direction: Any) -> str:
    directions = (
        list(direction) if isinstance(direction, (list, tuple)) or OmegaConf.is_list(direction) else [direction]
    )
    if len(directions) != 1:
        raise ConfigError(f"imgcls's sweeper optimizes one metric; hydra.sweeper.direction is {directions}.")
    (single,) = directions
    return single.name if isinstance(single, Enum) else str(single)


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


def shown_storage(storage: str) -> str:
    """The storage URL as logs may show it: without its password."""
    return sqlalchemy.engine.make_url(storage).render_as_string(hide_password=True)


def dashboard_command(storage: str) -> str:
    """The command that shows the study in optuna-dashboard (the password, if any, left for the user to fill in)."""
    return shlex.join(["optuna-dashboard", shown_storage(storage)])


class PruningOptunaSweeper(Sweeper):
    """Hydra sweeper (``hydra/sweeper=imgcls_optuna``): the Optuna sweeper with pruning, budgets and result files."""

    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: Any,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        custom_search_space: str | None,
        params: DictConfig | None,
        pruner: Any = None,
        total_trials: int | None = None,
        seed_per_start: bool = True,
        allow_changed_study: bool = False,
    ) -> None:
        check_versions()
        if not 0 <= max_failure_rate <= 1:
            raise ConfigError(f"hydra.sweeper.max_failure_rate must be in [0, 1], got {max_failure_rate}.")
        self.sampler_config = sampler
        self.direction = _direction(direction)
        self.storage = storage
        self.study_name = study_name
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.max_failure_rate = max_failure_rate
        self.custom_search_space = (
            instantiate({"_target_": custom_search_space, "_partial_": True}) if custom_search_space else None
        )
        self.params = params or {}
        self.pruner = (
            instantiate(pruner, _execution_whitelist_=PRUNER_TARGETS) if pruner else optuna.pruners.NopPruner()
        )
        self.total_trials = total_trials
        self.seed_per_start = seed_per_start
        self.allow_changed_study = allow_changed_study

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> None:
        """Run the sweep; a stop the user should know about ends the process with one line and its exit status."""
        try:
            self._sweep(arguments)
        except ImgclsError as error:
            log.error("%s", error)
            sys.exit(1 if isinstance(error, SweepFailedError) else 2)
        except SweepInterrupted as interruption:
            log.error(
                "Sweep stopped by %s; the results of the finished trials are in %s",
                interruption.signal_name,
                self.config.hydra.sweep.dir,
            )
            sys.exit(interruption.exit_code)

    def _sweep(self, arguments: list[str]) -> None:
        check_config(self.config)  # a typo in a fixed setting fails here, before the data is listed or a trial runs
        distributions, fixed_params, fixed_overrides = create_params_from_overrides(
            [f"{name}={value}" for name, value in self.params.items()] + list(arguments)
        )
        for name in fixed_params:
            distributions.pop(name, None)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        storage = self.storage or f"sqlite:///{(sweep_dir / 'optuna.db').resolve()}"
        study = _open_study(
            study_name=self.study_name,
            storage=storage,
            pruner=self.pruner,
            direction=self.direction,
            load_if_exists=True,
        )
        fixed = [*(f"{name}={value}" for name, value in fixed_params.items()), *fixed_overrides]
        definition = study_definition(
            metric=self.config.optimized_metric,
            direction=self.direction,
            distributions=distributions,
            fixed_overrides=fixed,
            data=data_fingerprint(self.config.data),
        )
        check_study_definition(study, definition, storage=shown_storage(storage), allow_change=self.allow_changed_study)
        fail_interrupted_trials(study)
        seed = self._seed_sampler(study)
        log.info(
            "Study %s in %s: %d earlier trial(s); up to %d more%s; %s (seed %s), %s, %s %s",
            study.study_name,
            shown_storage(storage),
            len(study.trials),
            self.n_trials,
            f" while the study holds fewer than total_trials={self.total_trials}" if self.total_trials else "",
            type(study.sampler).__name__,
            seed,
            type(self.pruner).__name__,
            self.direction,
            self.config.optimized_metric,
        )
        log.info("Watch it live: %s", dashboard_command(storage))
        loop = _TrialLoop(self, study, distributions, fixed_params, fixed_overrides, storage, sweep_dir, seed)
        try:
            with signals_raise_interrupted():
                loop.run()
        except SweepInterrupted:
            loop.fail_unfinished("interrupted")
            raise
        finally:
            base = [o for o in fixed if not o.startswith("hparams_search=")]
            write_results(study, sweep_dir, base)
            log.info("Look at the study: %s", dashboard_command(storage))

    def _seed_sampler(self, study: optuna.Study) -> int | None:
        """Give ``study`` its sampler, seeded for this start and process (or exactly ``sampler.seed``)."""
        if "seed" not in self.sampler_config:
            study.sampler = instantiate(self.sampler_config, _execution_whitelist_=SAMPLER_TARGETS)
            return None
        seed = self.sampler_config.seed
        if self.seed_per_start:
            seed = derive_sampler_seed(seed, socket.gethostname(), os.getpid(), len(study.trials))
        study.sampler = instantiate(self.sampler_config, seed=seed, _execution_whitelist_=SAMPLER_TARGETS)
        return seed


class _TrialLoop:
    """Ask, launch and tell trials for one start of a sweep."""

    def __init__(
        self,
        sweeper: PruningOptunaSweeper,
        study: optuna.Study,
        distributions: dict,
        fixed_params: dict,
        fixed_overrides: list[str],
        storage: str,
        sweep_dir: Path,
        seed: int | None,
    ) -> None:
        self.sweeper, self.study, self.storage, self.sweep_dir, self.seed = sweeper, study, storage, sweep_dir, seed
        self.distributions, self.fixed_params, self.fixed_overrides = distributions, fixed_params, fixed_overrides
        self.unfinished: list[optuna.trial.Trial] = []

    def run(self) -> None:
        sweeper, failures, started = self.sweeper, 0, 0
        allowed = failures_allowed(sweeper.max_failure_rate, sweeper.n_trials)
        while started < sweeper.n_trials:
            raise_if_interrupted()
            batch = min(sweeper.n_jobs, sweeper.n_trials - started, self._room_in_total())
            if batch <= 0:
                log.info(
                    "The study holds total_trials=%d finished or running trials: nothing more to run",
                    sweeper.total_trials,
                )
                return
            trials = [trial for trial in (self._ask_new() for _ in range(batch)) if trial is not None]
            if not trials:
                log.info(
                    "The last %d proposals all repeated earlier trials: the search space looks exhausted", MAX_REPEATS
                )
                return
            self.unfinished = list(trials)
            jobs = [self._job_overrides(trial) for trial in trials]
            returns = sweeper.launcher.launch(jobs, initial_job_idx=trials[0].number)
            for trial, ret in zip(trials, returns):
                failures += self._tell(trial, ret) == State.FAIL
                self.unfinished.remove(trial)
            raise_if_interrupted()
            started += len(trials)
            if failures > allowed:
                raise SweepFailedError(
                    f"Sweep stopped: {failures} trial(s) failed, more than max_failure_rate={sweeper.max_failure_rate} "
                    f"of n_trials={sweeper.n_trials} allows ({allowed}); results of the finished trials and each "
                    f"trial's log are in {self.sweep_dir}."
                )

    def fail_unfinished(self, why: str) -> None:
        """Mark the trials this start launched and did not finish as FAIL, saying ``why``."""
        for trial in self.unfinished:
            trial.set_user_attr("fail_reason", why)
            self.study.tell(trial, state=State.FAIL)
        self.unfinished = []

    def _room_in_total(self) -> int:
        if self.sweeper.total_trials is None:
            return self.sweeper.n_jobs
        taken = sum(counts_toward_total(t) for t in self.study.get_trials(deepcopy=False))
        return int(self.sweeper.total_trials) - taken

    def _ask_new(self) -> optuna.trial.Trial | None:
        """A proposed trial whose parameters no trial with a result, or running, has; None after MAX_REPEATS repeats."""
        for _ in range(MAX_REPEATS):
            trial = self.study.ask(self.distributions)
            if self.sweeper.custom_search_space:
                self.sweeper.custom_search_space(self.sweeper.config, trial)
            earlier = earlier_trial_with_same_params(self.study, trial)
            if earlier is None:
                mark_as_this_process(trial, self.seed)
                trial.set_user_attr("run_dir", str(self.sweep_dir / str(trial.number)))
                return trial
            close_as_duplicate(self.study, trial, earlier)
        return None

    def _job_overrides(self, trial: optuna.trial.Trial) -> tuple[str, ...]:
        """The job's overrides: its parameters, the sweep's fixed ones, its folder and how to find its trial."""
        params = {**trial.params, **self.fixed_params}
        return (
            *(f"{name}={value}" for name, value in params.items()),
            *self.fixed_overrides,
            f"hydra.sweep.subdir={trial.number}",
            f"trial.number={trial.number}",
            f"trial.study_name='{self.study.study_name}'",
            f"trial.storage='{self.storage}'",
        )

    def _tell(self, trial: optuna.trial.Trial, ret: Any) -> State:
        state, value, why = trial_outcome(ret)
        record_job_results(trial, self.sweep_dir / str(trial.number))
        if why:
            trial.set_user_attr("fail_reason" if state == State.FAIL else "pruned_because", why)
        self.study.tell(trial, state=state, values=None if value is None else [value])
        if state == State.FAIL:
            log.warning("Trial %d failed: %s", trial.number, why)
        elif state == State.PRUNED:
            log.info("Trial %d pruned: %s", trial.number, why)
        return state
