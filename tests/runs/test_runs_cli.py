"""imgcls-runs: the real command once, then its errors in-process."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from imgcls.runs.cli import main


@pytest.mark.slow
def test_imgcls_runs_prints_the_best_run_first_and_writes_runs_csv(log_dir):
    result = subprocess.run(
        [sys.executable, "-m", "imgcls.runs.cli", "--sort", "val_loss"],
        cwd=log_dir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["run", "status", "time", "duration", "epochs"]
    assert lines[2].startswith("outputs/2026-11-29/10-00-00")  # val_loss 0.8: smallest first
    assert lines[6].startswith("outputs/2026-11-29/12-00-00") and "unfinished" in lines[6]
    with open(log_dir / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["run_dir"] for row in rows][:2] == ["outputs/2026-11-29/10-00-00", "outputs/2026-11-29/11-00-00"]
    assert len(rows) == 5


def test_a_missing_folder_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "nope")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == f"imgcls-runs: error: no such folder: {tmp_path / 'nope'}"


def test_no_runs_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 1
    assert "No imgcls-train runs found" in capsys.readouterr().out
    assert not (tmp_path / "runs.csv").exists()


def test_an_unknown_sort_column_suggests_the_right_one(log_dir, monkeypatch, capsys):
    monkeypatch.chdir(log_dir)
    with pytest.raises(SystemExit) as exit_info:
        main(["--sort", "val_los"])
    assert exit_info.value.code == 2 and "Did you mean val_loss" in capsys.readouterr().err


def test_columns_and_limit_choose_what_is_printed(log_dir, monkeypatch, capsys):
    monkeypatch.chdir(log_dir)
    assert main(["outputs", "--columns", "backbone,temperature", "--limit", "1", "--output", "table.csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "backbone", "temperature"]
    assert lines[2].split() == ["outputs/2026-11-29/11-00-00", "mobilenetv3small", "1.3"]
    assert lines[3] == "" and (log_dir / "table.csv").exists()
