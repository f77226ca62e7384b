"""Local web sites for the web-DOM world model (issue #21, item 1): a **shop**, an **admin
panel** and a **forum**, each a Flask app over a SQLite file with a seeded initial state.

- ``worldmodels.envs.web.shop`` / ``admin`` / ``forum``: ``create_app(db_path, seed)`` and
  ``reset(db_path, seed)``; :data:`SITES` maps the site name to its module path.
- ``worldmodels.envs.web.server``: :func:`~worldmodels.envs.web.server.serve` runs an app on
  127.0.0.1 in a background thread.
- ``worldmodels.envs.web.tasks``: objectives with success checks on the SQLite state and
  scripted HTTP solutions.

Flask is the ``web`` extra (``pip install -e .[web]``); importing this package does not import
it, the site modules do (with a clear error when it is missing).
"""

import importlib

#: site name -> module holding ``create_app`` and ``reset``.
SITES = {
    "shop": "worldmodels.envs.web.shop",
    "admin": "worldmodels.envs.web.admin",
    "forum": "worldmodels.envs.web.forum",
}


def site_module(name: str):
    """The module of site ``name`` (one of :data:`SITES`); ValueError naming the choices."""
    if name not in SITES:
        raise ValueError(f"unknown web site {name!r}; expected one of {sorted(SITES)}")
    return importlib.import_module(SITES[name])


def create_app(name: str, db_path, seed: int = 0):
    """The Flask app of site ``name`` over the SQLite file ``db_path``, reset to ``seed``."""
    return site_module(name).create_app(db_path, seed)
