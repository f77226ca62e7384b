"""The local web sites: main pages render with labelled elements, seeded determinism, reset,
server-side validation that leaves state unchanged, and escaping of every visitor input."""

import pytest

pytest.importorskip("flask", reason="the web extra (flask) is not installed")

from worldmodels.envs.web import SITES, create_app  # noqa: E402
from worldmodels.envs.web.common import dump  # noqa: E402

#: site -> [(path, fragments that must appear)]
PAGES = {
    "shop": [("/", ['<label for="q">Search products</label>', 'role="search"', "<h2>Categories"]),
             ("/category/1", ["<h1>Shirts</h1>", 'aria-label="Products"']),
             ("/product/1", ['<label for="quantity">Quantity</label>', "Add to cart</button>",
                             "<dt>Colour</dt>", "<dt>Size</dt>", "<dt>Price</dt>"]),
             ("/search?q=shirt", ["<h1>Results for shirt</h1>", "Shirt</a>"]),
             ("/cart", ["<caption>Cart</caption>", "<button type=\"submit\">Remove "]),
             ("/checkout", ['<label for="email">Email</label>', "Place order</button>"])],
    "admin": [("/orders", ["<caption>Orders: 45 rows, page 1 of 5</caption>", "Next page</a>",
                           '<label for="status">Status</label>', "Sort by total</a>"]),
              ("/orders?status=shipped&sort=total&dir=desc", ['aria-sort="descending"',
                                                               "<td>shipped</td>"]),
              ("/products?q=lamp", ["<td>Desk Lamp</td>", "rows, page 1 of 1"]),
              ("/customers?city=Boston", ["<td>Boston</td>"]),
              ("/orders/17", ["<h1>Edit order 17</h1>", '<select id="status" name="status">']),
              ("/products/1", ['<label for="price">Price (USD)</label>'])],
    "forum": [("/", ['aria-label="Sub-forums"', "Gardening</a>", "Log in</a>"]),
              ("/f/1", ["<h1>Gardening</h1>", 'aria-label="Threads"']),
              ("/t/1", ['<article aria-labelledby="post-1">', "Score "]),
              ("/login", ['<label for="username">Username</label>',
                          '<label for="password">Password</label>'])],
}
LANDMARKS = ['role="banner"', '<nav aria-label="Main">', "<main>", 'role="contentinfo"', "<h1>"]


def _pages(app, site):
    client = app.test_client()
    return [client.get(path).data for path, _ in PAGES[site]]


@pytest.mark.parametrize("site", sorted(SITES))
def test_main_pages_render_with_labels_and_landmarks(tmp_path, site):
    client = create_app(site, tmp_path / "s.db", 0).test_client()
    for path, fragments in PAGES[site]:
        resp = client.get(path)
        assert resp.status_code == 200, path
        html = resp.get_data(as_text=True)
        for frag in fragments + LANDMARKS:
            assert frag in html, (path, frag)
        assert "<script" not in html  # plain forms and links only
        assert html.count("<a ") + html.count("<input") + html.count("<button") < 100, path


@pytest.mark.parametrize("site", sorted(SITES))
def test_same_seed_identical_pages_and_db_other_seed_differs(tmp_path, site):
    a = create_app(site, tmp_path / "a.db", 3)
    b = create_app(site, tmp_path / "b.db", 3)
    c = create_app(site, tmp_path / "c.db", 4)
    assert _pages(a, site) == _pages(b, site)
    assert dump(a.db_path) == dump(b.db_path)
    assert dump(a.db_path) != dump(c.db_path)
    assert _pages(a, site) != _pages(c, site)


@pytest.mark.parametrize("site", sorted(SITES))
def test_reset_restores_the_seeded_state(tmp_path, site):
    app = create_app(site, tmp_path / "s.db", 1)
    before = dump(app.db_path)
    client = app.test_client()
    if site == "shop":
        client.post("/cart/add", data={"product_id": "5", "quantity": "3"})
    elif site == "admin":
        client.post("/orders/3", data={"status": "cancelled"})
        client.post("/orders/4", data={"status": "shipped"})
    else:
        client.post("/login", data={"username": "bob", "password": "bob-pw"})
        client.post("/p/1/reply", data={"body": "hello"})
    assert dump(app.db_path) != before
    app.reset(1)
    assert dump(app.db_path) == before


