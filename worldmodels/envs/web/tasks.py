"""Tasks on the local sites: an objective string, a success check on the server's SQLite
state and a scripted solution (HTTP requests, run through Flask's test client).

Each site has several task *families* (templates); :func:`make_task` instantiates one from the
site's seeded state with parameters drawn from ``seed`` (so a family can be held out later).
The scripted solution only proves a task solvable and its check sound; it is not the browser
agent. Generate a task right after ``reset`` (it reads the initial state).
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from .common import connect


@dataclass(frozen=True)
class HttpStep:
    """One request of a scripted solution: ``method`` (GET/POST), ``path``, form ``data``."""

    method: str
    path: str
    data: dict | None = None


@dataclass(frozen=True)
class WebTask:
    """A task: ``site``, ``family`` (template name), ``objective`` (what the agent is told),
    ``params`` (the drawn parameters), ``solution`` (scripted requests) and ``check``
    (connection -> success, read-only)."""

    site: str
    family: str
    objective: str
    params: dict
    solution: tuple[HttpStep, ...]
    check: Callable[[sqlite3.Connection], bool] = field(compare=False, repr=False)

    def success(self, db_path) -> bool:
        """Whether the state in ``db_path`` satisfies the objective."""
        conn = connect(db_path)
        try:
            return bool(self.check(conn))
        finally:
            conn.close()


def _one(conn, sql, *params):
    return conn.execute(sql, params).fetchone()


# ---- shop -------------------------------------------------------------------------------

def shop_cheapest(conn, rng) -> WebTask:
    """Add the cheapest <colour> <item> (a unique minimum, not yet in the cart) to the cart."""
    rows = conn.execute(
        "SELECT c.name AS category, p.colour, p.id, p.price_cents FROM products p JOIN "
        "categories c ON c.id = p.category_id WHERE p.id NOT IN (SELECT product_id FROM "
        "cart_items) ORDER BY c.id, p.colour, p.price_cents, p.id").fetchall()
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["category"], r["colour"]), []).append(r)
    ok = [k for k, g in groups.items() if len(g) >= 2 and g[0]["price_cents"] < g[1]["price_cents"]
          and _one(conn, "SELECT count(*) FROM products p JOIN categories c ON c.id = "
                   "p.category_id WHERE c.name = ? AND p.colour = ? AND p.price_cents <= ?",
                   k[0], k[1], g[0]["price_cents"])[0] == 1]
    category, colour = rng.choice(sorted(ok))
    pid = groups[(category, colour)][0]["id"]
    return WebTask("shop", "cheapest", f"Add the cheapest {colour} {category[:-1].lower()} "
                   "to the cart.", {"colour": colour, "category": category, "product_id": pid},
                   (HttpStep("POST", "/cart/add", {"product_id": str(pid), "quantity": "1"}),),
                   lambda c: _one(c, "SELECT 1 FROM cart_items WHERE product_id = ?", pid)
                   is not None)


def shop_quantity(conn, rng) -> WebTask:
    """Set the quantity of an item already in the cart to a new number (2-5)."""
    item = rng.choice(conn.execute("SELECT p.id, p.name, c.quantity FROM cart_items c JOIN "
                                   "products p ON p.id = c.product_id ORDER BY p.id").fetchall())
    n = rng.choice([q for q in range(2, 6) if q != item["quantity"]])
    pid = item["id"]
    return WebTask("shop", "quantity", f"Change the quantity of {item['name']} in the cart to "
                   f"{n}.", {"product_id": pid, "quantity": n},
                   (HttpStep("POST", "/cart/update", {"product_id": str(pid), "quantity": str(n)}),),
                   lambda c: _one(c, "SELECT 1 FROM cart_items WHERE product_id = ? AND "
                                  "quantity = ?", pid, n) is not None)


def shop_remove(conn, rng) -> WebTask:
    """Remove one of the cart's items (the others stay)."""
    items = conn.execute("SELECT p.id, p.name FROM cart_items c JOIN products p ON "
                         "p.id = c.product_id ORDER BY p.id").fetchall()
    item = rng.choice(items)
    pid, others = item["id"], [i["id"] for i in items if i["id"] != item["id"]]

    def check(c):
        left = {r[0] for r in c.execute("SELECT product_id FROM cart_items")}
        return pid not in left and set(others) <= left

    return WebTask("shop", "remove", f"Remove {item['name']} from the cart.",
                   {"product_id": pid}, (HttpStep("POST", "/cart/remove",
                                                  {"product_id": str(pid)}),), check)


