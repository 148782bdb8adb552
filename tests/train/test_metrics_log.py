"""The run's preview PNGs: the TensorBoard grid, written to previews/ with labelled columns."""

import numpy as np
from PIL import Image

from jaxface.train.metrics_log import MetricsLog


def test_preview_png_has_the_rows_under_labelled_columns(rng, tmp_path):
    rows = rng.uniform(size=(3, 20, 4 * 30, 3))
    log = MetricsLog(tmp_path)
    path = log.image(7, "preview", rows, ["input", "coarse", "detail", "landmarks"])
    log.close()
    assert path == tmp_path / "previews" / "preview_000007.png"
    png = np.asarray(Image.open(path), np.float64) / 255
    header, body = png[:14], png[14:]
    np.testing.assert_allclose(body, np.concatenate(list(rows), 0), atol=0.5 / 255 + 1e-9)
    for k in range(4):   # each column's label: dark text on the white strip
        column = header[:, k * 30:(k + 1) * 30]
        assert column.min() < 0.3 and np.median(column) > 0.9
    assert not MetricsLog(tmp_path, enabled=False).image(1, "preview", rows)
