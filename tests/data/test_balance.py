"""Balanced class weights give each class the same total weight."""

from __future__ import annotations

import numpy as np
import pytest

from imgcls.data.balance import class_weights
from imgcls.errors import ConfigError


def test_balanced_weights_equalise_class_totals():
    labels = np.array([0] * 90 + [1] * 10 + [2] * 20)
    weights = class_weights(labels, 3, "balanced")
    totals = np.bincount(labels) * weights
    np.testing.assert_allclose(totals, totals[0])
    np.testing.assert_allclose((weights[labels]).mean(), 1.0)


def test_none_and_unknown_modes():
    assert class_weights(np.array([0, 1]), 2, "none") is None
    with pytest.raises(ConfigError, match="class_weights"):
        class_weights(np.array([0, 1]), 2, "inverse")
