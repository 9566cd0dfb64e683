"""The validation split is stratified, deterministic for a seed, and refuses impossible splits."""

from __future__ import annotations

import numpy as np
import pytest

from imgcls.data.scan import ImageFolder
from imgcls.data.split import stratified_split
from imgcls.errors import ConfigError, DataError


def folder_with_counts(counts: dict[str, int]) -> ImageFolder:
    labels = np.concatenate([np.full(n, i) for i, n in enumerate(counts.values())])
    paths = tuple(f"/data/{name}/{j}.png" for name, n in counts.items() for j in range(n))
    return ImageFolder(root=None, class_names=tuple(counts), paths=paths, labels=labels)


def test_split_keeps_class_proportions():
    folder = folder_with_counts({"a": 100, "b": 60, "c": 20})
    train, val = stratified_split(folder, 0.25, seed=3)
    assert len(train) + len(val) == 180
    assert np.bincount(val.labels).tolist() == [25, 15, 5]
    assert set(train.paths).isdisjoint(val.paths)


def test_same_seed_same_split_other_seed_other_split():
    folder = folder_with_counts({"a": 40, "b": 40})
    first = stratified_split(folder, 0.2, seed=7)[1].paths
    assert stratified_split(folder, 0.2, seed=7)[1].paths == first
    assert stratified_split(folder, 0.2, seed=8)[1].paths != first


def test_class_too_small_to_split_names_the_class():
    with pytest.raises(DataError, match=r"'rare': 1"):
        stratified_split(folder_with_counts({"common": 10, "rare": 1}), 0.2, seed=0)


def test_invalid_fraction_is_a_config_error():
    with pytest.raises(ConfigError, match="val_split"):
        stratified_split(folder_with_counts({"a": 10, "b": 10}), 0.0, seed=0)
