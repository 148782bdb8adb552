import jax.numpy as jnp
import numpy as np
from matplotlib.path import Path

from jaxface.geometry.masks import landmark_hull, landmark_hull_mask, polygon_mask


def test_polygon_mask_matches_matplotlib(rng):
    h, w, p = 40, 52, 9
    angles = np.sort(rng.uniform(0, 2 * np.pi, p))
    radius = rng.uniform(5, 18, p)
    centre = rng.uniform([15, 12], [w - 15, h - 12])
    poly = centre + np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1)
    got = np.asarray(polygon_mask(jnp.asarray(poly[None], jnp.float32), h, w))[0, ..., 0]
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    want = Path(poly).contains_points(np.stack([cols.ravel(), rows.ravel()], 1)).reshape(h, w)
    # Centres within float rounding of an edge may go either way.
    assert np.mean(got == want) > 0.998 and 30 < want.sum() < h * w


def test_landmark_hull_is_raised_above_the_brows(rng):
    lmk = rng.uniform(20, 40, size=(1, 68, 2)).astype(np.float32)
    lmk[0, 8] = [30, 60]                     # chin low (rows grow downwards)
    lmk[0, 17:27, 1] = 20                    # brows at row 20
    hull = np.asarray(landmark_hull(jnp.asarray(lmk)))[0]
    assert hull.shape == (27, 2)
    np.testing.assert_allclose(hull[:17], lmk[0, :17])
    np.testing.assert_allclose(hull[17:, 1], 20 - 0.35 * 40)  # raised by 0.35 brow-to-chin
    mask = np.asarray(landmark_hull_mask(jnp.asarray(lmk), jnp.zeros((1, 64, 64, 3))))
    assert mask.shape == (1, 64, 64, 1)
