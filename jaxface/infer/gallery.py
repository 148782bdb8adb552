"""``jaxface reconstruct --html``: an ``index.html`` results gallery next to the per-face
folders: per photo the input crop, the visualisation strip and a turntable of the detailed
shape (pre-rendered frames swapped by a few lines of inline JavaScript: the page needs no
network and no server; open it from the disk); per video its overlay clip and tracks.
"""

from __future__ import annotations

import html
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.flame.rotation import rodrigues
from jaxface.reconstruction.assets import jit_with_assets
from jaxface.reconstruction.mesh_io import write_png
from jaxface.reconstruction.predict import detail_normal_map
from jaxface.render import render_shape

TURNTABLE_DEGREES = 60.0   # the turntable swings +-this around the reconstructed pose


def make_turntable(model, size: int, frames: int):
    """-> jit ``turntable(vertices (B, V, 3), displacement (B, S, S, 1), cam (B, 3)) ->
    (B, frames, size, size, 3)``: the detailed shape turned about the vertical axis through
    its centre, from -TURNTABLE_DEGREES to +TURNTABLE_DEGREES."""
    cfg = model.cfg
    angles = np.radians(np.linspace(-TURNTABLE_DEGREES, TURNTABLE_DEGREES, frames))

    def turntable(vertices, displacement, cam, assets):
        centre = jnp.mean(vertices, axis=1, keepdims=True)

        def one(angle):
            rot = rodrigues(jnp.asarray([[0.0, angle, 0.0]], vertices.dtype))[0]
            turned = (vertices - centre) @ rot.T + centre
            normals = detail_normal_map(turned, displacement, assets, cfg.render.backend)
            return render_shape(turned, cam, assets.topology, (size, size), normals,
                                backend=cfg.render.backend)
        return jax.vmap(one, out_axes=1)(jnp.asarray(angles, vertices.dtype))

    return jit_with_assets(turntable, model.assets)


def write_turntables(turntable, folders: list[pathlib.Path], out: dict) -> None:
    """Turntable frames ``<folder>/turntable/frame_##.png`` of a batch's faces (``folders``
    in the batch's order; ``out``: the batch's outputs; ``turntable``: :func:`make_turntable`)."""
    pictures = jax.device_get(turntable(jnp.asarray(out["vertices"]),
                                        jnp.asarray(out["displacement"]),
                                        jnp.asarray(out["cam"])))
    frames = pictures.shape[1]
    for i, folder in enumerate(folders):
        (folder / "turntable").mkdir(exist_ok=True)
        for k in range(frames):
            write_png(folder / "turntable" / f"frame_{k:02d}.png", np.asarray(pictures[i, k]))


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>jaxface reconstructions</title>
<style>
body {{ font-family: sans-serif; margin: 1em; background: #fafafa; }}
.face {{ margin-bottom: 1.5em; padding: 0.5em; background: white; border: 1px solid #ddd; }}
.face h2 {{ font-size: 1em; margin: 0 0 0.4em 0; }}
.row {{ display: flex; gap: 0.5em; align-items: flex-end; flex-wrap: wrap; }}
.row img {{ height: 224px; image-rendering: auto; }}
video {{ max-height: 360px; max-width: 100%; }}
.failed {{ color: #a00; }}
</style></head><body>
<h1>jaxface reconstructions</h1>
<p>{summary}</p>
{faces}
{failed}
<script>
// Turntables: each img.turntable cycles through its data-frames (no network needed).
for (const img of document.querySelectorAll("img.turntable")) {{
  const frames = JSON.parse(img.dataset.frames);
  let k = 0, step = 1;
  setInterval(() => {{
    if (k + step < 0 || k + step >= frames.length) step = -step;
    k += step;
    img.src = frames[k];
  }}, 120);
}}
</script>
</body></html>
"""


def write_index(out_dir: pathlib.Path, report: dict, frames: int,
                videos: dict | None = None) -> pathlib.Path:
    """``out_dir/index.html`` for a ``reconstruct`` report (its ok and failed photos) and,
    when given, a ``reconstruct_videos`` report (each video's overlay clip, its failures)."""
    videos = videos or {"ok": {}, "failed": {}}
    blocks = []
    faces = [(photo, pathlib.Path(f)) for photo, folders in report["ok"].items()
             for f in folders]
    for photo, folder in faces:
        name = folder.name
        rel = folder.relative_to(out_dir).as_posix()
        frame_paths = [f"{rel}/turntable/frame_{k:02d}.png" for k in range(frames)]
        blocks.append(
            f'<div class="face"><h2>{html.escape(pathlib.Path(photo).name)}</h2>'
            f'<div class="row"><img src="{rel}/{name}_vis.png" alt="input, landmarks, '
            f'coarse shape, detail shape, overlay">'
            f'<img class="turntable" src="{frame_paths[frames // 2]}" alt="turntable" '
            f"data-frames='{_json_list(frame_paths)}'></div></div>")
    for video, r in videos["ok"].items():
        clip = pathlib.Path(os.path.relpath(r["overlay_video"], out_dir)).as_posix()
        tracks = ", ".join(f"track {t}: frames {v['first']}-{v['last']}"
                           for t, v in r["tracks"].items()) or "no face found"
        blocks.append(
            f'<div class="face"><h2>{html.escape(pathlib.Path(video).name)}</h2>'
            f'<video src="{html.escape(clip)}" controls loop muted autoplay playsinline>'
            f'</video><p>{r["frames"]} frames at {r["fps"]:g} fps; {html.escape(tracks)}'
            f'{"; stopped early: " + html.escape(r["error"]) if "error" in r else ""}</p></div>')
    skipped = report["failed"] | videos["failed"]
    failed = "".join(f"<li>{html.escape(pathlib.Path(p).name)}: {html.escape(why)}</li>"
                     for p, why in skipped.items())
    page = PAGE.format(
        summary=f"{len(faces)} face(s) reconstructed"
                + (f", {len(videos['ok'])} video(s)" if videos["ok"] else "")
                + f", {len(skipped)} input(s) skipped.",
        faces="\n".join(blocks),
        failed=f'<h2 class="failed">Skipped</h2><ul class="failed">{failed}</ul>'
        if failed else "")
    path = out_dir / "index.html"
    path.write_text(page)
    return path


def _json_list(items: list[str]) -> str:
    import json

    return html.escape(json.dumps(items), quote=False)
