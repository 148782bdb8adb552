"""The network (SPEC section 3), embedded in experiment configs as ``config.model``.

    jaxface model-summary --config configs/model.py [--ablations]
    jaxface model-summary --config configs/model.py --config.use_grpam=False

The parameter groups' sizes (shape, expression, albedo components) come from
``configs/face_model.py``; the rest of the network is set here.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.image_size = 224        # square input side; RGA's layer widths depend on it
    # Prior information module (PIM): landmark heatmap(s) and face mask next to the image.
    c.use_priors = True
    c.landmark_channels = 1   # 1: all 68 landmarks in one heatmap; 68: one channel each
    c.landmark_sigma = 2.0    # Gaussian radius of a landmark, pixels at image_size
    # Global relation-aware pyramid attention (GRPAM): RGA-S/RGA-C after C2..C5, FPN fusion.
    # Off: DECA's plain ResNet50 with its pooled C5 feature.
    c.use_grpam = True
    c.last_stride = 1         # stage-4 stride of E_c's ResNet50 (official RGA: 1, C5 at 1/16)
    c.fpn_width = 256
    c.rga_cha_ratio = 8       # official RGA ratios
    c.rga_spa_ratio = 8
    c.rga_down_ratio = 8
    c.head_hidden = 1024      # DECA's FC layer width
    # torchvision's ImageNet ResNet50 (resnet50-0676ba61.pth or an .npz of it): E_c's and E_d's
    # backbones start from it in a new run (SPEC 8). None: random initialisation.
    c.imagenet_weights = ml_collections.FieldReference(None, field_type=str)
    # Detail branch (DECA's): E_d -> delta, F_d(delta, psi, theta_jaw) -> UV displacement.
    c.detail_code_dim = 128
    c.uv_size = 256           # displacement map side (a multiple of 32)
    c.displacement_scale = 0.01  # tanh output x this, in FLAME units (m)
    c.decoder_bn_epsilon = 0.8   # DECA's quirk (see jaxface.models.decoder); 1e-5 textbook
    # The code's camera and light: "jaxface" (s = base_scale exp(0.1 r), t = 0.1 r, light
    # 0.1 r + ambient: a sensible face from the first step) or "deca" (DECA's raw values and
    # projection s (X + t), what DECA's and EMOCA's weights need; configs/deca.py).
    c.code_convention = "jaxface"
    # EMOCA's expression encoder (a second ResNet50 regressor on the image) overriding E_c's
    # expression: "none", or what it predicts: "exp", "exp_jaw" (EMOCA's release),
    # "exp_global", "exp_global_jaw" (configs/emoca.py).
    c.expression_encoder = "none"
    return c
