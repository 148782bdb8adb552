"""Inference: the shared forward pass (``predict``), ``reconstruct`` on photos and the
analysis-by-synthesis ``fit``."""
