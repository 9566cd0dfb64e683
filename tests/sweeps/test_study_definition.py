"""A study knows the question it answers; a start asking another one is refused, naming the changes and ways out."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from imgcls.sweeps.study_definition import (
    ATTRIBUTE,
    StudyDefinitionError,
    check_study_definition,
    data_fingerprint,
    study_definition,
)

SPACE = {"model.dropout": FloatDistribution(0.1, 0.6), "train.phases.phase2.unfreeze": CategoricalDistribution([0, 10])}
DATA = {"train": "a" * 64, "test": "b" * 64}


def definition(**changes):
    settings = dict(
        metric="val_accuracy",
        direction="maximize",
        distributions=SPACE,
        fixed_overrides=["experiment=demo", "data.train_dir=/data/train"],
        data=DATA,
    )
    return study_definition(**{**settings, **changes})


@pytest.fixture
def study():
    created = optuna.create_study(direction="maximize")
    check_study_definition(created, definition(), storage="memory", allow_change=False)
    return created


def test_a_new_study_stores_its_definition_and_the_same_start_passes(study):
    assert study.user_attrs[ATTRIBUTE] == definition()
    check_study_definition(study, definition(), storage="memory", allow_change=False)


def test_a_changed_metric_is_refused_with_both_ways_out(study):
    with pytest.raises(StudyDefinitionError) as refused:
        check_study_definition(study, definition(metric="val_f1"), storage="sqlite:///s.db", allow_change=False)
    message = str(refused.value)
    assert "\n" not in message
    assert "metric val_accuracy -> val_f1" in message and "sqlite:///s.db" in message
    assert "hydra.sweeper.study_name=" in message and "hydra.sweeper.allow_changed_study=true" in message


def test_a_changed_direction_is_refused_even_when_changes_are_allowed(study):
    with pytest.raises(StudyDefinitionError) as refused:
        check_study_definition(
            study, definition(metric="val_loss", direction="minimize"), storage="memory", allow_change=True
        )
    assert "direction maximize -> minimize" in str(refused.value)
    assert "allow_changed_study" not in str(refused.value), "only a new study can change the direction"


def test_a_changed_search_space_lists_what_changed(study):
    space = {"model.dropout": FloatDistribution(0.2, 0.5), "optimizer.weight_decay": FloatDistribution(1e-5, 1e-2)}
    with pytest.raises(StudyDefinitionError) as refused:
        check_study_definition(study, definition(distributions=space), storage="memory", allow_change=False)
    message = str(refused.value)
    assert "search space model.dropout: Float(low=0.1,high=0.6) -> Float(low=0.2,high=0.5)" in message
    assert "search space lost train.phases.phase2.unfreeze" in message
    assert "search space gained optimizer.weight_decay" in message


def test_changed_overrides_and_data_are_refused_but_data_locations_are_not(study):
    moved = definition(fixed_overrides=["experiment=demo", "data.train_dir=/mnt/other/train"])
    check_study_definition(study, moved, storage="memory", allow_change=False)
    with pytest.raises(StudyDefinitionError, match="override added backbone=resnet50"):
        check_study_definition(
            study,
            definition(fixed_overrides=["experiment=demo", "backbone=resnet50"]),
            storage="memory",
            allow_change=False,
        )
    with pytest.raises(StudyDefinitionError, match="train files differ"):
        check_study_definition(
            study, definition(data={**DATA, "train": "c" * 64}), storage="memory", allow_change=False
        )


def test_allowing_a_change_continues_and_stores_the_new_definition(study):
    changed = definition(metric="val_f1")
    check_study_definition(study, changed, storage="memory", allow_change=True)
    assert study.user_attrs[ATTRIBUTE] == changed
    check_study_definition(study, changed, storage="memory", allow_change=False)


def test_data_fingerprint_follows_the_file_list(image_dataset, tmp_path, make_image_tree, compose_config):
    def fingerprint(root):
        cfg = compose_config([f"data.train_dir={root / 'training_set'}", f"data.test_dir={root / 'test_set'}"])
        return data_fingerprint(cfg.data)

    copy = tmp_path / "copy"
    make_image_tree(copy / "training_set", per_class=12, seed=1)
    make_image_tree(copy / "test_set", per_class=4, seed=2)
    assert fingerprint(copy) == fingerprint(image_dataset), "the same files elsewhere are the same data"
    (copy / "training_set" / "cat" / "img_000.png").unlink()
    changed = fingerprint(copy)
    assert changed["train"] != fingerprint(image_dataset)["train"]
    assert changed["test"] == fingerprint(image_dataset)["test"]
