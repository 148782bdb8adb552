"""The nvdiffrast FFI backend on a CUDA GPU: the same inputs through the FFI kernels, the
pure-JAX backend and nvdiffrast's own torch ops, on the synthetic FLAME head (9976 triangles):
triangle ids, barycentrics, interpolated values, texture lookups and antialiased images agree
to 1e-5, gradients to 1e-4 (of the largest), inside jit, vmap and shard_map.

FFI and torch run the same kernels: everything agrees exactly there. Against the pure-JAX
backend, CudaRaster snaps vertices to a 1/16-pixel grid before its coverage tests, so a pixel
centre closer than that to an edge may go to the neighbouring triangle: those pixels (and their
neighbours, for antialiasing and gradients) are left out of the comparison, and must be few and
on edges.

On a GPU machine (the library is built on first use when missing):

    jaxface build-nvdiffrast && pytest -q tests/render/test_nvdr_gpu.py
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxface import flame
from jaxface.render import antialias, interpolate, rasterize, texture
from jaxface.render.backend import cuda_device_visible
from jaxface.render.nvdr_ffi import build, ops

pytestmark = pytest.mark.skipif(
    not cuda_device_visible(),
    reason="needs a CUDA GPU: the nvdiffrast FFI kernels run only there (on a GPU machine: "
           "`jaxface build-nvdiffrast && pytest tests/render/test_nvdr_gpu.py`)")

SIZE = 96


@pytest.fixture(scope="module")
def library():
    if not build.library_path().exists():
        build.build_library()
    assert ops.register_targets()


@pytest.fixture(scope="module")
def scene(model):
    """Two posed heads filling most of the image, per-vertex colours, a UV texture."""
    rng = np.random.default_rng(7)
    shape = jnp.asarray(rng.normal(size=(2, model.n_shape)), jnp.float32)
    pose = jnp.zeros((2, 15)).at[:, 1].set(jnp.asarray([0.4, -0.3]))
    v = flame.forward(model, shape, jnp.zeros((2, model.n_expression)), pose).vertices
    v = 7.0 * (v - jnp.array([0.0, -0.02, 0.0]))
    pos = jnp.concatenate([v[..., :2], -0.5 * v[..., 2:3], jnp.ones_like(v[..., :1])], -1)
    colors = jnp.asarray(rng.uniform(size=(2, pos.shape[1], 3)), jnp.float32)
    tex = jnp.asarray(rng.uniform(size=(1, 64, 48, 3)), jnp.float32)
    return pos.astype(jnp.float32), jnp.asarray(model.faces, jnp.int32), colors, tex


def _close(got, want, tol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * max(1.0, np.abs(want).max()))


def _agreeing(pos, tri):
    """Pixels whose 3 x 3 neighbourhood has the same triangle ids in both backends (B, H, W);
    checks that the others are few and on edges (a barycentric near 0 in the JAX result)."""
    rast = rasterize(pos, tri, (SIZE, SIZE), backend="nvdiffrast")[0]
    rast_j = rasterize(pos, tri, (SIZE, SIZE), backend="jax")[0]
    ids, ids_j = np.asarray(rast[..., 3]), np.asarray(rast_j[..., 3])
    differ = ids != ids_j
    covered = (ids > 0) | (ids_j > 0)
    assert covered.mean() > 0.3 and differ.sum() <= 0.01 * covered.sum(), differ.sum()
    u, v = np.asarray(rast_j[..., 0]), np.asarray(rast_j[..., 1])
    edge = np.minimum(np.minimum(u, v), 1 - u - v)
    assert np.all(edge[differ & (ids_j > 0)] < 0.25)
    padded = np.pad(differ, ((0, 0), (1, 1), (1, 1)))
    near = np.zeros_like(differ)
    for di in range(3):
        for dj in range(3):
            near |= padded[:, di:di + SIZE, dj:dj + SIZE]
    return ~near


def test_rasterize_interpolate_texture_antialias_match_the_jax_backend(library, scene):
    pos, tri, colors, tex = scene
    rast, db = jax.jit(lambda p: rasterize(p, tri, (SIZE, SIZE), True, "nvdiffrast"))(pos)
    rast_j, db_j = jax.jit(lambda p: rasterize(p, tri, (SIZE, SIZE), True, "jax"))(pos)
    same = _agreeing(pos, tri)
    _close(np.asarray(rast)[same], np.asarray(rast_j)[same], 1e-5)
    _close(np.asarray(db)[same], np.asarray(db_j)[same], 1e-5)
    # The other primitives on the same rasterization.
    out, da = interpolate(colors, rast, tri, db, backend="nvdiffrast")
    out_j, da_j = interpolate(colors, rast, tri, db, backend="jax")
    _close(out, out_j, 1e-5)
    _close(da, da_j, 1e-5)
    uv = out[..., :2]
    for mode in ("linear", "nearest"):
        for boundary in ("wrap", "clamp", "zero"):
            _close(texture(tex, uv * 1.3 - 0.1, mode, boundary, backend="nvdiffrast"),
                   texture(tex, uv * 1.3 - 0.1, mode, boundary, backend="jax"), 1e-5)
    _close(antialias(out, rast, pos, tri, backend="nvdiffrast"),
           antialias(out, rast, pos, tri, backend="jax"), 1e-5)


def _loss(backend, tri, tex, mask=None):
    """A loss through every primitive; ``mask`` (B, H, W) weights pixels (default all)."""
    def loss(pos, colors):
        rast, db = rasterize(pos, tri, (SIZE, SIZE), True, backend)
        out, da = interpolate(colors, rast, tri, db, backend=backend)
        image = texture(tex, out[..., :2], "linear", "clamp", backend=backend) * out
        image = antialias(image, rast, pos, tri, backend=backend)
        # Per-pixel weights, the same for every image (so vmap over images can be compared).
        weights = jnp.linspace(0.5, 1.5, image[0].size).reshape(image.shape[1:])
        if mask is not None:
            weights = weights * mask[..., None]
            da = da * mask[..., None]
        return jnp.sum(weights * image) + 1e-3 * jnp.sum(da ** 2)

    return loss


def test_gradients_match_the_jax_backend(library, scene):
    pos, tri, colors, tex = scene
    # Pixels the backends rasterize alike (and their neighbours) carry the loss.
    mask = jnp.asarray(_agreeing(pos, tri), jnp.float32)
    got = jax.jit(jax.grad(_loss("nvdiffrast", tri, tex, mask), (0, 1)))(pos, colors)
    want = jax.jit(jax.grad(_loss("jax", tri, tex, mask), (0, 1)))(pos, colors)
    for g, w in zip(got, want, strict=True):
        assert float(jnp.max(jnp.abs(w))) > 0
        _close(g, w, 1e-4)


def test_vmap_and_shard_map_give_the_batched_results(library, scene):
    pos, tri, colors, tex = scene
    grad = jax.grad(_loss("nvdiffrast", tri, tex), (0, 1))
    batched = jax.jit(grad)(pos, colors)
    per_image = jax.jit(jax.vmap(lambda p, c: grad(p[None], c[None])))(pos, colors)
    for b, v in zip(batched, per_image, strict=True):
        _close(v[:, 0], b, 1e-6)
    devices = jax.devices("cuda")
    mesh = jax.make_mesh((len(devices),), ("data",), devices=devices)
    n = len(devices) * 2
    pos_n, colors_n = jnp.tile(pos, (n // 2, 1, 1)), jnp.tile(colors, (n // 2, 1, 1))
    sharded = jax.jit(jax.shard_map(grad, mesh=mesh, in_specs=(P("data"), P("data")),
                                    out_specs=(P("data"), P("data"))))(pos_n, colors_n)
    # Each device sums its own images' loss: per-image gradients are the batched ones.
    for s, b in zip(sharded, batched, strict=True):
        _close(s[:2], b, 1e-6)


def test_agrees_with_nvdiffrast_torch_ops(library, scene):
    torch = pytest.importorskip("torch", reason="the torch extra is not installed")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here: nvdiffrast's torch ops cannot run")
    try:
        import nvdiffrast.torch as dr

        context = dr.RasterizeCudaContext()
    except Exception as e:  # nvdiffrast 0.3.3's JIT plugin build fails on torch >= 2.9
        pytest.skip(f"nvdiffrast's torch plugin cannot be built here: {e}")
    pos, tri, colors, tex = scene

    def t(x):
        return torch.as_tensor(np.asarray(x)).cuda().contiguous()

    pos_t = t(pos).requires_grad_(True)
    tri_t = t(tri)
    rast_t, db_t = dr.rasterize(context, pos_t, tri_t, (SIZE, SIZE), grad_db=True)
    out_t, _ = dr.interpolate(t(colors), rast_t, tri_t)
    image_t = dr.antialias(out_t.contiguous(), rast_t, pos_t, tri_t)
    tex_t = dr.texture(t(tex), out_t[..., :2].contiguous(), filter_mode="linear",
                       boundary_mode="clamp")
    (image_t.sum() + tex_t.sum()).backward()

    def ours(p):
        rast, db = rasterize(p, tri, (SIZE, SIZE), True, "nvdiffrast")
        out, _ = interpolate(colors, rast, tri, backend="nvdiffrast")
        image = antialias(out, rast, p, tri, backend="nvdiffrast")
        looked = texture(tex, out[..., :2], "linear", "clamp", backend="nvdiffrast")
        return jnp.sum(image) + jnp.sum(looked), (rast, db, image, looked)

    (_, (rast, db, image, looked)), d_pos = jax.value_and_grad(ours, has_aux=True)(pos)
    np.testing.assert_array_equal(np.asarray(rast[..., 3]), rast_t[..., 3].detach().cpu())
    _close(rast, rast_t.detach().cpu().numpy(), 1e-5)
    _close(db, db_t.detach().cpu().numpy(), 1e-5)
    _close(image, image_t.detach().cpu().numpy(), 1e-5)
    _close(looked, tex_t.detach().cpu().numpy(), 1e-5)
    _close(d_pos, pos_t.grad.cpu().numpy(), 1e-4)
