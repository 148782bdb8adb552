"""Table 3 (h): all (the paper's model).

    jaxface train --config=configs/ablation/h.py --config.data.dir=DATA
"""

from jaxface.configs import ablation, sibling_config


def get_config():
    return ablation(sibling_config(__file__, "../coarse"), pim=True, grpam=True,
                    multilevel_loss=True)
