"""The admin panel: orders / products / customers tables (tabs) with filters, sorting and
pagination, and edit forms (order status, product price and stock, customer email).

State (SQLite): ``customers``, ``products`` (price in cents), ``orders`` (status one of
:data:`STATUSES`). ``reset(db_path, seed)`` recreates it deterministically.
"""

from __future__ import annotations

import random
import re

from .common import db, flask, make_app, money, parse_int, recreate

STATUSES = ["pending", "processing", "shipped", "delivered", "cancelled"]
FIRST = ["Ada", "Ben", "Chloe", "Dev", "Eva", "Finn", "Gia", "Hugo", "Iris", "Jon", "Kai", "Lena"]
LAST = ["Smith", "Okafor", "Nguyen", "Garcia", "Kowalski", "Haddad", "Berg", "Rossi"]
CITIES = ["Austin", "Boston", "Denver", "Seattle", "Miami"]
ITEMS = ["Desk Lamp", "Office Chair", "Notebook", "Backpack", "Water Bottle", "Monitor Stand",
         "Keyboard", "Mouse Pad", "Headphones", "Phone Case", "Coffee Mug", "Plant Pot"]
N_CUSTOMERS, N_ORDERS, PAGE_SIZE = 20, 45, 10

SCHEMA = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  email TEXT NOT NULL, city TEXT NOT NULL);
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  price_cents INTEGER NOT NULL, stock INTEGER NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL
  REFERENCES customers(id), status TEXT NOT NULL, total_cents INTEGER NOT NULL,
  placed TEXT NOT NULL);
