"""The embedded default's detail stage: E_d and F_d on the synthetic data, E_c frozen from a
synthetic coarse run; CPU-sized, ID-MRF off (it needs VGG19 weights).

    jaxface train --config=configs/synthetic.py --workdir=runs/coarse
    jaxface train --config=configs/synthetic_detail.py --config.train.init_from=runs/coarse \\
        --workdir=runs/detail
"""

import ml_collections

from jaxface.configs import sibling_config


def get_config() -> ml_collections.ConfigDict:
    c = sibling_config(__file__, "synthetic")
    c.train.stage = "detail"
    c.train.init_from = ml_collections.FieldReference(None, field_type=str)  # the coarse run
    c.train.workdir = "runs/detail"
    return c
