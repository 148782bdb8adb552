"""Pure-JAX stand-ins for the nvdiffrast FFI kernels, with the kernels' contracts (argument
order, batch layouts, zero-size placeholders, the work buffer, aliasing): substituted for
``jaxface.render.nvdr_ffi.ops.kernel_call`` they let CPU tests check the custom VJPs and the
vmap rule around the kernels against the pure-JAX backend. Backward kernels are the VJPs of the
pure-JAX forward functions."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface.render.antialias import antialias
from jaxface.render.rasterize import interpolate, rasterize
from jaxface.render.texture import texture

FILTERS = {0: "nearest", 1: "linear"}
BOUNDARIES = {1: "wrap", 2: "clamp", 3: "zero"}


def _rasterize_fwd(results, attrs):
    height, width = results[0].shape[1:3]
    return lambda pos, tri: rasterize(pos, tri, (height, width), grad_db=True, backend="jax")


def _rasterize_bwd(results, attrs):
    grad_db = bool(attrs["grad_db"])

    def bwd(pos, tri, rast, d_rast, d_rast_db):
        def f(p):
            return rasterize(p, tri, rast.shape[1:3], grad_db=grad_db, backend="jax")

        _, vjp = jax.vjp(f, pos)
        return vjp((d_rast, d_rast_db if grad_db else jnp.zeros_like(rast)))

    return bwd


def _interpolate_fwd(results, attrs):
    with_da = bool(attrs["with_da"])
    return lambda attr, rast, tri, rast_db: interpolate(
        attr, rast, tri, rast_db if with_da else None, backend="jax")


def _interpolate_bwd(results, attrs):
    with_da = bool(attrs["with_da"])

    def bwd(attr, rast, tri, rast_db, d_out, d_out_da):
        if with_da:
            _, vjp = jax.vjp(lambda a, r, db: interpolate(a, r, tri, db, backend="jax"),
                             attr, rast, rast_db)
            return vjp((d_out, d_out_da))
        _, vjp = jax.vjp(lambda a, r: interpolate(a, r, tri, backend="jax")[0], attr, rast)
        return (*vjp(d_out), jnp.zeros_like(rast_db))

    return bwd


def _texture_modes(attrs):
    return FILTERS[int(attrs["filter_mode"])], BOUNDARIES[int(attrs["boundary_mode"])]


def _texture_fwd(results, attrs):
    filter_mode, boundary_mode = _texture_modes(attrs)
    return lambda tex, uv: (texture(tex, uv, filter_mode, boundary_mode, backend="jax"),)


def _texture_bwd(results, attrs):
    filter_mode, boundary_mode = _texture_modes(attrs)

    def bwd(tex, uv, d_out):
        _, vjp = jax.vjp(lambda t, u: texture(t, u, filter_mode, boundary_mode, backend="jax"),
                         tex, uv)
        d_tex, d_uv = vjp(d_out)
        return d_tex, d_uv if filter_mode == "linear" else jnp.zeros_like(uv)

    return bwd


def _antialias_fwd(results, attrs):
    return lambda color, rast, pos, tri: (antialias(color, rast, pos, tri, backend="jax"),
                                          jnp.zeros(results[1].shape, jnp.float32))


def _antialias_bwd(results, attrs):
    def bwd(color, rast, pos, tri, d_out, work):
        _, vjp = jax.vjp(lambda c, p: antialias(c, rast, p, tri, backend="jax"), color, pos)
        return (*vjp(d_out), work)

    return bwd


STAND_INS = {
    "jaxface_nvdr_rasterize_fwd": _rasterize_fwd,
    "jaxface_nvdr_rasterize_bwd": _rasterize_bwd,
    "jaxface_nvdr_interpolate_fwd": _interpolate_fwd,
    "jaxface_nvdr_interpolate_bwd": _interpolate_bwd,
    "jaxface_nvdr_texture_fwd": _texture_fwd,
    "jaxface_nvdr_texture_bwd": _texture_bwd,
    "jaxface_nvdr_antialias_fwd": _antialias_fwd,
    "jaxface_nvdr_antialias_bwd": _antialias_bwd,
}


def stand_in_kernel(target, results, attrs, aliases):
    """Drop-in for ``ops.kernel_call``: checks the declared result shapes as XLA would."""
    run = STAND_INS[target](results, attrs)

    def call(*args):
        outs = tuple(run(*args))
        for out, want in zip(outs, results, strict=True):
            assert out.shape == want.shape and out.dtype == want.dtype, (target, out, want)
        return outs

    return call
