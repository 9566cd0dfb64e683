"""A learning-rate finder in the manner of fastai's ``Learner.lr_find``: train briefly at exponentially growing
rates, record the loss of each step, suggest a rate from the curve, then put the weights back.

The rules, the defaults and the smoothing follow fastai's ``fastai/callback/schedule.py`` (``LRFinder``,
``valley``, ``minimum``, ``lr_find``) and ``fastai/learner.py`` (``AvgSmoothLoss``). The default rule is
``minimum`` (a tenth of the rate at the lowest loss, Leslie Smith's rule for a one-cycle schedule's peak), not
fastai's ``valley``: imgcls's phases warm up and decay (cosine), and on the data sets of
``benchmarks/recipes.py`` ``valley`` suggested 10 to 50 times less than the best rate of a grid.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import matplotlib
import numpy as np
import tensorflow as tf

from imgcls.atomic_files import write_atomically
from imgcls.compat.keras_private import restored_epoch, set_restored_epoch
from imgcls.training.optimizers import compile_for_fit

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# A valley (decreasing run of losses) shorter than this is no valley: the suggestion falls back to fastai's
# "minimum" rule.
VALLEY_POINTS = 3
MINIMUM, VALLEY = "minimum", "valley"
RULES = (MINIMUM, VALLEY)  # train.lr_finder_rule
# fastai's lr_find suggests from the curve without its first tenth of the steps and its last few points.
SKIP_END = 5


@dataclass(frozen=True)
class LrFinderResult:
    """One sweep: the rate, smoothed loss and raw (per-batch) loss of each step, and the suggested rate.

    ``suggestion_index`` is the step whose loss the suggestion was read from by ``rule``: the suggestion is a tenth
    of that step's rate (``minimum``, and ``valley`` on a curve without a valley) or that rate (``valley``; see
    :func:`suggest_learning_rate`). ``stopped_early`` says that the loss diverged before the last step.
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    raw_losses: tuple[float, ...]
    suggestion: float
    suggestion_index: int
    stopped_early: bool
    seconds: float
    rule: str = MINIMUM

    def to_json(self) -> dict:
        """The result as JSON-ready data (``lr_find.json``); a loss that is NaN or infinite is written as null."""
        return {
            "lrs": list(self.lrs),
            "losses": [_finite_or_none(value) for value in self.losses],
            "raw_losses": [_finite_or_none(value) for value in self.raw_losses],
            "suggestion": self.suggestion,
            "suggestion_index": self.suggestion_index,
            "rule": self.rule,
            "stopped_early": self.stopped_early,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> LrFinderResult:
        """The result that :meth:`to_json` wrote."""

        def floats(values):
            return tuple(math.nan if value is None else float(value) for value in values)

        return cls(
            lrs=floats(data["lrs"]),
            losses=floats(data["losses"]),
            raw_losses=floats(data["raw_losses"]),
            suggestion=float(data["suggestion"]),
            suggestion_index=int(data["suggestion_index"]),
            rule=str(data.get("rule", VALLEY)),  # written before the rule was recorded: valley was the only one
            stopped_early=bool(data["stopped_early"]),
            seconds=float(data["seconds"]),
        )


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)} (got {rule!r})")


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def sweep_rates(start_lr: float, end_lr: float, num_steps: int) -> list[float]:
    """The rate of each step: from ``start_lr`` to ``end_lr`` in equal ratios, both ends included."""
    return [start_lr * (end_lr / start_lr) ** (i / (num_steps - 1)) for i in range(num_steps)]


class _Sweep(keras.callbacks.Callback):
    """Sets each step's rate, records its loss and stops ``fit`` once the smoothed loss diverges."""

    def __init__(self, optimizer: keras.optimizers.Optimizer, rates: Sequence[float], diverge_factor, smoothing):
        super().__init__()
        self.optimizer, self.rates = optimizer, rates
        self.diverge_factor, self.smoothing = diverge_factor, smoothing
        self.raw_losses: list[float] = []
        self.losses: list[float] = []
        self._average = 0.0
        self._best = math.inf

    def on_train_batch_begin(self, batch, logs=None):
        self.optimizer.learning_rate = self.rates[len(self.raw_losses)]
        # Keras's logs["loss"] is the mean since the epoch began; emptied here, it holds this batch's loss alone.
        self.model.reset_metrics()

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])
        self.raw_losses.append(loss)
        self._average = self.smoothing * self._average + (1 - self.smoothing) * loss
        smoothed = self._average / (1 - self.smoothing ** len(self.raw_losses))
        self.losses.append(smoothed)
        self._best = min(self._best, smoothed)
        if not math.isfinite(smoothed) or smoothed > self.diverge_factor * self._best:
            self.model.stop_training = True


