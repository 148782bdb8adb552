"""The paper's coarse stage (SPEC section 6): 224 x 224, batch 18 (6 identities x 3 images),
Adam lr 1e-4, the full coarse objective with the identity loss, on VGGFace2 +
BUPT-Balancedface, started (as DECA) from the landmark-only pretraining:

    jaxface prepare --images ~/data/vggface2/train --out /data/vggface2 --min-images 3
    jaxface prepare --images ~/data/bupt --out /data/bupt --min-images 3
    jaxface train --config=configs/pretrain.py --config.data.dir=/data/vggface2,/data/bupt
    jaxface train --config=configs/coarse.py --config.data.dir=/data/vggface2,/data/bupt \\
        --config.train.init_from=runs/pretrain --workdir=runs/coarse

Assets: face_model.* (FLAME, albedo, DECA's UV masks: see configs/face_model.py), identity.*
(dlib's network from the `face` extra by default; identity.backend=vggface2 with
identity.weights_path for the paper's network), optionally model.imagenet_weights.
"""

import ml_collections

from jaxface.configs import sibling_config


def get_config() -> ml_collections.ConfigDict:
    c = sibling_config(__file__, "synthetic")
    c.model.image_size = 224
    c.model.uv_size = 256
    c.loss.identity = 0.2
    c.data.dir = ml_collections.FieldReference(None, field_type=str)  # required
    c.data.identities_per_batch = 6   # x 3 images each = the paper's batch of 18
    c.data.images_per_identity = 3
    c.data.workers = 4
    c.train.steps = 200_000
    c.train.workdir = "runs/coarse"
    c.train.log_every = 100
    c.train.eval_every = 2000
    c.train.checkpoint_every = 2000
    return c
