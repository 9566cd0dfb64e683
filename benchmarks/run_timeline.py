"""Where a finished imgcls run's wall time went, read from its train.log: the fixed costs around its epochs.

    .venv/bin/python benchmarks/run_timeline.py RUN_DIR [RUN_DIR ...] --seconds 52.2 [...]

``--seconds``: each run's wall time as measured from outside (``benchmarks/recipes.py`` records it); without
it the start-up before the first log line and the exit after the last are not known and are left out.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[([\w.]+)\]\[\w+\] - (.*)$")
_EPOCH = re.compile(r"^\w+ epoch \d+/\d+: .* \| ([\d.]+) s, ")
_PHASE_LENGTH = re.compile(r"^\w+: \d+ epochs? of \d+ steps")


@dataclass(frozen=True)
class Timeline:
    """A run's seconds: before its first log line and after its last (``None`` without the wall time), reading and
    checking the data, building the model, its first epoch beyond a later one's time (tracing, filling the cache),
    the epochs themselves, and saving and evaluating after the last one."""

    outside_log: float | None
    data: float
    model: float
    first_epoch_extra: float
    epochs: float
    evaluation: float

    def as_row(self) -> dict[str, float | None]:
        return dict(
            start_and_exit=self.outside_log,
            data=self.data,
            model=self.model,
            first_epoch_extra=self.first_epoch_extra,
            epochs=self.epochs,
            evaluation=self.evaluation,
        )


def _entries(log: Path) -> list[tuple[float, str, str]]:
    entries = []
    for line in log.read_text().splitlines():
        match = _LINE.match(line)
        if match:
            when = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            entries.append((when, match[2], match[3]))
    return entries


def _first(entries, logger_suffix: str, pattern: re.Pattern | str) -> float:
    for when, logger, message in entries:
        if logger.endswith(logger_suffix) and re.search(pattern, message):
            return when
    raise ValueError(f"no {logger_suffix} line matching {pattern!r}")


def run_timeline(run_dir: Path, wall_seconds: float | None = None) -> Timeline:
    """The :class:`Timeline` of the run in ``run_dir`` (its train.log), given its measured ``wall_seconds``."""
    entries = _entries(Path(run_dir) / "train.log")
    started, ended = entries[0][0], _first(entries, "imgcls.train", r"^Done in ")
    data = _first(entries, "imgcls.data.prepare", r"^Data: ")
    training = _first(entries, "imgcls.training.phases", _PHASE_LENGTH)
    trained = _first(entries, "imgcls.train", r"^The model is ")
    epoch_seconds = [float(m[1]) for _, logger, text in entries if (m := _EPOCH.match(text))]
    later = sorted(epoch_seconds[1:])
    typical = later[len(later) // 2] if later else epoch_seconds[0]
    first_extra = max(0.0, epoch_seconds[0] - typical) if epoch_seconds else 0.0
    return Timeline(
        outside_log=None if wall_seconds is None else wall_seconds - (ended - started),
        data=data - started,
        model=training - data,
        first_epoch_extra=first_extra,
        epochs=trained - training - first_extra,
        evaluation=ended - trained,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--seconds", nargs="*", type=float, default=[])
    args = parser.parse_args()
    print("| run | start-up and exit | data (scan, split) | model | first epoch's extra | epochs | evaluation |")
    print("|---|---|---|---|---|---|---|")
    for index, run in enumerate(args.runs):
        wall = args.seconds[index] if index < len(args.seconds) else None
        cells = ["" if value is None else f"{value:.1f} s" for value in run_timeline(run, wall).as_row().values()]
        print(f"| {run.name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
