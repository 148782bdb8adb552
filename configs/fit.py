"""`jaxface fit`: analysis-by-synthesis, no network — FLAME shape, expression, pose, albedo,
light and camera of each face optimised against the coarse objective (jaxface/infer/fit.py).

    jaxface fit photo.jpg photos/ --out runs/fit                  # photos (dlib landmarks)
    jaxface fit photos/ --out runs/fit --model model/             # start from a model
    jaxface synth --out runs/synth_fit --identities 1 --per-identity 1 --val-identities 32 \\
        --image-size 326 --occluder-prob 0
    jaxface fit --data runs/synth_fit --out runs/fit_val          # errors against the truth

Synthetic images of 326 px framed at 2 x the landmarks' extent give DECA's 1.375 x test crop
at 224 px without resampling. The objective is the paper's coarse loss at 224 px with the
landmark terms weighted up (the fit starts far from the face; a photometric term cannot pull
a face that is not over it) and no identity or shape-consistency term (one image at a time).
"""

import ml_collections

from jaxface.configs import sibling_config


def get_config() -> ml_collections.ConfigDict:
    c = sibling_config(__file__, "synthetic")
    c.model.image_size = 224
    c.model.uv_size = 256
    c.loss.landmark = 10.0
    c.loss.eye = 10.0
    c.loss.shape_consistency = 0.0    # needs several images of one identity
    c.fit = ml_collections.ConfigDict()
    c.fit.rigid_steps = 150           # landmarks: camera and pose
    c.fit.expression_steps = 150      # landmarks: + expression
    c.fit.photometric_steps = 800     # the whole objective, every group
    c.fit.chunk = 50                  # steps per compiled call (progress granularity)
    c.fit.batch_size = 8              # faces fitted together (independently)
    # Adam's step per group, decayed to 0 over each stage. Camera and light are the code's
    # raw units (s = base_scale exp(0.1 raw), light = 0.1 raw + ambient).
    c.fit.lr = ml_collections.ConfigDict(
        {"shape": 0.02, "exp": 0.02, "tex": 0.02, "pose": 0.01, "cam": 0.05, "light": 0.2})
    return c
