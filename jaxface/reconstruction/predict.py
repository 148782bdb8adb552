"""The trained regressor as one inference function: prepared face crops (image, landmarks,
mask) -> FLAME parameters, posed and neutral meshes, landmarks, albedo, lighting, camera and
the detail displacement map. Used by ``jaxface reconstruct``, by the exported model and by the
training previews, so all three compute the same thing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface import flame
from jaxface.geometry import vertex_normals
from jaxface.geometry.alignment import aligned_distances
from jaxface.geometry.framing import resize_batch
from jaxface.models import (
    apply,
    camera_from_code,
    decode_params,
    flame_pose,
    light_from_code,
    network_input,
)
from jaxface.models.params import code_of_outputs, with_expression_code
from jaxface.render import project_landmarks, render, sh_shading, world2uv
from jaxface.render.uv import displacement_normals, uv_rasterize


def predict_params(graphdef, params, batch_stats, batch, cfg, sizes, train: bool):
    """E_c on a batch -> (decoded parameter groups, updated batch statistics); with
    ``model.expression_encoder``, its expression (and pose) replace E_c's (EMOCA's)."""
    x = network_input(batch["image"], batch["landmarks"], batch["mask"], cfg.model.use_priors,
                      cfg.model.landmark_channels, cfg.model.landmark_sigma)
    code, batch_stats = apply(graphdef, params, batch_stats, "encode_coarse", x, train=train)
    p = decode_params(code, sizes)
    if cfg.model.expression_encoder != "none":
        exp_code, batch_stats = apply(graphdef, params, batch_stats, "encode_expression",
                                      batch["image"], train=train)
        p = with_expression_code(p, exp_code, cfg.model.expression_encoder)
    return p, batch_stats


def coarse_geometry(p: dict, assets, cfg) -> dict:
    """FLAME, camera, light and albedo of decoded parameters (no rendering)."""
    out = flame.forward(assets.model, p["shape"], p["exp"], flame_pose(p["pose"]))
    size = cfg.model.image_size
    convention = cfg.model.code_convention
    cam = camera_from_code(p["cam"], cfg.train.base_scale, convention)
    return {"vertices": out.vertices, "landmarks3d": out.landmarks3d, "cam": cam,
            "landmarks": project_landmarks(out.landmarks3d, cam, (size, size)),
            "light": light_from_code(p["light"], convention=convention),
            "albedo": jnp.clip(flame.albedo_map(assets.albedo, p["tex"]), 0.0, 1.0)}


def render_geometry(geo: dict, background, assets, cfg, detail_normals_uv=None,
                    size: int | None = None, for_loss: bool = False):
    """Renders :func:`coarse_geometry` (or :func:`predict`'s output) at ``size`` (default:
    the network's input size) over ``background``. ``for_loss``: DECA's render for the
    losses — only the face-and-eye UV region, its coverage a constant, antialiased only with
    ``render.antialias``; else the whole head, antialiased (for looking at)."""
    size = size or cfg.model.image_size
    return render(geo["vertices"], geo["cam"], geo["albedo"], geo["light"], assets.topology,
                  (size, size), detail_normals_uv=detail_normals_uv, background=background,
                  use_antialias=cfg.render.antialias if for_loss else True,
                  backend=cfg.render.backend,
                  region_uv_mask=assets.uv_face_eye_mask if for_loss else None)


def shape_only_render(out, light_Bx9x3, background):
    """DECA's input to the identity network: the render with albedo and light held constant,
    so the identity loss moves only the geometry (its normals), over ``background``."""
    shading = sh_shading(out.normals, jax.lax.stop_gradient(light_Bx9x3))
    face = jax.lax.stop_gradient(out.albedo) * shading
    return face * out.alpha + background * (1.0 - out.alpha)


def coarse_uv_maps(vertices_BxVx3, assets, backend: str, uv_rast_1xSxSx4=None):
    """The coarse surface's positions and unit normals as UV maps (B, S, S, 3) each,
    interpolated by ``backend`` (the run's ``render.backend``) on ``uv_rast`` (default: the
    topology's, at the detail map's size)."""
    top = assets.topology
    rast = top.uv_rast if uv_rast_1xSxSx4 is None else uv_rast_1xSxSx4
    uv_pos = world2uv(vertices_BxVx3, rast, top.faces, backend)
    uv_n = world2uv(vertex_normals(vertices_BxVx3, top.faces), rast, top.faces, backend)
    return uv_pos, uv_n / jnp.maximum(jnp.linalg.norm(uv_n, axis=-1, keepdims=True), 1e-12)


def detail_normal_map(vertices_BxVx3, displacement_BxSxSx1, assets, backend: str):
    """UV normals of the coarse surface displaced by F_d's map plus the fixed displacement
    (DECA's detail normals, in the face-and-eye region; the coarse normals elsewhere)."""
    uv_pos, uv_n = coarse_uv_maps(vertices_BxVx3, assets, backend)
    return displacement_normals(uv_pos, uv_n, displacement_BxSxSx1, assets.uv_face_eye_mask,
                                assets.topology.uv_flipped, assets.fixed_displacement)


# The dense detail mesh's UV resolution at least (DECA's 256: ~60k vertices, so it is never
# coarser than FLAME's 5023 even when the network's detail map is smaller).
DENSE_MESH_UV_SIZE = 256


def dense_uv_layout(topology, backend: str) -> jax.Array:
    """The UV layout rasterized for the dense detail mesh, (1, M, M, 4) with M = max(S,
    :data:`DENSE_MESH_UV_SIZE`): made once by the inference steps that write meshes and
    passed to :func:`detail_surface` (training never draws the dense mesh)."""
    if topology.uv_size >= DENSE_MESH_UV_SIZE:
        return topology.uv_rast
    return uv_rasterize(topology.uv_coords, topology.uv_faces, DENSE_MESH_UV_SIZE, backend)


def with_dense_layout(step, assets, cfg):
    """``step(*args, dense_uv_rast)`` (a jit-compiled step that draws the dense mesh) with
    :func:`dense_uv_layout` made once and bound as its last argument."""
    dense_uv_rast = dense_uv_layout(assets.topology, cfg.render.backend)
    return lambda *args: step(*args, dense_uv_rast)


# What :func:`predict` returns, with its shape (B = batch, V = vertices, S = UV size).
OUTPUTS = {
    "shape": "(B, n_shape) FLAME identity coefficients",
    "exp": "(B, n_expression) FLAME expression coefficients",
    "pose": "(B, 6) global rotation and jaw (axis-angle, radians)",
    "tex": "(B, n_albedo) albedo coefficients",
    "cam": "(B, 3) weak-perspective camera (scale, tx, ty)",
    "light": "(B, 9, 3) spherical-harmonics lighting per colour",
    "detail_code": "(B, detail_code_dim) E_d's code",
    "vertices": "(B, V, 3) posed FLAME mesh (FLAME units: metres)",
    "neutral_vertices": "(B, V, 3) identity only (zero expression and pose; NoW's mesh)",
    "neutral_landmarks3d": "(B, 68, 3) the neutral mesh's landmarks (NoW's 7 are among them)",
    "landmarks3d": "(B, 68, 3) posed 3-D landmarks",
    "landmarks2d": "(B, 68, 2) landmarks projected into the input, pixels (column, row)",
    "albedo": "(B, S, S, 3) UV albedo map, [0, 1]",
    "displacement": "(B, S, S, 1) UV detail displacement along the normal (metres): F_d's "
                    "in the face-and-eye region plus the fixed displacement",
}


def predict(graphdef, params, batch_stats, batch: dict, assets, cfg) -> dict[str, jax.Array]:
    """The networks (inference mode) and FLAME on a batch -> :data:`OUTPUTS`.

    ``batch``: ``image`` (B, H, W, 3) in [0, 1], ``landmarks`` (B, 68, 2) pixels and ``mask``
    (B, H, W, 1) of square crops (``jaxface prepare``'s); resized to the network's input here,
    and ``landmarks2d`` is returned in the given crop's pixels. jit-able.
    """
    net_batch = resize_batch(batch, cfg.model.image_size)
    p, _ = predict_params(graphdef, params, batch_stats, net_batch, cfg, assets.sizes, False)
    code, _ = apply(graphdef, params, batch_stats, "encode_detail", net_batch["image"],
                    train=False)
    disp, _ = apply(graphdef, params, batch_stats, "decode_detail", code, p["exp"],
                    p["pose"][:, 3:], train=False)
    return outputs_of_params(p, assets, cfg, batch["image"].shape[1], disp) | {
        "detail_code": code}


def outputs_of_decoded(graphdef, params, batch_stats, p: dict, assets, cfg, size: int
                       ) -> dict:
    """:func:`outputs_of_params` of decoded parameters (:func:`predict`'s groups, camera and
    light as it returns them, and ``detail_code``: e.g. ``reconstruct``'s parameter files),
    F_d's displacement decoded anew from the detail code, expression and jaw."""
    disp, _ = apply(graphdef, params, batch_stats, "decode_detail", p["detail_code"],
                    p["exp"], p["pose"][:, 3:], train=False)
    code = code_of_outputs(p, cfg.train.base_scale, cfg.model.code_convention)
    return outputs_of_params(code, assets, cfg, size, disp) | {"detail_code": p["detail_code"]}


def outputs_of_params(p: dict, assets, cfg, size: int, displacement_BxSxSx1=None) -> dict:
    """:data:`OUTPUTS` (but ``detail_code``) of decoded coarse parameters ``p`` and F_d's
    displacement (None: none, only the fixed displacement), ``landmarks2d`` in pixels of a
    ``size`` crop: :func:`predict`'s, and ``jaxface fit``'s."""
    geo = coarse_geometry(p, assets, cfg)
    neutral = neutral_head(assets.model, p["shape"])
    displacement = assets.fixed_displacement[None] * jnp.ones_like(p["shape"][:, :1, None, None])
    if displacement_BxSxSx1 is not None:
        displacement = displacement + displacement_BxSxSx1 * assets.uv_face_eye_mask
    return {"shape": p["shape"], "exp": p["exp"], "pose": p["pose"], "tex": p["tex"],
            "cam": geo["cam"], "light": geo["light"],
            "vertices": geo["vertices"], "neutral_vertices": neutral.vertices,
            "neutral_landmarks3d": neutral.landmarks3d,
            "landmarks3d": geo["landmarks3d"],
            "landmarks2d": geo["landmarks"] * (size / cfg.model.image_size),
            "albedo": geo["albedo"], "displacement": displacement}


def reconstruction_errors(geo: dict, shape_BxS, batch: dict, model: flame.FlameModel,
                          region_V: jax.Array | None = None) -> dict[str, jax.Array]:
    """Per-image errors of :func:`coarse_geometry`'s ``geo`` on a batch: ``landmark_px``
    (mean 2-D landmark distance, pixels of the input) and :func:`ground_truth_errors`."""
    landmark_px = jnp.mean(jnp.linalg.norm(geo["landmarks"] - batch["landmarks"], axis=-1),
                           axis=-1)
    return {"landmark_px": landmark_px} | ground_truth_errors(model, geo["vertices"],
                                                             shape_BxS, batch, region_V)


def ground_truth_errors(model: flame.FlameModel, vertices_BxVx3, shape_BxS, batch: dict,
                        region_V: jax.Array | None = None) -> dict[str, jax.Array]:
    """Per-image 3-D errors (mm; FLAME units are metres) against a batch's synthetic ground
    truth, where it has it: ``mesh_mm`` (posed vertices) and ``shape_mm`` (the neutral head,
    identity only), mean vertex distances after a rigid alignment, and ``*_sim_mm`` after a
    similarity (with scale: a weak-perspective camera cannot see a head's absolute size, so
    this is the headline error, as NoW's non-metrical protocol). With ``region_V`` (V,) bool,
    also ``face_mesh_sim_mm`` / ``face_shape_sim_mm``: aligned on and averaged over those
    vertices only (the face the camera sees; scalp, ears, neck and back are not)."""
    out = {}
    pairs = {}
    if "vertices" in batch and batch["vertices"].shape[1:] == vertices_BxVx3.shape[1:]:
        pairs["mesh"] = (vertices_BxVx3, batch["vertices"])
    if "shape" in batch and batch["shape"].shape[-1] == shape_BxS.shape[-1]:
        pairs["shape"] = (neutral_head(model, shape_BxS).vertices,
                          neutral_head(model, batch["shape"]).vertices)
    for name, (pred, true) in pairs.items():
        out[f"{name}_mm"] = 1000 * jnp.mean(aligned_distances(pred, true), axis=-1)
        out[f"{name}_sim_mm"] = 1000 * jnp.mean(aligned_distances(pred, true, with_scale=True),
                                                axis=-1)
        if region_V is not None:
            w = jnp.broadcast_to(region_V.astype(pred.dtype), pred.shape[:2])
            d = aligned_distances(pred, true, with_scale=True, weights_BxN=w)
            out[f"face_{name}_sim_mm"] = 1000 * jnp.sum(d * w, -1) / jnp.sum(w, -1)
    return out


def neutral_head(model: flame.FlameModel, shape_BxS: jax.Array) -> flame.FlameOutput:
    """FLAME with the identity only: zero expression and pose (NoW's "neutral" mesh)."""
    b = shape_BxS.shape[0]
    return flame.forward(model, shape_BxS, jnp.zeros((b, model.n_expression), shape_BxS.dtype),
                         jnp.zeros((b, 15), shape_BxS.dtype))


def detail_surface(vertices_BxVx3: jax.Array, displacement_BxSxSx1: jax.Array, assets,
                   backend: str, dense_uv_rast_1xMxMx4: jax.Array) -> dict[str, jax.Array]:
    """The detailed surface as a UV position map on :func:`dense_uv_layout`'s grid ->
    {"detail_positions" (B, M, M, 3), "detail_covered" (B, M, M) bool}: each texel of the UV
    layout is a point of the coarse surface moved along its normal by :func:`predict`'s
    displacement (masked, with the fixed part; bilinearly upsampled when M > S) — DECA's
    dense detail mesh; ``detail_covered`` marks the texels a UV triangle covers (the others
    are not on the surface; the same for every face, repeated so that each face's outputs
    carry their mesh)."""
    rast = dense_uv_rast_1xMxMx4
    uv_pos, uv_n = coarse_uv_maps(vertices_BxVx3, assets, backend, rast)
    b, m = displacement_BxSxSx1.shape[0], rast.shape[1]
    # Texel centres on both grids: jax.image.resize's half-pixel convention is the UV maps'.
    displacement = jax.image.resize(displacement_BxSxSx1, (b, m, m, 1), "linear")
    return {"detail_positions": uv_pos + displacement * uv_n,
            "detail_covered": jnp.broadcast_to(rast[0, ..., 3] > 0, (b, m, m))}
