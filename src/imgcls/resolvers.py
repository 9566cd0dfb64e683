"""OmegaConf resolvers the configs use (registered when ``imgcls`` is imported)."""

from __future__ import annotations

from omegaconf import OmegaConf


def metric_direction(metric: str) -> str:
    """``minimize`` for losses, ``maximize`` for every other metric (accuracy, precision, recall, F1)."""
    return "minimize" if metric.endswith("loss") else "maximize"


def register() -> None:
    """Make ``${imgcls.direction:<metric>}`` available to configs."""
    OmegaConf.register_resolver("imgcls.direction", metric_direction, replace=True)