def find_learning_rate(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    *,
    loss: keras.losses.Loss,
    optimizer_factory: Callable[..., keras.optimizers.Optimizer],
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    diverge_factor: float = 4.0,
    smoothing: float = 0.98,
    jit_compile: bool | str = "auto",
    rule: str = MINIMUM,
) -> LrFinderResult:
    """Train ``model`` for up to ``num_steps`` batches of ``train_ds`` (repeated as needed), step i at
    ``start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))``, and suggest a rate from the losses.

    Training runs in Keras's compiled ``fit`` with a fresh ``optimizer_factory(learning_rate=...)``, so the
    model's own ``train_step`` and ``compile`` apply. The smoothed loss is fastai's (an exponential moving
    average with ``beta=smoothing``, bias-corrected); the sweep stops once it passes ``diverge_factor`` times its
    minimum or is not finite. The suggestion is :func:`suggest_learning_rate` by ``rule`` of the smoothed curve
    without its first tenth of ``num_steps`` and its last 5 points, as fastai's ``lr_find`` does.

    Every variable of the model (weights, BatchNormalization statistics, random-seed states) is put back
    afterwards, also when the sweep raises. The model stays compiled for the sweep: compile it again to train.
    """
    _check_rule(rule)
    if not 0 < start_lr < end_lr:
        raise ValueError(f"the sweep needs 0 < start_lr < end_lr (got {start_lr} and {end_lr})")
    if num_steps < 2:
        raise ValueError(f"the sweep needs num_steps >= 2 (got {num_steps})")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1) (got {smoothing})")
    if diverge_factor <= 1:
        raise ValueError(f"diverge_factor must be above 1 (got {diverge_factor})")
    if not model.built:
        raise ValueError("build the model before the sweep, so that its weights can be put back afterwards")

    rates = sweep_rates(start_lr, end_lr, num_steps)
    optimizer = optimizer_factory(learning_rate=start_lr)
    sweep = _Sweep(optimizer, rates, diverge_factor, smoothing)
    saved = [(variable, variable.numpy()) for variable in model.variables]
    epoch = restored_epoch(model)
    began = time.perf_counter()
    try:
        set_restored_epoch(model, None)  # a restored backup's epoch would make fit(epochs=1) train nothing
        compile_for_fit(model, optimizer=optimizer, loss=loss, steps_per_execution=1, jit_compile=jit_compile)
        model.fit(train_ds.repeat(), epochs=1, steps_per_epoch=num_steps, callbacks=[sweep], verbose=0, shuffle=False)
    finally:
        for variable, value in saved:
            variable.assign(value)
        set_restored_epoch(model, epoch)
        model.stop_training = False
    seconds = time.perf_counter() - began
    if not sweep.raw_losses:
        raise ValueError("train_ds gave no batch")

    steps = len(sweep.raw_losses)
    lrs = rates[:steps]
    start, stop = num_steps // 10, steps - SKIP_END
    if stop - start < VALLEY_POINTS:
        start, stop = 0, steps
    suggestion, index = suggest_learning_rate(lrs[start:stop], sweep.losses[start:stop], rule)
    return LrFinderResult(
        lrs=tuple(lrs),
        losses=tuple(sweep.losses),
        raw_losses=tuple(sweep.raw_losses),
        suggestion=suggestion,
        suggestion_index=start + index,
        stopped_early=steps < num_steps,
        seconds=seconds,
        rule=rule,
    )


