import numpy as np

from jaxface.render.overlay import draw_points


def test_draw_points_paints_exactly_the_discs(rng):
    b, h, w, n = 2, 20, 24, 3
    image = rng.uniform(size=(b, h, w, 3)).astype(np.float32)
    points = rng.uniform([0, 0], [w, h], size=(b, n, 2)).astype(np.float32)
    out = np.asarray(draw_points(image, points, (1.0, 0.0, 0.5), radius=2.0))
    cy, cx = np.mgrid[0:h, 0:w] + 0.5
    for i in range(b):
        d2 = (cx[..., None] - points[i, :, 0]) ** 2 + (cy[..., None] - points[i, :, 1]) ** 2
        hit = np.any(d2 <= 4.0, axis=-1)
        np.testing.assert_array_equal(out[i][hit], np.broadcast_to([1.0, 0.0, 0.5],
                                                                   (hit.sum(), 3)))
        np.testing.assert_array_equal(out[i][~hit], image[i][~hit])
