"""Memory over a long in-process sweep: does the sweeping process grow from trial to trial?

With Hydra's basic launcher every trial of a sweep runs in the sweeping process, one after another
(hydra issue 1679: out-of-memory crashes in long sweeps). imgcls's train() starts each run from a
clean session (imgcls.training.session): Keras's clear_session, and the removal of TensorFlow's
registrations of custom gradients, which keep every earlier trial's traced training step alive.

This runs a sweep as a user would, ``python -m imgcls.train -m hparams_search=optuna_scratch
experiment=demo ...``, in a subprocess: 20 short trials (pruning off, so each runs to its end) of
one epoch at 32 px on real images, scikit-learn's digits (the demo's data), 40 training and 16 test
images a digit, batch 8. It samples the process's resident memory (VmRSS) and peak resident memory
(VmHWM, from /proc/<pid>/status) every 0.2 s, prints both at the moment each trial's run folder gets
its metrics.json, and the peak after the last trial over the peak after the 2nd. Target (issue 11):
<= 1.2. An imgcls trial costs about 25 s of CPU however small its data (two traces of the
training step, the evaluation figures), so the trials are as short as they get.

Arms (--arms): the same sweep in separate processes that run at the same time, one a core:

- ``imgcls``: train() as it is.
- ``none``: train() without its clean start (``start_clean_session`` patched to do nothing in that
  process): what a sweep did before.
- ``keras-only``: Keras's clear_session without the removal of TensorFlow's custom gradients.

Run from the repository root:

    .venv/bin/python benchmarks/sweep_memory.py          # imgcls and none, 20 trials: about 9 min on 2 cores
    .venv/bin/python benchmarks/sweep_memory.py --arms imgcls,keras-only,none
    .venv/bin/python benchmarks/sweep_memory.py --quick  # 4 trials, a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

RATIO_TARGET = 1.2
SAMPLE_SECONDS = 0.2
# each arm's sweeping process: imgcls's CLI entry point, after patching what the arm leaves out
RUN_MAIN = "from imgcls.train import main; sys.argv[0] = 'imgcls-train'; main()"
PATCH = (
    "import sys, importlib; module = importlib.import_module({module!r}); "
    "assert hasattr(module, {name!r}), 'benchmark out of date: {module}.{name} is gone'; "
    "setattr(module, {name!r}, lambda *args, **kwargs: 0); "
)
ARMS = {
    "imgcls": [],
    "none": [("imgcls.train", "start_clean_session")],
    "keras-only": [("imgcls.training.session", "forget_custom_gradients")],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="trials per sweep (default 20; at least 3)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per trial (default 1)")
    parser.add_argument(
        "--train-per-class", type=int, default=40, help="training images per digit (default 40; 15%% of them validate)"
    )
    parser.add_argument("--test-per-class", type=int, default=16, help="test images per digit (default 16)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="batch size (default 8: enough steps in one epoch to learn the digits)",
    )
    parser.add_argument("--image-size", type=int, default=32, help="image size in pixels (default 32)")
    parser.add_argument(
        "--arms",
        default="imgcls,none",
        help=f"comma-separated, from {', '.join(ARMS)} (default %(default)s); the first is the one held to the target",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("/tmp/imgcls-bench/sweep-memory"),
        help="sweep folders, the digits tree and the sweeps' logs (default %(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 trials")
    args = parser.parse_args(argv)
    args.arms = args.arms.split(",")
    if unknown := set(args.arms) - set(ARMS):
        parser.error(f"unknown arms {sorted(unknown)}; choose from {list(ARMS)}")
    if args.quick:
        args.trials = 4
    if args.trials < 3:
        parser.error("--trials must be at least 3 (the ratio compares the last trial with the 2nd)")
    return args


def digits_tree(workdir: Path, train_per_class: int, test_per_class: int) -> Path:
    """``<workdir>/digits_<train>_<test>/{training_set,test_set}/<digit>/*.png``: scikit-learn's digits
    scaled to 0-255 as the demo writes them, the first images of each digit, written once."""
    root = workdir / f"digits_{train_per_class}_{test_per_class}"
    if (root / "done").exists():
        return root
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    shutil.rmtree(root, ignore_errors=True)
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    for digit in range(10):
        indices = np.flatnonzero(digits.target == digit)
        for split, chosen in (
            ("training_set", indices[:train_per_class]),
            ("test_set", indices[train_per_class : train_per_class + test_per_class]),
        ):
            (root / split / str(digit)).mkdir(parents=True)
            for index in chosen:
                Image.fromarray(images[index]).save(root / split / str(digit) / f"digit_{index:04d}.png")
    (root / "done").touch()
    return root


def memory_mib(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of ``pid`` in MiB, or None once it has gone."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        return tuple(int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))
    except (OSError, KeyError, ValueError):
        return None


class Sweep:
    """One arm's sweep in its own process, its memory sampled and its trials noted as they finish."""

    def __init__(self, arm: str, args: argparse.Namespace, data: Path):
        self.arm, self.name = arm, f"memory_{arm.replace('-', '_')}"
        self.sweep_dir = args.workdir / "multirun" / "optuna" / self.name
        shutil.rmtree(self.sweep_dir, ignore_errors=True)
        patches = "".join(PATCH.format(module=module, name=name) for module, name in ARMS[arm])
        command = [
            sys.executable,
            "-c",
            f"import sys; {patches}{RUN_MAIN}",
            "-m",
            "hparams_search=optuna_scratch",
            "experiment=demo",
            f"data.train_dir={data / 'training_set'}",
            f"data.test_dir={data / 'test_set'}",
            f"hydra.sweeper.study_name={self.name}",
            f"hydra.sweeper.n_trials={args.trials}",
            "hydra.sweeper.pruner=null",
            f"train.phases.scratch.epochs={args.epochs}",
            f"data.batch_size={args.batch_size}",
            f"data.image_size={args.image_size}",
            "train.verbose=0",
            f"paths.log_dir={args.workdir}",
            f"paths.cache_dir={args.workdir / 'cache'}",
        ]
        self.log_path = args.workdir / f"{self.name}.log"
        print(f"  sweep {arm!r}: {args.trials} trials, log {self.log_path}", file=sys.stderr, flush=True)
        self.trials: list[dict] = []
        self.last = (0.0, 0.0)
        self.started = time.monotonic()
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def poll(self) -> bool:
        """Sample the memory and note newly finished trials; return whether the process still runs."""
        running = self.process.poll() is None
        self.last = memory_mib(self.process.pid) or self.last
        seen = {trial["number"] for trial in self.trials}
        for metrics in sorted(self.sweep_dir.glob("*/metrics.json"), key=lambda path: path.stat().st_mtime):
            if int(metrics.parent.name) in seen:
                continue
            try:
                val_accuracy = json.loads(metrics.read_text())["val_accuracy"]
            except (ValueError, KeyError):  # still being written: the next poll reads it
                continue
            self.trials.append(
                dict(
                    number=int(metrics.parent.name),
                    at=time.monotonic() - self.started,
                    rss=self.last[0],
                    hwm=self.last[1],
                    val_accuracy=val_accuracy,
                )
            )
            print(
                f"  {self.arm}: trial {len(self.trials)} done, peak RSS {self.last[1]:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
        return running

    def check(self, trials: int) -> None:
        if self.process.returncode != 0 or len(self.trials) < trials:
            raise SystemExit(
                f"sweep {self.arm!r} exited {self.process.returncode} after {len(self.trials)} trials; "
                f"the end of its log:\n{self.log_path.read_text()[-3000:]}"
            )
        for previous, trial in zip([dict(at=0.0), *self.trials], self.trials):
            trial["seconds"] = trial["at"] - previous["at"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, TensorFlow "
        f"{version('tensorflow')}, Keras {version('keras')}; {args.trials} trials per sweep, {args.epochs} "
        f"epoch(s) at {args.image_size} px on {args.train_per_class} + {args.test_per_class} digits per class "
        f"(experiment=demo: compact_resnet_s from scratch; pruning off); "
        f"arms {', '.join(args.arms)} at the same time",
        flush=True,
    )
    load_before = os.getloadavg()[0]
    data = digits_tree(args.workdir, args.train_per_class, args.test_per_class)
    sweeps = [Sweep(arm, args, data) for arm in args.arms]
    while any([sweep.poll() for sweep in sweeps]):
        time.sleep(SAMPLE_SECONDS)
    for sweep in sweeps:
        sweep.check(args.trials)

    width = 22
    print("\n      " + " ".join(f"{sweep.arm:^{width}s}" for sweep in sweeps))
    print(
        f"{'trial':>5s} "
        + " ".join(f"{'s':>6s} {'VmRSS':>7s} {'VmHWM':>7s}" for _ in sweeps)
        + "   (seconds the trial took; MiB when its metrics.json appeared)"
    )
    for index in range(args.trials):
        print(
            f"{index + 1:5d} "
            + " ".join(
                f"{t['seconds']:6.1f} {t['rss']:7.0f} {t['hwm']:7.0f}"
                for t in (sweep.trials[index] for sweep in sweeps)
            )
        )

    last = args.trials
    ratios = [sweep.trials[-1]["hwm"] / sweep.trials[1]["hwm"] for sweep in sweeps]
    verdict = "PASS" if ratios[0] <= RATIO_TARGET else "FAIL"
    print(f"\n{'':48s}" + "".join(f"{sweep.arm:>{width}s}" for sweep in sweeps) + f"{'target':>10s}")
    print(
        f"{f'peak RSS after trial {last} / after trial 2':48s}"
        + "".join(f"{r:{width}.3f}" for r in ratios)
        + f"{'<= ' + str(RATIO_TARGET):>10s}  {verdict} ({sweeps[0].arm})"
    )
    rows = (
        ("peak RSS after trial 2 (MiB)", lambda t: t[1]["hwm"]),
        (f"peak RSS after trial {last} (MiB)", lambda t: t[-1]["hwm"]),
        (f"VmRSS growth per trial, trials 2-{last} (MiB)", lambda t: (t[-1]["rss"] - t[1]["rss"]) / (last - 2)),
        (f"median seconds per trial, trials 2-{last}", lambda t: sorted(x["seconds"] for x in t[1:])[(last - 1) // 2]),
        ("sweep wall time (s)", lambda t: t[-1]["at"]),
        ("lowest val_accuracy of a trial", lambda t: min(x["val_accuracy"] for x in t)),
        ("highest val_accuracy of a trial", lambda t: max(x["val_accuracy"] for x in t)),
    )
    for label, value in rows:
        print(
            f"{label:48s}"
            + "".join(f"{value(sweep.trials):{width}.{3 if 'accuracy' in label else 1}f}" for sweep in sweeps)
        )
    print(f"load average (1 min) at the start {load_before:.1f}, at the end {os.getloadavg()[0]:.1f}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
