"""The best model of the whole run: a phase that ends worse than the best before it does not keep its weights."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import keras

from imgcls.resolvers import metric_direction

log = logging.getLogger(__name__)


@dataclass
class PhaseOutcome:
    """What one phase ended with: its best ``monitor`` value, the epoch (counted across phases) it came from, and
    whether its weights were kept as the best of the run so far."""

    best: float | None
    best_epoch: int | None
    kept: bool = True


@dataclass
class BestOfRun:
    """Keeps the weights of the best phase so far by ``monitor`` (each phase ends on its own best epoch)."""

    monitor: str
    phase: str | None = None
    value: float | None = None
    epoch: int | None = None
    outcomes: dict[str, PhaseOutcome] = field(default_factory=dict)
    _weights: list | None = None

    def _better(self, value: float, than: float) -> bool:
        return value < than if metric_direction(self.monitor) == "minimize" else value > than

    def offer(self, phase: str, model: keras.Model, best: float | None, best_epoch: int | None) -> bool:
        """Record ``phase``'s result; keep ``model``'s weights if it is the best so far, else put the best back.

        A phase whose value is unknown (a checkpoint written by an older version) is kept, as before.
        """
        unknown = best is None or not math.isfinite(best)
        if unknown or self.value is None or self._better(best, self.value):
            self.phase, self.value, self.epoch = phase, (None if unknown else best), best_epoch
            self._weights = model.get_weights()
            self.outcomes[phase] = PhaseOutcome(best, best_epoch, kept=True)
            return True
        log.warning(
            "%s ended worse than %s by %s (%.6g against %.6g): its weights are not kept, the run goes on from %s's",
            phase,
            self.phase,
            self.monitor,
            best,
            self.value,
            self.phase,
        )
        model.set_weights(self._weights)
        self.outcomes[phase] = PhaseOutcome(best, best_epoch, kept=False)
        return False