BUYERS = [("Maria Lopez", "12 Oak Street", "30301"), ("Tom Becker", "5 Elm Road", "10115"),
          ("Priya Shah", "88 Hill Lane", "94107"), ("Sam Ito", "3 River Way", "60601")]


def shop_checkout(conn, rng) -> WebTask:
    """Buy a named product and ship it to a named buyer (an order holding it, that address)."""
    p = rng.choice(conn.execute("SELECT id, name FROM products ORDER BY id").fetchall())
    name, address, postcode = rng.choice(BUYERS)
    email = name.split()[0].lower() + "@example.com"
    form = {"name": name, "email": email, "address": address, "postcode": postcode}
    pid = p["id"]
    return WebTask(
        "shop", "checkout", f"Buy {p['name']} and ship it to {name}, {address}, {postcode} "
        f"(email {email}).", {"product_id": pid, **form},
        (HttpStep("POST", "/cart/add", {"product_id": str(pid), "quantity": "1"}),
         HttpStep("POST", "/checkout", form)),
        lambda c: _one(c, "SELECT 1 FROM orders o JOIN order_items i ON i.order_id = o.id "
                       "WHERE i.product_id = ? AND o.name = ? AND o.email = ? AND o.address = ? "
                       "AND o.postcode = ?", pid, name, email, address, postcode) is not None)


# ---- admin ------------------------------------------------------------------------------

def admin_order_status(conn, rng) -> WebTask:
    """Set order <id> to a status it does not have."""
    from .admin import STATUSES
    o = rng.choice(conn.execute("SELECT id, status FROM orders ORDER BY id").fetchall())
    status = rng.choice([s for s in STATUSES if s != o["status"]])
    oid = o["id"]
    return WebTask("admin", "order_status", f"Set order {oid} to {status}.",
                   {"order_id": oid, "status": status},
                   (HttpStep("POST", f"/orders/{oid}", {"status": status}),),
                   lambda c: _one(c, "SELECT status FROM orders WHERE id = ?", oid)[0] == status)


def admin_price(conn, rng) -> WebTask:
    """Change a product's price to a new value (stock unchanged)."""
    p = rng.choice(conn.execute("SELECT * FROM products ORDER BY id").fetchall())
    cents = rng.choice([c for c in range(999, 20000, 500) if c != p["price_cents"]])
    pid, stock = p["id"], p["stock"]
    price = f"{cents // 100}.{cents % 100:02d}"
    return WebTask("admin", "price", f"Change the price of {p['name']} to ${price}.",
                   {"product_id": pid, "price_cents": cents},
                   (HttpStep("POST", f"/products/{pid}", {"price": price, "stock": str(stock)}),),
                   lambda c: tuple(_one(c, "SELECT price_cents, stock FROM products WHERE id = ?",
                                        pid)) == (cents, stock))


def admin_email(conn, rng) -> WebTask:
    """Change a customer's email address."""
    cu = rng.choice(conn.execute("SELECT * FROM customers ORDER BY id").fetchall())
    email = f"{cu['name'].split()[0].lower()}{rng.randint(10, 99)}@mail.example.org"
    cid = cu["id"]
    return WebTask("admin", "email", f"Change the email address of customer {cu['name']} to "
                   f"{email}.", {"customer_id": cid, "email": email},
                   (HttpStep("POST", f"/customers/{cid}", {"email": email}),),
                   lambda c: _one(c, "SELECT email FROM customers WHERE id = ?", cid)[0] == email)


# ---- forum ------------------------------------------------------------------------------

def _login(conn, rng):
    from .forum import password
    u = rng.choice(conn.execute("SELECT id, username FROM users ORDER BY id").fetchall())
    step = HttpStep("POST", "/login", {"username": u["username"],
                                       "password": password(u["username"])})
    intro = f"Log in as {u['username']} (password {password(u['username'])}) and"
    return u["id"], u["username"], intro, step