def test_checkout_missing_field_leaves_state_unchanged_and_shows_labelled_error(tmp_path):
    app = create_app("shop", tmp_path / "s.db", 0)
    before = dump(app.db_path)
    form = {"name": "Ann Lee", "email": "", "address": "1 Main St", "postcode": "12345"}
    resp = app.test_client().post("/checkout", data=form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert dump(app.db_path) == before  # no order, cart untouched
    assert 'aria-describedby="email-error"' in html
    assert '<span id="email-error" role="alert">Email: is required</span>' in html
    assert 'value="Ann Lee"' in html  # the other values are kept
    bad = dict(form, email="ann@example.com", postcode="12")
    resp = app.test_client().post("/checkout", data=bad)
    assert resp.status_code == 400 and "Postcode: must be 5 digits" in resp.get_data(as_text=True)
    assert dump(app.db_path) == before
    ok = app.test_client().post("/checkout", data=dict(bad, postcode="12345"))
    assert ok.status_code == 303 and dump(app.db_path) != before


def test_invalid_edits_and_anonymous_posts_change_nothing(tmp_path):
    admin = create_app("admin", tmp_path / "a.db", 0)
    before = dump(admin.db_path)
    client = admin.test_client()
    assert client.post("/orders/17", data={"status": "lost"}).status_code == 400
    resp = client.post("/products/2", data={"price": "abc", "stock": "3"})
    assert resp.status_code == 400 and "invalid Price (USD)" in resp.get_data(as_text=True)
    assert client.post("/customers/1", data={"email": "nope"}).status_code == 400
    assert dump(admin.db_path) == before
    forum = create_app("forum", tmp_path / "f.db", 0)
    before = dump(forum.db_path)
    client = forum.test_client()
    assert client.post("/p/1/reply", data={"body": "hi"}).headers["Location"] == "/login"
    assert client.post("/p/1/vote", data={"value": "1"}).status_code == 303
    resp = client.post("/login", data={"username": "alice", "password": "wrong"})
    assert resp.status_code == 401 and "Wrong username or password." in resp.get_data(as_text=True)
    client.post("/login", data={"username": "alice", "password": "alice-pw"})
    assert client.post("/p/1/vote", data={"value": "7"}).status_code == 400
    client.post("/p/1/reply", data={"body": "   "})  # empty message: flashed, not posted
    assert dump(forum.db_path) == before


PAYLOADS = ["{{7*7}}", "__import__('os').system('true')", "<script>alert(1)</script>",
            "{% print 1 %}", "'; DROP TABLE products; --"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_inputs_are_shown_escaped_never_evaluated(tmp_path, payload):
    from markupsafe import escape

    shop = create_app("shop", tmp_path / "s.db", 0)
    html = shop.test_client().get("/search", query_string={"q": payload}).get_data(as_text=True)
    assert f"<h1>Results for {escape(payload)}</h1>" in html
    assert "49" not in html and "<script>alert" not in html
    assert shop.test_client().get("/category/1").status_code == 200  # tables survive
    admin = create_app("admin", tmp_path / "a.db", 0)
    html = admin.test_client().get("/products", query_string={"q": payload}).get_data(as_text=True)
    assert f'value="{escape(payload)}"' in html and "<caption>Products: 0 rows" in html
    forum = create_app("forum", tmp_path / "f.db", 0)
    client = forum.test_client()
    client.post("/login", data={"username": "carol", "password": "carol-pw"})
    client.post("/p/1/reply", data={"body": payload})
    html = client.get("/t/1").get_data(as_text=True)
    assert f"<p>{escape(payload)}</p>" in html and "<script>alert" not in html
