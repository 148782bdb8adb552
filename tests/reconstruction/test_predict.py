"""The dense detail surface: at least DECA's 256² UV resolution whatever the detail map's size
(never coarser than the FLAME mesh), each texel moved along the coarse normal by the detail
map's displacement, bilinearly upsampled."""

import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from jaxface import flame
from jaxface.configs import load_config
from jaxface.reconstruction.assets import load_assets
from jaxface.reconstruction.predict import (
    DENSE_MESH_UV_SIZE,
    coarse_uv_maps,
    dense_uv_layout,
    detail_surface,
)

CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "synthetic.py"


@pytest.fixture(scope="module")
def assets():
    cfg = load_config([f"--config={CONFIG}", "--config.model.use_grpam=False",
                       "--config.model.image_size=64", "--config.model.uv_size=64",
                       "--config.render.backend=jax"])
    return load_assets(cfg)


def _bilinear_np(image_SxS: np.ndarray, m: int) -> np.ndarray:
    """Texel-centre bilinear upsampling S -> M in float64, edges clamped."""
    s = image_SxS.shape[0]
    x = np.clip((np.arange(m) + 0.5) * s / m - 0.5, 0, s - 1)
    i0 = np.minimum(np.floor(x).astype(int), s - 2)
    f = x - i0
    rows = image_SxS[i0] * (1 - f)[:, None] + image_SxS[i0 + 1] * f[:, None]
    return rows[:, i0] * (1 - f)[None] + rows[:, i0 + 1] * f[None]


def test_the_dense_surface_is_finer_than_flame_and_displaced_along_the_normals(assets, rng):
    model = assets.model
    out = flame.forward(model, jnp.asarray(rng.normal(size=(2, model.n_shape)), jnp.float32),
                        jnp.asarray(rng.normal(size=(2, model.n_expression)), jnp.float32),
                        jnp.zeros((2, 15)))
    s = assets.topology.uv_size
    displacement = rng.uniform(-0.01, 0.01, (2, s, s, 1)).astype(np.float32)
    dense = dense_uv_layout(assets.topology, "jax")
    surface = detail_surface(out.vertices, jnp.asarray(displacement), assets, "jax", dense)
    positions, covered = surface["detail_positions"], surface["detail_covered"]
    m = DENSE_MESH_UV_SIZE
    assert positions.shape == (2, m, m, 3) and covered.shape == (2, m, m) and s < m
    assert np.array_equal(covered[0], covered[1])
    covered = np.asarray(covered[0])
    assert covered.sum() > model.v_template.shape[0]        # never coarser than FLAME's mesh
    base, normals = (np.asarray(a, np.float64) for a in
                     coarse_uv_maps(out.vertices, assets, "jax", dense))
    offset = np.asarray(positions, np.float64) - base
    # Along the unit normal by the displacement upsampled from S to M (interior texels).
    along = np.sum(offset * normals, -1)
    np.testing.assert_allclose(np.linalg.norm(offset, axis=-1)[:, covered],
                               np.abs(along)[:, covered], atol=1e-6)
    interior = covered.copy()
    edge = m // s
    interior[:edge], interior[-edge:], interior[:, :edge], interior[:, -edge:] = (False,) * 4
    for b in range(2):
        want = _bilinear_np(displacement[b, ..., 0].astype(np.float64), m)
        np.testing.assert_allclose(along[b][interior], want[interior], atol=1e-6)


def test_at_the_dense_size_the_detail_map_is_used_as_it_is(rng):
    cfg = load_config([f"--config={CONFIG}", "--config.model.use_grpam=False",
                       "--config.model.uv_size=256", "--config.render.backend=jax"])
    assets = load_assets(cfg)
    dense = dense_uv_layout(assets.topology, "jax")
    assert dense is assets.topology.uv_rast
    model = assets.model
    out = flame.forward(model, jnp.zeros((1, model.n_shape)), jnp.zeros((1, model.n_expression)),
                        jnp.zeros((1, 15)))
    displacement = rng.uniform(-0.01, 0.01, (1, 256, 256, 1)).astype(np.float32)
    positions = detail_surface(out.vertices, jnp.asarray(displacement), assets, "jax",
                               dense)["detail_positions"]
    base, normals = coarse_uv_maps(out.vertices, assets, "jax")
    np.testing.assert_allclose(np.asarray(positions), np.asarray(base + displacement * normals),
                               atol=1e-7)
