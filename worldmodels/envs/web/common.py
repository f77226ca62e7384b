"""Shared pieces of the local sites: the Flask import, SQLite helpers, the page layout.

Every page is rendered by Jinja2 with autoescaping (templates end in ``.html``); user input
reaches templates only as variables, never as template source, and SQL only as ``?``
parameters — nothing a visitor sends is evaluated.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

try:
    import flask
    from jinja2 import DictLoader
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the local web sites need Flask: pip install -e '.[web]' (or pip install 'flask>=3')"
    ) from e

#: The layout every page extends: banner, main navigation, one h1, an alert, main, footer.
BASE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} - {{ site_name }}</title></head>
<body>
<header role="banner"><a href="/">{{ site_name }}</a>{% include "banner.html" ignore missing %}</header>
<nav aria-label="Main"><ul>{% for href, label in nav_links %}
<li><a href="{{ href }}"{% if href == current_nav %} aria-current="page"{% endif %}>{{ label }}</a></li>{% endfor %}
</ul></nav>
<main>
<h1>{{ title }}</h1>
{% with messages = get_flashed_messages() %}{% for m in messages %}<p role="status">{{ m }}</p>{% endfor %}{% endwith %}
{% if error %}<p role="alert">{{ error }}</p>{% endif %}
{% block content %}{% endblock %}
</main>
<footer role="contentinfo">{{ site_name }} (local test site)</footer>
</body></html>
"""


def connect(db_path: str | Path) -> sqlite3.Connection:
    """A connection to ``db_path`` with rows addressable by column name."""
    conn = sqlite3.connect(str(db_path))
    conn.row_factory = sqlite3.Row
    return conn


def recreate(db_path: str | Path, schema: str) -> sqlite3.Connection:
    """Delete ``db_path`` (if any) and create it with ``schema``; returns the open connection."""
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    conn = connect(path)
    conn.executescript(schema)
    return conn


def dump(db_path: str | Path) -> str:
    """The whole database as SQL text (``iterdump``): equal dumps mean equal content."""
    conn = sqlite3.connect(str(db_path))
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def money(cents: int) -> str:
    """Cents as a dollar string: ``1999 -> '$19.99'``."""
    return f"${cents // 100}.{cents % 100:02d}"


def parse_int(value, default: int | None = None, lo: int | None = None,
              hi: int | None = None) -> int | None:
    """``value`` as an int clipped to [lo, hi], or ``default`` when it is not an integer."""
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return default
    if lo is not None:
        n = max(lo, n)
    if hi is not None:
        n = min(hi, n)
    return n


def make_app(import_name: str, site_name: str, db_path: str | Path, seed: int,
             templates: dict[str, str], nav_links: list[tuple[str, str]], reset_fn):
    """A Flask app with the shared layout, a per-request SQLite connection (``flask.g.db``)
    and ``app.reset(seed)`` (which calls ``reset_fn(db_path, seed)``).

    The session secret is fixed per site and seed: these are local test sites, no real
    security is intended (the forum login is a plain signed session cookie).
    """
    app = flask.Flask(import_name)
    app.config.update(SECRET_KEY=f"{site_name}-local-{seed}", DB_PATH=str(db_path))
    app.jinja_loader = DictLoader({"base.html": BASE_HTML, **templates})
    reset_fn(db_path, seed)

    @app.context_processor
    def _layout():
        return {"site_name": site_name, "nav_links": nav_links,
                "current_nav": getattr(flask.g, "nav", None), "money": money}

    @app.teardown_appcontext
    def _close(_exc):
        db = flask.g.pop("db", None)
        if db is not None:
            db.close()

    def reset(new_seed: int = seed) -> None:
        reset_fn(db_path, new_seed)

    app.reset = reset  # type: ignore[attr-defined]
    app.db_path = str(db_path)  # type: ignore[attr-defined]
    return app


def db() -> sqlite3.Connection:
    """The request's connection to the app's database (opened on first use)."""
    if "db" not in flask.g:
        flask.g.db = connect(flask.current_app.config["DB_PATH"])
    return flask.g.db
