"""Table 3 (c): +PIM.

    jaxface train --config=configs/ablation/c.py --config.data.dir=DATA
"""

from jaxface.configs import ablation, sibling_config


def get_config():
    return ablation(sibling_config(__file__, "../coarse"), pim=True, grpam=False,
                    multilevel_loss=False)
