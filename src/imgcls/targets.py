"""Build objects that configs name by ``_target_``, limited to callables this project trusts."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate

# Hydra's execution whitelist: the callables a config may select (exact names or package prefixes).
TRUSTED_TARGETS = (
    "imgcls.*",
    "keras.*",
    "tensorflow.distribute.MirroredStrategy",
    "tensorflow.distribute.get_strategy",
    "optuna.pruners.*",
    "optuna.samplers.*",
)


def build(config: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` of ``config`` with plain-Python arguments, under :data:`TRUSTED_TARGETS`."""
    return instantiate(config, _convert_="all", _execution_whitelist_=TRUSTED_TARGETS, **kwargs)
