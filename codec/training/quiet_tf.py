"""Import TensorFlow without its start-up chatter; import this before tensorflow or keras.

TF_CPP_MIN_LOG_LEVEL quiets TensorFlow's later logging, but its first lines
(CUDA probing, oneDNN notes) are written by C++ before absl logging is set
up, so no variable reaches them: while TensorFlow loads and finds its
devices, file descriptor 2 points at /dev/null. AEC_TF_LOGS=1 keeps them.
Kept apart from codec/training/__init__ so that cluster.py and the CLI's
early checks do not load TensorFlow.
"""

import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _native_stderr_silenced():
    if os.environ.get("AEC_TF_LOGS"):
        yield
        return
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _native_stderr_silenced():
    import tensorflow  # noqa: E402

    tensorflow.config.list_physical_devices()  # the CUDA probe happens here, not at the first step