"""

#: table -> (columns shown, sortable columns, SELECT with the shown columns)
TABLES = {
    "orders": (["id", "customer", "status", "total", "placed"],
               {"id": "o.id", "customer": "c.name", "status": "o.status",
                "total": "o.total_cents", "placed": "o.placed"},
               "SELECT o.id, c.name AS customer, o.status, o.total_cents AS total, o.placed "
               "FROM orders o JOIN customers c ON c.id = o.customer_id"),
    "products": (["id", "name", "price", "stock"],
                 {"id": "id", "name": "name", "price": "price_cents", "stock": "stock"},
                 "SELECT id, name, price_cents AS price, stock FROM products"),
    "customers": (["id", "name", "email", "city"],
                  {"id": "id", "name": "name", "email": "email", "city": "city"},
                  "SELECT id, name, email, city FROM customers"),
}
#: table -> (filter parameter, its label, SQL condition, choices or None for free text)
FILTERS = {
    "orders": ("status", "Status", "o.status = ?", STATUSES),
    "products": ("q", "Name contains", "instr(lower(name), lower(?)) > 0", None),
    "customers": ("city", "City", "city = ?", CITIES),
}


def reset(db_path, seed: int) -> None:
    """Recreate the admin database at ``db_path`` from ``seed``: 20 customers, 12 products,
    45 orders (dates in 2024, statuses uniform over :data:`STATUSES`)."""
    rng = random.Random(f"admin-{seed}")
    conn = recreate(db_path, SCHEMA)
    names = rng.sample([f"{f} {la}" for f in FIRST for la in LAST], N_CUSTOMERS)
    for i, name in enumerate(names, start=1):
        email = name.lower().replace(" ", ".") + "@example.com"
        conn.execute("INSERT INTO customers VALUES (?, ?, ?, ?)",
                     (i, name, email, rng.choice(CITIES)))
    for i, item in enumerate(ITEMS, start=1):
        conn.execute("INSERT INTO products VALUES (?, ?, ?, ?)",
                     (i, item, rng.randrange(300, 20000, 5), rng.randint(0, 60)))
    for i in range(1, N_ORDERS + 1):
        conn.execute("INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                     (i, rng.randint(1, N_CUSTOMERS), rng.choice(STATUSES),
                      rng.randrange(500, 50000, 5),
                      f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"))
    conn.commit()
    conn.close()


T = {}
T["table.html"] = """{% extends "base.html" %}{% block content %}
<form method="get" action="/{{ table }}" role="search" aria-label="Filter {{ table }}">
<label for="{{ fparam }}">{{ flabel }}</label>{% if choices %}
<select id="{{ fparam }}" name="{{ fparam }}"><option value="">Any</option>{% for c in choices %}
<option value="{{ c }}"{% if c == fvalue %} selected{% endif %}>{{ c }}</option>{% endfor %}</select>
{% else %}<input id="{{ fparam }}" name="{{ fparam }}" value="{{ fvalue }}">{% endif %}
<button type="submit">Filter</button></form>
<table><caption>{{ title }}: {{ count }} rows, page {{ page }} of {{ pages }}</caption><thead><tr>
{% for col in cols %}<th scope="col"{% if col == sort %} aria-sort="{{ 'ascending' if dir == 'asc' else 'descending' }}"{% endif %}><a href="{{ url(sort=col, dir='desc' if col == sort and dir == 'asc' else 'asc', page=1) }}">Sort by {{ col }}</a></th>{% endfor %}
<th scope="col">Edit</th></tr></thead><tbody>{% for r in rows %}<tr>{% for col in cols %}
<td>{{ money(r[col]) if col in ('total', 'price') else r[col] }}</td>{% endfor %}
<td><a href="/{{ table }}/{{ r.id }}">Edit {{ table[:-1] }} {{ r.id }}</a></td></tr>{% endfor %}</tbody></table>
<nav aria-label="Pagination">{% if page > 1 %}<a href="{{ url(page=page - 1) }}">Previous page</a>{% endif %}
{% if page < pages %}<a href="{{ url(page=page + 1) }}">Next page</a>{% endif %}</nav>{% endblock %}"""
T["edit.html"] = """{% extends "base.html" %}{% block content %}
<dl>{% for k, v in info %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>
<form method="post" action="/{{ table }}/{{ rid }}" aria-label="Edit">{% for f, label, choices, value in fields %}
<p><label for="{{ f }}">{{ label }}</label>{% if choices %}<select id="{{ f }}" name="{{ f }}">
{% for c in choices %}<option value="{{ c }}"{% if c == value %} selected{% endif %}>{{ c }}</option>{% endfor %}</select>
{% else %}<input id="{{ f }}" name="{{ f }}" value="{{ value }}">{% endif %}</p>{% endfor %}
<button type="submit">Save</button></form><p><a href="/{{ table }}">Back to {{ table }}</a></p>{% endblock %}"""

#: table -> [(field, label, choices or None, parser to a stored value or None if invalid)]
EDITS = {
    "orders": [("status", "Status", STATUSES, lambda v: v if v in STATUSES else None)],
    "products": [("price", "Price (USD)", None,
                  lambda v: round(float(v) * 100) if re.fullmatch(r"\d{1,5}(\.\d{1,2})?", v)
                  else None),
                 ("stock", "Stock", None, lambda v: int(v) if re.fullmatch(r"\d{1,5}", v)
                  else None)],
    "customers": [("email", "Email", None,
                   lambda v: v if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v) else None)],
}
COLUMN = {"status": "status", "price": "price_cents", "stock": "stock", "email": "email"}


def create_app(db_path, seed: int = 0):
    """The admin panel over ``db_path``, reset to ``seed`` (``app.reset(seed)`` resets again)."""
    nav = [("/orders", "Orders"), ("/products", "Products"), ("/customers", "Customers")]
    app = make_app(__name__, "Admin", db_path, seed, T, nav, reset)

    def page(template, title, table, status=200, **kw):
        flask.g.nav = f"/{table}"
        return flask.render_template(template, title=title, table=table, **kw), status

    @app.get("/")
    def home():
        return flask.redirect("/orders", 302)

    @app.get("/<any(orders, products, customers):table>")
    def listing(table):
        cols, sortable, select = TABLES[table]
        fparam, flabel, cond, choices = FILTERS[table]
        args = flask.request.args
        fvalue = args.get(fparam, "").strip()
        sort = args.get("sort", "id") if args.get("sort", "id") in sortable else "id"
        direction = "desc" if args.get("dir") == "desc" else "asc"
        where, params = (f" WHERE {cond}", [fvalue]) if fvalue else ("", [])
        count = db().execute(f"SELECT count(*) FROM ({select}{where})", params).fetchone()[0]
        pages = max(1, -(-count // PAGE_SIZE))
        pg = parse_int(args.get("page"), 1, lo=1, hi=pages)
        rows = db().execute(f"{select}{where} ORDER BY {sortable[sort]} {direction}, 1 ASC "
                            "LIMIT ? OFFSET ?", [*params, PAGE_SIZE, (pg - 1) * PAGE_SIZE])

        def url(**over):
            q = {fparam: fvalue, "sort": sort, "dir": direction, "page": pg, **over}
            return flask.url_for("listing", table=table, **{k: v for k, v in q.items() if v})

        return page("table.html", table.title(), table, cols=cols, rows=rows.fetchall(),
                    sort=sort, dir=direction, page=pg, pages=pages, count=count, url=url,
                    fparam=fparam, flabel=flabel, fvalue=fvalue, choices=choices)

    @app.route("/<any(orders, products, customers):table>/<int:rid>", methods=["GET", "POST"])
    def edit(table, rid):
        select = TABLES[table][2]
        key = "o.id" if table == "orders" else "id"
        row = db().execute(f"{select} WHERE {key} = ?", (rid,)).fetchone()
        if row is None:
            flask.abort(404)
        error, status = None, 200
        if flask.request.method == "POST":
            updates, bad = {}, []
            for f, label, _, parse in EDITS[table]:
                raw = str(flask.request.form.get(f, "")).strip()
                try:
                    value = parse(raw)
                except ValueError:
                    value = None
                (bad.append(label) if value is None else updates.__setitem__(COLUMN[f], value))
            if bad:
                error, status = f"Not saved: invalid {', '.join(bad)}.", 400
            else:
                sets = ", ".join(f"{c} = ?" for c in updates)
                db().execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*updates.values(), rid))
                db().commit()
                flask.flash(f"Saved {table[:-1]} {rid}.")
                return flask.redirect(f"/{table}/{rid}", 303)
        fields = [(f, label, choices, _shown(row, f)) for f, label, choices, _ in EDITS[table]]
        info = [(k, money(row[k]) if k in ("total", "price") else row[k]) for k in row.keys()]
        return page("edit.html", f"Edit {table[:-1]} {rid}", table, status, rid=rid,
                    fields=fields, info=info, error=error)

    return app


def _shown(row, field):
    if field == "price":
        return f"{row['price'] // 100}.{row['price'] % 100:02d}"
    return row[field]
