"""Evaluation: the NoW benchmark (alignment, scan-to-mesh distances, its folder layout)."""
