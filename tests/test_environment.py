"""environment.json: versions, devices, command line and the git state a run can be reproduced from."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from imgcls.environment import PACKAGES, collect_environment, git_state, write_environment

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(folder, *args):
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository with one commit of ``tracked.txt``, and the current folder."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    git(tmp_path, "init", "-q")
    (tmp_path / "tracked.txt").write_text("one\n")
    git(tmp_path, "add", "tracked.txt")
    git(tmp_path, "commit", "-q", "-m", "first")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@needs_git
def test_records_versions_devices_command_and_a_dirty_commit(repo, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["imgcls-train", "experiment=demo"])
    (repo / "tracked.txt").write_text("two\n")
    path = write_environment(repo)
    environment = json.loads(path.read_text())
    assert path.name == "environment.json"
    assert environment["git"] == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": True}
    assert environment["command"] == ["imgcls-train", "experiment=demo"]
    assert set(environment["versions"]) == {"python", *PACKAGES}
    assert environment["versions"]["imgcls"] and environment["versions"]["tensorflow"]
    assert {"name": "/physical_device:CPU:0", "type": "CPU"} in environment["devices"]
    assert {"time", "cwd", "hostname", "platform"} <= set(environment)


@needs_git
def test_untracked_files_such_as_run_folders_leave_a_commit_clean(repo):
    (repo / "outputs").mkdir()
    (repo / "outputs" / "train.log").write_text("")
    assert git_state(repo) == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}


def test_outside_a_repository_or_without_git_there_is_no_git_state(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.chdir(tmp_path)
    assert git_state(tmp_path) is None
    assert collect_environment()["git"] is None
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert git_state(tmp_path) is None
