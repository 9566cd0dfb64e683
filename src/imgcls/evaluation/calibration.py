"""Calibration of predicted probabilities: expected calibration error, reliability diagram, temperature scaling.

Temperature scaling (Guo et al. 2017) divides the logits by one number ``T`` fitted on the validation
split: ``T > 1`` softens overconfident predictions, ``T < 1`` sharpens underconfident ones, and the
predicted class never changes. The models output probabilities, so the logits are ``log p``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from imgcls.evaluation.plots import _as_text, _png
from imgcls.models.layers import TemperatureScaling

# Equal-width confidence bins of the expected calibration error, as in Guo et al. 2017.
CONFIDENCE_BINS = 15
# Temperatures searched when fitting: far wider than any trained network needs.
TEMPERATURE_RANGE = (0.05, 20.0)
# Probabilities are clipped to this before the log, so a zero probability stays finite.
EPSILON = 1e-12


def scale_probabilities(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / temperature)`` of each row of ``probabilities``."""
    logits = np.log(np.clip(probabilities.astype(np.float64), EPSILON, 1.0))
    return softmax(logits / temperature, axis=1)


def _nll(labels: np.ndarray, probabilities: np.ndarray, temperature: float) -> float:
    logits = np.log(np.clip(probabilities.astype(np.float64), EPSILON, 1.0))
    return float(-log_softmax(logits / temperature, axis=1)[np.arange(len(labels)), labels].mean())


def fit_temperature(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The temperature minimising the mean negative log-likelihood of ``labels`` under the scaled probabilities."""
    labels = np.asarray(labels)
    low, high = np.log(TEMPERATURE_RANGE)
    result = minimize_scalar(
        lambda log_t: _nll(labels, probabilities, float(np.exp(log_t))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(result.x))


@dataclass(frozen=True)
class ReliabilityBins:
    """Per confidence bin: its edges, number of predictions, mean confidence and accuracy (0 where empty)."""

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: the mean over bins of |accuracy - confidence|, weighted by their counts."""
        total = self.counts.sum()
        return float(np.abs(self.accuracy - self.confidence) @ self.counts / total) if total else 0.0


def reliability(labels: np.ndarray, probabilities: np.ndarray, bins: int = CONFIDENCE_BINS) -> ReliabilityBins:
    """Bin the top-class confidence of each prediction into ``bins`` equal-width bins of (0, 1]."""
    confidence = probabilities.max(axis=1).astype(np.float64)
    correct = (probabilities.argmax(axis=1) == np.asarray(labels)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # bin i holds confidences in (edges[i], edges[i + 1]]
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.nan_to_num(np.bincount(index, confidence, bins) / counts)
        accuracy = np.nan_to_num(np.bincount(index, correct, bins) / counts)
    return ReliabilityBins(edges, counts, mean_confidence, accuracy)


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = CONFIDENCE_BINS) -> float:
    """The expected calibration error of ``probabilities`` over ``bins`` equal-width confidence bins."""
    return reliability(labels, probabilities, bins).ece


@dataclass(frozen=True)
class Calibration:
    """The test split's reliability before and, where a temperature was fitted, after scaling."""

    before: ReliabilityBins
    after: ReliabilityBins | None = None
    temperature: float | None = None
    val_ece: float | None = None

    @property
    def metrics(self) -> dict[str, float]:
        """Flat metrics.json keys: ``test_ece``, and with a temperature ``temperature``,
        ``test_ece_calibrated`` and ``val_ece`` (before scaling)."""
        metrics = {"test_ece": self.before.ece}
        if self.temperature is not None:
            metrics.update(temperature=self.temperature, test_ece_calibrated=self.after.ece, val_ece=self.val_ece)
        return metrics

    @property
    def summary(self) -> str:
        """One line for the log."""
        if self.temperature is None:
            return f"test ECE {self.before.ece:.4f} (no validation split, so no temperature scaling)"
        return (
            f"temperature {self.temperature:.3f} (fitted on the validation split): "
            f"test ECE {self.before.ece:.4f} before scaling, {self.after.ece:.4f} after"
        )


def calibrate(test, val=None) -> Calibration:
    """The calibration of split predictions ``test`` (with ``labels`` and ``probabilities``); with ``val``,
    also after temperature scaling fitted on it."""
    before = reliability(test.labels, test.probabilities)
    if val is None or len(val.labels) == 0:
        return Calibration(before)
    temperature = fit_temperature(val.labels, val.probabilities)
    return Calibration(
        before,
        reliability(test.labels, scale_probabilities(test.probabilities, temperature)),
        temperature,
        expected_calibration_error(val.labels, val.probabilities),
    )


@_as_text
def reliability_diagram_png(calibration: Calibration) -> bytes:
    """Accuracy against confidence per bin, before and after temperature scaling, with the diagonal."""
    curves = [("before scaling", calibration.before)]
    if calibration.after is not None:
        curves.append((f"after scaling (T = {calibration.temperature:.3f})", calibration.after))
    fig, axes = plt.subplots(
        1, len(curves), figsize=(5.5 * len(curves), 5), dpi=100, squeeze=False, layout="constrained"
    )
    for ax, (title, bins) in zip(axes.flat, curves):
        width = np.diff(bins.edges)
        filled = bins.counts > 0
        ax.bar(
            bins.edges[:-1][filled],
            bins.accuracy[filled],
            width=width[filled],
            align="edge",
            edgecolor="black",
            alpha=0.8,
            label=f"accuracy (ECE = {bins.ece:.4f})",
        )
        ax.bar(
            bins.edges[:-1][filled],
            (bins.confidence - bins.accuracy)[filled],
            bottom=bins.accuracy[filled],
            width=width[filled],
            align="edge",
            color="firebrick",
            alpha=0.3,
            hatch="//",
            label="gap to confidence",
        )
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=f"Test set, {title}")
        ax.legend(loc="upper left")
    return _png(fig)


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """``model`` followed by :class:`TemperatureScaling`: same inputs, layers and class names, scaled outputs."""
    outputs = TemperatureScaling(temperature, name="temperature_scaling")(model.outputs[0])
    return keras.Model(model.inputs, outputs, name=model.name)
