"""The embedded default's landmark-only pretraining (DECA's first stage), CPU-sized:

    jaxface synth --out runs/synth --identities 64 --per-identity 4
    jaxface train --config=configs/synthetic_pretrain.py --workdir=runs/pretrain
    jaxface train --config=configs/synthetic.py --config.train.init_from=runs/pretrain \\
        --workdir=runs/coarse
"""

from jaxface.configs import pretrain_stage, sibling_config


def get_config():
    c = pretrain_stage(sibling_config(__file__, "synthetic"))
    c.data.identities_per_batch = 8
    c.train.workdir = "runs/pretrain"
    return c
