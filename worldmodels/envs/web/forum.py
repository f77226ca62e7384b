"""The forum: sub-forums, threads, posts, replies, up/down votes and a login with seeded
users (``alice`` / ``alice-pw``, ...; a plain signed session cookie, no real security).

State (SQLite): ``users``, ``subforums``, ``threads``, ``posts`` (``parent_id`` for replies,
``created`` = minutes after 2024-01-01 00:00, unique), ``votes`` (one per user and post, +1/-1).
``reset(db_path, seed)`` recreates it deterministically.
"""

from __future__ import annotations

import datetime
import random

from .common import db, flask, make_app, parse_int, recreate

USERS = ["alice", "bob", "carol", "dave"]
SUBFORUMS = ["Gardening", "Cooking", "Cycling", "Photography"]
TOPICS = {
    "Gardening": ["Tomato blight", "Raised beds", "Composting tips", "Pruning roses"],
    "Cooking": ["Sourdough starter", "Cast iron care", "Weeknight curries", "Knife skills"],
    "Cycling": ["Tubeless tyres", "Winter commuting", "Chain wear", "Bike fitting"],
    "Photography": ["Prime lenses", "Night skies", "Film scanning", "Street portraits"],
}
PHRASES = ["Has anyone tried this?", "Works well for me.", "I would start small.",
           "Thanks, very helpful.", "Depends on the season.", "Photos would help.",
           "Same problem here.", "Try asking at a local club."]
MAX_BODY = 2000

SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE,
  password TEXT NOT NULL);
