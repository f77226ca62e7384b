"""The shop: search, category pages, product pages (name, colour, size, price), a cart
(add / remove / quantity) and a checkout form validated on the server.

State (SQLite): ``categories``, ``products`` (price in cents), ``cart_items`` (one shopper),
``orders`` and ``order_items``. ``reset(db_path, seed)`` recreates it deterministically.
"""

from __future__ import annotations

import random
import re

from .common import db, flask, make_app, money, parse_int, recreate

CATEGORIES = ["Shirts", "Trousers", "Shoes", "Hats"]
COLOURS = ["red", "blue", "green", "black", "white"]
SIZES = ["S", "M", "L", "XL"]
STYLES = ["Classic", "Slim", "Linen", "Sport", "Vintage", "Organic", "Urban", "Summer"]
PER_CATEGORY = 10

SCHEMA = """
CREATE TABLE categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  category_id INTEGER NOT NULL REFERENCES categories(id), colour TEXT NOT NULL,
  size TEXT NOT NULL, price_cents INTEGER NOT NULL);
CREATE TABLE cart_items (product_id INTEGER PRIMARY KEY REFERENCES products(id),
  quantity INTEGER NOT NULL CHECK (quantity > 0));
CREATE TABLE orders (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL,
  address TEXT NOT NULL, postcode TEXT NOT NULL, total_cents INTEGER NOT NULL);
CREATE TABLE order_items (order_id INTEGER NOT NULL REFERENCES orders(id),
  product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL,
  price_cents INTEGER NOT NULL);
"""


def reset(db_path, seed: int) -> None:
    """Recreate the shop database at ``db_path`` with the catalogue drawn from ``seed``:
    4 categories x 10 products (distinct names, prices 5.00-80.00) and 2 items in the cart."""
    rng = random.Random(f"shop-{seed}")
    conn = recreate(db_path, SCHEMA)
    pid = 0
    for cid, cat in enumerate(CATEGORIES, start=1):
        conn.execute("INSERT INTO categories VALUES (?, ?)", (cid, cat))
        styles = rng.sample(STYLES, len(STYLES))
        for k in range(PER_CATEGORY):
            pid += 1
            colour = rng.choice(COLOURS)
            name = f"{styles[k % len(styles)]} {colour.title()} {cat[:-1]}"
            if k >= len(styles):
                name += f" {k - len(styles) + 2}"
            conn.execute("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)",
                         (pid, name, cid, colour, rng.choice(SIZES), rng.randrange(500, 8000, 5)))
    for p in rng.sample(range(1, pid + 1), 2):
        conn.execute("INSERT INTO cart_items VALUES (?, ?)", (p, rng.randint(1, 2)))
    conn.commit()
    conn.close()


