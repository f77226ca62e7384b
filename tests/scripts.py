"""Load a file of the project's ``scripts/`` folder as a module in tests (the folder is not a
package): ``from tests.scripts import load_script; gpu_check = load_script("gpu_check")``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` afresh (module name ``name``); raises FileNotFoundError naming
    the path when the script is missing."""
    path = SCRIPTS / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no script {path}")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
