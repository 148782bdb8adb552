"""nvdiffrast's rasterize, interpolate, texture and antialias as JAX functions: XLA FFI calls
of nvdiffrast's CUDA kernels (``csrc/nvdr_ffi.cpp``), with custom VJPs that call nvdiffrast's
own backward kernels and a vmap rule. CUDA and float32 only; the contracts are those of the
pure-JAX backend in :mod:`jaxface.render` (``rast`` = (u, v, z/w, triangle_id + 1), pixel
centres, texel addressing), which select this backend through ``backend="nvdiffrast"``/"auto".

vmap: every per-image argument (positions, rasterizer outputs, colours) gets the mapped axis
merged into its batch axis, so one kernel launch covers the whole vmapped batch; attributes and
textures of batch 1 stay shared; the triangles cannot be mapped (one mesh per call). Under a
sharded ``jit`` XLA would gather an FFI call's inputs onto one device: call these inside
``jax.shard_map`` over the batch axis (jaxface's train step does).

Memory: CudaRaster keeps per-device buffers it grows with ``cudaMalloc`` outside XLA's pool;
leave some GPU memory free (e.g. ``XLA_PYTHON_CLIENT_MEM_FRACTION=0.9``).
"""

from __future__ import annotations

import ctypes
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.render.nvdr_ffi.build import library_path

# FFI target name -> handler symbol in the library.
TARGETS = {
    "jaxface_nvdr_rasterize_fwd": "JaxfaceNvdrRasterizeFwd",
    "jaxface_nvdr_rasterize_bwd": "JaxfaceNvdrRasterizeBwd",
    "jaxface_nvdr_interpolate_fwd": "JaxfaceNvdrInterpolateFwd",
    "jaxface_nvdr_interpolate_bwd": "JaxfaceNvdrInterpolateBwd",
    "jaxface_nvdr_texture_fwd": "JaxfaceNvdrTextureFwd",
    "jaxface_nvdr_texture_bwd": "JaxfaceNvdrTextureBwd",
    "jaxface_nvdr_antialias_fwd": "JaxfaceNvdrAntialiasFwd",
    "jaxface_nvdr_antialias_bwd": "JaxfaceNvdrAntialiasBwd",
}
FILTER_MODES = {"nearest": 0, "linear": 1}          # nvdiffrast's TEX_MODE_*
BOUNDARY_MODES = {"wrap": 1, "clamp": 2, "zero": 3}  # nvdiffrast's TEX_BOUNDARY_MODE_*

# Argument roles for the vmap rule: IMAGE arrays have the images on axis 0; SHARED ones have
# batch 1 (shared by all images) or the images on axis 0; MESH arrays (triangles) have none.
IMAGE, SHARED, MESH = "image", "shared", "mesh"

_registered_from: str | None = None


def register_targets() -> bool:
    """Registers the handlers of the built library with XLA (CUDA); False when not built."""
    global _registered_from
    path = library_path()
    if _registered_from is None and path.exists():
        library = ctypes.CDLL(str(path))
        for name, symbol in TARGETS.items():
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, symbol)),
                                        platform="CUDA")
        _registered_from = str(path)
    return _registered_from is not None


def ffi_kernel(target: str, results, attrs: dict, aliases: dict | None):
    """The FFI call of ``target``: a function of the argument arrays -> tuple of results."""
    register_targets()
    call = jax.ffi.ffi_call(target, results, input_output_aliases=aliases)
    return lambda *args: tuple(call(*args, **attrs))


# How kernels are called. Tests substitute pure-JAX stand-ins with the same contracts to check
# the VJP and vmap wiring on machines without a GPU.
kernel_call = ffi_kernel


def _f32(shape) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(tuple(shape), jnp.float32)


def _merge(x: jax.Array) -> jax.Array:
    return x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:])


