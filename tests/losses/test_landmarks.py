import jax
import jax.numpy as jnp
import numpy as np

from jaxface.losses import deca_landmark_weights, eye_closure, landmark_l1
from tests.finite_differences import assert_directional_derivative


def _np_landmark_l1(pred, target, w):
    per = np.abs(pred - target).sum(-1)
    return np.mean((per * w).sum(-1) / w.sum())


def _np_eye(pred, target):
    pairs = [(37, 41), (38, 40), (43, 47), (44, 46)]  # the 68 scheme's eyelids, 0-based
    total = []
    for b in range(pred.shape[0]):
        for i, h in pairs:
            total.append(np.abs((target[b, i] - target[b, h]) - (pred[b, i] - pred[b, h])).sum())
    return np.mean(total)


def test_landmark_losses_against_numpy(rng, x64):
    pred, target = rng.normal(size=(4, 68, 2)), rng.normal(size=(4, 68, 2))
    w = rng.uniform(0.5, 3, 68)
    np.testing.assert_allclose(float(landmark_l1(jnp.asarray(pred), jnp.asarray(target))),
                               _np_landmark_l1(pred, target, np.ones(68)), rtol=1e-12)
    np.testing.assert_allclose(float(landmark_l1(jnp.asarray(pred), jnp.asarray(target),
                                                 jnp.asarray(w))),
                               _np_landmark_l1(pred, target, w), rtol=1e-12)
    np.testing.assert_allclose(float(eye_closure(jnp.asarray(pred), jnp.asarray(target))),
                               _np_eye(pred, target), rtol=1e-12)
    weights = deca_landmark_weights()
    assert weights.shape == (68,) and weights[30] == 3 and weights[0] == 1 and weights[60] == 1.5


def test_eye_loss_ignores_where_the_eyes_are(rng, x64):
    """Only the eyelid offsets count: moving both eyes rigidly changes nothing."""
    target = rng.normal(size=(2, 68, 2))
    shifted = target.copy()
    shifted[:, 36:48] += rng.normal(size=(2, 1, 2))
    assert float(eye_closure(jnp.asarray(shifted), jnp.asarray(target))) < 1e-12
    assert float(landmark_l1(jnp.asarray(shifted), jnp.asarray(target))) > 0.01


def test_landmark_gradients_match_finite_differences(rng, x64):
    target = jnp.asarray(rng.normal(size=(3, 68, 2)))
    pred = jnp.asarray(rng.normal(size=(3, 68, 2)))
    w = jnp.asarray(rng.uniform(0.5, 3, 68))
    for loss in (lambda p: landmark_l1(p, target, w), lambda p: eye_closure(p, target)):
        grad = jax.grad(loss)(pred)
        for _ in range(3):  # (L1 kinks are measure-zero for random points)
            assert_directional_derivative(loss, pred, grad, rng.normal(size=pred.shape),
                                          eps=1e-7)
