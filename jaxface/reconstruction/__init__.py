"""The model-level room every user of the trained regressor shares: the face assets
(``FaceAssets``, ``load_assets``), the one forward pass (``predict``: networks + FLAME + camera
+ light + displacement), loading a model folder (``load_model``) and mesh/image files."""
