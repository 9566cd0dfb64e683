"""What a sweep leaves in its folder: best result, a per-trial summary, plots, and the re-run command."""

from __future__ import annotations

import csv
import logging
import math
import shlex
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from imgcls.atomic_files import write_atomically  # noqa: E402

log = logging.getLogger(__name__)


def rerun_command(base_overrides: list[str], params: dict) -> str:
    """The single ``imgcls-train`` command that trains the given parameters with the sweep's other settings."""
    settings = [*base_overrides, *(f"{name}={value}" for name, value in params.items())]
    return shlex.join(["imgcls-train", *settings])


def _epochs(trial: optuna.trial.FrozenTrial) -> int | str:
    if "epochs_trained" in trial.user_attrs:
        return trial.user_attrs["epochs_trained"]
    return len(trial.intermediate_values) or ""


def _note(trial: optuna.trial.FrozenTrial) -> str:
    if "duplicate_of" in trial.user_attrs:
        return f"repeats trial {trial.user_attrs['duplicate_of']}: not run"
    return trial.user_attrs.get("fail_reason") or trial.user_attrs.get("pruned_because", "")


def _write_csv(path: Path, rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def write_summary(study: optuna.Study, sweep_dir: Path) -> Path:
    """sweep_summary.csv: one row per trial: state, value, parameters, epochs, duration, validation metrics, run folder.

    Only validation metrics: a sweep must never select on the test set.
    """
    trials = study.get_trials(deepcopy=False)
    names = sorted({name for trial in trials for name in trial.params})
    metrics = sorted({key for trial in trials for key in trial.user_attrs if key.startswith("val_")})
    path = sweep_dir / "sweep_summary.csv"
    rows = [
        [
            "trial",
            "state",
            "value",
            *names,
            "epochs_trained",
            "duration_s",
            *metrics,
            "host",
            "sampler_seed",
            "note",
            "run_dir",
        ]
    ]
    for trial in trials:
        attrs = trial.user_attrs
        duration = "" if trial.duration is None else round(trial.duration.total_seconds(), 1)
        rows.append(
            [
                trial.number,
                trial.state.name,
                "" if trial.value is None else trial.value,
                *(trial.params.get(n, "") for n in names),
                _epochs(trial),
                duration,
                *(attrs.get(m, "") for m in metrics),
                attrs.get("host", ""),
                attrs.get("sampler_seed", ""),
                _note(trial),
                attrs.get("run_dir", ""),
            ]
        )
    write_atomically(path, lambda partial: _write_csv(partial, rows))  # processes sharing a study write it too
    return path


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best COMPLETE trial that was run (not a repeat of an earlier one), in the study's direction."""
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if "duplicate_of" not in t.user_attrs
    ]
    if not complete:
        return None
    pick = min if study.direction == optuna.study.StudyDirection.MINIMIZE else max
    return pick(complete, key=lambda t: (t.value, -t.number) if pick is max else (t.value, t.number))


def write_plots(study: optuna.Study, sweep_dir: Path) -> list[Path]:
    """Optimization history and parameter importances as PNG (Optuna's matplotlib plots)."""
    from optuna.visualization import matplotlib as optuna_plots

    written = []
    finished = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    plots = {"optimization_history": optuna_plots.plot_optimization_history}
    if len(finished) >= 2 and len({name for t in finished for name in t.params}) >= 1:
        plots["param_importances"] = optuna_plots.plot_param_importances
    for name, plot in plots.items():
        try:
            ax = plot(study)
        except (ValueError, RuntimeError) as error:  # e.g. importances of parameters that never varied
            log.warning("No %s plot: %s", name, error)
            continue
        figure = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        figure.set_size_inches(9, 5.5)
        figure.tight_layout()
        path = sweep_dir / f"{name}.png"
        write_atomically(path, lambda partial, figure=figure: figure.savefig(partial, dpi=100, format="png"))
        plt.close(figure)
        written.append(path)
    return written


def write_results(study: optuna.Study, sweep_dir: Path, base_overrides: list[str]) -> dict | None:
    """optimization_results.yaml, sweep_summary.csv and the plots; log the best trial and how to re-run it."""
    write_summary(study, sweep_dir)
    best = best_trial(study)
    if best is None:
        log.warning("No trial of study %s completed; nothing to report as best", study.study_name)
        return None
    command = rerun_command(base_overrides, best.params)
    results = {
        "name": "optuna",
        "study_name": study.study_name,
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
        "best_run_dir": best.user_attrs.get("run_dir"),
        "rerun_command": command,
        "trials": {
            state.name: sum(t.state == state for t in study.trials)
            for state in optuna.trial.TrialState
            if any(t.state == state for t in study.trials)
        },
    }
    write_atomically(
        sweep_dir / "optimization_results.yaml", lambda partial: OmegaConf.save(OmegaConf.create(results), partial)
    )
    write_plots(study, sweep_dir)
    value = "nan" if best.value is None or math.isnan(best.value) else f"{best.value:.4f}"
    log.info("Best trial %d: value %s, params %s", best.number, value, best.params)
    log.info("Best trial's run folder: %s", results["best_run_dir"])
    log.info("Re-run it with:\n  %s", command)
    return results
