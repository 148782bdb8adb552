import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface import flame
from jaxface.render import (
    face_topology,
    interpolate,
    project_landmarks,
    render,
    render_shape,
    resolve_backend,
)
from tests.render.raster_reference import rasterize_reference
from tests.render.test_antialias import _globe

H, W = 24, 32


def _ball(rng):
    """A bumpy sphere of radius ~0.1 with per-vertex UVs from its rest position."""
    verts, faces = _globe(rng, 10, 14)
    uv = (verts[:, :2] * 0.45 + 0.5).astype(np.float32).astype(np.float64)  # stored as f32
    bumpy = verts * (0.1 + 0.01 * rng.uniform(size=(len(verts), 1)))
    return bumpy, faces, uv


def _numpy_vertex_normals(verts, faces):
    n = np.zeros_like(verts)
    tri = verts[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _numpy_bilinear_clamp(img, u, v):
    """A jaxface UV image (row 0 at v = 1) at (u, v): texel (i, j) centred at
    ((j + 0.5) / S, 1 - (i + 0.5) / S), edge texels repeated outside."""
    size_h, size_w = img.shape[:2]
    col, row = u * size_w - 0.5, (1 - v) * size_h - 0.5
    c0, r0 = np.floor(col).astype(int), np.floor(row).astype(int)
    fc, fr = (col - c0)[..., None], (row - r0)[..., None]

    def at(r, c):
        return img[np.clip(r, 0, size_h - 1), np.clip(c, 0, size_w - 1)]

    return ((1 - fr) * ((1 - fc) * at(r0, c0) + fc * at(r0, c0 + 1))
            + fr * ((1 - fc) * at(r0 + 1, c0) + fc * at(r0 + 1, c0 + 1)))


def _numpy_sh(n, sh):
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    pi = np.pi
    basis = np.stack([
        np.full_like(x, 1 / np.sqrt(4 * pi)),
        2 * pi / 3 * np.sqrt(3 / (4 * pi)) * x,
        2 * pi / 3 * np.sqrt(3 / (4 * pi)) * y,
        2 * pi / 3 * np.sqrt(3 / (4 * pi)) * z,
        pi / 4 * 3 * np.sqrt(5 / (12 * pi)) * x * y,
        pi / 4 * 3 * np.sqrt(5 / (12 * pi)) * x * z,
        pi / 4 * 3 * np.sqrt(5 / (12 * pi)) * y * z,
        pi / 4 * 1.5 * np.sqrt(5 / (12 * pi)) * (x * x - y * y),
        pi / 4 * 0.5 * np.sqrt(5 / (4 * pi)) * (3 * z * z - 1),
    ], -1)
    return basis @ sh


def test_render_matches_numpy_reference(rng, x64):
    verts, faces, uv = _ball(rng)
    topo = face_topology(faces, uv, faces, uv_size=32)
    cam = np.array([rng.uniform(6, 8), *rng.uniform(-0.1, 0.1, 2)])
    rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    verts = verts @ rot.T * [1, 1, np.sign(np.linalg.det(rot))]
    albedo = rng.uniform(size=(16, 16, 3))
    sh = rng.normal(size=(9, 3)) * 0.3 + np.eye(9, 3)[:, 0:1] * 3
    background = rng.uniform(size=(H, W, 3))
    out = render(jnp.asarray(verts[None]), jnp.asarray(cam[None]), jnp.asarray(albedo[None]),
                 jnp.asarray(sh[None]), topo, (H, W), background=jnp.asarray(background[None]),
                 use_antialias=False)

    # ndc: x, y = s X + t, depth s Z; image row 0 at the top (ndc y = +1).
    ndc = np.concatenate([cam[0] * verts[:, :2] + cam[1:], cam[0] * verts[:, 2:]], 1)
    clip = np.concatenate([ndc[:, :1], -ndc[:, 1:2], -ndc[:, 2:] / 10, np.ones((len(ndc), 1))], 1)
    rast, margin = rasterize_reference(clip, faces, H, W)
    ids = rast[..., 3].astype(int)
    lam = np.stack([rast[..., 0], rast[..., 1], 1 - rast[..., 0] - rast[..., 1]], -1)
    corners = faces[np.maximum(ids - 1, 0)]                          # (H, W, 3)
    normals = np.einsum("hwk,hwkc->hwc", lam, _numpy_vertex_normals(verts, faces)[corners])
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    pix_uv = np.einsum("hwk,hwkc->hwc", lam, uv[corners])
    color = _numpy_bilinear_clamp(albedo, pix_uv[..., 0], pix_uv[..., 1]) * _numpy_sh(normals, sh)
    hit = ids > 0
    want = np.where(hit[..., None], color, background)
    clear = margin > 1e-6
    assert hit[clear].mean() > 0.2 and (~hit[clear]).mean() > 0.2
    got = np.asarray(out.image[0])
    np.testing.assert_allclose(got[clear], want[clear], atol=1e-9)
    np.testing.assert_array_equal(np.asarray(out.alpha[0, ..., 0])[clear], hit[clear])
    np.testing.assert_allclose(np.asarray(out.uv[0])[clear & hit], pix_uv[clear & hit], atol=1e-9)


def test_region_render_matches_numpy_reference(rng, x64):
    """DECA's render for the losses: the face drawn only where the UV region mask (looked up
    at each pixel's UV, bilinearly) is on, the input image elsewhere; the region and the
    coverage are constants, so the outline gets no gradient."""
    verts, faces, uv = _ball(rng)
    topo = face_topology(faces, uv, faces, uv_size=32)
    cam = np.array([rng.uniform(6, 8), *rng.uniform(-0.1, 0.1, 2)])
    albedo = rng.uniform(size=(16, 16, 3))
    sh = rng.normal(size=(9, 3)) * 0.3 + np.eye(9, 3)[:, 0:1] * 3
    background = rng.uniform(size=(H, W, 3))
    # Half the UV square on (a random half: left/right/top/bottom), so that both the region
    # and the face outside it cover enough pixels for every seed.
    region = np.rot90((np.arange(8) >= 4).astype(float)[None, :, None].repeat(8, 0),
                      k=int(rng.integers(4)))

    def draw(v, c):
        return render(v, c, jnp.asarray(albedo[None]), jnp.asarray(sh[None]), topo, (H, W),
                      background=jnp.asarray(background[None]), use_antialias=False,
                      region_uv_mask=jnp.asarray(region))

    out = draw(jnp.asarray(verts[None]), jnp.asarray(cam[None]))
    ndc = np.concatenate([cam[0] * verts[:, :2] + cam[1:], cam[0] * verts[:, 2:]], 1)
    clip = np.concatenate([ndc[:, :1], -ndc[:, 1:2], -ndc[:, 2:] / 10, np.ones((len(ndc), 1))], 1)
    rast, margin = rasterize_reference(clip, faces, H, W)
    ids = rast[..., 3].astype(int)
    lam = np.stack([rast[..., 0], rast[..., 1], 1 - rast[..., 0] - rast[..., 1]], -1)
    corners = faces[np.maximum(ids - 1, 0)]
    normals = np.einsum("hwk,hwkc->hwc", lam, _numpy_vertex_normals(verts, faces)[corners])
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    pix_uv = np.einsum("hwk,hwkc->hwc", lam, uv[corners])
    color = _numpy_bilinear_clamp(albedo, pix_uv[..., 0], pix_uv[..., 1]) * _numpy_sh(normals, sh)
    weight = (ids > 0)[..., None] * _numpy_bilinear_clamp(region, pix_uv[..., 0], pix_uv[..., 1])
    want = color * weight + background * (1 - weight)
    clear = margin > 1e-6
    assert ((weight[..., 0] > 0.99) & clear).mean() > 0.05
    assert ((weight[..., 0] < 0.01) & (ids > 0) & clear).mean() > 0.05   # face, not region
    np.testing.assert_allclose(np.asarray(out.image[0])[clear], want[clear], atol=1e-9)
    np.testing.assert_allclose(np.asarray(out.alpha[0])[clear], weight[clear], atol=1e-9)
    # No gradient through the region's outline: the coverage is a constant.
    v, c = jnp.asarray(verts[None]), jnp.asarray(cam[None])
    dv, dc = jax.grad(lambda v, c: jnp.sum(draw(v, c).alpha), argnums=(0, 1))(v, c)
    assert np.all(np.asarray(dv) == 0) and np.all(np.asarray(dc) == 0)
    # ... while the shading inside it still pulls on the geometry.
    dv = jax.grad(lambda v: jnp.sum(draw(v, c).image))(v)
    assert np.abs(np.asarray(dv)).max() > 0


def test_antialiased_alpha_gives_area_and_scale_gradient(rng, x64):
    """A camera-facing polygon (a triangle fan, every boundary edge a silhouette of a triangle
    larger than a pixel): the antialiased coverage sum(alpha) is its area in pixels, and as the
    area grows with the camera scale s squared, d sum(alpha) / ds ~ 2 area / s. nvdiffrast's
    antialiasing sees slanted edges only through pixel pairs across them, so the gradient is
    an approximation: within 15% here (it is exact for axis-aligned edges, see
    test_antialias.py)."""
    n = 24
    angle = np.sort(rng.uniform(0, 2 * np.pi, n))
    radius = 0.1 * (1 + 0.2 * rng.uniform(size=n))
    rim = np.stack([radius * np.cos(angle), radius * np.sin(angle), np.zeros(n)], 1)
    verts = np.concatenate([[[0.0, 0.0, 0.0]], rim])
    faces = np.array([[0, 1 + i, 1 + (i + 1) % n] for i in range(n)])
    topo = face_topology(faces, verts[:, :2] * 2 + 0.5, faces, uv_size=8)
    albedo, sh = jnp.full((1, 8, 8, 3), 0.5), jnp.zeros((1, 9, 3)).at[:, 0].set(3.0)
    size = (48, 64)

    def coverage(s):
        cam = jnp.stack([s, 0.0, 0.1])[None]
        return render(jnp.asarray(verts[None]), cam, albedo, sh, topo, size).alpha

    s = 5.0 + rng.uniform()
    alpha = np.asarray(coverage(s))
    grad = float(jax.grad(lambda s: jnp.sum(coverage(s)))(s))
    p = rim[:, :2] * s * [size[1] / 2, size[0] / 2]
    area = 0.5 * abs(np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1]))
    assert alpha.min() >= 0 and alpha.max() <= 1
    assert np.sum((alpha > 0.02) & (alpha < 0.98)) > 30  # soft silhouette pixels
    np.testing.assert_allclose(alpha.sum(), area, rtol=0.01)
    assert 0.85 < grad / (2 * area / s) < 1.05, grad / (2 * area / s)


