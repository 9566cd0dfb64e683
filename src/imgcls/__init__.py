"""imgcls: Hydra-configured transfer learning for single-label image classification.

From Python: :func:`train_model` (what ``imgcls-train`` does), :func:`predict_images` and
:func:`load_images` (see :mod:`imgcls.api`). Importing the package registers its Keras layers, so a
saved ``model.keras`` loads with ``keras.models.load_model`` after ``import imgcls``.
"""

from imgcls.quiet_tensorflow import import_tensorflow_quietly

import_tensorflow_quietly()  # IMGCLS_TF_LOGS=1 shows TensorFlow's C++ start-up logs

from imgcls import resolvers as _resolvers  # noqa: E402
from imgcls.models import layers as _layers  # noqa: E402,F401  (registers serializable layers)

_resolvers.register()

from imgcls.api import TrainingResult, load_images, predict_images, train_model  # noqa: E402

__version__ = "0.1.0"
__all__ = ["TrainingResult", "load_images", "predict_images", "train_model", "__version__"]
