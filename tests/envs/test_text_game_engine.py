"""The text-game engine's mechanics, each worked by hand on a small world."""

import numpy as np
import pytest

from worldmodels.envs.text_game import AMBIENT_RATE, ROOM_TEMPERATURE, Recipe, World
from worldmodels.envs.text_game_games import GAMES
from worldmodels.envs.text_game_parts import make


def objs(state: dict) -> dict:
    return {o["name"]: o for o in state["objects"]}


def props(state: dict, name: str) -> dict:
    return objs(state)[name]["properties"]


def test_open_container_then_take_and_put_move_contains():
    w = World("t", "test")
    cupboard = make(w, "container", name="cupboard", type_="Cupboard", openable=True, is_open=False,
                    moveable=False)
    apple = make(w, "food", into=cupboard, name="apple")
    bowl = make(w, "container", name="bowl", type_="Bowl")
    assert (cupboard.uuid, apple.uuid, bowl.uuid) == (2, 3, 4)  # agent 0, room 1, then in order
    take = w.action("take", apple)
    assert take.text == "take apple (ID: 3)"
    assert w.check(take) == "You don't see that here."  # inside a closed cupboard
    assert take not in w.valid_actions() and take not in w.possible_actions()
    rec = w.step(w.action("open", cupboard))
    assert props(rec["current_state"], "cupboard (ID: 2)")["isOpen"] is False
    assert props(rec["action_state"], "cupboard (ID: 2)")["isOpen"] is True
    assert take in w.valid_actions()
    rec = w.step(take)
    assert objs(rec["current_state"])["cupboard (ID: 2)"]["contains"] == ["apple (ID: 3)"]
    assert objs(rec["action_state"])["cupboard (ID: 2)"]["contains"] == []
    assert objs(rec["action_state"])["agent (ID: 0)"]["contains"] == ["apple (ID: 3)"]
    rec = w.step(w.action("put", apple, bowl))
    assert rec["tick_state"]["lastAction"] == "put apple (ID: 3) in bowl (ID: 4)"
    assert objs(rec["tick_state"])["bowl (ID: 4)"]["contains"] == ["apple (ID: 3)"]
    assert objs(rec["tick_state"])["agent (ID: 0)"]["contains"] == []
    # the objects list is the depth-first walk from the room: room, agent, cupboard, bowl, apple
    assert [o["uuid"] for o in rec["tick_state"]["objects"]] == [1, 0, 2, 4, 3]
    assert objs(rec["tick_state"])["kitchen (ID: 1)"]["contains"] == [
        "agent (ID: 0)", "cupboard (ID: 2)", "bowl (ID: 4)"]


def test_failed_action_changes_nothing_but_the_observation():
    w = World("t", "test")
    pot = make(w, "container", name="pot", type_="Pot")
    stove = make(w, "heater", name="stove")
    for bad, msg in [(w.action("put", pot, stove), "You need to take the pot (ID: 2) first."),
                     (w.action("open", pot), "The pot (ID: 2) can't be opened or closed."),
                     (w.action("turn off", stove), "The stove (ID: 3) is already off."),
                     (w.action("eat", pot), "You can't eat the pot (ID: 2).")]:
        rec = w.step(bad)
        assert rec["tick_state"]["observation"] == msg
        assert rec["current_state"]["objects"] == rec["tick_state"]["objects"]
        assert bad not in w.valid_actions()
        assert (bad in w.possible_actions()) == (bad.verb != "put")  # puts are listed for held things


def test_stove_heats_water_over_ticks_until_it_boils_then_it_cools():
    w = World("t", "test")
    stove = make(w, "heater", name="stove", rate=30, top=200)
    pot = make(w, "container", into=stove, name="pot", type_="Pot", liquid=True)
    water = make(w, "water", into=pot, temperature=20)
    rec = w.step(w.action("turn on", stove))
    assert props(rec["action_state"], "stove (ID: 2)")["isOn"] is True
    assert props(rec["action_state"], "water (ID: 4)")["temperature"] == 20  # the action alone
    assert props(rec["tick_state"], "water (ID: 4)")["temperature"] == 50    # + 30 in the tick
    rec = w.step(w.action("wait"))
    assert props(rec["tick_state"], "water (ID: 4)")["temperature"] == 80
    assert props(rec["tick_state"], "water (ID: 4)")["stateOfMatter"] == "liquid"
    rec = w.step(w.action("wait"))                                           # 110 >= 100: boils
    steam = props(rec["tick_state"], "steam (ID: 4)")
    assert (steam["temperature"], steam["stateOfMatter"]) == (110, "gas")
    assert objs(rec["tick_state"])["pot (ID: 3)"]["contains"] == ["steam (ID: 4)"]
    w.step(w.action("turn off", stove))                                      # ambient: -2 per tick
    assert water.get("temperature") == 110 - AMBIENT_RATE
    for _ in range(10):
        w.step(w.action("wait"))
    assert water.get("temperature") == 110 - 11 * AMBIENT_RATE == 88 and water.name == "water"


