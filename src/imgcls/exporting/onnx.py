"""The ONNX artifact: converted by Keras's exporter (tf2onnx on the TensorFlow backend), run by ONNX Runtime."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from imgcls.compat.tf2onnx_transpose import fix_transpose_optimizer
from imgcls.exporting import ExportError
from imgcls.exporting.extra import import_extra

REQUIRED = ("tf2onnx", "onnx", "onnxruntime")
INPUT_NAME = "image"
OUTPUT_NAME = "output_0"  # as in the SavedModel and TFLite signatures
BATCH = "batch"


def check_onnx_extra() -> None:
    """Fail with the install command unless the packages of ``imgcls[export]`` that ONNX needs import."""
    for module in REQUIRED:
        import_extra(module, needed_for="format=onnx")


def export_onnx(model: keras.Model, path: Path) -> None:
    """An ONNX file with input ``image`` and output ``output_0``, both of dynamic batch size ``batch``."""
    check_onnx_extra()
    import onnx

    fix_transpose_optimizer()
    try:
        # a model loaded from model.keras was never called, and Keras then wants the input signature given
        image = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name=INPUT_NAME)
        with warnings.catch_warnings():  # Keras's numpy-2 patch of tf2onnx probes np.object, which warns
            warnings.filterwarnings("ignore", "In the future `np.object`", FutureWarning)
            model.export(str(path), format="onnx", verbose=False, input_signature=[image])
    except Exception as error:  # tf2onnx's errors are of many types
        raise ExportError(f"ONNX conversion of {model.name} failed: {error}") from error
    proto = onnx.load(str(path))
    name_input_and_output(proto.graph)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def name_input_and_output(graph) -> None:
    """Rename tf2onnx's output (``Identity:0``) to :data:`OUTPUT_NAME`, and call both batch dimensions ``batch``."""
    (image,) = graph.input
    (output,) = graph.output
    if image.name != INPUT_NAME:
        raise ExportError(f"the ONNX graph's input is {image.name!r}, not {INPUT_NAME!r}.")
    old = output.name
    for node in graph.node:
        node.output[:] = [OUTPUT_NAME if name == old else name for name in node.output]
        node.input[:] = [OUTPUT_NAME if name == old else name for name in node.input]
    output.name = OUTPUT_NAME
    for value in (image, output):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH


def onnx_predictor(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a float32 image batch to the probabilities the ONNX file at ``path`` returns (on CPU)."""
    ort = import_extra("onnxruntime", needed_for="Running an ONNX model")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda images: session.run([OUTPUT_NAME], {INPUT_NAME: np.asarray(images, np.float32)})[0]
