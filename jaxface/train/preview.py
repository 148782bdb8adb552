"""The TensorBoard preview of a training run: input | coarse render | detail render |
landmarks, one row per image."""

from __future__ import annotations

import jax.numpy as jnp

from jaxface.geometry.framing import frame_batch
from jaxface.reconstruction.assets import jit_with_assets
from jaxface.reconstruction.predict import detail_normal_map, predict, render_geometry
from jaxface.render.overlay import draw_points

# The preview's columns, left to right.
PREVIEW_COLUMNS = ["input", "coarse", "detail", "landmarks"]   # given green, predicted red


def make_preview(graphdef, assets, cfg):
    """-> jit ``preview(params, batch_stats, batch) -> (B, H, 4 W, 3)`` rows of input |
    coarse render | detail render | landmarks (predicted red, given green)."""

    def preview(params, stats, batch, assets):
        batch = frame_batch(batch, cfg.model.image_size, cfg.data.crop_scale)
        out = predict(graphdef, params, stats, batch, assets, cfg)
        coarse = render_geometry(out, batch["image"], assets, cfg).image
        normals = detail_normal_map(out["vertices"], out["displacement"], assets,
                                    cfg.render.backend)
        detail = render_geometry(out, batch["image"], assets, cfg, normals).image
        marks = draw_points(batch["image"], batch["landmarks"], (0.0, 1.0, 0.0))
        marks = draw_points(marks, out["landmarks2d"], (1.0, 0.0, 0.0))
        row = jnp.concatenate([batch["image"], coarse, detail, marks], axis=2)
        return jnp.clip(row, 0.0, 1.0)

    return jit_with_assets(preview, assets)
