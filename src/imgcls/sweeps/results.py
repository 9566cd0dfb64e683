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

log = logging.getLogger(__name__)


def rerun_command(base_overrides: list[str], params: dict) -> str:
    """The single ``imgcls-train`` command that trains the given parameters with the sweep's other settings."""
    settings = [*base_overrides, *(f"{name}={value}" for name, value in params.items())]
    return shlex.join(["imgcls-train", *settings])


def write_summary(study: optuna.Study, sweep_dir: Path) -> Path:
    """sweep_summary.csv: one row per trial with its state, value, parameters and run folder."""
    trials = study.get_trials(deepcopy=False)
    names = sorted({name for trial in trials for name in trial.params})
    path = sweep_dir / "sweep_summary.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", "state", "value", *names, "run_dir"])
        for trial in trials:
            value = "" if trial.value is None else trial.value
            run_dir = trial.user_attrs.get("run_dir", "")
            writer.writerow([trial.number, trial.state.name, value, *(trial.params.get(n, "") for n in names), run_dir])
    return path


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
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


def write_results(study: optuna.Study, sweep_dir: Path, base_overrides: list[str]) -> dict | None:
    """optimization_results.yaml, sweep_summary.csv and the plots; log the best trial and how to re-run it."""
    write_summary(study, sweep_dir)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        log.warning("No trial of study %s completed; nothing to report as best", study.study_name)
        return None
    best = study.best_trial
    command = rerun_command(base_overrides, best.params)
    results = {
        "name": "optuna",
        "study_name": study.study_name,
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
        "best_run_dir": best.user_attrs.get("run_dir"),
        "rerun_command": command,
        "trials": {state.name: sum(t.state == state for t in study.trials) for state in optuna.trial.TrialState
                   if any(t.state == state for t in study.trials)},
    }
    OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
    write_plots(study, sweep_dir)
    value = "nan" if best.value is None or math.isnan(best.value) else f"{best.value:.4f}"
    log.info("Best trial %d: value %s, params %s", best.number, value, best.params)
    log.info("Best trial's run folder: %s", results["best_run_dir"])
    log.info("Re-run it with:\n  %s", command)
    return results
