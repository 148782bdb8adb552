"""A gradient checked against a central difference quotient along a direction."""

import numpy as np


def assert_directional_derivative(loss, x0, grad, direction, eps: float, rtol: float = 1e-6):
    """``sum(grad * direction)`` equals ``loss``'s central difference quotient at ``x0``.

    The directional derivative is a sum of terms of both signs and can cancel far below them
    (seed 4017115298 of the photometric test: 8.7e-6 from terms ~1e-3), where the quotient's
    rounding (~1e-16 |loss| / eps) and the gradient's own summation dominate: besides ``rtol``
    the error may be 1e-8 of the terms' scale plus the loss's size."""
    direction = np.asarray(direction)
    quotient = (float(loss(x0 + eps * direction)) - float(loss(x0 - eps * direction))) / (2 * eps)
    terms = np.asarray(grad) * direction
    floor = 1e-8 * (np.abs(terms).sum() + abs(float(loss(x0))))
    np.testing.assert_allclose(terms.sum(), quotient, rtol=rtol, atol=floor)