def _op(target: str, roles, follows, results, attrs=None, aliases=None):
    """A kernel call with a vmap rule. ``results(*args)`` gives the result shapes; result i
    is batched like argument ``follows[i]`` (for a SHARED argument: it is that argument's
    gradient, a sum over the images using it)."""
    attrs = attrs or {}

    @jax.custom_batching.custom_vmap
    def op(*args):
        return kernel_call(target, results(*args), attrs, aliases)(*args)

    @op.def_vmap
    def rule(axis_size, in_batched, *args):
        images = next(a.shape[1] if b else a.shape[0]
                      for r, a, b in zip(roles, args, in_batched, strict=True) if r == IMAGE)
        merged, kept, summed = [], [], []
        for i, (role, arg, batched) in enumerate(zip(roles, args, in_batched, strict=True)):
            if role == MESH and batched:
                raise ValueError(f"{target}: the triangles cannot be vmapped (one mesh per "
                                 "call); vmap over positions, attributes or images instead")
            inner = arg.shape[1:] if batched else arg.shape   # one vmapped instance's shape
            depth = inner[0]
            # A batch-1 argument stays shared by all merged images unless a result is its
            # gradient: that must be summed per vmapped instance, not over all of them.
            keep = role == MESH or (role == SHARED and not batched and depth == 1
                                    and i not in follows)
            if not keep:
                full = arg if batched else arg[None]
                full = jnp.broadcast_to(full, (axis_size, images) + inner[1:])
                arg = _merge(full)
            merged.append(arg)
            kept.append(keep)
            summed.append(role == SHARED and depth == 1 and not keep)
        outs = op(*merged)
        out_batched = tuple(not kept[i] for i in follows)
        unmerged = []
        for out, source, batched in zip(outs, follows, out_batched, strict=True):
            if batched:
                out = out.reshape((axis_size, images) + out.shape[1:])
                if summed[source]:
                    out = jnp.sum(out, axis=1, keepdims=True)
            unmerged.append(out)
        return tuple(unmerged), out_batched

    return op


# ----------------------------------------------------------------------------- rasterize

@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _rasterize(pos, tri, resolution, grad_db):
    return _rasterize_fwd(pos, tri, resolution, grad_db)[0]


def _rasterize_fwd(pos, tri, resolution, grad_db):
    height, width = resolution
    op = _op("jaxface_nvdr_rasterize_fwd", (IMAGE, MESH), (0, 0),
             lambda p, t: [_f32((p.shape[0], height, width, 4))] * 2)
    rast, rast_db = op(pos, tri)
    rast_db = rast_db if grad_db else jnp.zeros_like(rast_db)
    return (rast, rast_db), (pos, tri, rast)


def _rasterize_bwd(resolution, grad_db, residuals, cotangents):
    pos, tri, rast = residuals
    d_rast, d_rast_db = cotangents
    if not grad_db:
        d_rast_db = jnp.zeros((pos.shape[0], 0), jnp.float32)
    op = _op("jaxface_nvdr_rasterize_bwd", (IMAGE, MESH, IMAGE, IMAGE, IMAGE), (0,),
             lambda p, *_: [_f32(p.shape)], {"grad_db": bool(grad_db)})
    (d_pos,) = op(pos, tri, rast, d_rast, d_rast_db)
    return d_pos, None


_rasterize.defvjp(_rasterize_fwd, _rasterize_bwd)


# ----------------------------------------------------------------------------- interpolate

@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _interpolate(attr, rast, tri, rast_db, with_da):
    return _interpolate_fwd(attr, rast, tri, rast_db, with_da)[0]


def _interpolate_fwd(attr, rast, tri, rast_db, with_da):
    def results(a, r, *_):
        channels = a.shape[-1]
        return [_f32(r.shape[:3] + (channels,)),
                _f32(r.shape[:3] + ((2 * channels) if with_da else 0,))]

    op = _op("jaxface_nvdr_interpolate_fwd", (SHARED, IMAGE, MESH, IMAGE), (1, 1), results,
             {"with_da": bool(with_da)})
    return op(attr, rast, tri, rast_db), (attr, rast, tri, rast_db)


def _interpolate_bwd(with_da, residuals, cotangents):
    attr, rast, tri, rast_db = residuals
    d_out, d_out_da = cotangents
    op = _op("jaxface_nvdr_interpolate_bwd", (SHARED, IMAGE, MESH, IMAGE, IMAGE, IMAGE),
             (0, 1, 3), lambda a, r, t, db, *_: [_f32(a.shape), _f32(r.shape), _f32(db.shape)],
             {"with_da": bool(with_da)})
    d_attr, d_rast, d_rast_db = op(attr, rast, tri, rast_db, d_out, d_out_da)
    return d_attr, d_rast, None, d_rast_db