T = {}
T["list.html"] = """{% extends "base.html" %}{% block content %}
{% if products %}<ul aria-label="Products">{% for p in products %}
<li><a href="/product/{{ p.id }}">{{ p.name }}</a> {{ money(p.price_cents) }}</li>{% endfor %}</ul>
{% else %}<p>No products found.</p>{% endif %}{% endblock %}"""
T["home.html"] = """{% extends "base.html" %}{% block content %}
<h2>Categories</h2><ul aria-label="Categories">{% for c in categories %}
<li><a href="/category/{{ c.id }}">{{ c.name }}</a></li>{% endfor %}</ul>{% endblock %}"""
T["product.html"] = """{% extends "base.html" %}{% block content %}
<dl><dt>Colour</dt><dd>{{ p.colour }}</dd><dt>Size</dt><dd>{{ p.size }}</dd>
<dt>Price</dt><dd>{{ money(p.price_cents) }}</dd><dt>Category</dt>
<dd><a href="/category/{{ p.category_id }}">{{ p.category }}</a></dd></dl>
<form method="post" action="/cart/add"><input type="hidden" name="product_id" value="{{ p.id }}">
<label for="quantity">Quantity</label><input id="quantity" name="quantity" type="number" min="1" value="1">
<button type="submit">Add to cart</button></form>{% endblock %}"""
T["cart.html"] = """{% extends "base.html" %}{% block content %}
{% if items %}<table><caption>Cart</caption><thead><tr><th scope="col">Product</th>
<th scope="col">Price</th><th scope="col">Quantity</th><th scope="col">Remove</th></tr></thead><tbody>
{% for it in items %}<tr><td><a href="/product/{{ it.id }}">{{ it.name }}</a></td><td>{{ money(it.price_cents) }}</td>
<td><form method="post" action="/cart/update"><input type="hidden" name="product_id" value="{{ it.id }}">
<label for="qty-{{ it.id }}">Quantity of {{ it.name }}</label>
<input id="qty-{{ it.id }}" name="quantity" type="number" min="0" value="{{ it.quantity }}">
<button type="submit">Update</button></form></td>
<td><form method="post" action="/cart/remove"><input type="hidden" name="product_id" value="{{ it.id }}">
<button type="submit">Remove {{ it.name }}</button></form></td></tr>{% endfor %}</tbody></table>
<p>Total: {{ money(total) }}</p><p><a href="/checkout">Checkout</a></p>
{% else %}<p>Your cart is empty.</p>{% endif %}{% endblock %}"""
T["checkout.html"] = """{% extends "base.html" %}{% block content %}
<p>Total: {{ money(total) }}</p>
<form method="post" action="/checkout" aria-label="Checkout">{% for f, label, kind in fields %}
<p><label for="{{ f }}">{{ label }}</label><input id="{{ f }}" name="{{ f }}" type="{{ kind }}" value="{{ values.get(f, '') }}"{% if errors.get(f) %} aria-invalid="true" aria-describedby="{{ f }}-error"{% endif %}>
{% if errors.get(f) %}<span id="{{ f }}-error" role="alert">{{ label }}: {{ errors[f] }}</span>{% endif %}</p>{% endfor %}
<button type="submit">Place order</button></form>{% endblock %}"""
T["banner.html"] = """<form role="search" method="get" action="/search">
<label for="q">Search products</label><input id="q" name="q" type="search" value="{{ query }}">
<button type="submit">Search</button></form>"""
T["order.html"] = """{% extends "base.html" %}{% block content %}
<p>Order {{ o.id }} for {{ o.name }}, total {{ money(o.total_cents) }}.</p>{% endblock %}"""

CHECKOUT_FIELDS = [("name", "Full name", "text"), ("email", "Email", "email"),
                   ("address", "Street address", "text"), ("postcode", "Postcode", "text")]


def validate_checkout(form) -> tuple[dict, dict]:
    """(values, errors) of a checkout form: every field required, email ``x@y.z``, postcode
    5 digits; errors maps field -> message."""
    values = {f: str(form.get(f, "")).strip() for f, _, _ in CHECKOUT_FIELDS}
    errors = {f: "is required" for f, v in values.items() if not v}
    if values["email"] and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", values["email"]):
        errors["email"] = "must look like name@example.com"
    if values["postcode"] and not re.fullmatch(r"\d{5}", values["postcode"]):
        errors["postcode"] = "must be 5 digits"
    return values, errors


def _cart():
    items = db().execute(
        "SELECT p.id, p.name, p.price_cents, c.quantity FROM cart_items c "
        "JOIN products p ON p.id = c.product_id ORDER BY p.id").fetchall()
    return items, sum(i["price_cents"] * i["quantity"] for i in items)


def _product_or_404(pid):
    row = db().execute("SELECT p.*, c.name AS category FROM products p JOIN categories c "
                       "ON c.id = p.category_id WHERE p.id = ?", (pid,)).fetchone()
    if row is None:
        flask.abort(404)
    return row


