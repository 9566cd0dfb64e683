"""Writers of serving artifacts (SavedModel, TFLite, ONNX), their runtimes, and their check on the test set.

:mod:`imgcls.export` is the app that picks one. Every artifact takes raw 0-255 RGB float32 images of
shape ``(batch, size, size, 3)`` and returns softmax probabilities.
"""

from imgcls.errors import ImgclsError


class ExportError(ImgclsError):
    """The model cannot be written in the requested format."""