def test_project_landmarks_land_on_the_rendered_surface(model, rng):
    topo = face_topology(model.faces, model.uvs, model.uv_faces, uv_size=32)
    out = flame.forward(model, jnp.asarray(rng.normal(size=(1, 100)), jnp.float32) * 0.5,
                        jnp.zeros((1, 50)), jnp.zeros((1, 15)))
    s = 5.0 + rng.uniform()
    cam = jnp.asarray([[s, *rng.uniform(-0.1, 0.1, 2)]], jnp.float32)
    size = (96, 80)
    r = render(out.vertices, cam, jnp.full((1, 8, 8, 3), 0.5), jnp.zeros((1, 9, 3)), topo, size)
    world, _ = interpolate(out.vertices, r.rast, topo.faces)
    lmk = out.landmarks3d_static[:, 19:]  # brows, eyes, nose, mouth: seen from the front
    pix = np.asarray(project_landmarks(lmk, cam, size))[0]
    col, row = np.floor(pix).astype(int).T
    seen = np.asarray(world)[0, row, col]
    # The surface point drawn at the landmark's pixel is the landmark, up to half a pixel
    # diagonal in world units (xy) and the surface's slope over that distance (z, not checked).
    pixel_world = 2.0 / (s * np.array(size[::-1]))
    err = np.abs(seen[:, :2] - np.asarray(lmk)[0, :, :2])
    assert np.all(err <= pixel_world + 1e-6), err / pixel_world


