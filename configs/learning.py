"""Does the regressor learn 3-D shape under the paper's self-supervised objective? CPU-sized
(128² inputs, 256 training identities x 4 images, no ground-truth supervision), evaluated on
32 held-out identities (docs/results.md):

    jaxface synth --out runs/synth_learn --identities 256 --per-identity 4 \\
        --val-identities 32 --image-size 160 --occluder-prob 0 --seed 1
    jaxface train --config=configs/learning.py:pretrain --workdir=runs/learn_pretrain
    jaxface train --config=configs/learning.py --workdir=runs/learn_full \\
        --config.train.init_from=runs/learn_pretrain
    jaxface train --config=configs/learning.py:base --workdir=runs/learn_base \\
        --config.train.init_from=runs/learn_pretrain_base     # ablation (a), its own pretrain
    jaxface train --config=configs/learning.py:base_pretrain --workdir=runs/learn_pretrain_base
    python scripts/plot_learning.py --out docs/img/learning.png \\
        runs/learn_full:"GRPAM + PIM + multi-level loss" runs/learn_base:"base (a)"

The argument picks the variant: "" (the paper's full model and coarse objective, without the
identity term, which needs the `face` extra), "pretrain" (DECA's landmark-only stage of it),
"base" / "base_pretrain" (ablation a: plain ResNet50, RGB input, no FMCL/SCL).
"""

from jaxface.configs import ablation, pretrain_stage, sibling_config


def get_config(variant: str = ""):
    if variant not in ("", "pretrain", "base", "base_pretrain"):
        raise ValueError(f"unknown variant {variant!r}: '', pretrain, base or base_pretrain")
    c = sibling_config(__file__, "synthetic")
    c.data.dir = "runs/synth_learn"
    c.data.identities_per_batch = 2       # x 4 images: a batch of 8
    c.optim.lr = 3e-4                     # a few CPU hours, not the paper's 1e-4 x 200k steps
    c.train.steps = 1500
    c.train.eval_every = 150
    c.train.checkpoint_every = 150
    c.train.log_every = 25
    c.train.best_metric = "shape_sim_mm"
    if variant.startswith("base"):
        c = ablation(c, pim=False, grpam=False, multilevel_loss=False)
    if variant.endswith("pretrain"):
        c = pretrain_stage(c)
        c.data.identities_per_batch = 8
        c.train.steps = 600
    return c
