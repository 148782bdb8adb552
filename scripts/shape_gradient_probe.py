"""Which terms of the coarse objective pull the regressor's shape towards the truth?

On synthetic training batches (the true FLAME shape of every image is known), the gradient of
each weighted term of the coarse loss with respect to the predicted shape code beta, at the
network's prediction, against the direction to the truth (beta_true - beta): the cosine of
-gradient with it per image (> 0: the term pushes shape towards the truth), its mean, the
share of images where it is positive, and the gradient's size. ``shape_consistency`` is
DECA's L_sc (the whole coarse loss again with beta swapped inside identity groups).

    python scripts/shape_gradient_probe.py --config=configs/learning.py \\
        --run runs/learn_full --batches 8

Without ``--run``: the untrained network (the mean face). The network runs in inference mode
(running BatchNorm statistics) on training crops (``data.augment``). ``--aligned``: every
group but the shape at the truth (the camera fitted to the true face's landmarks), so the
pull on the network's β is measured with render and photo aligned. ``--rotation-error-deg
D`` (with ``--aligned``): the head's rotation off by D degrees about a random axis per image,
the camera fitted to that rotated face — how much misalignment the pull survives:

    for d in 0 2 5 10 20; do python scripts/shape_gradient_probe.py \
        --config=configs/learning.py --run runs/learn_full --aligned --rotation-error-deg $d; done
"""

import argparse
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from scipy.spatial.transform import Rotation

from jaxface.configs import load_config
from jaxface.data.pipeline import grouped_batches
from jaxface.export.model_dir import load_run
from jaxface.losses.regularization import swap_within_groups
from jaxface.models import build_network
from jaxface.models.params import code_of_camera, code_of_light
from jaxface.reconstruction.assets import jit_with_assets, load_assets
from jaxface.reconstruction.predict import coarse_geometry, predict_params
from jaxface.render import project_landmarks
from jaxface.train.step import (
    TRAIN_KEYS,
    FrozenNets,
    coarse_loss_of,
    prepare_batch,
)

TRUTH_KEYS = ("shape", "expression", "pose", "albedo", "light")


def weighted_terms(shape_BxS, p, batch, assets, cfg, group_size: int) -> dict:
    """The coarse objective's weighted terms at ``p`` with its shape replaced."""
    q = p | {"shape": shape_BxS}
    _, terms = coarse_loss_of(coarse_geometry(q, assets, cfg), q, batch, cfg, assets,
                               FrozenNets(), {}, 1.0)
    out = {k: (1.0 if k == "reg" else cfg.loss[k]) * v for k, v in terms.items()}
    if cfg.loss.shape_consistency and group_size > 1:
        swapped = q | {"shape": swap_within_groups(shape_BxS, group_size)}
        total, _ = coarse_loss_of(coarse_geometry(swapped, assets, cfg), swapped, batch, cfg,
                                   assets, FrozenNets(), {}, 1.0)
        out["shape_consistency"] = cfg.loss.shape_consistency * total
    out["total"] = sum(out.values())
    return out


def aligned_to_truth(p: dict, batch: dict, assets, cfg) -> dict:
    """``p`` with every group but the shape at the image's truth: pose, expression, albedo
    and light from the synthetic record, the camera fitted to the landmarks (least squares;
    the projection is affine in (s, tx, ty)) of the true face in this crop."""
    sizes = assets.sizes
    pad = sizes["tex"] - batch["albedo"].shape[1]
    truth = {"pose": jnp.concatenate([batch["pose"][:, :3], batch["pose"][:, 6:9]], -1),
             "exp": batch["expression"][:, :sizes["exp"]],
             "tex": jnp.pad(batch["albedo"], ((0, 0), (0, max(pad, 0))))[:, :sizes["tex"]],
             "light": code_of_light(batch["light"], convention=cfg.model.code_convention)}
    true_face = coarse_geometry(p | truth | {"shape": batch["shape"][:, :sizes["shape"]]},
                                assets, cfg)
    size = cfg.model.image_size
    b = batch["image"].shape[0]

    def project(cam_Bx3):
        return project_landmarks(true_face["landmarks3d"], cam_Bx3, (size, size)).reshape(b, -1)

    origin = project(jnp.zeros((b, 3)))
    basis = jnp.stack([project(jnp.tile(e, (b, 1))) - origin for e in jnp.eye(3)], -1)
    target = batch["landmarks"].reshape(b, -1) - origin
    cam = jax.vmap(lambda a, y: jnp.linalg.lstsq(a, y)[0])(basis, target)
    truth["cam"] = code_of_camera(cam, cfg.train.base_scale, cfg.model.code_convention)
    return p | truth


def rotated_heads(pose_Bx15: np.ndarray, degrees: float, seed: int) -> np.ndarray:
    """``pose`` with each head's global rotation composed with one of ``degrees`` about a
    random axis."""
    axes = np.random.default_rng(seed).normal(size=(len(pose_Bx15), 3))
    error = Rotation.from_rotvec(axes / np.linalg.norm(axes, axis=-1, keepdims=True)
                                 * np.deg2rad(degrees))
    out = np.array(pose_Bx15)
    out[:, :3] = (error * Rotation.from_rotvec(pose_Bx15[:, :3])).as_rotvec()
    return out


