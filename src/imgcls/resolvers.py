"""OmegaConf resolvers the configs use (registered when ``imgcls`` is imported)."""

from __future__ import annotations

from omegaconf import OmegaConf


def metric_direction(metric: str) -> str:
    """``minimize`` for losses, ``maximize`` for every other metric (accuracy, precision, recall, F1)."""
    return "minimize" if metric.endswith("loss") else "maximize"


def means_random_init(weights: object) -> bool:
    """Whether a ``backbone.weights`` value asks for random initialisation (null, or the text null/none/empty)."""
    return weights is None or str(weights).lower() in {"", "null", "none"}


def init_for_weights(weights: object) -> str:
    """``scratch`` for random initialisation (``backbone.weights=null``), ``pretrained`` for any weights."""
    return "scratch" if means_random_init(weights) else "pretrained"


def register() -> None:
    """Make ``${imgcls.direction:<metric>}`` and ``${imgcls.init:<weights>}`` available to configs."""
    OmegaConf.register_resolver("imgcls.direction", metric_direction, replace=True)
    OmegaConf.register_resolver("imgcls.init", init_for_weights, replace=True)
