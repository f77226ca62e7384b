"""Scripted solutions of every task family, acting through the observation text only.

A script is ``script(obs, task, history, memory) -> action | None``: it finds elements by role
and accessible name in the current tree (:mod:`worldmodels.web_tree`), emits a WebArena grammar
string (:mod:`.actions`), keeps its own notes in ``memory`` (one dict per episode) and returns
``stop []`` when done; None means "stuck" (the agent then takes a random valid action). Scripts
read the page, not their history, wherever they can, so a random step in between (the agent's
noise) is recovered from: a text field holding the wrong value is cleared (``click``,
``press [Control+a]``, ``press [Backspace]``) and typed again (:func:`fill`), since ``type``
appends to what the field holds (WebArena's ``type`` is a click then keystrokes).

Steps at noise 0 (home page to ``stop``): shop cheapest 4, quantity 6, remove 3, checkout 10;
admin order_status 5, price 8, email 9; forum upvote 6, reply_newest 8, new_thread 8.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from ...web_tree import Node, element_nodes, parse_tree

__all__ = ["find", "page_url", "field_value", "fill", "SCRIPTS", "REPLY_TEXT", "THREAD_TEXT"]

REPLY_TEXT = "Thanks for sharing!"
THREAD_TEXT = "Hello everyone!"


def find(obs: str, role: str, name: str | None = None, url_end: str | None = None) -> Node | None:
    """The first node of ``obs`` with ``role`` (and exactly ``name`` / a ``url:`` property
    ending in ``url_end``, when given); None when absent."""
    for n in element_nodes(parse_tree(obs)):
        if n.role != role or (name is not None and n.name != name):
            continue
        if url_end is not None and not _url(n).endswith(url_end):
            continue
        return n
    return None


def _url(n: Node) -> str:
    i = n.properties.find("url: ")
    return n.properties[i + 5:].split(" ")[0] if i >= 0 else ""


def page_url(obs: str) -> str:
    """The ``url:`` of the RootWebArea line ('' when absent)."""
    n = find(obs, "RootWebArea")
    return _url(n) if n else ""


def _path(obs: str) -> str:
    return urlsplit(page_url(obs)).path


def _origin(obs: str) -> str:
    return "/".join(page_url(obs).split("/")[:3])


def _title(obs: str) -> str:
    n = find(obs, "RootWebArea")
    return n.name if n else ""


def field_value(obs: str, node: Node) -> str:
    """The value a text field shows: a spinbutton's ``valuetext:`` property, else the text of
    the StaticText child on the line right below the field ('' when empty)."""
    if node.role == "spinbutton":
        i = node.properties.find("valuetext: ")
        return node.properties[i + 11:] if i >= 0 else ""
    nodes = parse_tree(obs)
    for k, n in enumerate(nodes):
        if n.id == node.id and k + 1 < len(nodes):
            child = nodes[k + 1]
            if child.role == "StaticText" and child.depth == n.depth + 1:
                return child.name
            return ""
    return ""


def fill(obs: str, node: Node, text: str, history: list[str], enter: bool = False) -> str:
    """The next action that makes ``node`` hold ``text``: ``type`` into an empty field, else
    clear it first (``click``, ``press [Control+a]``, ``press [Backspace]``)."""
    if field_value(obs, node) == "":
        return f"type [{node.id}] [{text}] [{int(enter)}]"
    if "focused: True" in node.properties:
        return "press [Backspace]" if history and history[-1] == "press [Control+a]" else \
            "press [Control+a]"
    return f"click [{node.id}]"


def _click(node: Node | None) -> str | None:
    return f"click [{node.id}]" if node else None


def _between(text: str, start: str, end: str, last: bool = False) -> str:
    """The part of ``text`` after ``start`` and before the first (``last``: final) ``end``."""
    rest = text.split(start, 1)[1]
    return rest.rsplit(end, 1)[0] if last else rest.split(end, 1)[0]


def _after(obs: str, node: Node, role: str) -> Node | None:
    """The first node with ``role`` below ``node`` in page order."""
    later = False
    for n in element_nodes(parse_tree(obs)):
        if later and n.role == role:
            return n
        later = later or n.id == node.id
    return None


# ---- shop -------------------------------------------------------------------------------

def shop_cheapest(obs, task, history, memory):
    p = task.params
    if history and history[-1].startswith("click") and "/cart" in page_url(obs):
        return "stop []"
    if page_url(obs).endswith(f"/product/{p['product_id']}"):
        return _click(find(obs, "button", "Add to cart"))
    link = find(obs, "link", url_end=f"/product/{p['product_id']}")
    if link:
        return f"click [{link.id}]"
    return _click(find(obs, "link", p["category"]))


def _to_cart(obs):
    return _click(find(obs, "link", "Cart")) or f"goto [{_origin(obs)}/cart]"


def shop_quantity(obs, task, history, memory):
    name, want = _between(task.objective, "quantity of ", " in the cart"), str(task.params["quantity"])
    box = find(obs, "spinbutton", f"Quantity of {name}")
    if _path(obs) != "/cart" or box is None:
        return _to_cart(obs)
    if field_value(obs, box) == want:
        if memory.get("sent"):
            return "stop []"
        memory["sent"] = True
        return _click(_after(obs, box, "button"))  # the row's Update button
    action = fill(obs, box, want, history, enter=True)
    memory["sent"] = action.startswith("type")  # type with Enter submits the row's form
    return action


def shop_remove(obs, task, history, memory):
    name = _between(task.objective, "Remove ", " from the cart")
    if _path(obs) != "/cart":
        return _to_cart(obs)
    button = find(obs, "button", f"Remove {name}")
    return f"click [{button.id}]" if button else "stop []"


def shop_checkout(obs, task, history, memory):
    p, path = task.params, _path(obs)
    name = _between(task.objective, "Buy ", " and ship it to ")
    if path.startswith("/order/"):
        return "stop []"
    if not memory.get("added"):
        if path == f"/product/{p['product_id']}":
            memory["added"] = True
            return _click(find(obs, "button", "Add to cart"))
        link = find(obs, "link", url_end=f"/product/{p['product_id']}")
        if link:
            return f"click [{link.id}]"
        box = find(obs, "searchbox", "Search products")
        return fill(obs, box, name, history, enter=True) if box else f"goto [{_origin(obs)}/]"
    if path != "/checkout":
        return _click(find(obs, "link", "Checkout")) or f"goto [{_origin(obs)}/checkout]"
    for label, key in (("Full name", "name"), ("Email", "email"), ("Street address", "address"),
                       ("Postcode", "postcode")):
        box = find(obs, "textbox", label)
        if box is not None and field_value(obs, box) != p[key]:
            return fill(obs, box, p[key], history)
    return _click(find(obs, "button", "Place order"))


# ---- admin ------------------------------------------------------------------------------

def admin_order_status(obs, task, history, memory):
    p = task.params
    if history and history[-1].startswith("click") and "saved" in obs.lower():
        return "stop []"
    if not page_url(obs).endswith(f"/orders/{p['order_id']}"):
        return f"goto [{_origin(obs)}/orders/{p['order_id']}]"
    box = find(obs, "combobox", "Status")
    if history and history[-1].startswith("type"):
        return _click(find(obs, "button", "Save"))
    if box is None:
        return None
    if "expanded: True" not in box.properties:
        return f"click [{box.id}]"
    return f"type [{box.id}] [{p['status']}] [1]"


def admin_price(obs, task, history, memory):
    p = task.params
    price = f"{p['price_cents'] // 100}.{p['price_cents'] % 100:02d}"
    if _path(obs) == f"/products/{p['product_id']}":
        box = find(obs, "textbox", "Price (USD)")
        if box is None:
            return None
        if field_value(obs, box) != price:
            action = fill(obs, box, price, history, enter=True)
            memory["sent"] = action.startswith("type")  # Enter submits the form
            return action
        if memory.get("sent") and f"Saved product {p['product_id']}." in obs:
            return "stop []"
        memory["sent"] = True
        return _click(find(obs, "button", "Save"))
    link = find(obs, "link", f"Edit product {p['product_id']}")
    if link:
        return f"click [{link.id}]"
    box = find(obs, "textbox", "Name contains")
    if box is not None:  # the products table: filter by the product's name
        return fill(obs, box, _between(task.objective, "price of ", " to $"), history, enter=True)
    return _click(find(obs, "link", "Products")) or f"goto [{_origin(obs)}/products]"


def admin_email(obs, task, history, memory):
    p = task.params
    if _path(obs) == f"/customers/{p['customer_id']}":
        box = find(obs, "textbox", "Email")
        if box is None:
            return None
        if field_value(obs, box) != p["email"]:
            return fill(obs, box, p["email"], history)
        if memory.get("sent") and f"Saved customer {p['customer_id']}." in obs:
            return "stop []"
        memory["sent"] = True
        return _click(find(obs, "button", "Save"))
    link = find(obs, "link", f"Edit customer {p['customer_id']}")
    if link:
        return f"click [{link.id}]"
    if _path(obs) == "/customers":  # page through the table; the nav link resets any filter
        return _click(find(obs, "link", "Next page")) or _click(find(obs, "link", "Customers"))
    return _click(find(obs, "link", "Customers")) or f"goto [{_origin(obs)}/customers]"


# ---- forum ------------------------------------------------------------------------------

def _forum_login(obs, task, history):
    """The next login action, or None when logged in."""
    if find(obs, "button", "Log out") is not None:
        return None
    user, pw = find(obs, "textbox", "Username"), find(obs, "textbox", "Password")
    if user is None or pw is None:
        return _click(find(obs, "link", "Log in")) or f"goto [{_origin(obs)}/login]"
    if field_value(obs, user) != task.params["user"]:
        return fill(obs, user, task.params["user"], history)
    password = _between(task.objective, "(password ", ")")
    return f"type [{pw.id}] [{password}] [1]"


def _forum_script(done: str):
    """A forum script's common prologue: ``stop []`` once ``memory[done]`` is set, else log in
    first (``_forum_login``), else the decorated body."""
    def wrap(body):
        @functools.wraps(body)
        def script(obs, task, history, memory):
            if memory.get(done):
                return "stop []"
            return _forum_login(obs, task, history) or body(obs, task, history, memory)
        return script
    return wrap


def _open_subforum(obs, name):
    return _click(find(obs, "link", name)) or f"goto [{_origin(obs)}/]"


@_forum_script(done="voted")
def forum_upvote(obs, task, history, memory):
    p = task.params
    vote = find(obs, "button", f"Upvote post {p['post_id']}")
    if vote:
        memory["voted"] = True
        return f"click [{vote.id}]"
    link = find(obs, "link", _between(task.objective, "thread '", "'", last=True))
    if link:
        return f"click [{link.id}]"
    for n in element_nodes(parse_tree(obs)):  # sub-forums not yet visited, in page order
        if n.role == "link" and "/f/" in _url(n) and f"goto [{_url(n)}]" not in history:
            return f"goto [{_url(n)}]"
    return f"goto [{_origin(obs)}/]"


@_forum_script(done="sent")
def forum_reply_newest(obs, task, history, memory):
    p = task.params
    box = find(obs, "textbox", f"Reply to post {p['post_id']}")
    if box is not None:
        if field_value(obs, box) != REPLY_TEXT:
            return fill(obs, box, REPLY_TEXT, history)
        memory["sent"] = True
        return _click(find(obs, "button", f"Send reply to post {p['post_id']}"))
    if _title(obs) == f"{p['subforum']} - Forum":  # threads by latest post: the first holds it
        threads = [n for n in element_nodes(parse_tree(obs)) if n.role == "link" and "/t/" in _url(n)]
        tried = memory.setdefault("tried", [])
        for n in threads:
            if _url(n) not in tried:
                tried.append(_url(n))
                return f"click [{n.id}]"
    return _open_subforum(obs, p["subforum"])


@_forum_script(done="sent")
def forum_new_thread(obs, task, history, memory):
    p = task.params
    if _title(obs) != f"{p['subforum']} - Forum":
        return _open_subforum(obs, p["subforum"])
    for label, text in (("Title", p["title"]), ("Message", THREAD_TEXT)):
        box = find(obs, "textbox", label)
        if box is None:
            return None
        if field_value(obs, box) != text:
            return fill(obs, box, text, history)
    memory["sent"] = True
    return _click(find(obs, "button", "Start thread"))


#: (site, family) -> script(obs, task, history, memory) -> action or None (stuck: a random action).
SCRIPTS = {("shop", "cheapest"): shop_cheapest, ("shop", "quantity"): shop_quantity,
           ("shop", "remove"): shop_remove, ("shop", "checkout"): shop_checkout,
           ("admin", "order_status"): admin_order_status, ("admin", "price"): admin_price,
           ("admin", "email"): admin_email, ("forum", "upvote"): forum_upvote,
           ("forum", "reply_newest"): forum_reply_newest, ("forum", "new_thread"): forum_new_thread}
