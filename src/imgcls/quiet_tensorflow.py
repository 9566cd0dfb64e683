"""TensorFlow's C++ start-up messages off, unless ``IMGCLS_TF_LOGS=1`` asks for them.

``import tensorflow`` writes absl/glog lines straight to file descriptor 2 before
``TF_CPP_MIN_LOG_LEVEL`` takes effect ("All log messages before absl::InitializeLog() ...",
"cudart_stub.cc:31] Could not find cuda drivers ..."). They are dropped here by importing TensorFlow
once with descriptor 2 pointed at a temporary file; the rest of what went there is written back.
Later C++ logs follow ``TF_CPP_MIN_LOG_LEVEL``: the user's, or by default errors only (none at all
without an NVIDIA driver). With ``IMGCLS_TF_LOGS=1`` imgcls changes nothing: TensorFlow logs as it would alone.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

SWITCH = "IMGCLS_TF_LOGS"
# glog/absl line: severity, date, time, thread id, file:line]
CPP_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [^ \]]+:\d+\] ")
ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def tf_logs_wanted() -> bool:
    """Whether ``IMGCLS_TF_LOGS`` asks for TensorFlow's own logging (1, true, yes)."""
    return os.environ.get(SWITCH, "").strip().lower() in ("1", "true", "yes", "on")


def default_min_log_level() -> str:
    """``TF_CPP_MIN_LOG_LEVEL`` unless the user set one: errors only, and none without an NVIDIA driver.

    Without a driver, a CUDA build of TensorFlow reports "failed call to cuInit" on every start.
    """
    return "2" if os.path.exists("/proc/driver/nvidia") else "3"


def is_noise(line: str) -> bool:
    return line.rstrip("\n") == ABSL_PREAMBLE or bool(CPP_LOG_LINE.match(line))


@contextlib.contextmanager
def _stderr_filtered() -> Iterator[None]:
    """Descriptor 2 goes to a temporary file; afterwards its lines that are not C++ log lines go to stderr."""
    if sys.stderr is None:  # no console (pythonw): nothing to keep quiet
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+", errors="replace") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            sys.stderr.writelines(line for line in captured if not is_noise(line))
            sys.stderr.flush()


def import_tensorflow_quietly() -> None:
    """Import TensorFlow without its start-up messages (a no-op with ``IMGCLS_TF_LOGS=1``)."""
    if tf_logs_wanted():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", default_min_log_level())
    if "tensorflow" in sys.modules:
        return
    with _stderr_filtered():
        importlib.import_module("tensorflow")