def test_heater_maximum_and_closed_door_rule():
    w = World("t", "test")
    oven = make(w, "heater", name="oven", type_="Oven", rate=50, top=120, prefix="in", closed=True)
    d = make(w, "dough", into=oven, cook=100, burn=200)
    w.step(w.action("turn on", oven))                                        # closed: heats
    w.step(w.action("wait"))
    assert d.get("temperature") == 120 and d.get("isCooked") and d.name == "bread"  # 70, 120 (max)
    w.step(w.action("open", oven))                                           # open: stops heating
    assert d.get("temperature") == 118 and d.get("isCooked")                 # cooked stays cooked


def test_freezer_freezes_water_only_while_closed():
    w = World("t", "test")
    freezer = make(w, "cooler", name="freezer", type_="Freezer", rate=5, low=-5)
    tray = make(w, "container", name="ice cube tray", type_="IceCubeTray", liquid=True)
    water = make(w, "water", into=tray, temperature=10)
    w.move(tray, freezer)                                                    # starts closed
    temps = []
    for _ in range(5):
        w.step(w.action("wait"))
        temps.append((water.get("temperature"), water.get("stateOfMatter"), water.name))
    assert temps == [(5, "liquid", "water"), (0, "solid", "ice"), (-5, "solid", "ice"),
                     (-5, "solid", "ice"), (-5, "solid", "ice")]
    w.step(w.action("open", freezer))                                        # open: ambient warming
    w.step(w.action("wait"))
    assert water.get("temperature") == -5 + 2 * AMBIENT_RATE


def test_sink_creates_water_with_the_next_uuid_in_empty_liquid_containers():
    w = World("t", "test")
    sink = make(w, "sink", water_temperature=15)
    cup = make(w, "container", into=sink, name="cup", type_="Cup", liquid=True)
    make(w, "container", into=sink, name="bowl", type_="Bowl")                # not a liquid container
    assert w.max_uuid == 5
    rec = w.step(w.action("turn on", sink))
    assert rec["action_state"]["max_UUID"] == 5 and rec["tick_state"]["max_UUID"] == 6
    new = objs(rec["tick_state"])["water (ID: 5)"]
    assert new["uuid"] == 5 and new["properties"]["temperature"] == 15
    assert objs(rec["tick_state"])["cup (ID: 3)"]["contains"] == ["water (ID: 5)"]
    assert objs(rec["tick_state"])["bowl (ID: 4)"]["contains"] == []
    rec = w.step(w.action("wait"))                                           # the cup is full now
    assert rec["tick_state"]["max_UUID"] == 6 and len(cup.contents) == 1


def test_mix_creates_product_with_uuid_max_uuid_and_removes_inputs():
    w = World("t", "test")
    bowl = make(w, "container", name="bowl", type_="Bowl")
    flour = make(w, "item", into=bowl, name="flour", type_="Ingredient")
    egg = make(w, "item", name="egg", type_="Ingredient")
    w.recipes.append(Recipe(("flour", "egg"), ("dough", {}), into="flour"))
    mix = w.action("mix", egg, flour)
    assert w.check(mix) == "You need to hold both things to mix them."
    w.step(w.action("take", bowl))
    w.step(w.action("take", egg))
    base = w.max_uuid
    rec = w.step(mix)
    assert rec["current_state"]["max_UUID"] == base == 5
    after = objs(rec["action_state"])
    assert "dough (ID: 5)" in after and after["dough (ID: 5)"]["uuid"] == base
    assert rec["action_state"]["max_UUID"] == base + 1
    assert "flour (ID: 3)" not in after and "egg (ID: 4)" not in after
    assert after["bowl (ID: 2)"]["contains"] == ["dough (ID: 5)"]            # where the flour was
    assert after["agent (ID: 0)"]["contains"] == ["bowl (ID: 2)"]
    assert w.check(w.action("mix", bowl, w.find("dough"))).startswith("Mixing the bowl")


