"""The embedded default: coarse training on the synthetic dataset, sized for a CPU.

    jaxface synth --out runs/synth --identities 64 --per-identity 4
    jaxface train --config=configs/synthetic.py --config.train.workdir=runs/train

Runs on the base install: the identity loss (needs the `face` extra) and ID-MRF (needs VGG19
weights) are off; everything else is the paper's coarse objective.
"""

import ml_collections

from jaxface.configs import sibling_config


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.face_model = sibling_config(__file__, "face_model")
    c.render = sibling_config(__file__, "render")
    c.model = sibling_config(__file__, "model")
    c.update(sibling_config(__file__, "losses"))
    c.model.image_size = 128          # the smallest size where every RGA branch is valid
    c.model.uv_size = 64
    # The renderer draws at the network's input size (one field to override).
    c.render.image_size = c.model.get_ref("image_size")
    c.render.uv_size = c.model.get_ref("uv_size")
    c.loss.identity = 0.0             # needs the `face` extra (dlib's network)
    c.loss.mrf = 0.0                  # needs VGG19 weights
    c.data = ml_collections.ConfigDict()
    c.data.dir = "runs/synth"         # written by `jaxface synth`
    c.data.identities_per_batch = 2   # x K images per identity (K = the dataset's)
    c.data.workers = 0
    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-4                 # the paper's Adam learning rate
    c.train = ml_collections.ConfigDict()
    c.train.base_scale = 6.75         # camera scale at initialisation (the data's typical s)
    c.train.steps = 200
    c.train.seed = 0
    c.train.workdir = "runs/train"
    c.train.log_every = 10
    c.train.checkpoint_every = 50
    return c
