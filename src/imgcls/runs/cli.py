"""``imgcls-runs``: every training run under some folders in one table, printed and written to runs.csv."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from imgcls.runs.collect import collect_runs
from imgcls.runs.table import build_table, render_text, sort_table, terminal_columns, write_csv

DEFAULT_FOLDERS = ("outputs", "multirun")
DEFAULT_SORT = "val_accuracy"
EXAMPLES = """examples:
  imgcls-runs                                  # outputs/ and multirun/ here, best val_accuracy first
  imgcls-runs multirun/2026-11-30 --sort val_loss --limit 10
  imgcls-runs --columns backbone,phase1_lr,val_f1,test_accuracy
  imgcls-runs --columns all --output /tmp/runs.csv

runs.csv has every column: run_dir, status (finished/unfinished), time, train_seconds, epochs_trained, every
hparam, every val_* and test_* metric, other metrics.json scalars, epochs_per_phase, git_commit, overrides.
The terminal shows the hparams that differ across runs and val_accuracy, val_loss, test_accuracy."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="imgcls-runs",
        description="One table of every imgcls-train run folder under FOLDERs, printed and\n"
        "written to runs.csv. Unfinished runs are listed too; evaluate, predict and export folders are not.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "folders",
        nargs="*",
        metavar="FOLDER",
        type=Path,
        help=f"where to look for run folders (default: {' and '.join(DEFAULT_FOLDERS)}, those that exist)",
    )
    p.add_argument(
        "--sort",
        metavar="COLUMN",
        help=f"the column to sort by (default: {DEFAULT_SORT}); "
        "numbers sort best first: descending, but ascending for names ending in loss, ece, error or seconds",
    )
    order = p.add_mutually_exclusive_group()
    order.add_argument("--ascending", dest="descending", action="store_false", default=None, help="smallest first")
    order.add_argument("--descending", dest="descending", action="store_true", default=None, help="largest first")
    p.add_argument(
        "--output",
        metavar="CSV",
        type=Path,
        default=Path("runs.csv"),
        help="where to write the table with every column (default: runs.csv here)",
    )
    p.add_argument(
        "--columns", metavar="A,B,...", help="the columns to print after the run folder, or 'all' (default: see below)"
    )
    p.add_argument("--limit", metavar="N", type=int, help="print only the first N rows (runs.csv has all)")
    return p


def _fail(message: str) -> NoReturn:
    print(f"imgcls-runs: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _check_column(option: str, name: str, columns: Sequence[str]) -> None:
    if name not in columns:
        close = difflib.get_close_matches(name, columns, n=3)
        _fail(
            f"{option}: no column {name!r}. "
            + (f"Did you mean {', '.join(close)}?" if close else f"Columns: {', '.join(columns)}.")
        )


def _roots(folders: Sequence[Path]) -> list[Path]:
    if not folders:
        return [Path(name) for name in DEFAULT_FOLDERS if Path(name).is_dir()]
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        _fail(f"no such folder: {', '.join(missing)}")
    return list(folders)


def main(argv: Sequence[str] | None = None) -> int:
    """Collect, sort, write runs.csv and print; exit 2 on a bad argument, 1 when no run is found."""
    args = parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        _fail(f"--limit must be 1 or more, got {args.limit}")
    roots = _roots(args.folders)
    table = build_table(collect_runs(roots))
    if not table.rows:
        searched = ", ".join(map(str, roots)) if roots else " or ".join(DEFAULT_FOLDERS) + " (neither is here)"
        print(f"No imgcls-train runs found under {searched}.")
        return 1
    sort = args.sort or DEFAULT_SORT
    if args.sort:
        _check_column("--sort", sort, table.columns)
    table = sort_table(table, sort if sort in table.columns else "time", args.descending)
    if args.columns == "all":
        shown = table.columns
    elif args.columns:
        shown = ["run_dir", *(c.strip() for c in args.columns.split(",") if c.strip())]
        for column in shown:
            _check_column("--columns", column, table.columns)
    else:
        shown = terminal_columns(table, sort)
    write_csv(table, args.output)
    print(render_text(replace(table, rows=table.rows[: args.limit]), shown))
    unfinished = sum(row["status"] != "finished" for row in table.rows)
    print(f"\n{len(table.rows)} run(s), {unfinished} unfinished; every column in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