def probe(graphdef, params, stats, batch, assets, cfg, group_size: int,
          aligned: bool = False) -> dict:
    """-> (per term: (cosine of -gradient with beta_true - beta per image, |gradient| per
    image), the sizes of beta, beta_true and their difference per image)."""
    p, _ = predict_params(graphdef, params, stats, batch, cfg, assets.sizes, False)
    p = jax.lax.stop_gradient(p)
    if aligned:
        p = aligned_to_truth(p, batch, assets, cfg)
    geo = coarse_geometry(p, assets, cfg)
    landmark_px = jnp.linalg.norm(geo["landmarks"] - batch["landmarks"], axis=-1).mean(-1)
    grads = jax.jacrev(weighted_terms)(p["shape"], p, batch, assets, cfg, group_size)
    to_truth = batch["shape"][:, :p["shape"].shape[1]] - p["shape"]

    def cosine(g):
        return -jnp.sum(g * to_truth, -1) / (
            jnp.linalg.norm(g, axis=-1) * jnp.linalg.norm(to_truth, axis=-1) + 1e-12)

    sizes = {"|beta|": jnp.linalg.norm(p["shape"], axis=-1),
             "|beta_true|": jnp.linalg.norm(batch["shape"][:, :p["shape"].shape[1]], axis=-1),
             "|beta_true - beta|": jnp.linalg.norm(to_truth, axis=-1)}
    sizes["cos(beta, beta_true)"] = jnp.sum(p["shape"] * (to_truth + p["shape"]), -1) / (
        sizes["|beta|"] * sizes["|beta_true|"] + 1e-12)
    # How much beta varies between the images of one identity (L_sc's target: 0).
    groups = p["shape"].reshape(-1, group_size, p["shape"].shape[1])
    sizes["|beta - identity mean|"] = jnp.linalg.norm(
        groups - groups.mean(1, keepdims=True), axis=-1).reshape(-1)
    sizes["landmark px"] = landmark_px
    sizes["beta"] = p["shape"]
    return {k: (cosine(g), jnp.linalg.norm(g, axis=-1)) for k, g in grads.items()}, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a training work dir (its latest checkpoint)")
    parser.add_argument("--batches", type=int, default=8, help="training batches probed")
    parser.add_argument("--json", help="also write the table's numbers to this file")
    parser.add_argument("--aligned", action="store_true",
                        help="every group but the shape at the truth (camera fitted to the "
                             "true face's landmarks): the objective's pull on the network's "
                             "shape when render and photo are aligned")
    parser.add_argument("--rotation-error-deg", type=float, default=0.0,
                        help="with --aligned: each head's rotation off by this angle about a "
                             "random axis")
    args, config_args = parser.parse_known_args()
    if args.rotation_error_deg and not args.aligned:
        parser.error("--rotation-error-deg needs --aligned")
    cfg = load_config(config_args)
    assets = load_assets(cfg)
    if args.run:
        _, _, graphdef, params, stats, step, _ = load_run(args.run, "last")
        print(f"{args.run}: step {step}")
    else:
        graphdef, params, stats = nnx.split(
            build_network(cfg.model, assets.sizes, cfg.train.seed), nnx.Param, nnx.BatchStat)
    group_size = cfg.data.images_per_identity
    data = grouped_batches(cfg.data.dir, cfg.data.identities_per_batch, group_size,
                           cfg.train.seed)
    run_probe = jit_with_assets(lambda params, stats, batch, assets: probe(
        graphdef, params, stats, prepare_batch(batch, jax.random.key(0), 0, cfg), assets,
        cfg, group_size, args.aligned), assets)
    def probed_batch(i):
        batch = {k: data[i][k] for k in (*TRAIN_KEYS, *TRUTH_KEYS)}
        if args.rotation_error_deg:
            batch["pose"] = rotated_heads(batch["pose"], args.rotation_error_deg, seed=i)
        return {k: jnp.asarray(v) for k, v in batch.items()}

    results = [jax.device_get(run_probe(params, stats, probed_batch(i)))
               for i in range(args.batches)]
    rows = {k: {"cos": np.concatenate([r[0][k][0] for r in results]),
                "norm": np.concatenate([r[0][k][1] for r in results])} for k in results[0][0]}
    betas = np.concatenate([r[1].pop("beta") for r in results])
    sizes = {k: float(np.mean(np.concatenate([r[1][k] for r in results])))
             for k in results[0][1]}
    # Against the spread over all probed images: is beta an identity code or one shape?
    sizes["|beta - mean beta|"] = float(np.mean(np.linalg.norm(betas - betas.mean(0), axis=-1)))
    print(f"{len(rows['total']['cos'])} images; mean " + ", ".join(
        f"{k} {v:.2f}" for k, v in sizes.items()))
    print("-d(term)/d(beta) against beta_true - beta:")
    print("| term | mean cosine | images pulled towards the truth | mean gradient norm |")
    print("|---|---|---|---|")
    for k, r in rows.items():
        print(f"| {k} | {r['cos'].mean():+.3f} | {np.mean(r['cos'] > 0):.0%} | "
              f"{r['norm'].mean():.3g} |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"sizes": sizes} | {k: {"mean_cosine": float(r["cos"].mean()), "share_positive":
                                    float(np.mean(r["cos"] > 0)),
                                    "mean_norm": float(r["norm"].mean())}
                                for k, r in rows.items()}, indent=2))


if __name__ == "__main__":
    main()
