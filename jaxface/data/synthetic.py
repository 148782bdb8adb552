"""The embedded default dataset: faces rendered from the head model, with ground truth.

Every identity has one random shape beta shared by its K images; each image draws its own
expression, pose (yaw up to +-60 degrees, pitch, roll, jaw), albedo, SH light, a smooth random
background and, for part of the images, an occluder (an ellipse of random colour over the face:
the hand/glasses stand-in). The face is centred and scaled by its landmarks' box, with room
around it for DECA's training crops. Each example stores the image, the 68 projected
landmarks, the face mask (the landmark hull where the face is rendered, minus the occluder),
the identity and the ground truth (parameters, camera, vertices). Everything follows from
(seed, identity, image index).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxface import flame
from jaxface.data.records import shard_name, write_info, write_shard
from jaxface.geometry.masks import landmark_hull, polygon_mask
from jaxface.render import face_topology, project_landmarks, render


@dataclasses.dataclass(frozen=True)
class SynthSettings:
    """What the generator draws from (sizes and ranges)."""

    image_size: int = 224
    uv_size: int = 256
    n_shape: int = 100
    n_expression: int = 50
    n_albedo: int = 20
    max_yaw_deg: float = 60.0
    max_pitch_deg: float = 15.0
    max_roll_deg: float = 10.0
    max_jaw_rad: float = 0.25
    # The image side over the landmarks' box's mean extent, the face centred: room for
    # DECA's training crops (up to 1.8 x) around it.
    context_scale: float = 2.0
    occluder_prob: float = 0.3


def sample_scene(seed: int, identity: int, index: int, s: SynthSettings) -> dict[str, np.ndarray]:
    """The random draws of one image (NumPy, float32): shape depends on (seed, identity)
    only, everything else also on the image index."""
    shape = np.random.default_rng([seed, identity]).normal(size=s.n_shape) * 0.8
    rng = np.random.default_rng([seed, identity, index])
    deg = np.pi / 180
    pose = np.zeros(15)
    pose[0] = rng.uniform(-s.max_pitch_deg, s.max_pitch_deg) * deg
    pose[1] = rng.uniform(-s.max_yaw_deg, s.max_yaw_deg) * deg
    pose[2] = rng.uniform(-s.max_roll_deg, s.max_roll_deg) * deg
    pose[6] = rng.uniform(0.0, s.max_jaw_rad)
    expression = rng.normal(size=s.n_expression) * np.linspace(0.6, 0.1, s.n_expression)
    light = np.zeros((9, 3))
    light[0] = rng.uniform(2.8, 3.6) * rng.uniform(0.9, 1.1, 3)    # tinted ambient
    light[1:4] = rng.normal(size=(3, 1)) * 0.3                      # white directional part
    light[4:] = rng.normal(size=(5, 1)) * 0.08
    occluded = rng.uniform() < s.occluder_prob
    return {
        "shape": shape, "expression": expression, "pose": pose,
        "albedo": rng.normal(size=s.n_albedo) * 0.8, "light": light,
        "background": rng.uniform(0.0, 1.0, (4, 4, 3)),
        "occluder": np.array([float(occluded), *rng.uniform(-0.5, 0.5, 2),      # on/off, centre
                              *rng.uniform(0.15, 0.35, 2), rng.uniform(0, np.pi),  # axes, angle
                              *rng.uniform(0.0, 1.0, 3)]),                       # colour
    }


def _stack(scenes: list[dict]) -> dict[str, jnp.ndarray]:
    return {k: jnp.asarray(np.stack([sc[k] for sc in scenes]), jnp.float32) for k in scenes[0]}


def _occluder_masks(occ_Bx9: jax.Array, landmarks_Bx68x2: jax.Array, size: int) -> jax.Array:
    """Ellipses placed relative to the face's landmark box -> (B, H, W, 1)."""
    lo, hi = jnp.min(landmarks_Bx68x2, 1), jnp.max(landmarks_Bx68x2, 1)      # (B, 2)
    centre = (lo + hi) / 2 + occ_Bx9[:, 1:3] * (hi - lo)
    axes = occ_Bx9[:, 3:5] * (hi - lo)
    angle = occ_Bx9[:, 5]
    grid = jnp.arange(size, dtype=jnp.float32) + 0.5
    dx = grid[None, None, :] - centre[:, 0, None, None]
    dy = grid[None, :, None] - centre[:, 1, None, None]
    c, s = jnp.cos(angle)[:, None, None], jnp.sin(angle)[:, None, None]
    u, v = c * dx + s * dy, -s * dx + c * dy
    inside = (u / axes[:, 0, None, None]) ** 2 + (v / axes[:, 1, None, None]) ** 2 <= 1.0
    return (inside & (occ_Bx9[:, 0, None, None] > 0.5))[..., None].astype(jnp.float32)