def suggest_learning_rate(lrs: Sequence[float], losses: Sequence[float], rule: str = MINIMUM) -> tuple[float, int]:
    """A rate from a loss curve by ``rule``, and the index of the point it was read from.

    ``minimum``, fastai's "minimum": a tenth of the rate at the lowest loss. ``valley``, fastai's default: the
    valley is the longest strictly decreasing subsequence of the losses (the first one to reach that length);
    counting from ``start``, its end minus its length (for a contiguous valley, the point just before it), the
    suggestion is the rate at ``start + int(length / 3) + int(length / 3 / 2)``, about half-way down the valley;
    a curve without a valley of :data:`VALLEY_POINTS` points (flat, rising, too short) gets ``minimum`` instead.
    Losses from the first NaN or infinity on are left out, as fastai's ``lr_find`` does; a curve without one
    finite loss gets a tenth of its first rate.
    """
    _check_rule(rule)
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if lrs.ndim != 1 or lrs.shape != losses.shape or not lrs.size:
        raise ValueError(f"one loss per rate, at least one of each (got {lrs.shape} rates, {losses.shape} losses)")
    finite = np.isfinite(losses)
    usable = len(losses) if finite.all() else int(np.argmin(finite))
    if usable == 0:
        return float(lrs[0]) / 10, 0
    curve = losses[:usable]
    lowest = int(np.argmin(curve))
    if rule == MINIMUM:
        return float(lrs[lowest]) / 10, lowest
    longest = np.ones(usable, dtype=int)
    for i in range(1, usable):
        before = longest[:i][curve[:i] > curve[i]]
        if before.size:
            longest[i] = before.max() + 1
    end = int(np.argmax(longest))
    length = int(longest[end])
    if length < VALLEY_POINTS:
        return float(lrs[lowest]) / 10, lowest
    third = length / 3
    index = end - length + int(third) + int(third / 2)
    return float(lrs[index]), index


def _loss_limits(losses: np.ndarray, raw_losses: np.ndarray) -> tuple[float, float]:
    """The y-range of the curve from its lowest loss up to the highest smoothed loss before that low point;
    the diverged tail after it goes off the top."""
    smoothed = losses[np.isfinite(losses)]
    if not smoothed.size:
        return 0.0, 1.0
    lowest = int(np.argmin(smoothed))
    raw = raw_losses[: lowest + 1]
    low = min(float(smoothed.min()), float(raw[np.isfinite(raw)].min(initial=math.inf)))
    high = float(smoothed[: lowest + 1].max())
    if high <= low:  # the curve starts at its lowest point: show most of its rise
        high = float(np.quantile(smoothed, 0.9))
    pad = 0.05 * (high - low) or 0.05 * abs(low) or 0.05
    return low - pad, high + pad


def lr_find_figure(result: LrFinderResult) -> Figure:
    """Loss against learning rate (log scale): each step's loss faint, the smoothed loss solid, the suggestion
    a dot on the smoothed curve with its value in the legend and the title."""
    lrs = np.asarray(result.lrs, dtype=float)
    losses = np.asarray(result.losses, dtype=float)
    raw = np.asarray(result.raw_losses, dtype=float)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100, layout="constrained")
    ax.plot(lrs, np.where(np.isfinite(raw), raw, np.nan), color="tab:blue", alpha=0.3, label="loss of each step")
    ax.plot(lrs, np.where(np.isfinite(losses), losses, np.nan), color="tab:blue", linewidth=2, label="smoothed loss")
    finite = np.isfinite(losses)
    if finite.any():
        at = float(np.interp(np.log(result.suggestion), np.log(lrs[finite]), losses[finite]))
        ax.plot(result.suggestion, at, "o", color="tab:red", markersize=8, label=f"suggestion {result.suggestion:.2g}")
    ax.set_xscale("log")
    ax.set_ylim(*_loss_limits(losses, raw))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    ending = ", stopped early: the loss diverged" if result.stopped_early else ""
    ax.set_title(f"Learning-rate finder: suggested {result.suggestion:.2g} ({len(lrs)} steps{ending})")
    return fig


def plot_lr_find(result: LrFinderResult, path: str | Path) -> Path:
    """Save :func:`lr_find_figure` as a PNG at ``path`` (800 x 500 pixels), written atomically."""
    path = Path(path)
    fig = lr_find_figure(result)
    try:
        write_atomically(path, lambda partial: fig.savefig(partial, format="png"))
    finally:
        plt.close(fig)
    return path
