"""The ``jaxface`` command line. Each subcommand is a thin wrapper over library functions.

    jaxface flame-asset --out head.npz        # write the embedded synthetic head
    jaxface flame-info generic_model.pkl --landmark-embedding landmark_embedding.npy \
        --uv-template head_template.obj       # check and summarise a FLAME model
    jaxface model-summary --config configs/model.py [--ablations]   # the network's size
    jaxface synth --out runs/synth --identities 64 --per-identity 4  # the synthetic dataset
    jaxface prepare --images photos/ --out runs/photos        # real photos -> examples
    jaxface train --config=configs/synthetic.py [--config.train.steps=500]   # coarse training
    jaxface export --workdir runs/train --out model/     # inference params + jax.export
    jaxface import-deca deca_model.tar --flame-dir DECA/data --out model/   # DECA's weights
    jaxface reconstruct --model model/ photo.jpg photos/ --out results/   # meshes + pictures
    jaxface fit photo.jpg photos/ --out results/   # analysis-by-synthesis per face, no network
    jaxface transfer --model model/ --source a.jpg --target b.jpg --out out/  # expression
    jaxface now-predict --model model/ --now NoW_Dataset --out runs/now_pred   # NoW layout
    jaxface evaluate-now --now NoW_Dataset --predictions runs/now_pred --out runs/now_eval
    jaxface build-nvdiffrast [--arch 80,90]   # the nvdiffrast backend's CUDA library (nvcc)
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np

from jaxface.assets import AssetError
from jaxface.configs import ConfigError


def describe(model) -> str:
    """A human-readable summary of a :class:`jaxface.flame.FlameModel`."""
    import jax.numpy as jnp

    from jaxface.flame import JOINT_NAMES, forward

    v = np.asarray(model.v_template)
    extent = v.max(0) - v.min(0)
    out = forward(model, jnp.zeros((1, model.n_shape)), jnp.zeros((1, model.n_expression)),
                  jnp.zeros((1, 3 * len(model.parents))))
    joints = np.asarray(out.joints[0])
    lines = [
        f"vertices {model.n_vertices}, triangles {model.faces.shape[0]}, "
        f"uv coordinates {model.uvs.shape[0]}",
        f"shape components {model.n_shape}, expression components {model.n_expression}, "
        f"pose correctives {model.posedirs.shape[0]}",
        f"extent (x, y, z) = ({extent[0]:.3f}, {extent[1]:.3f}, {extent[2]:.3f}) m",
        "joints (rest pose, m):",
    ]
    for name, parent, j in zip(JOINT_NAMES, model.parents, joints, strict=False):
        parent_name = JOINT_NAMES[parent] if parent >= 0 else "-"
        lines.append(f"  {name:<10} parent {parent_name:<7} at "
                     f"({j[0]:+.3f}, {j[1]:+.3f}, {j[2]:+.3f})")
    lines.append("landmarks: 51 static + 17 contour (79 yaw bins) + 68 full")
    return "\n".join(lines)


def _print_skipped(failed: dict[str, str]) -> None:
    for item, reason in failed.items():
        print(f"skipped {item}: {reason}", file=sys.stderr)


def _flame_asset(args) -> int:
    from jaxface.flame import save_flame_npz, synthetic_flame, synthetic_head_arrays

    start = time.perf_counter()
    arrays = synthetic_head_arrays(args.seed)
    model = synthetic_flame(args.seed, n_shape=arrays["shapedirs"].shape[-1],
                            n_expression=arrays["exprdirs"].shape[-1])
    extra = {"albedo_mean": arrays["albedo_mean"], "albedo_basis": arrays["albedo_basis"]}
    save_flame_npz(args.out, model, extra)
    print(f"wrote {args.out} (synthetic head, seed {args.seed}, "
          f"{time.perf_counter() - start:.1f} s)")
    print(describe(model))
    print(f"albedo: {arrays['albedo_mean'].shape[0]}x{arrays['albedo_mean'].shape[1]} UV, "
          f"{arrays['albedo_basis'].shape[-1]} components")
    return 0


def _flame_info(args) -> int:
    from jaxface.flame import load_flame

    model = load_flame(args.path, landmark_embedding=args.landmark_embedding,
                       n_shape=args.n_shape, n_expression=args.n_expression,
                       uv_template=args.uv_template)
    print(f"{args.path}: a valid FLAME model")
    print(describe(model))
    return 0


def _model_summary(args) -> int:
    from jaxface.configs import load_config
    from jaxface.models import param_sizes
    from jaxface.models.summary import ablation_table, summarize

    cfg = load_config(args.config_args)
    model_cfg = cfg.model if "model" in cfg else cfg
    sizes = param_sizes()
    if "face_model" in cfg:
        from jaxface import flame

        # The albedo components a run uses: n_albedo, or fewer if the albedo file has fewer.
        fm = cfg.face_model
        _, albedo = flame.load_face_model(fm)
        sizes = param_sizes(fm.n_shape, albedo.basis.shape[-1], fm.n_expression)
    print(summarize(model_cfg, sizes))
    if args.ablations:
        print()
        print(ablation_table(model_cfg, sizes))
    return 0


def _synth(args) -> int:
    from jaxface.data.synthetic import SynthSettings, generate

    settings = SynthSettings(image_size=args.image_size, occluder_prob=args.occluder_prob)
    info = generate(args.out, args.identities, args.per_identity, seed=args.seed,
                    settings=settings, batch=args.batch, val_identities=args.val_identities)
    n = sum(split["examples"] for split in info["splits"].values())
    print(f"wrote {n} examples ({args.identities} + {args.val_identities} val identities x "
          f"{args.per_identity}) to {args.out} in {info['seconds']} s "
          f"({n / max(info['seconds'], 1e-9):.1f} img/s)")
    return 0


def _prepare(args) -> int:
    from jaxface.data.landmarks import landmark_backend
    from jaxface.data.prepare import prepare

    detector = landmark_backend(args.landmarks)
    report = prepare(args.images, args.out, detector, size=args.size, mask_dir=args.masks,
                     min_images=args.min_images)
    _print_skipped(report["failed"])
    print(f"prepared {len(report['ok'])} images into {args.out}, skipped "
          f"{len(report['failed'])} (see {args.out}/report.json)")
    return 0 if report["ok"] else 1


def _train(args) -> int:
    from jaxface.configs import load_config
    from jaxface.train.loop import train_and_evaluate

    cfg = load_config(args.config_args)
    metrics = train_and_evaluate(cfg, args.workdir)
    workdir = args.workdir or cfg.train.workdir
    print("jaxface train: step {step}, loss {loss:.5f}".format(**metrics) if "loss" in metrics
          else f"jaxface train: nothing to do (already at step {metrics['step']})")
    print(f"jaxface train: outputs in {workdir}: checkpoints, metrics.jsonl, previews/*.png, "
          f"tensorboard/ (tensorboard --logdir {workdir}); next: jaxface export --workdir "
          f"{workdir} --out {workdir}/model")
    return 0


def _export(args) -> int:
    from jaxface.export.serialized import export_run

    start = time.perf_counter()
    manifest = export_run(args.workdir, args.out, args.which, args.batch_size,
                          tuple(args.platforms.split(",")))
    origin = manifest["origin"]
    print(f"exported {origin['run']} ({origin['checkpoint']}, step {origin['step']}) to "
          f"{args.out} in {time.perf_counter() - start:.1f} s: "
          f"{', '.join(manifest['exports'])} for {args.platforms}")
    files = sorted(p for p in pathlib.Path(args.out).iterdir() if p.is_file())
    print("  " + ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in files)
          + " (network variables, face model, program: nothing stored twice)")
    return 0


def _import_checkpoint(args) -> int:
    from jaxface.configs import load_config
    from jaxface.export.deca_import import import_checkpoint, use_deca_data_folder

    layout = args.command.removeprefix("import-")
    cfg = load_config(_with_default_config(args.config_args, layout))
    if args.flame_dir:
        use_deca_data_folder(cfg, args.flame_dir)
    else:
        print(f"jaxface {args.command}: no --flame-dir: using the face model of the config "
              "(the embedded synthetic head by default, for testing the pipeline; "
              f"{layout.upper()}'s weights only make sense with DECA's FLAME data)",
              file=sys.stderr)
    start = time.perf_counter()
    report = import_checkpoint(args.checkpoint, args.out, cfg, layout,
                               serialize=not args.no_jaxexport, global_pose=args.global_pose)
    ignored = report["ignored"]
    print(f"imported {report['mapped']} tensors of {args.checkpoint} into {args.out} in "
          f"{time.perf_counter() - start:.1f} s"
          + (f" (expression encoder: {report['expression_encoder']})" if layout == "emoca"
             else "")
          + (f"; {len(ignored)} tensors outside the regressor not read (e.g. {ignored[0]})"
             if ignored else "")
          + f"; next: jaxface reconstruct --model {args.out} photo.jpg --out results/")
    return 0


def _transfer(args) -> int:
    from jaxface.infer.transfer import TransferError, transfer

    detector = None
    if any(not str(p).endswith(".npz") for p in (args.source, args.target)):
        from jaxface.data.landmarks import landmark_backend

        detector = landmark_backend(args.landmarks)
    try:
        report = transfer(args.model, args.source, args.target, args.out, detector,
                          args.sweep, args.size)
    except TransferError as e:
        print(f"jaxface transfer: error: {e}", file=sys.stderr)
        return 2
    print(f"transferred {args.source}'s expression and pose onto {args.target}: "
          f"{', '.join(report['files'][:4])}{' and the sweep' if args.sweep else ''} in "
          f"{args.out}")
    return 0


def _reconstruct(args) -> int:
    from jaxface.data.landmarks import landmark_backend
    from jaxface.infer.reconstruct import reconstruct, writable_folder
    from jaxface.infer.video import reconstruct_videos, require_ffmpeg, split_inputs
    from jaxface.reconstruction.model_folder import load_model

    sequences, photos = split_inputs(args.inputs, args.frames)
    detector = landmark_backend(args.landmarks)
    model, n, videos = args.model, 0, None
    if sequences:
        require_ffmpeg()                   # the cheap checks first, before the model loads
        out = writable_folder(args.out)
        model = load_model(args.model)
        videos = reconstruct_videos(model, sequences, out, detector, args.batch_size,
                                    args.size, args.track, args.smooth, args.fps,
                                    args.min_face_score)
        _print_skipped(videos["failed"])
        for path, r in videos["ok"].items():
            faces = ", ".join(f"track {t}: {v['frames']} frames"
                              for t, v in r["tracks"].items()) or "no face"
            print(f"{path}: {r['frames']} frames ({faces}) in {r['seconds']:.1f} s -> "
                  f"{r['overlay_video']}" + (f"; stopped early: {r['error']}"
                                             if "error" in r else ""))
        n += len(videos["ok"])
    if photos:
        report = reconstruct(model, photos, args.out, detector, args.batch_size, args.size,
                             html=args.html,
                             min_face_score=args.min_face_score if args.all_faces else None,
                             videos=videos)
        _print_skipped(report["failed"])
        faces = sum(map(len, report["ok"].values()))
        if args.html:
            print(f"jaxface reconstruct: the gallery is "
                  f"{pathlib.Path(args.out) / 'index.html'}")
        print(f"reconstructed {faces} face(s) into {args.out} in {report['seconds']:.1f} s, "
              f"skipped {len(report['failed'])} (see {args.out}/report.json)")
        n += faces
    elif args.html and sequences:          # videos only: the gallery shows their clips
        from jaxface.infer.gallery import write_index

        print(f"jaxface reconstruct: the gallery is "
              f"{write_index(out, {'ok': {}, 'failed': {}}, 0, videos)}")
    return 0 if n else 1


CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


def _with_default_config(config_args: list[str], name: str) -> list[str]:
    """``config_args`` with ``--config=configs/<name>.py`` first unless one is given."""
    config_args = list(config_args)
    if not any(a.startswith("--config=") for a in config_args):
        path = CONFIGS / f"{name}.py"
        if not path.is_file():
            raise ConfigError(f"no --config=PATH given and no configs/{name}.py next to the "
                              f"package (e.g. --config=configs/{name}.py)")
        config_args.insert(0, f"--config={path}")
    return config_args


def _fit(args) -> int:
    from jaxface.configs import load_config
    from jaxface.infer.fit import FitError, fit_dataset, fit_photos

    config_args = _with_default_config(args.config_args, "fit")
    if args.steps is not None:
        config_args.append(f"--config.fit.photometric_steps={args.steps}")
    cfg = load_config(config_args)
    if bool(args.data) == bool(args.inputs):
        print("jaxface fit: error: give photos/folders or --data DIR (not both)",
              file=sys.stderr)
        return 2
    if args.data:
        try:
            s = fit_dataset(args.data, args.out, cfg, args.split, args.images,
                            cfg.fit.batch_size,
                            given=tuple(g for g in args.given.split(",") if g),
                            images_per_identity=args.per_identity)
        except FitError as e:
            print(f"jaxface fit: error: {e}", file=sys.stderr)
            return 2
        print(f"fitted {s['images']} {args.split} images of {args.data} in "
              f"{s['seconds']:.0f} s; mean face -> fit: " + ", ".join(
                  f"{k} {s['mean_face'][k]:.3f} -> {s['fit'][k]:.3f}" for k in s["fit"])
              + f"; see {args.out}/summary.json")
        return 0
    from jaxface.data.landmarks import landmark_backend

    report = fit_photos(args.inputs, args.out, landmark_backend(args.landmarks), cfg,
                        args.model, cfg.fit.batch_size)
    _print_skipped(report["failed"])
    n = len(report["ok"])
    print(f"fitted {n} face(s) into {args.out} in {report['seconds']:.1f} s, skipped "
          f"{len(report['failed'])} (see {args.out}/report.json)")
    return 0 if n else 1


def _now_predict(args) -> int:
    from jaxface.data.landmarks import landmark_backend
    from jaxface.infer.now_predict import predict_now

    report = predict_now(args.model, args.now, args.out, landmark_backend(args.landmarks),
                         args.split, args.batch_size)
    _print_skipped(report["failed"])
    print(f"wrote {len(report['ok'])} NoW predictions to {args.out}, skipped "
          f"{len(report['failed'])} (see {args.out}/predict_report.json)")
    return 0 if report["ok"] else 1


def _evaluate_now(args) -> int:
    from jaxface.eval.now_benchmark import evaluate_predictions, write_report

    result = evaluate_predictions(args.now, args.predictions, args.split, args.metrical)
    for image, reason in result["missing"].items():
        print(f"not evaluated {image}: {reason}", file=sys.stderr)
    if not result["errors"]:
        print(f"jaxface evaluate-now: error: no prediction found under {args.predictions} "
              f"for the {args.split} split", file=sys.stderr)
        return 2
    track = "metrical" if args.metrical else "non-metrical"
    summary = write_report(result, args.out, f"NoW {args.split} ({track})")
    print(f"NoW {args.split} ({track}), {summary['images']} images: median "
          f"{summary['median_mm']:.3f} mm, mean {summary['mean_mm']:.3f} mm, std "
          f"{summary['std_mm']:.3f} mm; {summary['missing']} missing; report in {args.out}")
    return 0


def _build_nvdiffrast(args) -> int:
    from jaxface.render.backend import nvdiffrast_unavailable_reason
    from jaxface.render.nvdr_ffi.build import BuildError, build_library

    try:
        path = build_library(args.arch, args.jobs, args.force, args.out)
    except BuildError as e:
        print(f"jaxface build-nvdiffrast: error: {e}", file=sys.stderr)
        return 2
    if args.out is None:
        reason = nvdiffrast_unavailable_reason()
        print("render backend 'auto' now uses nvdiffrast" if reason is None
              else f"library {path} ready; the nvdiffrast backend cannot run yet: {reason}")
    return 0


def _smoothing_window(text: str) -> int:
    """``--smooth``: video.check_smoothing_window's rule, as an argparse type."""
    from jaxface.infer.video import check_smoothing_window

    try:
        return check_smoothing_window(int(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _at_least(low: int):
    """An argparse type: an integer >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def _add_landmarks_option(parser: argparse.ArgumentParser) -> None:
    """The 68-point landmark backend of the commands that read photos."""
    parser.add_argument("--landmarks", default="dlib", choices=("dlib", "fan"),
                        help="dlib (offline default) or fan (2D-FAN weights in "
                             "$TORCH_HOME/hub/checkpoints)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxface", description="Detailed 3D face reconstruction from one photo (JAX/Flax).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("flame-asset", help="write the embedded synthetic FLAME-format head")
    p.add_argument("--out", required=True, help="output .npz path")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.set_defaults(run=_flame_asset)

    p = sub.add_parser("flame-info", help="load, check and summarise a FLAME model file")
    p.add_argument("path", help="generic_model.pkl or a jaxface .npz")
    p.add_argument("--landmark-embedding", default=None,
                   help="DECA's landmark_embedding.npy (required with a .pkl)")
    p.add_argument("--uv-template", default=None,
                   help="DECA's head_template.obj with FLAME's UVs (required with a .pkl)")
    p.add_argument("--n-shape", type=_at_least(1), default=100,
                   help="identity components to keep (DECA: 100 of FLAME's 300; default 100)")
    p.add_argument("--n-expression", type=_at_least(1), default=50,
                   help="expression components to keep (DECA: 50 of 100; default 50)")
    p.set_defaults(run=_flame_info)

    p = sub.add_parser(
        "model-summary", help="parameter counts and shapes of the network for a config",
        usage="jaxface model-summary --config=PATH [--config.FIELD=VALUE ...] [--ablations]",
        description="Takes --config=PATH (configs/model.py or an experiment config) and "
                    "--config.FIELD=VALUE overrides.")
    p.add_argument("--ablations", action="store_true",
                   help="also tabulate E_c for PIM off/on x GRPAM off/on")
    p.set_defaults(run=_model_summary, config_args=True)

    p = sub.add_parser("synth", help="render the synthetic face dataset (embedded default)")
    p.add_argument("--out", required=True, help="output folder (array_record shards)")
    p.add_argument("--identities", type=_at_least(1), default=64,
                   help="identities of the train split (default 64)")
    p.add_argument("--per-identity", type=_at_least(1), default=4,
                   help="images per identity (K: the consistency losses' group size; "
                        "default 4)")
    p.add_argument("--seed", type=int, default=0,
                   help="generator seed: identities, expressions, poses, lights (default 0)")
    p.add_argument("--image-size", type=_at_least(32), default=224,
                   help="image side in pixels, the face framed at 2 x its landmarks' extent "
                        "(room for DECA's training crops; default 224)")
    p.add_argument("--occluder-prob", type=_probability, default=0.3,
                   help="chance that an image has a random occluder over the face "
                        "(default 0.3)")
    p.add_argument("--val-identities", type=_at_least(0), default=4,
                   help="identities of the val split (evaluation during training; default 4)")
    p.add_argument("--batch", type=_at_least(1), default=16,
                   help="images rendered per step (memory vs speed; default 16)")
    p.set_defaults(run=_synth)

    p = sub.add_parser("prepare", help="photos -> cropped faces, 68 landmarks, masks")
    p.add_argument("--images", required=True,
                   help="folder of photos (sub-folders = identities)")
    p.add_argument("--out", required=True, help="output dataset folder")
    _add_landmarks_option(p)
    p.add_argument("--masks", default=None,
                   help="folder of segmentation masks mirroring --images (.png, white = "
                        "face); default: the landmark hull")
    p.add_argument("--size", type=int, default=256,
                   help="stored crop side in pixels (the crop is 2 x the landmarks' extent, "
                        "room for DECA's training crops; default 256)")
    p.add_argument("--min-images", type=int, default=1,
                   help="skip identities with fewer usable images (the training batches "
                        "draw data.images_per_identity of each; default 1)")
    p.set_defaults(run=_prepare)

    p = sub.add_parser(
        "train", help="train the regressor (coarse or detail stage) from a config",
        usage="jaxface train --config=PATH [--config.FIELD=VALUE ...] [--workdir DIR]",
        description="Takes --config=PATH (e.g. configs/synthetic.py) and --config.FIELD=VALUE "
                    "overrides; resumes from the newest checkpoint in the work dir.")
    p.add_argument("--workdir", default=None,
                   help="checkpoints, logs and the resolved config (default: train.workdir)")
    p.set_defaults(run=_train, config_args=True)

    p = sub.add_parser("export", help="a training run -> a self-contained model folder")
    p.add_argument("--workdir", required=True, help="the training run's work dir")
    p.add_argument("--out", required=True, help="the model folder to write (replaced)")
    p.add_argument("--which", choices=("best", "last"), default="best",
                   help="the best eval checkpoint (default; the last when there is none) "
                        "or the last one")
    p.add_argument("--batch-size", type=_at_least(1), default=None,
                   help="also export the function for this fixed batch size (default: only "
                        "the any-batch-size one, which serves every batch)")
    p.add_argument("--platforms", default="cpu",
                   help="comma-separated jax.export platforms, e.g. cpu,cuda")
    p.set_defaults(run=_export)

    for layout, what in (("deca", "DECA's deca_model.tar"),
                         ("emoca", "an EMOCA checkpoint (.ckpt, ResNet50 expression encoder)")):
        p = sub.add_parser(
            f"import-{layout}", help=f"{what} -> a model folder like `jaxface export`'s",
            usage=f"jaxface import-{layout} CHECKPOINT --out DIR [--flame-dir DIR] "
                  "[--config.FIELD=VALUE ...]",
            description=f"Maps every tensor of {what} onto configs/{layout}.py's network "
                        "(strict: a missing, unexpected or wrongly shaped tensor stops it) "
                        "and writes a model folder for reconstruct, fit --model and "
                        "now-predict. Reading it needs torch (the `torch` extra); nothing "
                        "but tensors is unpickled.")
        p.add_argument("checkpoint", help=f"{what}")
        p.add_argument("--out", required=True, help="the model folder to write (replaced)")
        p.add_argument("--flame-dir", default=None,
                       help="DECA's data folder: generic_model.pkl, landmark_embedding.npy, "
                            "head_template.obj, FLAME_albedo_from_BFM.npz, uv_face_eye_mask"
                            ".png, uv_face_mask.png, fixed_displacement_256.npy")
        p.add_argument("--no-jaxexport", action="store_true",
                       help="skip serializing the inference function (faster; reconstruct "
                            "does not need it)")
        p.add_argument("--global-pose", action="store_true",
                       help="EMOCA: the expression encoder's 3 pose outputs are the global "
                            "rotation (exp_deca_global_pose), not the jaw" if layout == "emoca"
                       else argparse.SUPPRESS)
        p.set_defaults(run=_import_checkpoint, config_args=True)

    p = sub.add_parser("transfer", help="one face's expression and head pose on another face")
    p.add_argument("--model", required=True, help="a model folder (export or import-deca)")
    p.add_argument("--source", required=True,
                   help="the face giving expression, jaw and head pose: reconstruct's "
                        "<name>_params.npz or a photo")
    p.add_argument("--target", required=True,
                   help="the face keeping identity, albedo, light, camera and details: a "
                        "_params.npz or a photo")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--sweep", type=_at_least(0), default=0,
                   help="also N frames (PNGs and sweep.gif) from the target to the transfer")
    _add_landmarks_option(p)
    p.add_argument("--size", type=_at_least(32), default=224,
                   help="crop and picture side in pixels (default 224)")
    p.set_defaults(run=_transfer)

    p = sub.add_parser("reconstruct", help="photos -> textured coarse and detailed meshes")
    p.add_argument("inputs", nargs="+",
                   help="photos, folders of photos, video files (or, with --frames, folders "
                        "of video frames)")
    p.add_argument("--model", required=True, help="a model folder from `jaxface export`")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per face)")
    _add_landmarks_option(p)
    p.add_argument("--batch-size", type=_at_least(1), default=8,
                   help="faces per compiled step (memory vs speed; default 8)")
    p.add_argument("--size", type=_at_least(32), default=224,
                   help="crop side in pixels (default 224)")
    p.add_argument("--html", action="store_true",
                   help="also write index.html: per photo the pictures and a turntable of "
                        "the detailed shape (pre-rendered frames), per video its overlay "
                        "clip (opens offline)")
    p.add_argument("--all-faces", action="store_true",
                   help="every face of a photo, not only the best-scored one: each in its own "
                        "folder (<photo>_face2, ...) and all drawn on "
                        "<photo>_overlay_photo_all.png")
    p.add_argument("--min-face-score", type=float, default=0.5,
                   help="with --all-faces, and in videos: the least detector score of a face "
                        "after the best (dlib's HOG score; face-like patches score lower; "
                        "default 0.5)")
    p.add_argument("--frames", action="store_true",
                   help="folders are frame sequences (frames sorted by name), reconstructed "
                        "like a video (video files are always sequences: .mp4, .mov, .avi, "
                        ".mkv, .webm, ...; needs imageio-ffmpeg, the video extra)")
    p.add_argument("--track", choices=("largest", "all"), default="largest",
                   help="videos: follow the largest face (default) or every face, each its "
                        "own track (box-overlap tracker)")
    p.add_argument("--smooth", type=_smoothing_window, default=0,
                   help="videos: smooth expression, pose and camera over this many frames "
                        "(odd, >= 3; Savitzky-Golay, quadratic; default 0: off)")
    p.add_argument("--fps", type=float, default=25.0,
                   help="frame folders: frames per second of the overlay video (default 25; "
                        "a video file keeps its own)")
    p.set_defaults(run=_reconstruct)

    p = sub.add_parser(
        "fit", help="analysis-by-synthesis: fit FLAME, albedo, light and camera per face",
        usage="jaxface fit (PHOTO_OR_DIR ... | --data DIR) --out DIR [--model DIR] "
              "[--steps N] [--config=configs/fit.py] [--config.FIELD=VALUE ...]",
        description="Optimises each face's parameters against the coarse objective (landmarks "
                    "first, then the photometric terms); writes reconstruct's files and the "
                    "loss curves. The schedule and weights are configs/fit.py (default), "
                    "overridable with --config.FIELD=VALUE.")
    p.add_argument("inputs", nargs="*", help="photos and/or folders of photos")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per face)")
    p.add_argument("--model", default=None,
                   help="a model folder from `jaxface export`: start from its prediction "
                        "(default: the mean face)")
    p.add_argument("--steps", type=int, default=None,
                   help="steps of the photometric stage (fit.photometric_steps)")
    _add_landmarks_option(p)
    p.add_argument("--data", default=None,
                   help="instead of photos: a dataset folder (jaxface synth/prepare) whose "
                        "split is fitted and, with ground truth, scored")
    p.add_argument("--split", default="val", help="the --data split (default val)")
    p.add_argument("--images", type=_at_least(1), default=32,
                   help="--data images to fit (default 32)")
    p.add_argument("--per-identity", type=_at_least(1), default=1,
                   help="with --data: images of each identity fitted together with one "
                        "shared shape (several views; divides fit.batch_size; default 1)")
    p.add_argument("--given", default="",
                   help="with --data: comma-separated groups (shape, exp, pose) set to the "
                        "ground truth and held there: an oracle that shows which ambiguity "
                        "limits the fit")
    p.set_defaults(run=_fit, config_args=True)

    p = sub.add_parser("now-predict",
                       help="run a model on NoW's photos, writing the official layout")
    p.add_argument("--model", required=True, help="a model folder from `jaxface export`")
    p.add_argument("--now", required=True, help="the NoW dataset folder")
    p.add_argument("--out", required=True, help="predictions folder")
    p.add_argument("--split", choices=("val", "test"), default="val",
                   help="NoW split: val (20 subjects, scans public) or test (default val)")
    _add_landmarks_option(p)
    p.add_argument("--batch-size", type=_at_least(1), default=8,
                   help="faces per compiled step (default 8)")
    p.set_defaults(run=_now_predict)

    p = sub.add_parser("evaluate-now", help="NoW scan-to-mesh errors of predictions")
    p.add_argument("--now", required=True, help="the NoW dataset folder (with the scans)")
    p.add_argument("--predictions", required=True,
                   help="<subject>/<challenge>/<image>.obj + .npy (7 landmarks)")
    p.add_argument("--out", required=True, help="report folder (summary, CSV, curve)")
    p.add_argument("--split", choices=("val", "test"), default="val",
                   help="NoW split the predictions are for (default val)")
    p.add_argument("--metrical", action="store_true",
                   help="metrical track: predictions in metres, rigid alignment only")
    p.set_defaults(run=_evaluate_now)

    p = sub.add_parser("build-nvdiffrast",
                       help="compile the nvdiffrast backend's XLA FFI library with nvcc")
    p.add_argument("--arch", default=None,
                   help="CUDA architectures, e.g. 80,90 (default: the visible GPUs', else "
                        "80,86,89,90)")
    p.add_argument("--jobs", type=int, default=None, help="parallel nvcc processes")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p.add_argument("--out", type=pathlib.Path, default=None,
                   help="library path (default: the jaxface cache, where the backend looks)")
    p.set_defaults(run=_build_nvdiffrast)
    return parser


def use_compilation_cache() -> None:
    """A persistent XLA compilation cache (``$XDG_CACHE_HOME/jaxface/xla``, default
    ``~/.cache``), unless one is configured (``JAX_COMPILATION_CACHE_DIR``): the second run of
    a command reuses the compiled steps instead of compiling them again for minutes."""
    import jax

    if jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    base = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    jax.config.update("jax_compilation_cache_dir", str(base / "jaxface" / "xla"))
    # Every program, the small ones too: building the network and the face assets compiles
    # a few hundred eager ops (0.01-0.4 s each), 15 of the first 20 s of `train`; cached,
    # a rerun builds them in 5 s. Least recently used entries go beyond 2 GB.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_compilation_cache_max_size", 2 * 2**30)
    stamp_unbounded_cache_entries(base / "jaxface" / "xla")


def stamp_unbounded_cache_entries(cache_dir: pathlib.Path) -> None:
    """Gives each entry of ``cache_dir`` that has no access-time stamp one (its file's
    modification time). A cache filled without a size bound (before jaxface set one, or
    without ``filelock``) has none, and JAX's bounded cache then fails every write with a
    FileNotFoundError warning while it looks for the entries' stamps to evict the oldest."""
    if not cache_dir.is_dir():
        return
    for entry in cache_dir.glob("*-cache"):
        stamp = entry.with_name(entry.name[:-len("-cache")] + "-atime")
        if not stamp.exists():
            stamp.write_bytes(entry.stat().st_mtime_ns.to_bytes(8, "little"))


def main(argv: list[str] | None = None) -> int:
    args, rest = build_parser().parse_known_args(argv)
    use_compilation_cache()
    if getattr(args, "config_args", None):
        args.config_args = rest  # --config=... and its overrides, parsed by ml_collections
    elif rest:
        build_parser().error(f"unrecognized arguments: {' '.join(rest)}")
    from jaxface.render.backend import BackendUnavailableError

    try:
        return args.run(args)
    except (AssetError, ConfigError, OSError, FloatingPointError, BackendUnavailableError,
            ValueError) as e:
        # Expected failures (a bad file, config value or argument) are one line; set
        # JAXFACE_TRACEBACK=1 to see where one came from.
        if os.environ.get("JAXFACE_TRACEBACK"):
            raise
        print(f"jaxface {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