_interpolate.defvjp(_interpolate_fwd, _interpolate_bwd)


# ----------------------------------------------------------------------------- texture

@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _texture(tex, uv, filter_mode, boundary_mode):
    return _texture_fwd(tex, uv, filter_mode, boundary_mode)[0]


def _texture_attrs(filter_mode, boundary_mode):
    return {"filter_mode": np.int32(FILTER_MODES[filter_mode]),
            "boundary_mode": np.int32(BOUNDARY_MODES[boundary_mode])}


def _texture_fwd(tex, uv, filter_mode, boundary_mode):
    op = _op("jaxface_nvdr_texture_fwd", (SHARED, IMAGE), (1,),
             lambda t, u: [_f32(u.shape[:3] + t.shape[-1:])],
             _texture_attrs(filter_mode, boundary_mode))
    (out,) = op(tex, uv)
    return out, (tex, uv)


def _texture_bwd(filter_mode, boundary_mode, residuals, d_out):
    tex, uv = residuals
    op = _op("jaxface_nvdr_texture_bwd", (SHARED, IMAGE, IMAGE), (0, 1),
             lambda t, u, _: [_f32(t.shape), _f32(u.shape)],
             _texture_attrs(filter_mode, boundary_mode))
    d_tex, d_uv = op(tex, uv, d_out)
    return d_tex, d_uv


_texture.defvjp(_texture_fwd, _texture_bwd)


# ----------------------------------------------------------------------------- antialias

@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _antialias(color, rast, pos, tri, pos_gradient_boost):
    return _antialias_fwd(color, rast, pos, tri, pos_gradient_boost)[0]


def _antialias_fwd(color, rast, pos, tri, pos_gradient_boost):
    # The work list of silhouette pixels, per image: nvdiffrast's (8 H W) floats per image and
    # a counter (the first image's first 4 floats hold the counters of the whole call).
    op = _op("jaxface_nvdr_antialias_fwd", (IMAGE, IMAGE, IMAGE, MESH), (0, 0),
             lambda c, *_: [_f32(c.shape), _f32((c.shape[0], 8 * c.shape[1] * c.shape[2] + 4))])
    out, work = op(color, rast, pos, tri)
    return out, (color, rast, pos, tri, work)


def _antialias_bwd(pos_gradient_boost, residuals, d_out):
    color, rast, pos, tri, work = residuals
    op = _op("jaxface_nvdr_antialias_bwd", (IMAGE, IMAGE, IMAGE, MESH, IMAGE, IMAGE), (0, 2, 5),
             lambda c, r, p, t, d, w: [_f32(c.shape), _f32(p.shape), _f32(w.shape)],
             aliases={5: 2})
    d_color, d_pos, _ = op(color, rast, pos, tri, d_out, work)
    return d_color, jnp.zeros_like(rast), pos_gradient_boost * d_pos, None


_antialias.defvjp(_antialias_fwd, _antialias_bwd)


# ----------------------------------------------------------------------------- public API

def _require_f32(op: str, **arrays) -> None:
    for name, array in arrays.items():
        if jnp.dtype(array.dtype) != jnp.float32:
            raise TypeError(f"nvdiffrast {op}: {name} must be float32 (the CUDA kernels' type), "
                            f"got {array.dtype}; use backend='jax' for other types")


def _require_rank(op: str, name: str, array, ranks, layout: str) -> None:
    if array.ndim not in ranks:
        raise ValueError(f"nvdiffrast {op}: {name} must have shape {layout}, got {array.shape}")


def _triangles(op: str, tri) -> jax.Array:
    _require_rank(op, "tri", tri, (2,), "(T, 3)")
    if tri.shape[1] != 3 or tri.shape[0] == 0:
        raise ValueError(f"nvdiffrast {op}: tri must have shape (T, 3), T > 0, got {tri.shape}")
    if not jnp.issubdtype(tri.dtype, jnp.integer):
        raise TypeError(f"nvdiffrast {op}: tri must hold integers, got {tri.dtype}")
    return jnp.asarray(tri, jnp.int32)