def test_mix_needs_minimum_temperature():
    w = World("t", "test")
    kettle = make(w, "container", into=w.agent, name="kettle", type_="Kettle", liquid=True)
    water = make(w, "water", into=kettle, temperature=50)
    bag = make(w, "item", into=w.agent, name="tea bag", type_="Ingredient")
    w.recipes.append(Recipe(("tea bag", "water"), ("drink", {"name": "tea"}), into="water",
                            min_temperature=(("water", 60),)))
    assert w.check(w.action("mix", bag, water)) == "The water (ID: 3) is not hot enough."
    water.properties["temperature"] = 60
    rec = w.step(w.action("mix", bag, water))
    assert objs(rec["action_state"])["kettle (ID: 2)"]["contains"] == ["tea (ID: 5)"]


def _play(game: str, actions) -> list[dict]:
    w = GAMES[game].new_world(np.random.default_rng(0))
    return [w.step(a(w)) for a in actions]


def test_scores_win_and_lose_by_hand():
    g = GAMES["refrigerate-food"]
    w = g.new_world(np.random.default_rng(1))
    foods = [w.objects[u] for u in w.memo["perishable"]]
    assert w.score_state() == {"score": 0, "gameOver": False, "gameWon": False}
    fridge = w.find("fridge")
    w.move(foods[0], fridge)
    assert w.score_state()["score"] == 1
    for f in foods[1:]:
        w.move(f, w.agent)
    rec = w.step(w.action("eat", foods[1]))
    assert rec["current_score_state"]["score"] == 1
    assert rec["next_score_state"] == {"score": 1, "gameOver": True, "gameWon": False}  # lost

    w = GAMES["bake-bread"].new_world(np.random.default_rng(0))
    oven = w.find("oven")
    d = make(w, "dough", into=oven)
    assert w.score_state()["score"] == 1
    d.properties["temperature"] = 152  # the oven is off: the tick cools it by 2 to 150 = cookTemperature
    w.tick()
    assert d.name == "bread" and w.score_state() == {"score": 2, "gameOver": False, "gameWon": False}
    w.move(d, w.agent)
    assert w.score_state() == {"score": 3, "gameOver": True, "gameWon": True}
    w.move(d, oven)
    d.properties["temperature"] = 222  # -> 220 = burnTemperature
    w.tick()
    assert d.name == "burnt bread" and w.score_state() == {"score": 1, "gameOver": True, "gameWon": False}


@pytest.mark.parametrize("game", list(GAMES))
def test_expert_wins_every_game_and_random_agent_mostly_not(game):
    from worldmodels.envs.text_game_games import choose_action

    def episode(policy, seed):
        g = GAMES[game]
        w = g.new_world(np.random.default_rng(seed))
        rng = np.random.default_rng(seed + 1000)
        for _ in range(40):
            rec = w.step(choose_action(g, w, rng, policy))
            assert rec["next_score_state"]["gameOver"] == (rec["next_score_state"]["gameOver"] is True)
            if rec["next_score_state"]["gameOver"]:
                return rec["next_score_state"]["gameWon"]
        return False

    assert all(episode("expert", s) for s in range(12))
    assert sum(episode("random", s) for s in range(12)) <= 3


def test_valid_actions_succeed_and_states_chain():
    g = GAMES["melt-chocolate"]
    w = g.new_world(np.random.default_rng(5))
    rng = np.random.default_rng(0)
    prev = None
    for _ in range(25):
        valid = w.valid_actions()
        assert valid and all(w.check(a) is None for a in valid)
        rec = w.step(valid[int(rng.integers(len(valid)))])
        if prev is not None:
            assert rec["current_state"] == prev["tick_state"]
            assert rec["current_score_state"] == prev["next_score_state"]
        assert rec["tick_state"]["lastAction"] == rec["action_state"]["lastAction"]
        prev = rec
    for o in w.walk():
        if "temperature" in o.properties:
            assert isinstance(o.properties["temperature"], int)
    assert ROOM_TEMPERATURE == 20
