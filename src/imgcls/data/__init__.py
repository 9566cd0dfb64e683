"""Finding images, splitting them, and feeding them to the model through tf.data."""
