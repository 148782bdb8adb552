"""DECA's released model in jaxface: the architecture and conventions its weights need.

    jaxface import-deca ~/deca/data/deca_model.tar --flame-dir ~/deca/data --out models/deca
    jaxface reconstruct --model models/deca photos/ --out results/

`jaxface import-deca` writes a model folder with this config; it is not a training recipe
(DECA's own training is configs/coarse.py and configs/detail.py with PIM and GRPAM off and
these conventions). What differs from the paper's network (configs/model.py):
- no priors (the RGB crop alone, in [0, 1], not normalised) and no GRPAM: E_c is DECA's
  ResNet50 with stage 4 at stride 2 and the pooled C5 into the 2048 -> 1024 -> 236 head;
- the camera and light are DECA's raw outputs, projected s (X + t) (model.code_convention);
- DECA's test crop (1.25 x 1.1 x the landmarks' mean extent, data.crop_scale) at 224 x 224;
- F_d, its input order [jaw, expression, detail code], the fixed displacement and the UV
  face-and-eye mask are DECA's in every config.
"""

import ml_collections

from jaxface.configs import sibling_config


def get_config() -> ml_collections.ConfigDict:
    c = sibling_config(__file__, "coarse")
    c.model.image_size = 224
    c.model.uv_size = 256
    c.model.use_priors = False
    c.model.use_grpam = False
    c.model.last_stride = 2
    c.model.code_convention = "deca"
    c.model.detail_code_dim = 128
    c.model.displacement_scale = 0.01   # DECA's max_z
    c.model.decoder_bn_epsilon = 0.8
    c.data.augment = False
    c.data.crop_scale = 1.375          # 1.25 x 1.1
    c.train.stage = "detail"
    c.train.workdir = "runs/deca"
    return c
