"""Agents on hand-written observation texts (no browser)."""

import pytest

pytest.importorskip("flask", reason="Flask missing: pip install -e '.[web]'")

from types import SimpleNamespace  # noqa: E402

from worldmodels.envs.web.actions import Action, parse_action  # noqa: E402
from worldmodels.envs.web.agents import RandomAgent, ScriptedAgent, find, page_url  # noqa: E402

HOME = ("Tab 0 (current): Welcome - Shop\n\n"
        "[1] RootWebArea 'Welcome - Shop' focused: True url: http://127.0.0.1:5/\n"
        "\t[5] link 'Shop' url: http://127.0.0.1:5/\n"
        "\t[12] searchbox 'Search products'\n"
        "\t[15] button 'Search'\n"
        "\t[49] link 'Shirts' url: http://127.0.0.1:5/category/1\n"
        "\t[50] StaticText 'Shirts and more'")
CATEGORY = ("Tab 0 (current): Shirts - Shop\n\n"
            "[1] RootWebArea 'Shirts - Shop' focused: True url: http://127.0.0.1:5/category/1\n"
            "\t[46] link 'Classic Red Shirt' url: http://127.0.0.1:5/product/21\n"
            "\t[54] link 'Slim Red Shirt' url: http://127.0.0.1:5/product/7")
PRODUCT = ("Tab 0 (current): Slim Red Shirt - Shop\n\n"
           "[1] RootWebArea 'Slim Red Shirt - Shop' focused: True url: http://127.0.0.1:5/product/7\n"
           "\t[30] spinbutton 'Quantity'\n\t[31] button 'Add to cart'")
CART = ("Tab 0 (current): Cart - Shop\n\n"
        "[1] RootWebArea 'Cart - Shop' focused: True url: http://127.0.0.1:5/cart")
TASK = SimpleNamespace(params={"category": "Shirts", "product_id": 7, "colour": "Red"},
                       objective="Add the cheapest Red shirt to the cart.")


def test_find_and_page_url():
    assert find(HOME, "link", "Shirts").id == 49
    assert find(CATEGORY, "link", url_end="/product/7").name == "Slim Red Shirt"
    assert find(HOME, "button", "Nope") is None
    assert page_url(PRODUCT) == "http://127.0.0.1:5/product/7"


def test_shop_script_walks_the_tree():
    agent, history = ScriptedAgent("shop", "cheapest"), []
    for obs, want in [(HOME, "click [49]"), (CATEGORY, "click [54]"), (PRODUCT, "click [31]"),
                      (CART, "stop []")]:
        action = agent.act(obs, TASK, history)
        assert action == want
        history.append(action)


def test_random_agent_draws_only_valid_actions_on_the_page():
    agent = RandomAgent(0)
    draws = {agent.act(HOME) for _ in range(300)}
    clicks = {d for d in draws if d.startswith("click")}
    assert clicks == {"click [5]", "click [15]", "click [49]"}  # links and buttons only
    assert any(d.startswith("type [12] [") for d in draws)       # the searchbox
    assert {"scroll [down]", "scroll [up]", "go_back"} <= draws
    assert all(isinstance(parse_action(d), Action) for d in draws)
    assert not any(d.startswith(("type [5]", "type [49]", "stop")) for d in draws)


def test_noise_one_is_always_random_and_noise_is_validated():
    agent = ScriptedAgent("shop", "cheapest", noise=1.0, seed=3)
    reference = RandomAgent(3)
    reference.rng.random()  # the noise draw
    assert agent.act(HOME, TASK, []) == reference.act(HOME)
    with pytest.raises(ValueError, match="noise"):
        ScriptedAgent("shop", "cheapest", noise=1.5)
    with pytest.raises(KeyError, match="scripted"):
        ScriptedAgent("shop", "nope")


# ---- scripts.py helpers and the newer scripts, on trees copied from the sites ----------------

EDIT = ("Tab 0 (current): Edit product 3 - Admin\n\n"
        "[1] RootWebArea 'Edit product 3 - Admin' focused: True url: http://127.0.0.1:5/products/3\n"
        "\t[57] form 'Edit'\n"
        "\t\t[60] StaticText 'Price (USD)'\n"
        "\t\t[62] textbox 'Price (USD)' required: False\n"
        "\t\t\t[64] StaticText '196.15'\n"
        "\t\t[70] textbox 'Stock' required: False\n"
        "\t\t[74] button 'Save'")
QTY = ("Tab 0 (current): Cart - Shop\n\n"
       "[1] RootWebArea 'Cart - Shop' focused: True url: http://127.0.0.1:5/cart\n"
       "\t[74] spinbutton 'Quantity of Slim Red Shirt' required: False valuemin: 0 valuemax: 0 "
       "valuetext: 1\n"
       "\t[79] button 'Update'\n"
       "\t[84] button 'Remove Slim Red Shirt'")


def test_field_value_reads_the_child_text_and_valuetext():
    from worldmodels.envs.web.scripts import field_value

    assert field_value(EDIT, find(EDIT, "textbox", "Price (USD)")) == "196.15"
    assert field_value(EDIT, find(EDIT, "textbox", "Stock")) == ""  # next line is a sibling
    assert field_value(QTY, find(QTY, "spinbutton")) == "1"


def test_fill_clears_a_wrong_value_before_typing():
    from worldmodels.envs.web.scripts import fill

    box = find(EDIT, "textbox", "Price (USD)")
    assert fill(EDIT, box, "12.50", []) == "click [62]"              # not focused: focus it
    focused = EDIT.replace("'Price (USD)' required", "'Price (USD)' focused: True required")
    box = find(focused, "textbox", "Price (USD)")
    assert fill(focused, box, "12.50", ["click [62]"]) == "press [Control+a]"
    assert fill(focused, box, "12.50", ["press [Control+a]"]) == "press [Backspace]"
    empty = focused.replace("\t\t\t[64] StaticText '196.15'\n", "")
    assert fill(empty, find(empty, "textbox", "Price (USD)"), "12.50", [], enter=True) == \
        "type [62] [12.50] [1]"


def test_quantity_and_remove_scripts_on_the_cart():
    quantity = SimpleNamespace(params={"product_id": 7, "quantity": 3},
                               objective="Change the quantity of Slim Red Shirt in the cart to 3.")
    agent = ScriptedAgent("shop", "quantity")
    assert agent.act(HOME, quantity, []) == "goto [http://127.0.0.1:5/cart]"  # no Cart link
    assert agent.act(QTY, quantity, ["goto [x]"]) == "click [74]"
    done = QTY.replace("valuetext: 1", "valuetext: 3")
    agent.memory["sent"] = True
    assert agent.act(done, quantity, ["type [74] [3] [1]"]) == "stop []"
    remove = SimpleNamespace(params={"product_id": 7}, objective="Remove Slim Red Shirt from the cart.")
    agent = ScriptedAgent("shop", "remove")
    assert agent.act(QTY, remove, []) == "click [84]"
    gone = QTY.replace("\t[84] button 'Remove Slim Red Shirt'", "")
    assert agent.act(gone, remove, ["click [84]"]) == "stop []"


def test_every_task_family_has_a_script():
    from worldmodels.envs.web.scripts import SCRIPTS
    from worldmodels.envs.web.tasks import TASK_FAMILIES

    assert set(SCRIPTS) == {(s, f) for s in TASK_FAMILIES for f in TASK_FAMILIES[s]}
