"""The classifier: a Keras Applications backbone with its preprocessing, and a head."""
