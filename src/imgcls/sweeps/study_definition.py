"""What question a study answers, stored with it, so that a sweep never mixes trials of two questions.

A study is defined by its objective (metric and direction), its search space, the overrides every
trial shares, and the data (hashes of the training and test file lists). The first start stores
the definition in the study; a later start with another definition is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, distribution_to_json

from imgcls.errors import ImgclsError
from imgcls.resume_overrides import override_key

ATTRIBUTE = "imgcls_definition"
# Where things are, not what they are: machines sharing a study may mount the same data elsewhere (and
# name their runs' folders as they like).
LOCATION_KEYS = ("data.train_dir", "data.test_dir", "data.cache_dir", "data.quarantine_dir", "data.demo_root", "name")
LOCATION_PREFIXES = ("paths.", "trial.", "hydra.")


class StudyDefinitionError(ImgclsError):
    """The stored study answers another question than this start asks."""


def _is_location(override: str) -> bool:
    key = override_key(override)
    return key in LOCATION_KEYS or key.startswith(LOCATION_PREFIXES)


def study_definition(
    *,
    metric: str,
    direction: str,
    distributions: dict[str, BaseDistribution],
    fixed_overrides: list[str],
    data: dict[str, str],
) -> dict[str, Any]:
    """The definition of a study as plain data (it is stored as a JSON user attribute)."""
    return {
        "metric": metric,
        "direction": direction,
        "search_space": {name: distribution_to_json(d) for name, d in sorted(distributions.items())},
        "fixed_overrides": sorted(o for o in fixed_overrides if not _is_location(o)),
        "data": dict(sorted(data.items())),
    }


def _short(distribution_json: str) -> str:
    spec = json.loads(distribution_json)
    attributes = ",".join(f"{k}={v}" for k, v in spec["attributes"].items() if v not in (None, False))
    return f"{spec['name'].replace('Distribution', '')}({attributes})"


def definition_changes(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between two definitions, each as a short phrase; empty if they are the same."""
    changes = [
        f"{key} {stored.get(key)} -> {current[key]}"
        for key in ("metric", "direction")
        if stored.get(key) != current[key]
    ]
    old_space, new_space = stored.get("search_space", {}), current["search_space"]
    for name in sorted(old_space.keys() | new_space.keys()):
        if name not in new_space:
            changes.append(f"search space lost {name}")
        elif name not in old_space:
            changes.append(f"search space gained {name}={_short(new_space[name])}")
        elif old_space[name] != new_space[name]:
            changes.append(f"search space {name}: {_short(old_space[name])} -> {_short(new_space[name])}")
    old_fixed, new_fixed = set(stored.get("fixed_overrides", [])), set(current["fixed_overrides"])
    changes += [f"override dropped {o}" for o in sorted(old_fixed - new_fixed)]
    changes += [f"override added {o}" for o in sorted(new_fixed - old_fixed)]
    old_data, new_data = stored.get("data", {}), current["data"]
    changes += [
        f"{tree} files differ (file list sha256 {str(old_data.get(tree))[:12]} -> {str(new_data.get(tree))[:12]})"
        for tree in sorted(old_data.keys() | new_data.keys())
        if old_data.get(tree) != new_data.get(tree)
    ]
    return changes


def check_study_definition(study: optuna.Study, current: dict[str, Any], *, storage: str, allow_change: bool) -> None:
    """Store ``current`` in a new study; refuse a study defined otherwise unless ``allow_change``.

    A changed direction is refused even then: Optuna fixes a study's direction when it is created.
    """
    # a new study, or one from before definitions were stored, is taken as defined by this start
    stored = {**study.user_attrs.get(ATTRIBUTE, current), "direction": study.direction.name.lower()}
    changes = definition_changes(stored, current)
    if changes and (not allow_change or stored.get("direction") != current["direction"]):
        way_out = "start a new study with hydra.sweeper.study_name=<new name>"
        if stored.get("direction") == current["direction"]:
            way_out += ", or continue this one anyway with hydra.sweeper.allow_changed_study=true"
        raise StudyDefinitionError(
            f"Study '{study.study_name}' in {storage} was defined otherwise: {'; '.join(changes)}. To go on, {way_out}."
        )
    if study.user_attrs.get(ATTRIBUTE) != current:
        study.set_user_attr(ATTRIBUTE, current)


def data_fingerprint(data_cfg: Any) -> dict[str, str]:
    """SHA-256 of the training and test trees' file lists (computed as manifest.json's ``file_list_sha256``)."""
    from imgcls.data.manifest import file_list_sha256
    from imgcls.data.prepare import scan_trees

    return {name: file_list_sha256(tree.paths, Path(tree.root)) for name, tree in scan_trees(data_cfg).items()}
