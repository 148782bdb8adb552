"""Data: the synthetic dataset, photo preparation (detection, crops, landmarks, masks), the
grouped training pipeline and TFDS builders."""
