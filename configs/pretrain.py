"""DECA's first stage, which the paper leaves unsaid (SPEC: follow DECA): E_c pretrained on
the landmark terms alone (L_kp, L_eye, and the shape/expression regulariser), nothing
rendered; batch 64 of one image per identity (DECA's). The coarse stage starts from it:

    jaxface train --config=configs/pretrain.py --config.data.dir=/data/vggface2,/data/bupt
    jaxface train --config=configs/coarse.py --config.data.dir=/data/vggface2,/data/bupt \\
        --config.train.init_from=runs/pretrain

For an ablation, pretrain with the same network switches (e.g. --config.model.use_grpam=False).
"""

from jaxface.configs import pretrain_stage, sibling_config


def get_config():
    c = pretrain_stage(sibling_config(__file__, "coarse"))
    c.data.identities_per_batch = 64
    c.train.steps = 100_000           # DECA's max_steps for this stage
    c.train.workdir = "runs/pretrain"
    return c
