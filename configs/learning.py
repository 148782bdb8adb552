"""Does the regressor learn 3-D shape under the paper's self-supervised objective? CPU-sized
(128² inputs, 256 training identities x 4 images, no ground-truth supervision), evaluated on
32 held-out identities (docs/results.md, section 2):

    jaxface synth --out runs/synth_learn --identities 256 --per-identity 4 \\
        --val-identities 32 --image-size 160 --occluder-prob 0 --seed 1
    jaxface train --config=configs/learning.py:pretrain --workdir=runs/learn_pretrain
    jaxface train --config=configs/learning.py --workdir=runs/learn_full \\
        --config.train.init_from=runs/learn_pretrain
    jaxface train --config=configs/learning.py:anchored --workdir=runs/learn_anchored \\
        --config.train.init_from=runs/learn_pretrain
    jaxface train --config=configs/learning.py:base_pretrain --workdir=runs/learn_pretrain_base
    jaxface train --config=configs/learning.py:base_anchored --workdir=runs/learn_base_anchored \\
        --config.train.init_from=runs/learn_pretrain_base
    python scripts/plot_learning.py --out docs/img/learning.png \\
        runs/learn_anchored:"GRPAM + PIM" runs/learn_base_anchored:"base (a)"
    python scripts/shape_gradient_probe.py --config=configs/learning.py \\
        --run runs/learn_full --batches 4       # which terms pull shape where

The argument picks the variant: "" (the paper's full model and coarse objective, without the
identity term, which needs the `face` extra), "pretrain" (DECA's landmark-only stage of it),
"anchored" (the same with the landmark and eye terms weighted x10, as `jaxface fit`'s
photometric stage: what kept the 3-D errors from running away in docs/results.md), and
"base", "base_pretrain", "base_anchored": the same for ablation (a) (plain ResNet50, RGB
input, no FMCL/SCL).
"""

from jaxface.configs import ablation, pretrain_stage, sibling_config

VARIANTS = ("", "pretrain", "anchored", "base", "base_pretrain", "base_anchored")


def get_config(variant: str = ""):
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: one of {', '.join(map(repr, VARIANTS))}")
    c = sibling_config(__file__, "synthetic")
    c.data.dir = "runs/synth_learn"
    c.data.identities_per_batch = 2       # x 4 images: a batch of 8
    c.optim.lr = 3e-4                     # a few CPU hours, not the paper's 1e-4 x 200k steps
    c.train.steps = 700
    c.train.eval_every = 50
    c.train.checkpoint_every = 100
    c.train.log_every = 25
    c.train.best_metric = "shape_sim_mm"
    if variant.startswith("base"):
        c = ablation(c, pim=False, grpam=False, multilevel_loss=False)
    if variant.endswith("anchored"):
        c.loss.landmark = 10.0
        c.loss.eye = 10.0
    if variant.endswith("pretrain"):
        c = pretrain_stage(c)
        c.data.identities_per_batch = 8
        c.train.steps = 300
        c.train.eval_every = 100
    return c