@functools.partial(jax.jit, static_argnames=("size", "context_scale"))
def render_scenes(model: flame.FlameModel, albedo_model: flame.AlbedoModel, topology,
                  scenes: dict[str, jax.Array], size: int, context_scale: float
                  ) -> dict[str, jax.Array]:
    """Renders a batch of sampled scenes -> images and labels (float arrays)."""
    out = flame.forward(model, scenes["shape"], scenes["expression"], scenes["pose"])
    # The face (its landmarks' box) centred, its mean extent 1 / context_scale of the image
    # (ndc spans 2): the framing a landmark crop gives.
    lmk_xy = out.landmarks3d[..., :2]
    lo, hi = jnp.min(lmk_xy, 1), jnp.max(lmk_xy, 1)
    scale = 4.0 / (context_scale * jnp.sum(hi - lo, -1))
    cam = jnp.concatenate([scale[:, None], -scale[:, None] * (lo + hi) / 2], -1)
    albedo = jnp.clip(flame.albedo_map(albedo_model, scenes["albedo"]), 0.0, 1.0)
    b = scale.shape[0]
    background = jax.image.resize(scenes["background"], (b, size, size, 3), "bicubic")
    # The pure-JAX renderer on every machine, so the embedded dataset is the same everywhere.
    def draw(light):
        return render(out.vertices, cam, albedo, light, topology, (size, size),
                      background=jnp.clip(background, 0.0, 1.0), backend="jax")

    # Exposure: the light scaled so that no face pixel saturates (the colour is linear in
    # the light), so the stored image is exactly the model's render, not clipped at 1.
    first = draw(scenes["light"])
    covered = first.rast[..., 3:] > 0
    brightest = jnp.max(jnp.where(covered, first.albedo * first.shading, 0.0), axis=(1, 2, 3))
    light = scenes["light"] * jnp.minimum(1.0, 0.98 / jnp.maximum(brightest, 1e-6))[:, None, None]
    rendered = draw(light)
    landmarks = project_landmarks(out.landmarks3d, cam, (size, size))
    face = polygon_mask(landmark_hull(landmarks), size, size) * (rendered.alpha > 0.5)
    occluder = _occluder_masks(scenes["occluder"], landmarks, size)
    colour = scenes["occluder"][:, None, None, 6:9]
    image = jnp.clip(rendered.image, 0.0, 1.0) * (1 - occluder) + colour * occluder
    return {"image": image, "landmarks": landmarks, "mask": face * (1 - occluder),
            "cam": cam, "light": light, "vertices": out.vertices, "occluder_mask": occluder}


def synthetic_examples(model, albedo_model, topology, seed: int, first_identity: int,
                       last_identity: int, per_identity: int, settings: SynthSettings,
                       batch: int = 16):
    """Yields the examples of identities [first, last), ``per_identity`` each, in order
    (rendered ``batch`` at a time: one compiled program)."""
    jobs = [(i, k) for i in range(first_identity, last_identity) for k in range(per_identity)]
    for lo in range(0, len(jobs), batch):
        chunk = jobs[lo:lo + batch]
        padded = chunk + [chunk[-1]] * (batch - len(chunk))   # static batch shape
        scenes = [sample_scene(seed, i, k, settings) for i, k in padded]
        out = jax.device_get(render_scenes(model, albedo_model, topology, _stack(scenes),
                                           settings.image_size, settings.context_scale))
        for j, (identity, index) in enumerate(chunk):
            sc = scenes[j]
            yield {
                "image": np.round(out["image"][j] * 255).astype(np.uint8),
                "landmarks": out["landmarks"][j].astype(np.float32),
                "mask": (out["mask"][j] > 0.5).astype(np.uint8),
                "occluder_mask": (out["occluder_mask"][j] > 0.5).astype(np.uint8),
                "identity": np.int32(identity), "index": np.int32(index),
                "shape": sc["shape"].astype(np.float32),
                "expression": sc["expression"].astype(np.float32),
                "pose": sc["pose"].astype(np.float32),
                "albedo": sc["albedo"].astype(np.float32),
                "light": out["light"][j].astype(np.float32),
                "cam": out["cam"][j].astype(np.float32),
                "vertices": out["vertices"][j].astype(np.float32),
            }


def default_face_model(settings: SynthSettings):
    """The synthetic head and its albedo at the settings' sizes (the generator's default)."""
    arrays = flame.synthetic_head_arrays(0)
    model = flame.synthetic_flame(0, n_shape=settings.n_shape,
                                  n_expression=settings.n_expression)
    albedo = flame.AlbedoModel(jnp.asarray(arrays["albedo_mean"]),
                               jnp.asarray(arrays["albedo_basis"][..., :settings.n_albedo]))
    return model, albedo


def generate(out_dir: str | pathlib.Path, identities: int, per_identity: int, seed: int = 0,
             settings: SynthSettings = SynthSettings(), face_model=None, batch: int = 16,
             shards: int | None = None, progress: bool = True, val_identities: int = 0) -> dict:
    """Writes ``identities x per_identity`` examples to ``out_dir`` (array_record shards and
    ``dataset_info.json``), and ``val_identities`` more identities (other faces) as the
    ``val`` split. Images of one identity are consecutive and never split across shards.
    Returns the dataset info."""
    from tqdm import tqdm

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, albedo_model = face_model or default_face_model(settings)
    topology = face_topology(model.faces, model.uvs, model.uv_faces, settings.uv_size,
                             backend="jax")
    start = time.perf_counter()
    total = (identities + val_identities) * per_identity
    bar = tqdm(total=total, desc="synth", unit="img", disable=not progress)

    def examples(first_identity, last_identity):
        for example in synthetic_examples(model, albedo_model, topology, seed, first_identity,
                                          last_identity, per_identity, settings, batch):
            yield example
            bar.update(1)

    splits = {}
    # The val identities continue the numbering: their faces are other random draws.
    for split, first, count in (("train", 0, identities),
                                ("val", identities, val_identities)):
        if count == 0:
            continue
        n_shards = shards or max(1, math.ceil(count * per_identity / 1024))
        bounds = first + np.linspace(0, count, n_shards + 1).astype(int)
        for s in range(n_shards):
            write_shard(out_dir / shard_name(split, s, n_shards),
                        examples(bounds[s], bounds[s + 1]))
        splits[split] = {"examples": count * per_identity, "shards": n_shards,
                         "group_sizes": [per_identity] * count}
    bar.close()
    info = {
        "name": "jaxface_synthetic", "seed": seed, "identities": identities,
        "per_identity": per_identity, "image_size": settings.image_size,
        "settings": dataclasses.asdict(settings), "splits": splits,
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_info(out_dir, info)
    return info

