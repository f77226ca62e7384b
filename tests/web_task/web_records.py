"""A small synthetic WMA (WebArena-format) transition set for the web-task tests (not a test module)."""

CART = ("[1] RootWebArea 'Cart'\n\t[5] link 'Mug'\n\t[6] button 'Remove mug'\n"
        "\t[7] StaticText 'Total: $12.00'")
EMPTY_CART = "[1] RootWebArea 'Cart'\n\t[7] StaticText 'Total: $0.00'\n\t[8] StaticText 'Your cart is empty'"
SEARCH = "[1] RootWebArea 'Search'\n\t[3] textbox 'Query' focused: True\n\t[4] button 'Go'"
SEARCHED = "[1] RootWebArea 'Search'\n\t[3] textbox 'Query' focused: True\n\t[4] button 'Go'\n\t[9] link 'Mug'"


def record(obs: str, action: str, nxt: str, url: str, objective: str = "Buy a mug") -> dict:
    return {"objective": objective, "current_action": action, "observation": obs,
            "next_state_acctree": nxt, "url": url, "previous_actions": ["None"], "step_idx": 0,
            "task_id": 0}


def records() -> list[dict]:
    """Four transitions on two sites: a removal (3 changes), a search (1 new), two no-ops."""
    return [record(CART, "click [6]", EMPTY_CART, "http://shop.test:7770/cart"),
            record(SEARCH, "type [3] [mug] [1]", SEARCHED, "http://find.test:9999/search"),
            record(CART, "hover [5]", CART, "http://shop.test:7770/cart"),
            record(SEARCH, "scroll [down]", SEARCH, "http://find.test:9999/search")]
