"""A fix of tf2onnx 1.17's transpose optimizer, fenced to the versions it was written for.

tf2onnx 1.17 stops its transpose optimization on a convolution followed by the addition of a scalar
(MobileNetV3's hard-swish adds 3): it logs the ValueError of ``max(())`` with its traceback and leaves
about a hundred Transpose nodes in a MobileNetV3 graph, one with the fix. The fix sends such an
addition to the optimizer's general handler, which already handles scalars added to other ops.

Patched names: ``TransposeOptimizer._add_handler(self, trans, node)``, calling
``TransposeOptimizer._handle_node_having_branches(self, trans, node)``; ``tests/compat/`` checks them.

Unlike the other fences, a tf2onnx outside the range is not an error: the export stays correct
without the fix (only slower to run), so :func:`fix_transpose_optimizer` then leaves tf2onnx alone and
logs a warning when the export starts.
"""

from __future__ import annotations

import functools
import logging

from imgcls.compat.versions import WrittenFor

log = logging.getLogger(__name__)

TF2ONNX = WrittenFor("tf2onnx", "1.17", "1.18")


def fix_transpose_optimizer() -> bool:
    """Apply the fix when the installed tf2onnx is one it was written for; whether it is applied now."""
    if not TF2ONNX.is_installed():
        log.warning(
            "%s The ONNX model is still correct, but may keep Transpose nodes that the fix removes.",
            TF2ONNX.message("format=onnx's fix of tf2onnx's transpose optimizer (imgcls.compat.tf2onnx_transpose)"),
        )
        return False
    from tf2onnx.optimizer.transpose_optimizer import TransposeOptimizer

    original = TransposeOptimizer._add_handler
    if getattr(original, "imgcls_fix", False):
        return False

    @functools.wraps(original)
    def add_handler(self, trans, node):
        addend = node.inputs[1]
        if addend.is_const() and addend.get_tensor_value(as_list=False).ndim == 0:
            return self._handle_node_having_branches(trans, node)
        return original(self, trans, node)

    add_handler.imgcls_fix = True
    TransposeOptimizer._add_handler = add_handler
    return True
