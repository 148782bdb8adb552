"""EMOCA's released model in jaxface: DECA's (configs/deca.py) plus its expression encoder.

    jaxface import-emoca ~/emoca/EMOCA_v2_lr_mse_20/detail/checkpoints/deca-epoch=*.ckpt \\
        --flame-dir ~/deca/data --out models/emoca
    jaxface reconstruct --model models/emoca photos/ --out results/

EMOCA's expression encoder is a second ResNet50 regressor on the same crop; its expression
coefficients and jaw rotation replace E_c's (EMOCA's exp_deca_jaw_pose; set
model.expression_encoder to "exp", "exp_global" or "exp_global_jaw" for its other variants).
"""

import ml_collections

from jaxface.configs import sibling_config


def get_config() -> ml_collections.ConfigDict:
    c = sibling_config(__file__, "deca")
    c.model.expression_encoder = "exp_jaw"
    c.train.workdir = "runs/emoca"
    return c
