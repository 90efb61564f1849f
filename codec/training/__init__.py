"""Training with TensorFlow/Keras. The only part of aec that imports TensorFlow."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notes) hides the
# training log; users can still ask for it by setting the variable themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
