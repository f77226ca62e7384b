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
