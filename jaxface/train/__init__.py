"""Training: the jit-compiled steps, checkpoints, metrics, previews and the loop."""
