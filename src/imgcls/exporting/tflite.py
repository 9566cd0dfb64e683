"""The TFLite artifact: float32, float16 weights, or int8 calibrated on training images; run by LiteRT."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from imgcls.exporting import ExportError
from imgcls.exporting.savedmodel import export_savedmodel

QUANTIZE = ("none", "float16", "int8")
CALIBRATED = ("int8",)  # the quantizations that need calibration images

Calibration = Callable[[], Iterable[np.ndarray]]


def export_tflite(
    model: keras.Model, path: Path, *, quantize: str = "none", calibration: Calibration | None = None
) -> None:
    """A TFLite file of builtin ops only, converted from a SavedModel of ``model``; input and output stay float32.

    ``quantize``: none (float32); float16 (weights stored as float16, about half the size, computed
    in float32 on CPUs); int8 (weights and activations int8, about a quarter of the size, every op
    an int8 builtin, with activation ranges measured on ``calibration()``: batches of training images
    as the model takes them). No TensorFlow (Flex) ops, so the plain LiteRT runtime runs it;
    Keras's own ``model.export(format="litert")`` allows Flex ops, which need the Flex delegate.
    """
    if quantize in CALIBRATED and calibration is None:
        raise ValueError(f"quantize={quantize} needs calibration images.")
    with tempfile.TemporaryDirectory(prefix="imgcls-export-") as saved_model:
        export_savedmodel(model, Path(saved_model))
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = lambda: ([np.asarray(batch, np.float32)] for batch in calibration())
        try:
            content = converter.convert()
        except Exception as error:  # the converter's own error types are not public API
            hint = " Try quantize=float16, which keeps float32 arithmetic." if quantize == "int8" else ""
            raise ExportError(
                f"TFLite conversion of {model.name} (quantize={quantize}) failed: {error}.{hint}"
            ) from error
    path.write_bytes(content)


def tflite_interpreter(path: Path):
    """LiteRT's interpreter (package ai-edge-litert, in the export extra), else TensorFlow's deprecated copy of it."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # tf.lite.Interpreter's deprecation notice
            return tf.lite.Interpreter(model_path=str(path))
    return Interpreter(model_path=str(path))


def tflite_predictor(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a float32 image batch to the probabilities the TFLite file at ``path`` returns."""
    runner = tflite_interpreter(path).get_signature_runner("serving_default")
    (image,) = runner.get_input_details()
    (output,) = runner.get_output_details()
    return lambda images: runner(**{image: np.asarray(images, np.float32)})[output]
