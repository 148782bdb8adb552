"""Inference on photos: ``reconstruct``, the analysis-by-synthesis ``fit`` and NoW predictions
(all built on :mod:`jaxface.reconstruction`)."""
