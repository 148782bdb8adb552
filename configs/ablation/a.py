"""Table 3 (a): base (DECA-like: plain ResNet50, RGB input, L_pix + landmarks + L_id).

    jaxface train --config=configs/ablation/a.py --config.data.dir=DATA
"""

from jaxface.configs import ablation, sibling_config


def get_config():
    return ablation(sibling_config(__file__, "../coarse"), pim=False, grpam=False,
                    multilevel_loss=False)
