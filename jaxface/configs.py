"""Reading experiment configs: ``configs/*.py`` files with command-line overrides.

    cfg = load_config(["--config=configs/model.py", "--config.use_grpam=False"])

Parsing is ml_collections' ``config_flags`` (so ``--config=file.py:arg``, typed overrides
and the error for an unknown field behave as in every ml_collections project), on a private
absl ``FlagValues`` so it composes with the ``jaxface`` subcommands.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import ml_collections
from absl import flags
from ml_collections import config_flags


class ConfigError(ValueError):
    """A config file or override is missing or wrong (unknown field, wrong type)."""


def load_config(argv: Sequence[str], name: str = "config",
                name_unknown_fields: bool = True) -> ml_collections.ConfigDict:
    """The config named by ``--config=PATH`` in ``argv`` with its ``--config.a.b=v``
    overrides applied, locked (assigning an unknown field afterwards is an error). A missing
    file, a file that fails to load and an unknown field are each a one-line ConfigError."""
    for arg in argv:
        if arg.startswith(f"--{name}="):
            path = arg.split("=", 1)[1].split(":", 1)[0]
            if not pathlib.Path(path).is_file():
                raise ConfigError(f"config file {path} not found")
    values = flags.FlagValues()
    args = ["jaxface", *argv]
    # sys_argv: the override flags are defined from the arguments, at definition time.
    config_flags.DEFINE_config_file(name, default=None, flag_values=values, lock_config=True,
                                    help_string="a configs/*.py file", sys_argv=args)
    try:
        values(args)
        cfg = values[name].value
        if cfg is not None and not isinstance(cfg, ml_collections.ConfigDict):
            cfg.to_dict()  # ml_collections defers a load failure to the first access
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as e:
        unknown = _unknown_fields(argv, name) if name_unknown_fields else []
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}") from e
        raise ConfigError(f"bad config arguments {list(argv)}: {e}") from e
    except Exception as e:  # the file's own code failed (SyntaxError, NameError, ImportError)
        raise ConfigError(f"config arguments {list(argv)}: the file failed to load: "
                          f"{type(e).__name__}: {e}") from e
    if cfg is None:
        raise ConfigError(f"no --{name}=PATH given (e.g. --{name}=configs/model.py)")
    return cfg


def _unknown_fields(argv: Sequence[str], name: str) -> list[str]:
    """The ``--name.a.b=`` overrides whose field the base config does not have."""
    base = [a for a in argv if a.startswith(f"--{name}=")]
    try:
        cfg = load_config(base, name, name_unknown_fields=False) if base else None
    except ConfigError:
        return []
    unknown = []
    for arg in argv:
        if not arg.startswith(f"--{name}."):
            continue
        field = arg[len(name) + 3:].split("=", 1)[0]
        node = cfg
        for part in field.split("."):
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                unknown.append(f"{name}.{field}")
                break
            node = node[part]
    return unknown


def sibling_config(config_file: str, name: str) -> ml_collections.ConfigDict:
    """``get_config()`` of ``<name>.py`` next to ``config_file`` (experiment configs compose
    ``configs/model.py`` etc. this way: ``sibling_config(__file__, "model")``)."""
    import importlib.util

    path = pathlib.Path(config_file).resolve().parent / f"{name}.py"
    if not path.is_file():
        raise ConfigError(f"config part {path} not found")
    spec = importlib.util.spec_from_file_location(f"jaxface_config_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def ablation(config: ml_collections.ConfigDict, pim: bool, grpam: bool,
             multilevel_loss: bool) -> ml_collections.ConfigDict:
    """The paper's Table 3 switches on an experiment config: PIM (prior inputs), GRPAM
    (RGA + FPN) and LOSS (the face-mask and structural-consistency terms, FMCL + SCL)."""
    config.model.use_priors = pim
    config.model.use_grpam = grpam
    if not multilevel_loss:
        config.loss.mask = 0.0
        config.loss.scl = 0.0
    return config


# The terms the landmark-only pretraining turns off (DECA's deca_pretrain.yml: no photometric,
# identity, albedo or shape-consistency term).
PRETRAIN_OFF = ("pixel", "mask", "scl", "identity", "shape_consistency", "reg_albedo")


def pretrain_stage(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """DECA's pretraining stage on an experiment config: E_c on L_kp, L_eye and the shape /
    expression regulariser only (nothing rendered), one image per identity."""
    config.train.stage = "pretrain"
    for term in PRETRAIN_OFF:
        config.loss[term] = 0.0
    config.data.images_per_identity = 1
    return config
