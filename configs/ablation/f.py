"""Table 3 (f): PIM + LOSS.

    jaxface train --config=configs/ablation/f.py --config.data.dir=DATA
"""

from jaxface.configs import ablation, sibling_config


def get_config():
    return ablation(sibling_config(__file__, "../coarse"), pim=True, grpam=False,
                    multilevel_loss=True)
