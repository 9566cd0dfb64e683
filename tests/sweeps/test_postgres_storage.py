"""Sweeps on a real PostgreSQL server: the storage several machines share (docs/sweeps.md)."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
import yaml

from helpers import tiny_run_overrides

State = optuna.trial.TrialState


def test_the_server_keeps_a_study(postgres_url):
    study = optuna.create_study(study_name="round_trip", storage=postgres_url, direction="maximize")
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.report(0.5, step=0)
    study.tell(trial, 0.75)

    (loaded,) = optuna.load_study(study_name="round_trip", storage=postgres_url).trials
    assert (loaded.state, loaded.value, loaded.intermediate_values) == (State.COMPLETE, 0.75, {0: 0.5})
    assert loaded.params == trial.params


@pytest.mark.slow
def test_two_workers_with_one_command_share_a_study_and_prune(image_dataset, tmp_path, postgres_url):
    # One command for every worker, as on several machines; one trial each keeps the test short. This
    # pruner stops every trial after its first epoch: each job reports to its trial in PostgreSQL and is stopped.
    command = [
        sys.executable,
        "-m",
        "imgcls.train",
        "-m",
        "hparams_search=optuna",
        *tiny_run_overrides(image_dataset, "train.phases.phase1.epochs=2", "train.phases.phase2.epochs=0"),
        "augmentation=none",
        "mixup=none",
        f"paths.log_dir={tmp_path}",
        "hydra.sweeper.study_name=t",
        f"hydra.sweeper.storage={postgres_url}",
        "hydra.sweeper.n_trials=1",
        "hydra.sweeper.max_failure_rate=0",
        "hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner",
        "~hydra.sweeper.pruner.n_startup_trials",
        "~hydra.sweeper.pruner.n_warmup_steps",
        "+hydra.sweeper.pruner.lower=1.01",
    ]
    logs = [tmp_path / f"worker{index}.log" for index in (1, 2)]
    workers = [
        subprocess.Popen(command, cwd=tmp_path, stdout=open(log, "w"), stderr=subprocess.STDOUT, text=True)
        for log in logs
    ]  # files, not pipes: a full pipe would block a worker
    try:
        for worker in workers:
            worker.wait(timeout=600)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [w.returncode for w in workers] == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)
    assert not (tmp_path / "multirun" / "optuna" / "t" / "optuna.db").exists(), "the study is not in SQLite"

    trials = optuna.load_study(study_name="t", storage=postgres_url).trials
    # distinct: every trial has its own number and its own parameters
    assert sorted(t.number for t in trials) == [0, 1]
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 2, "the workers proposed the same parameters"
    # each process seeded its sampler on its own, and recorded the seed
    assert len({t.user_attrs["sampler_seed"] for t in trials}) == 2
    # recorded: both workers' trials, each finished, each job in the folder of its trial number
    assert sorted(t.user_attrs["pid"] for t in trials) == sorted(w.pid for w in workers)
    sweep_dir = tmp_path / "multirun" / "optuna" / "t"
    for trial in trials:
        run_dir = sweep_dir / str(trial.number)
        assert trial.user_attrs["run_dir"] == str(run_dir)
        job = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert job["trial"] == {"number": trial.number, "study_name": "t", "storage": postgres_url}
        assert (run_dir / "metrics.json").is_file() == (trial.state == State.COMPLETE)
    # pruned across processes: each job reported its first epoch to PostgreSQL and was stopped there
    assert [t.state for t in trials] == 2 * [State.PRUNED], "no trial is left RUNNING, none failed"
    assert all(list(t.intermediate_values) == [0] for t in trials)
