"""What pruning saves: the same Optuna sweep on the demo data with and without pruning, side by side.

Both sweeps use the same sampler seed (``hydra.sweeper.seed_per_start=false``: not one derived per start) and trial
budget; "without" keeps the reporting but uses
Optuna's NopPruner, so the two differ only in the pruning decision. Prints the total epochs
trained (with / without; target <= 0.6) and the best validation metric of each (target: with
pruning within 1 point of without). Run from the repository root:

    .venv/bin/python benchmarks/sweep_pruning.py                 # 12 trials each; about 30 min on 2 CPU cores
    .venv/bin/python benchmarks/sweep_pruning.py --trials 4 --quick
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import optuna

EPOCH_RATIO_TARGET = 0.6
BEST_GAP_TARGET = 0.01
NO_PRUNING = [
    "hydra.sweeper.pruner._target_=optuna.pruners.NopPruner",
    "~hydra.sweeper.pruner.n_startup_trials",
    "~hydra.sweeper.pruner.n_warmup_steps",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12, help="trials per sweep (default 12)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/imgcls-bench/sweeps"), help="sweep folders")
    parser.add_argument("--quick", action="store_true", help="shorter trials (4 epochs), for a smoke run")
    return parser.parse_args(argv)


def run_sweep(name: str, args: argparse.Namespace, extra: list[str]) -> tuple[optuna.Study, float]:
    """Run one sweep through the real CLI; return its study and wall time."""
    command = [
        sys.executable,
        "-m",
        "imgcls.train",
        "-m",
        "hparams_search=optuna_scratch",
        "experiment=demo",
        f"hydra.sweeper.study_name={name}",
        f"hydra.sweeper.n_trials={args.trials}",
        "hydra.sweeper.seed_per_start=false",
        "train.verbose=0",
        f"paths.log_dir={args.workdir}",
        *(["train.phases.scratch.epochs=4"] if args.quick else []),
        *extra,
    ]
    print(f"  running sweep {name!r} ({args.trials} trials) ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{args.workdir}/multirun/optuna/{name}/optuna.db")
    return study, seconds


def epochs_trained(study: optuna.Study) -> int:
    """Epochs of every trial: one reported value per finished epoch (pruned trials stop early)."""
    return sum(len(trial.intermediate_values) for trial in study.trials)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shutil.rmtree(args.workdir / "multirun" / "optuna", ignore_errors=True)
    pruned_study, pruned_seconds = run_sweep("with_pruning", args, [])
    full_study, full_seconds = run_sweep("without_pruning", args, NO_PRUNING)

    epochs = {"with": epochs_trained(pruned_study), "without": epochs_trained(full_study)}
    best = {"with": pruned_study.best_value, "without": full_study.best_value}
    states = {s.name: sum(t.state == s for t in pruned_study.trials) for s in optuna.trial.TrialState}
    ratio = epochs["with"] / epochs["without"]
    gap = best["without"] - best["with"]

    print(
        f"\n{args.trials} trials each, demo data, TPE seed shared; pruned sweep: "
        f"{states['COMPLETE']} complete, {states['PRUNED']} pruned, {states['FAIL']} failed"
    )
    print(f"{'measurement':52s} {'with':>9s} {'without':>9s} {'value':>8s} {'target':>8s}")
    print(
        f"{'epochs trained; with / without':52s} {epochs['with']:9d} {epochs['without']:9d} {ratio:8.3f} "
        f"{'<= ' + str(EPOCH_RATIO_TARGET):>8s}  {'PASS' if ratio <= EPOCH_RATIO_TARGET else 'FAIL'}"
    )
    print(
        f"{'best val_accuracy; without - with':52s} {best['with']:9.4f} {best['without']:9.4f} {gap:8.4f} "
        f"{'<= ' + str(BEST_GAP_TARGET):>8s}  {'PASS' if gap <= BEST_GAP_TARGET else 'FAIL'}"
    )
    print(f"{'wall time (s)':52s} {pruned_seconds:9.0f} {full_seconds:9.0f} {pruned_seconds / full_seconds:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
