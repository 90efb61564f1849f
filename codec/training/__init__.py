"""Training with TensorFlow/Keras. The only part of aec that imports TensorFlow."""
