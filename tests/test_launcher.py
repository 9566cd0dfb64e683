"""The console scripts' --help: every group's options with the line their own files give, without TensorFlow."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import imgcls_launcher

CONF = Path(importlib.import_module("imgcls.conf").__path__[0])
APPS = ["train", "evaluate", "predict", "export"]
SCRIPTS = Path(sys.executable).parent


def app_groups(app: str) -> dict[str, str | None]:
    """``{group: default option}`` from the app's defaults list, read here independently of the launcher.

    Hydra's own groups (``hydra/app: tool``, the run folders and help template the apps share) are no user's choice.
    """
    defaults = yaml.safe_load((CONF / f"{app}.yaml").read_text(encoding="utf-8")).get("defaults", [])
    return {
        group: option
        for item in defaults
        if isinstance(item, dict)
        for group, option in item.items()
        if not group.startswith("hydra/")
    }


def leading_comment_words(path: Path) -> list[str]:
    """The words of the file's leading comment, ``@package`` line left out."""
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            words += line.lstrip("#").split()
    return words


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("app", APPS)
def test_help_lists_every_option_of_every_group_with_its_comment_line(app):
    help_text = imgcls_launcher.render_help(app, CONF)
    lines = help_text.splitlines()
    for group, default in app_groups(app).items():
        assert any(line.startswith(f"{group}:") for line in lines), group
        for option in sorted((CONF / group).glob("*.yaml")):
            words = leading_comment_words(option)
            assert words, f"{option} needs a leading comment: its first sentence is the option's line in --help"
            marker = "*" if option.stem == default else ""
            assert flat(f"{marker} {option.stem} {' '.join(words[:4])}") in flat(help_text), option
    assert [line for line in lines if len(line) > 100] == [], "help lines (and hydra.help.header's) fit 100 columns"


@pytest.mark.parametrize("app", APPS)
def test_help_lists_the_top_level_keys_and_where_to_see_the_rest(app):
    help_text = imgcls_launcher.render_help(app, CONF)
    keys = set(yaml.safe_load((CONF / f"{app}.yaml").read_text(encoding="utf-8"))) - {"defaults", "hydra"}
    rows = [line for line in help_text.splitlines() if line.startswith("  ") and line[2] != " "]
    labels = {row.split()[0].split("=")[0] for row in rows}
    assert keys <= labels
    assert f"imgcls-{app} [key=value ...] --cfg job" in help_text and "--hydra-help" in help_text


@pytest.mark.parametrize(
    ("comment", "summary"),
    [
        (["# CPU demo; no download:", "#   imgcls-train experiment=demo"], "CPU demo; no download"),
        (["# Continue a run: nothing needs", "# retyping. More here."], "Continue a run: nothing needs retyping."),
        (["# ResNet (He et al. 2015): 25.6M parameters. Uses BN."], "ResNet (He et al. 2015): 25.6M parameters."),
        (["# Where runs land", "#", "# More."], "Where runs land"),
    ],
)
def test_summary_is_the_comments_first_sentence(comment, summary):
    assert imgcls_launcher.first_sentence(comment) == summary


@pytest.mark.parametrize(
    ("argv", "fast"),
    [
        (["--help"], True),
        (["-h"], True),
        (["backbone=efficientnetb0", "--help"], True),
        ([], False),
        (["experiment=demo"], False),
        (["--hydra-help"], False),
        (["--cfg", "job", "--help"], False),
        (["--config-name", "mine", "--help"], False),
        (["--info"], False),
    ],
)
def test_only_a_plain_help_is_answered_without_hydra(argv, fast):
    assert imgcls_launcher.wants_plain_help(argv) is fast


def test_other_arguments_run_the_apps_main(monkeypatch):
    calls = []
    fake = type("App", (), {"main": staticmethod(lambda: calls.append("main") or 0.5)})
    monkeypatch.setattr(imgcls_launcher.importlib, "import_module", lambda name: calls.append(name) or fake)
    monkeypatch.setattr(imgcls_launcher, "run_and_exit", lambda main: calls.append(main()))
    imgcls_launcher.launch("train", ["experiment=demo"])
    assert calls == ["imgcls.train", "main", 0.5]


COMMAND = """
import atexit, logging, sys, threading, time
from pathlib import Path
import imgcls_launcher

folder = Path(sys.argv[1])
logging.basicConfig(filename=folder / "run.log", level=logging.INFO)
atexit.register(lambda: (folder / "atexit").write_text("ran"))


class Teardown:
    def __del__(self):
        print("interpreter teardown", flush=True)


keep = Teardown()


def main():
    print("the command's output")  # a pipe: block-buffered until flushed
    logging.info("the command's log")
    if sys.argv[2] == "thread":
        threading.Thread(target=lambda: (time.sleep(0.5), (folder / "thread").write_text("done"))).start()
    if sys.argv[2] in EXITS:
        raise SystemExit(EXITS[sys.argv[2]])
    if sys.argv[2] == "error":
        raise RuntimeError("a bug")


EXITS = {"3": 3, "message": "the reason", "none": None}


imgcls_launcher.run_and_exit(main)
"""


@pytest.mark.parametrize(
    "how, status", [("return", 0), ("none", 0), ("3", 3), ("message", 1), ("thread", 0), ("error", 1)]
)
def test_a_command_ends_with_its_status_its_output_flushed_and_its_atexit_handlers_run(how, status, tmp_path):
    script = tmp_path / "command.py"
    script.write_text(COMMAND)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path), how], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == status, result.stderr
    assert "the command's output" in result.stdout
    assert "the command's log" in (tmp_path / "run.log").read_text()
    assert (tmp_path / "atexit").read_text() == "ran"
    if how == "message":
        assert "the reason" in result.stderr
    if how == "error":
        assert "RuntimeError: a bug" in result.stderr
    if how == "thread":  # a thread still running: Python waits for it
        assert (tmp_path / "thread").read_text() == "done"
    # the interpreter's teardown (seconds after TensorFlow) is skipped when nothing needs it
    assert ("interpreter teardown" in result.stdout) == (how in ("thread", "error"))


def test_conf_dir_is_the_config_package_hydra_reads():
    assert imgcls_launcher.conf_dir().resolve() == CONF.resolve()


@pytest.mark.slow
@pytest.mark.parametrize("app", APPS)
def test_console_script_help_loads_neither_imgcls_nor_tensorflow(app, tmp_path):
    # -X importtime lists every module the script imports, on stderr.
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(SCRIPTS / f"imgcls-{app}"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"imgcls-{app}: ") and "--cfg job" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "imgcls_launcher" in imported
    assert not {name for name in imported if name.split(".")[0] in ("imgcls", "tensorflow", "keras", "hydra")}


@pytest.mark.slow
def test_console_script_without_help_runs_the_app(tmp_path):
    result = subprocess.run([str(SCRIPTS / "imgcls-export")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "model= is required" in result.stdout + result.stderr
