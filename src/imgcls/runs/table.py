"""The runs table: one row per run, sorted by a column, written as runs.csv or drawn as aligned text."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from imgcls.atomic_files import write_atomically
from imgcls.runs.collect import Run

FIXED = ("run_dir", "status", "time", "train_seconds", "epochs_trained")
TAIL = ("epochs_per_phase", "git_commit", "git_dirty", "overrides")
# shown in the terminal besides the sort column; runs.csv has every column
KEY_METRICS = ("val_accuracy", "val_loss", "test_accuracy")
# columns ending so sort ascending by default: smaller is better
LOWER_IS_BETTER = ("loss", "ece", "error", "seconds")
HEADERS = {"run_dir": "run", "train_seconds": "duration", "epochs_trained": "epochs"}
MAX_CELL = 40


@dataclass(frozen=True)
class Table:
    """Rows of plain values under ``columns``; ``hparams`` names the columns that hold hyperparameters."""

    columns: list[str]
    rows: list[dict[str, Any]]
    hparams: list[str]


def hparam_column(name: str) -> str:
    """The column of hyperparameter ``name``: the name, or ``hparams.<name>`` where a fixed or metric column has it."""
    clashes = name in FIXED or name in TAIL or name.startswith(("val_", "test_"))
    return f"hparams.{name}" if clashes else name


def to_row(run: Run) -> dict[str, Any]:
    """``run`` as one row: fixed columns, every hparam, every scalar of metrics.json, then the tail."""
    row: dict[str, Any] = {
        "run_dir": str(run.folder),
        "status": "finished" if run.finished else "unfinished",
        "time": run.started.strftime("%Y-%m-%d %H:%M:%S"),
        "train_seconds": run.results.get("train_seconds"),
        "epochs_trained": run.results.get("epochs_trained"),
    }
    row.update({hparam_column(name): value for name, value in run.hparams.items()})
    for key, value in run.results.items():
        if key not in FIXED:
            row[f"metrics.{key}" if key in row else key] = value
    row.update(
        epochs_per_phase=" ".join(f"{phase}={epochs}" for phase, epochs in run.epochs_per_phase.items()) or None,
        git_commit=run.git_commit,
        git_dirty=run.git_dirty,
        overrides=" ".join(run.overrides) or None,
    )
    return row


def _union(keys: Iterable[Iterable[str]]) -> list[str]:
    """Every key, in the order it first appears."""
    return list(dict.fromkeys(key for group in keys for key in group))


def build_table(runs: Sequence[Run]) -> Table:
    """The table of ``runs``: columns fixed, hparams, val_*, test_*, other metrics.json scalars, then the tail."""
    rows = [to_row(run) for run in runs]
    hparams = _union((hparam_column(name) for name in run.hparams) for run in runs)
    rest = [key for key in _union(rows) if key not in (*FIXED, *TAIL, *hparams)]
    val = [key for key in rest if key.startswith("val_")]
    test = [key for key in rest if key.startswith("test_")]
    other = [key for key in rest if key not in val and key not in test]
    return Table([*FIXED, *hparams, *val, *test, *other, *TAIL], rows, hparams)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def descending_by_default(table: Table, column: str) -> bool:
    """Best first: numbers descend unless the column is a loss-like one (``LOWER_IS_BETTER``); text ascends."""
    values = [row.get(column) for row in table.rows if row.get(column) is not None]
    return bool(values) and all(map(_is_number, values)) and not column.endswith(LOWER_IS_BETTER)


def sort_table(table: Table, column: str, descending: bool | None = None) -> Table:
    """``table`` with its rows sorted by ``column`` (see :func:`descending_by_default`); rows without it go last."""
    if descending is None:
        descending = descending_by_default(table, column)
    present = [row for row in table.rows if row.get(column) is not None]
    missing = [row for row in table.rows if row.get(column) is None]
    numeric = all(_is_number(row[column]) for row in present)
    key = (lambda row: row[column]) if numeric else (lambda row: str(row[column]))
    return replace(table, rows=sorted(present, key=key, reverse=descending) + missing)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value)
    return value


def write_csv(table: Table, path: Path) -> Path:
    """runs.csv: every column of every row, written atomically."""

    def write(partial: Path) -> None:
        with open(partial, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(table.columns)
            writer.writerows([_csv_cell(row.get(column)) for column in table.columns] for row in table.rows)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, write)
    return path


def varying_hparams(table: Table) -> list[str]:
    """The hparam columns whose values differ across rows (all of them for a single row)."""
    if len(table.rows) < 2:
        return list(table.hparams)
    return [c for c in table.hparams if len({json.dumps(row.get(c), sort_keys=True) for row in table.rows}) > 1]


def terminal_columns(table: Table, sort_column: str) -> list[str]:
    """What the terminal shows by default: run, status, time, duration, epochs, varying hparams, key metrics."""
    metrics = [c for c in dict.fromkeys((*KEY_METRICS, sort_column)) if c in table.columns]
    return list(dict.fromkeys([*FIXED, *varying_hparams(table), *metrics]))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _text_cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column == "train_seconds" and _is_number(value):
        return _duration(value)
    if isinstance(value, float):
        return f"{value:.4f}" if column.startswith(("val_", "test_")) else f"{value:g}"
    if isinstance(value, (bool, dict, list)):
        value = json.dumps(value)
    text = str(value)
    if len(text) <= MAX_CELL:
        return text
    # a run folder's tail tells it apart
    return "…" + text[1 - MAX_CELL :] if column == "run_dir" else text[: MAX_CELL - 1] + "…"


def render_text(table: Table, columns: Sequence[str]) -> str:
    """``columns`` of ``table`` as aligned text: a header, a rule, one line per row; numbers right-aligned."""
    headers = [HEADERS.get(column, column) for column in columns]
    cells = [[_text_cell(column, row.get(column)) for column in columns] for row in table.rows]
    widths = [max(len(text) for text in [header, *(line[i] for line in cells)]) for i, header in enumerate(headers)]
    numeric = [any(_is_number(row.get(column)) for row in table.rows) for column in columns]

    def line(texts: Sequence[str]) -> str:
        padded = (t.rjust(w) if right else t.ljust(w) for t, w, right in zip(texts, widths, numeric))
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])