def rasterize(pos_BxVx4, tri_Tx3, resolution, grad_db: bool = False):
    """nvdiffrast's CUDA rasterizer -> (rast (B, H, W, 4), rast_db (B, H, W, 4), zeros unless
    ``grad_db``); see :func:`jaxface.render.rasterize`."""
    _require_f32("rasterize", pos=pos_BxVx4)
    _require_rank("rasterize", "pos", pos_BxVx4, (3,), "(B, V, 4)")
    if pos_BxVx4.shape[-1] != 4:
        raise ValueError(f"nvdiffrast rasterize: pos must have shape (B, V, 4), got "
                         f"{pos_BxVx4.shape}")
    height, width = (int(r) for r in resolution)
    if height <= 0 or width <= 0:
        raise ValueError(f"nvdiffrast rasterize: resolution must be positive, got {resolution}")
    return _rasterize(pos_BxVx4, _triangles("rasterize", tri_Tx3), (height, width),
                      bool(grad_db))


def interpolate(attr, rast, tri_Tx3, rast_db=None):
    """nvdiffrast's interpolate -> (out (B, H, W, C), out_da (B, H, W, 2C) or (B, H, W, 0));
    ``attr`` is (B, V, C), or (V, C) / (1, V, C) shared; see :func:`jaxface.render.interpolate`."""
    attr = attr[None] if attr.ndim == 2 else attr
    _require_f32("interpolate", attr=attr, rast=rast)
    _require_rank("interpolate", "attr", attr, (3,), "(B, V, C), (1, V, C) or (V, C)")
    _require_rank("interpolate", "rast", rast, (4,), "(B, H, W, 4)")
    if attr.shape[0] not in (1, rast.shape[0]):
        raise ValueError(f"nvdiffrast interpolate: attr's batch {attr.shape[0]} is neither 1 nor "
                         f"rast's {rast.shape[0]}")
    with_da = rast_db is not None
    if with_da:
        _require_f32("interpolate", rast_db=rast_db)
        if rast_db.shape != rast.shape:
            raise ValueError(f"nvdiffrast interpolate: rast_db {rast_db.shape} must match rast "
                             f"{rast.shape}")
    else:
        rast_db = jnp.zeros((rast.shape[0], 0), jnp.float32)
    return _interpolate(attr, rast, _triangles("interpolate", tri_Tx3), rast_db, with_da)


def texture(tex, uv, filter_mode: str = "linear", boundary_mode: str = "wrap"):
    """nvdiffrast's texture lookup without mip-maps -> (B, H, W, C); ``tex`` (B or 1, Ht, Wt, C);
    see :func:`jaxface.render.texture`."""
    if filter_mode not in FILTER_MODES:
        raise ValueError(f"filter_mode must be one of {tuple(FILTER_MODES)}, got {filter_mode!r}")
    if boundary_mode not in BOUNDARY_MODES:
        raise ValueError(f"boundary_mode must be one of {tuple(BOUNDARY_MODES)}, got "
                         f"{boundary_mode!r}")
    _require_f32("texture", tex=tex, uv=uv)
    _require_rank("texture", "tex", tex, (4,), "(B or 1, Ht, Wt, C)")
    _require_rank("texture", "uv", uv, (4,), "(B, H, W, 2)")
    if uv.shape[-1] != 2 or tex.shape[0] not in (1, uv.shape[0]):
        raise ValueError(f"nvdiffrast texture: tex {tex.shape} and uv {uv.shape} must be "
                         "(B or 1, Ht, Wt, C) and (B, H, W, 2)")
    return _texture(tex, uv, filter_mode, boundary_mode)


def antialias(color, rast, pos, tri_Tx3, pos_gradient_boost: float = 1.0):
    """nvdiffrast's analytic antialiasing -> (B, H, W, C); ``pos`` (B, V, 4) or (V, 4); see
    :func:`jaxface.render.antialias`."""
    _require_f32("antialias", color=color, rast=rast, pos=pos)
    _require_rank("antialias", "color", color, (4,), "(B, H, W, C)")
    _require_rank("antialias", "pos", pos, (2, 3), "(B, V, 4) or (V, 4)")
    pos = jnp.broadcast_to(pos[None] if pos.ndim == 2 else pos, (color.shape[0],) + pos.shape[-2:])
    if rast.shape != color.shape[:3] + (4,):
        raise ValueError(f"nvdiffrast antialias: rast {rast.shape} must be "
                         f"{color.shape[:3] + (4,)}")
    return _antialias(color, rast, pos, _triangles("antialias", tri_Tx3),
                      float(pos_gradient_boost))
