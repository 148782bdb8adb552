"""Table 3 (e): PIM + GRPAM.

    jaxface train --config=configs/ablation/e.py --config.data.dir=DATA
"""

from jaxface.configs import ablation, sibling_config


def get_config():
    return ablation(sibling_config(__file__, "../coarse"), pim=True, grpam=True,
                    multilevel_loss=False)
