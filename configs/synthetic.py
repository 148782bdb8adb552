"""The embedded default: coarse training on the synthetic dataset, sized for a CPU.

    jaxface synth --out runs/synth --identities 64 --per-identity 4
    jaxface train --config=configs/synthetic.py --workdir=runs/train

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
    c.loss.identity = 0.0             # needs the `face` extra (dlib's network)
    c.loss.mrf = 0.0                  # needs VGG19 weights (configs/detail.py turns it on)
    c.data = ml_collections.ConfigDict()
    c.data.dir = "runs/synth"         # written by `jaxface synth`; several: "a,b"
    c.data.mix_weights = ()           # several folders: their share of identity groups
    #                                   (empty: in proportion to their identities)
    c.data.identities_per_batch = 2   # x images_per_identity = the batch
    c.data.images_per_identity = 4    # K, drawn afresh each epoch (L_sc / L_dc swap them)
    c.data.workers = 0                # grain reader processes (0: read in the main process)
    # DECA's framing: training crops of a random 1.4-1.8 x the landmarks' mean extent; the
    # test crop (eval, reconstruct, export) 1.25 x 1.1 x. augment=False trains on the test crop.
    c.data.augment = True
    c.data.crop_scale_range = (1.4, 1.8)
    c.data.crop_scale = 1.375
    c.data.shift_jitter = 0.0         # not DECA's: crop centre moved up to this x the extent
    c.data.colour_jitter = 0.0        # not DECA's: brightness/contrast/saturation +- this
    c.data.eval_split = "val"         # evaluated every train.eval_every steps (if present)
    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"             # the paper's optimiser ("sgd" also available)
    c.optim.lr = 1e-4                 # the paper's learning rate
    c.optim.schedule = "constant"     # the paper's; "cosine": decays to 0 at train.steps
    c.train = ml_collections.ConfigDict()
    c.train.stage = "coarse"          # "pretrain" (landmarks only) / "coarse": E_c;
    #                                   "detail": E_d + F_d with E_c frozen
    c.train.init_from = ml_collections.FieldReference(None, field_type=str)  # a run's workdir
    c.train.base_scale = 8.4          # camera scale at initialisation: a face framed at
    #                                   1.6 x its landmarks' extent (FLAME's ~0.3 m box sum)
    c.train.steps = 200
    c.train.seed = 0                  # network init, data order and augmentation
    c.train.workdir = "runs/train"    # or `jaxface train --workdir DIR`
    c.train.log_every = 10
    c.train.eval_every = 50
    c.train.checkpoint_every = 50
    c.train.keep_checkpoints = 3      # the last K, plus the best in <workdir>/best
    c.train.best_metric = "landmark_px"  # the eval metric (lower is better) that picks "best"
    c.train.max_nonfinite_steps = 5   # NaN/inf steps in a row (skipped) before the run stops
    c.train.preview_images = 4        # rows of the TensorBoard preview
    c.train.distributed = False       # multi-host: jax.distributed.initialize() from the cluster
    return c
