"""Table 3 (b): +GRPAM.

    jaxface train --config=configs/ablation/b.py --config.data.dir=DATA
"""

from jaxface.configs import ablation, sibling_config


def get_config():
    return ablation(sibling_config(__file__, "../coarse"), pim=False, grpam=True,
                    multilevel_loss=False)