def test_render_shape_of_a_camera_facing_square(rng):
    verts = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], float) * 0.05
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    topo = face_topology(faces, verts[:, :2] * 5 + 0.5, faces, uv_size=8)
    background = rng.uniform()
    img = np.asarray(render_shape(jnp.asarray(verts[None]), jnp.asarray([[10.0, 0.0, 0.0]]),
                                  topo, (H, W), background=background))[0]
    # DECA's gray 180/255 under five lights of 1.7, four at 45 degrees diagonals and one
    # frontal: mean cosine (4 / sqrt(3) + 1) / 5.
    want = 180 / 255 * 1.7 * (4 / np.sqrt(3) + 1) / 5
    inside = np.zeros((H, W), bool)
    inside[H // 2 - 5:H // 2 + 5, W // 2 - 5:W // 2 + 5] = True  # the square is 12 x 16 px
    np.testing.assert_allclose(img[inside], want, rtol=1e-6)
    np.testing.assert_allclose(img[:3], background, rtol=1e-6)
    low, high = min(want, background) - 1e-6, max(want, background) + 1e-6
    assert np.all(img >= low) and np.all(img <= high)


def test_render_config_drives_the_renderer(model, load_config):
    cfg = load_config("render")
    assert resolve_backend(cfg.backend) == "jax"  # no nvdiffrast library or GPU here
    topo = face_topology(model.faces, model.uvs, model.uv_faces, uv_size=16,
                         backend=cfg.backend)
    assert topo.uv_size == 16 and not topo.uv_flipped
    cfg.backend = "opengl"
    with pytest.raises(ValueError, match="render backend must be one of"):
        face_topology(model.faces, model.uvs, model.uv_faces, backend=cfg.backend)
