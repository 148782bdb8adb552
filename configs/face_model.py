"""The face model's assets: the embedded synthetic head by default, real FLAME when given.

Every experiment config embeds this as ``config.face_model`` (and overrides it on the command
line, e.g. ``--config.face_model.flame_path=/data/FLAME2020/generic_model.pkl``). Check a
choice of files with ``jaxface flame-info``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    # FLAME's generic_model.pkl or a `jaxface flame-asset` .npz; None = the synthetic head
    # generated in-process (deterministic from `synthetic_seed`).
    c.flame_path = ml_collections.FieldReference(None, field_type=str)
    c.synthetic_seed = 0
    # DECA's landmark_embedding.npy and head_template.obj: required with a .pkl; with an .npz
    # they replace what the file holds.
    c.landmark_embedding_path = ml_collections.FieldReference(None, field_type=str)
    c.uv_template_path = ml_collections.FieldReference(None, field_type=str)
    # FLAME_albedo_from_BFM.npz (or FLAME's texture space); None = the albedo stored with the
    # head (the synthetic head's, or an .npz written by `jaxface flame-asset`).
    c.albedo_path = ml_collections.FieldReference(None, field_type=str)
    # DECA's UV regions: uv_face_eye_mask.png (the losses' render region, the detail region)
    # and uv_face_mask.png (the soft-symmetry mask), required with a .pkl; a jaxface .npz
    # head uses the ones it stores or derives them from the mesh. fixed_displacement_256.npy:
    # DECA's constant displacement (None = zero).
    c.uv_face_eye_mask_path = ml_collections.FieldReference(None, field_type=str)
    c.uv_face_mask_path = ml_collections.FieldReference(None, field_type=str)
    c.fixed_displacement_path = ml_collections.FieldReference(None, field_type=str)
    c.n_shape = 100        # identity components used (DECA: 100 of FLAME's 300)
    c.n_expression = 50    # expression components used (DECA: 50 of 100)
    c.n_albedo = 50        # albedo components used (at most what the albedo file has)
    return c
