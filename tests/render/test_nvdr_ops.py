"""The nvdiffrast backend's JAX side on CPU: what it lowers to for CUDA (the FFI calls, merged
vmap batches, aliasing), argument checks, and its custom VJPs and vmap rule checked against the
pure-JAX backend with pure-JAX stand-ins in place of the CUDA kernels. The kernels themselves
run in tests/render/test_nvdr_gpu.py on a CUDA machine."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.render import antialias, interpolate, rasterize, texture
from jaxface.render.nvdr_ffi import ops
from tests.render.nvdr_stand_ins import stand_in_kernel

H, W = 12, 16


def _scene(rng, batch=2, n_tri=6):
    """Random clip-space triangles (B, 3 T, 4) with overlaps and silhouettes, w in [0.7, 1.5]."""
    xy = rng.uniform(-0.9, 0.9, size=(batch, n_tri, 1, 2)) + rng.normal(
        scale=0.35, size=(batch, n_tri, 3, 2))
    z = rng.uniform(-0.8, 0.8, size=(batch, n_tri, 3, 1))
    w = rng.uniform(0.7, 1.5, size=(batch, n_tri, 3, 1))
    pos = np.concatenate([xy * w, z * w, w], -1).reshape(batch, 3 * n_tri, 4)
    tri = np.arange(3 * n_tri, dtype=np.int32).reshape(n_tri, 3)
    return jnp.asarray(pos, jnp.float32), jnp.asarray(tri)


def _pipeline(backend, grad_db=True):
    """Every primitive, each output feeding a loss, so every cotangent path is used."""
    def loss(pos, attr, tex, tri):
        rast, db = rasterize(pos, tri, (H, W), grad_db=grad_db, backend=backend)
        uv, da = interpolate(attr, rast, tri, db if grad_db else None, backend=backend)
        color = texture(tex, uv, "linear", "clamp", backend=backend)
        out = antialias(color, rast, pos, tri, pos_gradient_boost=2.0, backend=backend)
        weights = jnp.linspace(0.5, 1.5, out.size).reshape(out.shape)
        return jnp.sum(weights * out) + jnp.sum(da ** 2) + jnp.sum(db[..., :2])

    return loss


@pytest.fixture
def stand_ins(monkeypatch):
    """The nvdiffrast backend selected, its kernels replaced by pure-JAX stand-ins."""
    monkeypatch.setattr(ops, "kernel_call", stand_in_kernel)
    monkeypatch.setattr("jaxface.render.backend.nvdiffrast_unavailable_reason", lambda: None)


@pytest.mark.parametrize("grad_db", [True, False])
def test_vjps_match_the_jax_backend(stand_ins, rng, grad_db):
    pos, tri = _scene(rng)
    attr = jnp.asarray(rng.uniform(size=(1, pos.shape[1], 2)), jnp.float32)   # shared
    tex = jnp.asarray(rng.uniform(size=(2, 5, 7, 3)), jnp.float32)
    args = (pos, attr, tex)
    want = jax.value_and_grad(_pipeline("jax", grad_db), (0, 1, 2))(*args, tri)
    got = jax.jit(jax.value_and_grad(_pipeline("nvdiffrast", grad_db), (0, 1, 2)))(*args, tri)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        # float32 sums over pixels, reassociated by jit: 1e-4 of the largest entry (seeds
        # 3650690709 and 2969234429 reached 3e-5 of it).
        scale = float(np.max(np.abs(w)))
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-4 * scale)
    assert float(jnp.max(jnp.abs(got[1][0]))) > 0  # position gradients do flow


def test_vmap_merges_batches_like_a_loop(stand_ins, rng):
    """vmap over positions (3 x B = 2 scenes) with a shared attribute and an unmapped texture:
    one merged call per kernel, the same values and gradients as calling per scene."""
    scenes = [_scene(rng) for _ in range(3)]
    tri = scenes[0][1]
    pos = jnp.stack([p for p, _ in scenes])
    attr = jnp.asarray(rng.uniform(size=(1, pos.shape[2], 2)), jnp.float32)
    tex = jnp.asarray(rng.uniform(size=(1, 5, 7, 3)), jnp.float32)
    grad = jax.grad(_pipeline("nvdiffrast"), (0, 1, 2))
    got = jax.jit(jax.vmap(grad, in_axes=(0, None, None, None)))(pos, attr, tex, tri)
    for k in range(3):
        want = jax.grad(_pipeline("jax"), (0, 1, 2))(pos[k], attr, tex, tri)
        for g, w in zip(got, want, strict=True):
            scale = float(np.max(np.abs(w)))
            np.testing.assert_allclose(np.asarray(g[k]), np.asarray(w), rtol=1e-5,
                                       atol=1e-4 * scale)


def test_grad_of_a_vmapped_loss_matches(stand_ins, rng):
    """grad(vmap(...)): the custom VJPs batched by vmap (the other order of the two)."""
    scenes = [_scene(rng) for _ in range(2)]
    tri = scenes[0][1]
    pos = jnp.stack([p for p, _ in scenes])
    attr = jnp.asarray(rng.uniform(size=(2, 2, pos.shape[2], 2)), jnp.float32)
    tex = jnp.asarray(rng.uniform(size=(1, 5, 7, 3)), jnp.float32)

    def total(backend):
        per_scene = jax.vmap(_pipeline(backend), in_axes=(0, 0, None, None))
        return lambda p, a: jnp.sum(per_scene(p, a, tex, tri))

    got = jax.jit(jax.grad(total("nvdiffrast"), (0, 1)))(pos, attr)
    want = jax.grad(total("jax"), (0, 1))(pos, attr)
    for g, w in zip(got, want, strict=True):
        scale = float(np.max(np.abs(w)))
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-4 * scale)


def test_vmap_of_images_only_broadcasts_the_unmapped_geometry(stand_ins, rng):
    pos, tri = _scene(rng)
    rast, _ = rasterize(pos, tri, (H, W), backend="jax")
    colors = jnp.asarray(rng.uniform(size=(4,) + rast.shape[:3] + (3,)), jnp.float32)
    got = jax.vmap(lambda c: antialias(c, rast, pos, tri, backend="nvdiffrast"))(colors)
    for k in range(4):  # a batch of 4 and of 1 compile to differently fused float32 programs
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(
            antialias(colors[k], rast, pos, tri, backend="jax")), rtol=1e-5, atol=1e-6)


def test_triangles_cannot_be_vmapped(stand_ins, rng):
    pos, tri = _scene(rng)
    tris = jnp.stack([tri, tri[::-1]])
    with pytest.raises(ValueError, match="triangles cannot be vmapped"):
        jax.vmap(lambda t: rasterize(pos, t, (H, W), backend="nvdiffrast"))(tris)


def test_lowers_to_the_ffi_targets_for_cuda(rng):
    """jit(vmap(grad)) lowered for CUDA on a CPU-only machine: the eight custom calls, each
    with the vmapped axis merged into the image batch (3 x 2 = 6 images)."""
    pos, tri = _scene(rng)
    attr = jnp.asarray(rng.uniform(size=(1, pos.shape[1], 2)), jnp.float32)
    tex = jnp.asarray(rng.uniform(size=(1, 5, 7, 3)), jnp.float32)

    def loss(p):
        rast, db = ops.rasterize(p, tri, (H, W), grad_db=True)
        uv, _ = ops.interpolate(attr, rast, tri, db)
        return jnp.sum(ops.antialias(ops.texture(tex, uv, "linear", "wrap"), rast, p, tri))

    fn = jax.jit(jax.vmap(jax.grad(loss)))
    text = fn.trace(jnp.stack([pos] * 3)).lower(lowering_platforms=("cuda",)).as_text()
    calls = re.findall(r"custom_call @(jaxface_nvdr_\w+)\((.*?)\) \{(.*?)\} : \((.*?)\) ->",
                       text)
    assert sorted(c[0] for c in calls) == sorted(ops.TARGETS)
    signature = {name: types for name, _, _, types in calls}
    assert signature["jaxface_nvdr_rasterize_fwd"].startswith("tensor<6x18x4xf32>, tensor<6x3x")
    assert "tensor<1x18x2xf32>" in signature["jaxface_nvdr_interpolate_fwd"]  # still shared
    assert "tensor<6x12x16x4xf32>" in signature["jaxface_nvdr_interpolate_fwd"]
    config = {name: cfg for name, _, cfg, _ in calls}
    assert "boundary_mode = 1 : i32" in config["jaxface_nvdr_texture_fwd"]
    assert "with_da = true" in config["jaxface_nvdr_interpolate_bwd"]
    # The backward antialias kernel updates the work buffer in place.
    assert re.search(r"output_operand_aliases = \[#stablehlo.output_operand_alias<output_tuple_"
                     r"indices = \[2\], operand_index = 5", text)


def test_arguments_are_checked_before_any_kernel_runs(rng):
    pos, tri = _scene(rng)
    with pytest.raises(TypeError, match="pos must be float32"):
        ops.rasterize(pos.astype(jnp.float16), tri, (H, W))
    with pytest.raises(ValueError, match=r"pos must have shape \(B, V, 4\)"):
        ops.rasterize(pos[..., :3], tri, (H, W))
    with pytest.raises(ValueError, match="resolution must be positive"):
        ops.rasterize(pos, tri, (0, W))
    with pytest.raises(TypeError, match="tri must hold integers"):
        ops.rasterize(pos, tri.astype(jnp.float32), (H, W))
    rast = jnp.zeros((2, H, W, 4), jnp.float32)
    with pytest.raises(ValueError, match="neither 1 nor"):
        ops.interpolate(jnp.zeros((3, 18, 2), jnp.float32), rast, tri)
    with pytest.raises(ValueError, match="filter_mode"):
        ops.texture(jnp.zeros((1, 4, 4, 3)), jnp.zeros((2, H, W, 2)), "cubic")
    with pytest.raises(ValueError, match="must be"):
        ops.texture(jnp.zeros((3, 4, 4, 3)), jnp.zeros((2, H, W, 2)))
    with pytest.raises(ValueError, match="rast"):
        ops.antialias(jnp.zeros((2, H, W, 3)), rast[:, :-1], pos, tri)
