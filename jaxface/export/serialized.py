"""The inference function serialized with ``jax.export``: runs with jax alone.

:func:`inference_function` is :func:`jaxface.reconstruction.predict.predict` with the network's
variables and the face model as plain arguments (the dicts of ``variables.npz`` and
``face_model.npz``), so the exported artifact holds the program only (~1 MB) and the weights
and the face model (a real albedo space is ~150 MB) stay in one file each. Exported for a
symbolic batch size (any batch, one artifact) and, when asked, a fixed one, for the platforms
asked (CPU by default; "cuda" lowers for NVIDIA GPUs). Loading needs no jaxface::

    import jax, numpy as np
    fn = jax.export.deserialize(open("model/infer_batch_any.jaxexport", "rb").read())
    variables = dict(np.load("model/variables.npz"))
    face_model = dict(np.load("model/face_model.npz"))
    out = fn.call(variables, face_model, image, landmarks, mask)   # see manifest.json
"""

from __future__ import annotations

import json
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.export.model_dir import load_run, write_model
from jaxface.reconstruction.assets import face_model_arrays, with_face_model_arrays
from jaxface.reconstruction.model_folder import (
    FACE_MODEL,
    MANIFEST,
    VARIABLES,
    LoadedModel,
    load_model,
    named_leaves,
)
from jaxface.reconstruction.predict import OUTPUTS, predict

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
USAGE = """# A jaxface model

{origin}

With jaxface: `jaxface reconstruct --model {name} photo.jpg --out results/`.

With jax alone (no jaxface installed):

```python
import jax, numpy as np
fn = jax.export.deserialize(open("{name}/infer_batch_any.jaxexport", "rb").read())
variables = dict(np.load("{name}/variables.npz"))
face_model = dict(np.load("{name}/face_model.npz"))
out = fn.call(variables, face_model, image, landmarks, mask)
```

Inputs (float32): `image` (B, {size}, {size}, 3) in [0, 1], a square face crop;
`landmarks` (B, 68, 2) its 68 iBUG landmarks in pixels (column, row); `mask` (B, {size},
{size}, 1) the face mask (1 = face). Outputs: see `manifest.json`.
"""


def input_specs(cfg, batch) -> tuple:
    """ShapeDtypeStructs of (image, landmarks, mask) for ``batch`` (an int or a symbolic
    dimension)."""
    size = cfg.model.image_size
    return (jax.ShapeDtypeStruct((batch, size, size, 3), jnp.float32),
            jax.ShapeDtypeStruct((batch, 68, 2), jnp.float32),
            jax.ShapeDtypeStruct((batch, size, size, 1), jnp.float32))


def inference_function(model: LoadedModel):
    """-> ``f(variables, face_model, image, landmarks, mask) -> dict`` (:data:`OUTPUTS`),
    pure; ``variables`` is :func:`~jaxface.reconstruction.model_folder.flatten_variables`'
    dict, ``face_model`` :func:`~jaxface.reconstruction.assets.face_model_arrays`' (the
    model folder's two ``.npz`` files)."""
    names = [name for name, _ in named_leaves(model.params, model.batch_stats)]
    n_params = len(jax.tree.leaves(model.params))
    params_def = jax.tree.structure(model.params)
    stats_def = jax.tree.structure(model.batch_stats)
    # The artifact must run wherever it is loaded: no custom calls (the nvdiffrast backend's
    # FFI handlers live in a library the loading process may not have).
    cfg = model.cfg.copy_and_resolve_references()
    with cfg.unlocked():
        cfg.render.backend = "jax"

    def infer(variables, face_model, image, landmarks, mask):
        params = jax.tree.unflatten(params_def, [variables[n] for n in names[:n_params]])
        stats = jax.tree.unflatten(stats_def, [variables[n] for n in names[n_params:]])
        batch = {"image": image, "landmarks": landmarks, "mask": mask}
        assets = with_face_model_arrays(model.assets, face_model)
        return predict(model.graphdef, params, stats, batch, assets, cfg)

    return infer


def export_inference(model: LoadedModel, batch_size: int | None = None,
                     platforms=("cpu",)) -> jax.export.Exported:
    """``jax.export`` of :func:`inference_function` for ``batch_size`` images (None: any)."""
    bad = sorted(set(platforms) - set(PLATFORMS))
    if bad:
        raise ValueError(f"unknown platform(s) {bad}; choose from {PLATFORMS}")
    batch = batch_size if batch_size is not None else jax.export.symbolic_shape("batch")[0]
    variables = {name: jax.ShapeDtypeStruct(np.shape(leaf), jnp.float32)
                 for name, leaf in named_leaves(model.params, model.batch_stats)}
    face_model = {k: jax.ShapeDtypeStruct(v.shape, v.dtype)
                  for k, v in face_model_arrays(model.assets).items()}
    fn = jax.jit(inference_function(model))
    return jax.export.export(fn, platforms=tuple(platforms))(
        variables, face_model, *input_specs(model.cfg, batch))


def export_run(workdir: str | os.PathLike, out: str | os.PathLike, which: str = "best",
               batch_size: int | None = None, platforms=("cpu",)) -> dict:
    """``jaxface export``: a training run -> a model folder (:mod:`jaxface.export.model_dir`)
    with the inference function exported for any batch size (and for ``batch_size``, when
    given). Returns the manifest."""
    cfg, assets, graphdef, params, stats, step, source = load_run(workdir, which)
    run = str(pathlib.Path(workdir).resolve())
    out = write_model(out, cfg, assets, params, stats,
                      {"run": run, "checkpoint": source, "step": step})
    return add_exports(out, f"Exported by `jaxface export` from {run} ({source} checkpoint, "
                       f"step {step}).", (None,) if batch_size is None else (batch_size, None),
                       platforms)


def add_exports(out: pathlib.Path, origin: str, batches=(None,), platforms=("cpu",)
                ) -> dict:
    """Completes a model folder written by :func:`~jaxface.export.model_dir.write_model`: the
    inference function serialized for each of ``batches`` (None: any batch size; empty: no
    artifacts), the manifest's inputs and outputs, and a README opening with ``origin``.
    Returns the manifest."""
    model = load_model(out)
    exports = {}
    for batch in batches:
        name = f"infer_batch_{'any' if batch is None else batch}.jaxexport"
        exported = export_inference(model, batch, platforms)
        (out / name).write_bytes(exported.serialize())
        exports[name] = {"batch": "any" if batch is None else batch,
                         "platforms": list(exported.platforms)}
    size = model.cfg.model.image_size
    manifest = json.loads((out / MANIFEST).read_text())
    manifest.update({
        "inputs": {"variables": f"dict of {VARIABLES} (name -> float32 array)",
                   "face_model": f"dict of {FACE_MODEL} (name -> array)",
                   "image": f"(B, {size}, {size}, 3) float32 in [0, 1], a square face crop",
                   "landmarks": "(B, 68, 2) float32, iBUG-68 landmarks in pixels (col, row)",
                   "mask": f"(B, {size}, {size}, 1) float32, 1 = face"},
        "outputs": OUTPUTS, "exports": exports, "jax_version": jax.__version__})
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    (out / "README.md").write_text(USAGE.format(origin=origin, name=out.name, size=size))
    return manifest
