import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.assets import AssetError
from jaxface.losses import (
    coarse_loss,
    deca_landmark_weights,
    detail_loss,
    displacement_l1,
    eye_closure,
    face_mask_photometric,
    id_mrf,
    identity_cosine,
    identity_network,
    landmark_l1,
    pixel_loss,
    regularization,
    soft_symmetry,
    structural_consistency,
)


def _coarse_inputs(rng, b=4, size=16):
    image = jnp.asarray(rng.uniform(size=(b, size, size, 3)), jnp.float32)
    rendered = jnp.asarray(rng.uniform(size=(b, size, size, 3)), jnp.float32)
    mask = jnp.asarray(rng.uniform(size=(b, size, size, 1)) > 0.3, jnp.float32)
    lmk_p = jnp.asarray(rng.normal(size=(b, 68, 2)), jnp.float32)
    lmk_t = jnp.asarray(rng.normal(size=(b, 68, 2)), jnp.float32)
    params = {k: jnp.asarray(rng.normal(size=(b, n)), jnp.float32)
              for k, n in (("shape", 10), ("exp", 5), ("tex", 7))}
    ids = (jnp.asarray(rng.normal(size=(b, 32)), jnp.float32),
           jnp.asarray(rng.normal(size=(b, 32)), jnp.float32))
    return image, rendered, mask, lmk_p, lmk_t, params, ids


def test_coarse_loss_is_the_weighted_sum_of_its_terms(rng, load_config):
    cfg = load_config("losses").loss
    image, rendered, mask, lmk_p, lmk_t, params, ids = _coarse_inputs(rng)
    total, terms = jax.jit(lambda *a: coarse_loss(cfg, *a, identity_image=ids[0],
                                                  identity_rendered=ids[1]))(
        image, rendered, mask, lmk_p, lmk_t, params)
    want = (cfg.pixel * pixel_loss(image, rendered) + cfg.mask * face_mask_photometric(
        image, rendered, mask) + cfg.landmark * landmark_l1(lmk_p, lmk_t, deca_landmark_weights())
        + cfg.eye * eye_closure(lmk_p, lmk_t)
        + cfg.scl * structural_consistency(image, rendered, mask)
        + cfg.identity * identity_cosine(*ids)
        + regularization(params["shape"], params["exp"], params["tex"], cfg.reg_shape,
                         cfg.reg_expression, cfg.reg_albedo))
    np.testing.assert_allclose(float(total), float(want), rtol=1e-5)
    assert set(terms) == {"pixel", "mask", "landmark", "eye", "scl", "identity", "reg"}


def test_loss_ablation_switch_drops_fmcl_and_scl(rng, load_config):
    cfg = load_config("losses").loss
    cfg.mask, cfg.scl, cfg.identity = 0.0, 0.0, 0.0
    image, rendered, mask, lmk_p, lmk_t, params, _ = _coarse_inputs(rng)
    total, terms = coarse_loss(cfg, image, rendered, mask, lmk_p, lmk_t, params)
    assert set(terms) == {"pixel", "landmark", "eye", "reg"}
    grads = jax.grad(lambda r: coarse_loss(cfg, image, r, mask, lmk_p, lmk_t, params)[0])(
        rendered)
    np.testing.assert_allclose(np.asarray(grads), np.asarray(2 * (rendered - image) / image.size),
                               rtol=1e-5, atol=1e-9)  # only L_pix depends on the render now
    cfg.identity = 0.2
    with pytest.raises(ValueError, match="needs the identity descriptors"):
        coarse_loss(cfg, image, rendered, mask, lmk_p, lmk_t, params)


def test_detail_loss_is_the_weighted_sum_of_its_terms(rng, load_config):
    cfg = load_config("losses").loss
    image, rendered, mask, *_ = _coarse_inputs(rng, b=2)
    disp = jnp.asarray(rng.normal(size=(2, 8, 8, 1)) * 0.01, jnp.float32)
    uv_mask = jnp.asarray(rng.uniform(size=(8, 8, 1)) > 0.5, jnp.float32)
    feats = [{"relu3_2": jnp.asarray(rng.normal(size=(2, 4, 4, 6)), jnp.float32),
              "relu4_2": jnp.asarray(rng.normal(size=(2, 2, 2, 6)), jnp.float32)}
             for _ in range(2)]
    total, terms = detail_loss(cfg, image, rendered, mask, disp, uv_mask, *feats)
    want = (cfg.mrf * id_mrf(feats[1], feats[0])
            + cfg.detail_photometric * face_mask_photometric(image, rendered, mask)
            + cfg.symmetry * soft_symmetry(disp, uv_mask)
            + cfg.displacement * displacement_l1(disp))
    np.testing.assert_allclose(float(total), float(want), rtol=1e-5)
    assert set(terms) == {"mrf", "detail_photometric", "symmetry", "displacement"}


def test_identity_network_choice_and_errors(load_config):
    cfg = load_config("losses").identity
    cfg.backend = "vggface2"
    with pytest.raises(AssetError, match="needs identity.weights_path"):
        identity_network(cfg)
    cfg.backend = "arcface"
    with pytest.raises(ValueError, match="identity.backend must be one of"):
        identity_network(cfg)


def test_dlib_identity_network_under_jit(load_config, rng):
    if importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("needs the `face` extra (face-recognition-models)")
    cfg = load_config("losses").identity
    net = identity_network(cfg)
    images = jnp.asarray(rng.uniform(size=(2, 224, 224, 3)), jnp.float32)
    landmarks = jnp.asarray(rng.uniform(60, 160, size=(2, 68, 2)), jnp.float32)
    emb = jax.jit(net.apply)(net.state, images, landmarks)
    assert emb.shape == (2, 128) and np.all(np.isfinite(np.asarray(emb)))
    np.testing.assert_allclose(np.asarray(emb), np.asarray(net(images, landmarks)), rtol=1e-4,
                               atol=1e-5)
