"""resume=<run folder>: the command line a resumed run gets from its folder."""

from __future__ import annotations

import pytest
import yaml

from imgcls.errors import ConfigError
from imgcls.resume_overrides import expand_resume


def run_folder(tmp_path, overrides, name="run"):
    folder = tmp_path / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return folder


def test_resume_folder_reloads_the_runs_overrides(tmp_path):
    folder = run_folder(tmp_path, ["experiment=demo", "model.dropout=0.2", "'data.train_dir=/my data/train'"])
    assert expand_resume([f"resume={folder}"]) == [
        "experiment=demo",
        "model.dropout=0.2",
        "'data.train_dir=/my data/train'",
        "resume=true",
        f"hydra.run.dir={folder}",
    ]


def test_overrides_given_with_it_win_and_flags_stay(tmp_path):
    folder = run_folder(tmp_path, ["experiment=demo", "train.verbose=2", "resume=true"])
    expanded = expand_resume(["train.verbose=0", f"resume={folder}", "--cfg", "job"])
    assert expanded == ["experiment=demo", "train.verbose=0", "--cfg", "job", "resume=true", f"hydra.run.dir={folder}"]


def test_a_folder_name_that_needs_quoting_is_quoted(tmp_path):
    folder = run_folder(tmp_path, [], name="my run's folder")
    assert expand_resume([f"resume={folder}"])[-1] == "hydra.run.dir='" + str(folder).replace("'", "\\'") + "'"


@pytest.mark.parametrize(
    "arguments",
    [
        ["resume=true", "hydra.run.dir=outputs/x"],
        ["resume=false"],
        ["experiment=demo"],
        ["-m", "model.dropout=0.1,0.2"],
    ],
)
def test_other_command_lines_are_unchanged(arguments):
    assert expand_resume(arguments) == arguments


def test_a_missing_folder_or_one_that_is_no_run_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such run folder"):
        expand_resume([f"resume={tmp_path / 'nothing'}"])
    (tmp_path / "plain").mkdir()
    with pytest.raises(ConfigError, match=r"has no \.hydra/overrides\.yaml.*resume=true hydra\.run\.dir="):
        expand_resume([f"resume={tmp_path / 'plain'}"])


def test_a_second_run_folder_is_refused(tmp_path):
    folder = run_folder(tmp_path, ["experiment=demo"])
    with pytest.raises(ConfigError, match="leave out hydra.run.dir"):
        expand_resume([f"resume={folder}", "hydra.run.dir=elsewhere"])
