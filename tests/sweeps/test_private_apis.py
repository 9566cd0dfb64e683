"""The names imgcls takes from hydra-optuna-sweeper's and Optuna's private code still exist and do what we rely on."""

from __future__ import annotations

import dataclasses

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution

from imgcls.compat.optuna_private import (
    OptunaSweeperConf,
    check_versions,
    create_params_from_overrides,
    trial_by_number,
)


def test_installed_versions_are_the_ones_the_module_was_written_for():
    check_versions()


def test_the_sweep_grammar_parses_into_optuna_distributions():
    space, fixed, deletions = create_params_from_overrides(
        [
            "model.dropout=interval(0.1, 0.6)",
            "lr=tag(log, interval(1e-4, 1e-2))",
            "unfreeze=choice(0, 10)",
            "experiment=demo",
            "~data.cache_dir",
        ]
    )
    assert space["model.dropout"] == FloatDistribution(0.1, 0.6)
    assert space["lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert space["unfreeze"] == CategoricalDistribution([0, 10])
    assert fixed == {"experiment": "demo"} and deletions == ["~data.cache_dir"]


def test_the_sweeper_schema_has_the_settings_the_sweeper_takes():
    fields = {field.name for field in dataclasses.fields(OptunaSweeperConf)}
    assert {
        "sampler",
        "direction",
        "storage",
        "study_name",
        "n_trials",
        "n_jobs",
        "max_failure_rate",
        "custom_search_space",
        "params",
    } <= fields


def test_a_trial_found_by_number_reports_into_the_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="s")
    study.ask(), study.ask()
    found = trial_by_number(optuna.load_study(study_name="s", storage=storage), 1)
    found.report(0.5, step=0)
    assert {t.number: t.intermediate_values for t in study.get_trials()} == {0: {}, 1: {0: 0.5}}