def create_app(db_path, seed: int = 0):
    """The shop over ``db_path``, reset to ``seed`` (``app.reset(seed)`` resets again)."""
    nav = [("/", "Home"), ("/cart", "Cart"), ("/checkout", "Checkout")]
    app = make_app(__name__, "Shop", db_path, seed, T, nav, reset)
    render = flask.render_template

    def page(template, title, nav_key=None, status=200, **kw):
        flask.g.nav = nav_key
        return render(template, title=title, **kw), status

    @app.get("/")
    def home():
        cats = db().execute("SELECT * FROM categories ORDER BY id").fetchall()
        return page("home.html", "Welcome", "/", categories=cats)

    @app.context_processor
    def _search():  # the search box is in every banner
        return {"query": flask.request.args.get("q", "")}

    @app.get("/search")
    def search():
        q = flask.request.args.get("q", "").strip()
        rows = db().execute("SELECT * FROM products WHERE instr(lower(name), lower(?)) > 0 "
                            "ORDER BY name", (q,)).fetchall() if q else []
        return page("list.html", f"Results for {q}" if q else "Search", products=rows)

    @app.get("/category/<int:cid>")
    def category(cid):
        cat = db().execute("SELECT * FROM categories WHERE id = ?", (cid,)).fetchone()
        if cat is None:
            flask.abort(404)
        rows = db().execute("SELECT * FROM products WHERE category_id = ? ORDER BY name",
                            (cid,)).fetchall()
        return page("list.html", cat["name"], products=rows)

    @app.get("/product/<int:pid>")
    def product(pid):
        p = _product_or_404(pid)
        return page("product.html", p["name"], p=p)

    @app.post("/cart/add")
    def cart_add():
        p = _product_or_404(parse_int(flask.request.form.get("product_id"), -1))
        qty = parse_int(flask.request.form.get("quantity"), None, hi=99)
        if qty is None or qty < 1:
            return page("product.html", p["name"], status=400, p=p,
                        error="Quantity must be a whole number of at least 1.")
        db().execute("INSERT INTO cart_items VALUES (?, ?) ON CONFLICT(product_id) DO UPDATE "
                     "SET quantity = min(99, quantity + excluded.quantity)", (p["id"], qty))
        db().commit()
        flask.flash(f"Added {qty} x {p['name']} to the cart.")
        return flask.redirect("/cart", 303)

    @app.post("/cart/update")
    def cart_update():
        pid = parse_int(flask.request.form.get("product_id"), -1)
        qty = parse_int(flask.request.form.get("quantity"), None, hi=99)
        if qty is None or qty < 0:
            items, total = _cart()
            return page("cart.html", "Cart", "/cart", 400, items=items, total=total,
                        error="Quantity must be a whole number of at least 0.")
        if qty == 0:
            db().execute("DELETE FROM cart_items WHERE product_id = ?", (pid,))
        else:
            db().execute("UPDATE cart_items SET quantity = ? WHERE product_id = ?", (qty, pid))
        db().commit()
        return flask.redirect("/cart", 303)

    @app.post("/cart/remove")
    def cart_remove():
        pid = parse_int(flask.request.form.get("product_id"), -1)
        db().execute("DELETE FROM cart_items WHERE product_id = ?", (pid,))
        db().commit()
        return flask.redirect("/cart", 303)

    @app.get("/cart")
    def cart():
        items, total = _cart()
        return page("cart.html", "Cart", "/cart", items=items, total=total)

    @app.route("/checkout", methods=["GET", "POST"])
    def checkout():
        items, total = _cart()
        values, errors = ({}, {})
        if flask.request.method == "POST":
            values, errors = validate_checkout(flask.request.form)
            if not items:
                errors["cart"] = "is empty"
            if not errors:
                cur = db().execute("INSERT INTO orders (name, email, address, postcode, "
                                   "total_cents) VALUES (?, ?, ?, ?, ?)",
                                   (*[values[f] for f, _, _ in CHECKOUT_FIELDS], total))
                db().executemany("INSERT INTO order_items VALUES (?, ?, ?, ?)",
                                 [(cur.lastrowid, i["id"], i["quantity"], i["price_cents"])
                                  for i in items])
                db().execute("DELETE FROM cart_items")
                db().commit()
                return flask.redirect(f"/order/{cur.lastrowid}", 303)
        error = None
        if errors:
            error = ("The order was not placed: "
                     + "; ".join(f"{dict((f, lab) for f, lab, _ in CHECKOUT_FIELDS).get(k, 'Cart')}"
                                 f" {m}" for k, m in errors.items()) + ".")
        return page("checkout.html", "Checkout", "/checkout", 400 if errors else 200,
                    fields=CHECKOUT_FIELDS, values=values, errors=errors, total=total,
                    error=error)

    @app.get("/order/<int:oid>")
    def order(oid):
        o = db().execute("SELECT * FROM orders WHERE id = ?", (oid,)).fetchone()
        if o is None:
            flask.abort(404)
        return page("order.html", "Order placed", o=o)

    app.jinja_env.globals["money"] = money
    return app
