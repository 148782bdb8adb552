"""The regressor: ResNet50 with RGA-S/RGA-C and FPN fusion (GRPAM), prior inputs (PIM), the
coarse and detail encoders and DECA's detail decoder, in Flax NNX."""

from jaxface.models.decoder import DetailDecoder, detail_latent
from jaxface.models.encoders import GRPAM, CoarseEncoder, MLPHead, ResNetEncoder
from jaxface.models.fpn import FPN
from jaxface.models.network import Network, apply, build_network, count_params
from jaxface.models.params import (
    PARAM_GROUPS,
    camera_from_code,
    decode_params,
    flame_pose,
    light_from_code,
    param_sizes,
)
from jaxface.models.priors import landmark_heatmaps, network_input, prior_channels
from jaxface.models.resnet import ResNet50, stage_sizes
from jaxface.models.rga import RGA

__all__ = [
    "FPN", "GRPAM", "PARAM_GROUPS", "RGA", "CoarseEncoder", "DetailDecoder", "ResNetEncoder",
    "MLPHead", "Network", "ResNet50", "apply", "build_network", "camera_from_code",
    "count_params", "light_from_code",
    "decode_params", "detail_latent", "flame_pose", "landmark_heatmaps", "network_input",
    "param_sizes", "prior_channels", "stage_sizes",
]