CREATE TABLE subforums (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE threads (id INTEGER PRIMARY KEY, subforum_id INTEGER NOT NULL
  REFERENCES subforums(id), title TEXT NOT NULL, author_id INTEGER NOT NULL REFERENCES users(id));
CREATE TABLE posts (id INTEGER PRIMARY KEY, thread_id INTEGER NOT NULL REFERENCES threads(id),
  parent_id INTEGER REFERENCES posts(id), author_id INTEGER NOT NULL REFERENCES users(id),
  body TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE votes (user_id INTEGER NOT NULL REFERENCES users(id), post_id INTEGER NOT NULL
  REFERENCES posts(id), value INTEGER NOT NULL CHECK (value IN (-1, 1)),
  PRIMARY KEY (user_id, post_id));
"""


def password(username: str) -> str:
    """The seeded password of ``username`` (``'<name>-pw'``)."""
    return f"{username}-pw"


def reset(db_path, seed: int) -> None:
    """Recreate the forum database at ``db_path`` from ``seed``: 4 users, 4 sub-forums with
    3 threads each, 2-4 posts per thread at distinct times, random votes."""
    rng = random.Random(f"forum-{seed}")
    conn = recreate(db_path, SCHEMA)
    conn.executemany("INSERT INTO users VALUES (?, ?, ?)",
                     [(i, u, password(u)) for i, u in enumerate(USERS, start=1)])
    times = iter(rng.sample(range(1, 60 * 24 * 60), 4 * 3 * 4))
    tid = pid = 0
    for sid, name in enumerate(SUBFORUMS, start=1):
        conn.execute("INSERT INTO subforums VALUES (?, ?)", (sid, name))
        for title in rng.sample(TOPICS[name], 3):
            tid += 1
            conn.execute("INSERT INTO threads VALUES (?, ?, ?, ?)",
                         (tid, sid, title, rng.randint(1, len(USERS))))
            stamps = sorted(next(times) for _ in range(rng.randint(2, 4)))
            first = pid + 1
            for k, t in enumerate(stamps):
                pid += 1
                parent = None if k == 0 else first
                conn.execute("INSERT INTO posts VALUES (?, ?, ?, ?, ?, ?)",
                             (pid, tid, parent, rng.randint(1, len(USERS)),
                              rng.choice(PHRASES), t))
                for uid in rng.sample(range(1, len(USERS) + 1), rng.randint(0, 2)):
                    conn.execute("INSERT INTO votes VALUES (?, ?, ?)",
                                 (uid, pid, rng.choice([1, 1, -1])))
    conn.commit()
    conn.close()


def stamp(minutes: int) -> str:
    """``created`` minutes as ``'2024-MM-DD HH:MM'`` (days of 2024 are counted from Jan 1)."""
    t = datetime.datetime(2024, 1, 1) + datetime.timedelta(minutes=minutes)
    return t.strftime("%Y-%m-%d %H:%M")


T = {}
T["banner.html"] = """{% if user %}<span>Logged in as {{ user.username }}</span>
<form method="post" action="/logout"><button type="submit">Log out</button></form>
{% else %}<a href="/login">Log in</a>{% endif %}"""
T["home.html"] = """{% extends "base.html" %}{% block content %}
<ul aria-label="Sub-forums">{% for s in subforums %}<li><a href="/f/{{ s.id }}">{{ s.name }}</a>
({{ s.n }} threads)</li>{% endfor %}</ul>{% endblock %}"""
T["subforum.html"] = """{% extends "base.html" %}{% block content %}
<ul aria-label="Threads">{% for t in threads %}<li><a href="/t/{{ t.id }}">{{ t.title }}</a>
({{ t.n }} posts, last {{ stamp(t.last) }})</li>{% endfor %}</ul>
{% if user %}<form method="post" action="/f/{{ sid }}/new" aria-label="New thread">
<label for="title">Title</label><input id="title" name="title">
<label for="body">Message</label><textarea id="body" name="body"></textarea>
<button type="submit">Start thread</button></form>{% endif %}{% endblock %}"""
T["thread.html"] = """{% extends "base.html" %}{% block content %}
<p><a href="/f/{{ t.subforum_id }}">Back to {{ t.subforum }}</a></p>
{% for p in posts %}<article aria-labelledby="post-{{ p.id }}">
<h2 id="post-{{ p.id }}">Post {{ p.id }} by {{ p.author }}{% if p.parent_id %} (reply to post {{ p.parent_id }}){% endif %}</h2>
<p>{{ p.body }}</p><p>Posted {{ stamp(p.created) }}. Score {{ p.score }}.</p>
{% if user %}<form method="post" action="/p/{{ p.id }}/vote"><button type="submit" name="value" value="1">Upvote post {{ p.id }}</button>
<button type="submit" name="value" value="-1">Downvote post {{ p.id }}</button></form>
<form method="post" action="/p/{{ p.id }}/reply"><label for="reply-{{ p.id }}">Reply to post {{ p.id }}</label>
<textarea id="reply-{{ p.id }}" name="body"></textarea><button type="submit">Send reply to post {{ p.id }}</button></form>{% endif %}
</article>{% endfor %}{% if not user %}<p><a href="/login">Log in</a> to vote or reply.</p>{% endif %}{% endblock %}"""
T["login.html"] = """{% extends "base.html" %}{% block content %}
<form method="post" action="/login" aria-label="Log in"><label for="username">Username</label>
<input id="username" name="username" value="{{ username }}"><label for="password">Password</label>
<input id="password" name="password" type="password"><button type="submit">Log in</button></form>{% endblock %}"""


def _user():
    uid = flask.session.get("user_id")
    if uid is None:
        return None
    return db().execute("SELECT id, username FROM users WHERE id = ?", (uid,)).fetchone()


def _post_or_404(pid):
    row = db().execute("SELECT * FROM posts WHERE id = ?", (pid,)).fetchone()
    if row is None:
        flask.abort(404)
    return row


def create_app(db_path, seed: int = 0):
    """The forum over ``db_path``, reset to ``seed`` (``app.reset(seed)`` resets again)."""
    nav = [("/", "Forums"), ("/login", "Log in")]
    app = make_app(__name__, "Forum", db_path, seed, T, nav, reset)
    app.jinja_env.globals["stamp"] = stamp

    @app.context_processor
    def _who():
        return {"user": _user()}

    def page(template, title, nav_key=None, status=200, **kw):
        flask.g.nav = nav_key
        return flask.render_template(template, title=title, **kw), status

    def need_login():
        user = _user()
        if user is None:
            flask.abort(flask.redirect("/login", 303))
        return user

    @app.get("/")
    def home():
        rows = db().execute("SELECT s.id, s.name, count(t.id) AS n FROM subforums s LEFT JOIN "
                            "threads t ON t.subforum_id = s.id GROUP BY s.id ORDER BY s.id")
        return page("home.html", "Forums", "/", subforums=rows.fetchall())

    @app.get("/f/<int:sid>")
    def subforum(sid):
        s = db().execute("SELECT * FROM subforums WHERE id = ?", (sid,)).fetchone()
        if s is None:
            flask.abort(404)
        rows = db().execute("SELECT t.id, t.title, count(p.id) AS n, max(p.created) AS last "
                            "FROM threads t JOIN posts p ON p.thread_id = t.id WHERE "
                            "t.subforum_id = ? GROUP BY t.id ORDER BY last DESC, t.id", (sid,))
        return page("subforum.html", s["name"], sid=sid, threads=rows.fetchall())

    @app.get("/t/<int:tid>")
    def thread(tid):
        t = db().execute("SELECT t.*, s.name AS subforum FROM threads t JOIN subforums s ON "
                         "s.id = t.subforum_id WHERE t.id = ?", (tid,)).fetchone()
        if t is None:
            flask.abort(404)
        posts = db().execute(
            "SELECT p.*, u.username AS author, coalesce((SELECT sum(value) FROM votes v WHERE "
            "v.post_id = p.id), 0) AS score FROM posts p JOIN users u ON u.id = p.author_id "
            "WHERE p.thread_id = ? ORDER BY p.created, p.id", (tid,)).fetchall()
        return page("thread.html", t["title"], t=t, posts=posts)

    @app.route("/login", methods=["GET", "POST"])
    def login():
        form = flask.request.form
        if flask.request.method == "POST":
            row = db().execute("SELECT id, password FROM users WHERE username = ?",
                               (str(form.get("username", "")),)).fetchone()
            if row is not None and row["password"] == form.get("password"):
                flask.session["user_id"] = row["id"]
                return flask.redirect("/", 303)
            return page("login.html", "Log in", "/login", 401, username=form.get("username", ""),
                        error="Wrong username or password.")
        return page("login.html", "Log in", "/login", username="")

    @app.post("/logout")
    def logout():
        flask.session.pop("user_id", None)
        return flask.redirect("/", 303)

    @app.post("/p/<int:pid>/vote")
    def vote(pid):
        user, post = need_login(), _post_or_404(pid)
        value = parse_int(flask.request.form.get("value"))
        if value not in (1, -1):
            flask.abort(400)
        db().execute("INSERT INTO votes VALUES (?, ?, ?) ON CONFLICT(user_id, post_id) DO UPDATE "
                     "SET value = excluded.value", (user["id"], pid, value))
        db().commit()
        return flask.redirect(f"/t/{post['thread_id']}#post-{pid}", 303)

    def _next_time():
        return db().execute("SELECT coalesce(max(created), 0) + 1 FROM posts").fetchone()[0]

    def _body(redirect_to):
        body = str(flask.request.form.get("body", "")).strip()[:MAX_BODY]
        if not body:
            flask.flash("Not posted: the message is empty.")
            flask.abort(flask.redirect(redirect_to, 303))
        return body

    @app.post("/p/<int:pid>/reply")
    def reply(pid):
        user, post = need_login(), _post_or_404(pid)
        body = _body(f"/t/{post['thread_id']}")
        db().execute("INSERT INTO posts (thread_id, parent_id, author_id, body, created) "
                     "VALUES (?, ?, ?, ?, ?)", (post["thread_id"], pid, user["id"], body,
                                                _next_time()))
        db().commit()
        return flask.redirect(f"/t/{post['thread_id']}", 303)

    @app.post("/f/<int:sid>/new")
    def new_thread(sid):
        user = need_login()
        if db().execute("SELECT 1 FROM subforums WHERE id = ?", (sid,)).fetchone() is None:
            flask.abort(404)
        title = str(flask.request.form.get("title", "")).strip()[:200]
        body = _body(f"/f/{sid}")
        if not title:
            flask.flash("Not posted: the title is empty.")
            return flask.redirect(f"/f/{sid}", 303)
        cur = db().execute("INSERT INTO threads (subforum_id, title, author_id) VALUES (?, ?, ?)",
                           (sid, title, user["id"]))
        db().execute("INSERT INTO posts (thread_id, parent_id, author_id, body, created) VALUES "
                     "(?, NULL, ?, ?, ?)", (cur.lastrowid, user["id"], body, _next_time()))
        db().commit()
        return flask.redirect(f"/t/{cur.lastrowid}", 303)

    return app
