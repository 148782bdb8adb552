"""Table 3 (g): GRPAM + LOSS.

    jaxface train --config=configs/ablation/g.py --config.data.dir=DATA
"""

from jaxface.configs import ablation, sibling_config


def get_config():
    return ablation(sibling_config(__file__, "../coarse"), pim=False, grpam=True,
                    multilevel_loss=True)
