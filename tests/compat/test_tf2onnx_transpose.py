"""The tf2onnx methods that imgcls.compat.tf2onnx_transpose patches still exist with the signatures it wraps."""

from __future__ import annotations

import inspect
import logging

import pytest

from imgcls.compat.tf2onnx_transpose import fix_transpose_optimizer

tf2onnx = pytest.importorskip("tf2onnx", reason="the export extra (pip install -e '.[export]')")


def test_the_patched_methods_keep_their_signatures():
    from tf2onnx.optimizer.transpose_optimizer import TransposeOptimizer

    assert str(inspect.signature(TransposeOptimizer._add_handler)) == "(self, trans, node)"
    assert str(inspect.signature(TransposeOptimizer._handle_node_having_branches)) == "(self, trans, node)"


def test_an_untested_tf2onnx_is_left_alone_with_a_warning(monkeypatch, caplog):
    from tf2onnx.optimizer.transpose_optimizer import TransposeOptimizer

    original = TransposeOptimizer._add_handler
    monkeypatch.setattr(tf2onnx, "__version__", "1.18.0")
    with caplog.at_level(logging.WARNING, logger="imgcls.compat.tf2onnx_transpose"):
        assert fix_transpose_optimizer() is False
    assert TransposeOptimizer._add_handler is original
    assert "tf2onnx>=1.17,<1.18, but tf2onnx 1.18.0 is installed" in caplog.text
    assert "pip install -c constraints.txt -e ." in caplog.text
