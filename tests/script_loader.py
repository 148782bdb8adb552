"""Loading a ``scripts/*.py`` file as a module (scripts are files, not a package)."""

import importlib.util
import pathlib

SCRIPTS = pathlib.Path(__file__).parents[1] / "scripts"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
