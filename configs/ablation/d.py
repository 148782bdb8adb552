"""Table 3 (d): +LOSS (FMCL + SCL).

    jaxface train --config=configs/ablation/d.py --config.data.dir=DATA
"""

from jaxface.configs import ablation, sibling_config


def get_config():
    return ablation(sibling_config(__file__, "../coarse"), pim=False, grpam=False,
                    multilevel_loss=True)
