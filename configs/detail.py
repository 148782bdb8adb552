"""The paper's detail stage (SPEC section 5, DECA's second stage): E_c frozen, E_d and F_d
trained with ID-MRF, the detail photometric term, soft symmetry, the detail-consistency swap
and the displacement regulariser; 224 x 224, batch 18 (6 identities x 3), Adam lr 1e-4.

    jaxface train --config=configs/detail.py --config.data.dir=/data/vggface2,/data/bupt \\
        --config.train.init_from=runs/coarse --config.perceptual.vgg19_path=vgg19.pth \\
        --workdir=runs/detail

``train.init_from`` is the coarse run's work dir (its newest checkpoint's E_c). ID-MRF, the
paper's main detail loss, needs torchvision's VGG19 weights (``perceptual.vgg19_path``): the
run stops before its first step, naming the file, when they are missing.
"""

import ml_collections

from jaxface.configs import sibling_config


def get_config() -> ml_collections.ConfigDict:
    c = sibling_config(__file__, "coarse")
    c.train.stage = "detail"
    c.train.init_from = ml_collections.FieldReference(None, field_type=str)  # required
    c.train.workdir = "runs/detail"
    c.loss.identity = 0.0     # a coarse-stage term (E_c is frozen here)
    c.loss.mrf = 5e-2         # DECA's lambda_mrf (configs/synthetic.py turns it off)
    return c
