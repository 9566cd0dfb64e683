"""Run folder names: what name= puts in them, and no two runs sharing one."""

from __future__ import annotations

import re

from helpers import compose_app
from imgcls.resolvers import folder_suffix


def test_folder_suffix_holds_the_name_made_safe_and_a_random_part():
    assert re.fullmatch(r"_[0-9a-f]{6}", folder_suffix(None))
    assert re.fullmatch(r"_b0-lr=1e-3_[0-9a-f]{6}", folder_suffix("b0 lr=1e-3"))
    assert re.fullmatch(r"_a-b_[0-9a-f]{6}", folder_suffix("../a/b"))
    assert folder_suffix("x") != folder_suffix("x")


def test_runs_composed_in_the_same_second_get_different_folders_and_each_keeps_its_own():
    first = compose_app("train", ["name=baseline"], return_hydra_config=True)
    second = compose_app("train", ["name=baseline"], return_hydra_config=True)
    assert re.search(r"/outputs/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d_baseline_[0-9a-f]{6}$", first.hydra.run.dir)
    assert first.hydra.run.dir != second.hydra.run.dir
    assert first.hydra.run.dir == first.hydra.run.dir  # resolved once per config, like Hydra's ${now:}
    assert first.hydra.sweep.dir.endswith(first.hydra.run.dir.rsplit("/", 1)[1])