def forum_reply_newest(conn, rng) -> WebTask:
    """Reply to the newest post of a sub-forum (as a given user)."""
    uid, user, intro, login = _login(conn, rng)
    sub = rng.choice(conn.execute("SELECT name FROM subforums ORDER BY id").fetchall())["name"]
    post = _one(conn, "SELECT p.id FROM posts p JOIN threads t ON t.id = p.thread_id JOIN "
                "subforums s ON s.id = t.subforum_id WHERE s.name = ? ORDER BY p.created DESC "
                "LIMIT 1", sub)["id"]
    return WebTask("forum", "reply_newest", f"{intro} reply to the newest post in {sub}.",
                   {"user": user, "subforum": sub, "post_id": post},
                   (login, HttpStep("POST", f"/p/{post}/reply", {"body": "Thanks for sharing!"})),
                   lambda c: _one(c, "SELECT 1 FROM posts WHERE parent_id = ? AND author_id = ?",
                                  post, uid) is not None)


def forum_upvote(conn, rng) -> WebTask:
    """Upvote the first post of a thread the user has not upvoted yet."""
    uid, user, intro, login = _login(conn, rng)
    rows = conn.execute("SELECT t.title, p.id FROM threads t JOIN posts p ON p.thread_id = t.id "
                        "AND p.parent_id IS NULL WHERE NOT EXISTS (SELECT 1 FROM votes v WHERE "
                        "v.post_id = p.id AND v.user_id = ? AND v.value = 1) ORDER BY t.id",
                        (uid,)).fetchall()
    t = rng.choice(rows)
    pid = t["id"]
    return WebTask("forum", "upvote", f"{intro} upvote the first post of the thread "
                   f"'{t['title']}'.", {"user": user, "post_id": pid},
                   (login, HttpStep("POST", f"/p/{pid}/vote", {"value": "1"})),
                   lambda c: _one(c, "SELECT 1 FROM votes WHERE user_id = ? AND post_id = ? AND "
                                  "value = 1", uid, pid) is not None)


def forum_new_thread(conn, rng) -> WebTask:
    """Start a thread with a given title in a sub-forum."""
    uid, user, intro, login = _login(conn, rng)
    s = rng.choice(conn.execute("SELECT id, name FROM subforums ORDER BY id").fetchall())
    title = rng.choice(["Beginner question", "Weekly check-in", "Show your setup",
                        "Best advice you got"])
    sid = s["id"]
    return WebTask("forum", "new_thread", f"{intro} start a thread titled '{title}' in "
                   f"{s['name']}.", {"user": user, "subforum": s["name"], "title": title},
                   (login, HttpStep("POST", f"/f/{sid}/new", {"title": title, "body": "Hello!"})),
                   lambda c: _one(c, "SELECT 1 FROM threads WHERE subforum_id = ? AND title = ? "
                                  "AND author_id = ?", sid, title, uid) is not None)


#: site -> family -> generator(conn, rng) -> WebTask
TASK_FAMILIES = {
    "shop": {"cheapest": shop_cheapest, "quantity": shop_quantity, "remove": shop_remove,
             "checkout": shop_checkout},
    "admin": {"order_status": admin_order_status, "price": admin_price, "email": admin_email},
    "forum": {"reply_newest": forum_reply_newest, "upvote": forum_upvote,
              "new_thread": forum_new_thread},
}


def make_task(site: str, family: str, db_path, seed: int = 0) -> WebTask:
    """Instantiate task ``family`` of ``site`` from the (freshly reset) state in ``db_path``,
    parameters drawn from ``seed``. ValueError naming the choices for an unknown site/family."""
    if site not in TASK_FAMILIES:
        raise ValueError(f"unknown web site {site!r}; expected one of {sorted(TASK_FAMILIES)}")
    if family not in TASK_FAMILIES[site]:
        raise ValueError(f"unknown task family {family!r} for site {site!r}; expected one of "
                         f"{sorted(TASK_FAMILIES[site])}")
    conn = connect(db_path)
    try:
        return TASK_FAMILIES[site][family](conn, random.Random(f"{site}/{family}/{seed}"))
    finally:
        conn.close()


def run_solution(app, task: WebTask) -> list[int]:
    """Run ``task.solution`` through ``app``'s test client (one session); returns the status
    codes. RuntimeError naming the step when a request fails (status >= 400)."""
    client = app.test_client()
    codes = []
    for i, step in enumerate(task.solution):
        resp = client.open(step.path, method=step.method, data=step.data)
        if resp.status_code >= 400:
            raise RuntimeError(f"{task.site}/{task.family} solution step {i} {step.method} "
                               f"{step.path} failed with HTTP {resp.status_code}")
        codes.append(resp.status_code)
    return codes
