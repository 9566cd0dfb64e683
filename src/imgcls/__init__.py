"""imgcls: Hydra-configured transfer learning for single-label image classification.

Importing the package registers its Keras layers, so a saved ``model.keras`` loads with
``keras.models.load_model`` after ``import imgcls``.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from imgcls import resolvers as _resolvers  # noqa: E402
from imgcls.models import layers as _layers  # noqa: E402,F401  (registers serializable layers)

_resolvers.register()

__version__ = "0.1.0"
