"""The games of the text-game engine, their scripted experts, and the policies that play them.

Six games built from the same parts (``text_game_parts``), so a model can be tested on held-out
*games* whose mechanics it saw elsewhere (``make-tea`` = the stove of ``boil-water`` + the mixing
of ``bake-bread``/``melt-chocolate``):

=================  ==========================================================  ===============
game               mechanics                                                   lose when
=================  ==========================================================  ===============
boil-water         sink creates water (tick), stove heats, water -> steam      --
make-ice           sink, freezer works only closed, water -> ice               --
bake-bread         mix flour+egg -> dough (new uuid), oven, cooking, burning   bread burnt
make-tea           stove heats a kettle, mix tea bag + hot water -> tea         water boiled
refrigerate-food   open/close, put/take, fridge cools perishables, eat          perishable eaten
melt-chocolate     microwave, melting/solidifying, mix -> new food, burning    burnt / eaten
=================  ==========================================================  ===============

Each game draws its episode's variations (rates, temperatures, distractors, where things start,
uuid order) from the episode's generator. ``GAMES[name].expert(world)`` is a reactive scripted
policy (it recovers from noise); ``choose_action`` mixes it with random valid actions (noise)
and with possible-but-failing actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from worldmodels.envs.text_game import Action, GameObject, Recipe, World
from worldmodels.envs.text_game_parts import action_rules, make, object_rules

VERBS = ("look", "inventory", "examine", "wait", "take", "put", "open/close", "turn on/off", "eat", "mix")
POLICIES = ("expert", "random")


@dataclass(frozen=True)
class Game:
    """A game: its task text, how an episode starts, its score and its expert."""

    name: str
    task: str
    setup: Callable[[World, np.random.Generator], None]
    score: Callable[[World], tuple[int, bool, bool]]
    expert: Callable[[World], Action]
    types: tuple[str, ...]  # record types that can appear (object rules)
    score_rules: str
    recipes: str = ""

    def new_world(self, rng: np.random.Generator) -> World:
        w = World(self.name, self.task, score_fn=self.score)
        self.setup(w, rng)
        w.observation = w.look()
        return w

    def rules(self) -> dict[str, str]:
        """``{object, action, score}`` rules texts (the shared rules files' format)."""
        return {"object": object_rules(list(self.types)), "action": action_rules(list(VERBS), self.recipes),
                "score": self.score_rules}


# ----- expert building blocks
def _open_way(w: World, obj: GameObject) -> Action | None:
    """Open the outermost closed container around ``obj`` (None when nothing is closed)."""
    closed = [p for p in w.ancestors(obj) if not p.get("isOpen", True)]
    return w.action("open", closed[-1]) if closed else None


def fetch(w: World, obj: GameObject) -> Action | None:
    """The next action toward holding ``obj`` directly; None when it is already held."""
    if obj.parent is w.agent:
        return None
    return _open_way(w, obj) or w.action("take", obj)


def place(w: World, obj: GameObject, dest: GameObject) -> Action | None:
    """The next action toward ``obj`` lying in ``dest``; None when it does."""
    if obj.parent is dest:
        return None
    if not w.accessible(dest) or not dest.get("isOpen"):
        return _open_way(w, dest) or w.action("open", dest)
    return fetch(w, obj) or w.action("put", obj, dest)


def _inside(w: World, obj: GameObject | None, dest: GameObject) -> bool:
    return obj is not None and (obj.parent is dest or dest in w.ancestors(obj))


def _named(w: World, *names: str) -> GameObject | None:
    return next((o for o in w.walk() if o.name in names), None)


def _distractors(w: World, rng: np.random.Generator, pool: tuple[str, ...], most: int = 2) -> None:
    kinds = {"apple": ("food", {"name": "apple"}), "banana": ("food", {"name": "banana"}),
             "book": ("item", {"name": "book"}), "spoon": ("item", {"name": "spoon"}),
             "cup": ("container", {"name": "cup", "type_": "Cup", "liquid": True}),
             "bowl": ("container", {"name": "bowl", "type_": "Bowl"})}
    for name in rng.choice(pool, size=int(rng.integers(1, most + 1)), replace=False):
        kind, kw = kinds[str(name)]
        make(w, kind, **kw)


def _cupboard(w: World) -> GameObject:
    return make(w, "container", name="cupboard", type_="Cupboard", openable=True, is_open=False,
                moveable=False)


def _pick(rng: np.random.Generator, values) -> int:
    return int(values[int(rng.integers(len(values)))])


# ----- boil-water
def _boil_setup(w: World, rng) -> None:
    heater_first = rng.random() < 0.5
    if heater_first:
        make(w, "heater", name="stove", rate=_pick(rng, (20, 25, 30)))
    make(w, "sink", water_temperature=_pick(rng, (10, 15, 20)))
    home = _cupboard(w) if rng.random() < 0.4 else None
    make(w, "container", into=home, name="pot", type_="Pot", liquid=True)
    if not heater_first:
        make(w, "heater", name="stove", rate=_pick(rng, (20, 25, 30)))
    _distractors(w, rng, ("apple", "book", "cup", "spoon"))


def _boil_score(w: World):
    won = _named(w, "steam") is not None
    return int(won), won, won


def _fill(w: World, vessel: GameObject) -> Action | None:
    """Toward ``vessel`` holding water: it goes into the sink, the sink runs."""
    sink = w.find("sink")
    junk = [c for c in vessel.contents if c.type != "Water"]
    if junk:  # put there by a noisy step: it keeps the sink from filling the vessel
        return fetch(w, junk[0])
    if vessel.contents:
        return w.action("turn off", sink) if sink.get("isOn") else None
    return place(w, vessel, sink) or (w.action("turn on", sink) if not sink.get("isOn") else w.action("wait"))


def _boil_expert(w: World) -> Action:
    pot, stove = w.find("pot"), w.find("stove")
    return (_fill(w, pot) or place(w, pot, stove)
            or (w.action("turn on", stove) if not stove.get("isOn") else w.action("wait")))


# ----- make-ice
def _ice_setup(w: World, rng) -> None:
    make(w, "cooler", name="freezer", type_="Freezer", rate=_pick(rng, (4, 5, 6)), low=-5)
    make(w, "sink", water_temperature=_pick(rng, (10, 15, 20)))
    make(w, "container", name="ice cube tray", type_="IceCubeTray", liquid=True)
    _distractors(w, rng, ("apple", "book", "bowl", "spoon"))


def _ice_score(w: World):
    won = _named(w, "ice") is not None
    return int(won), won, won


def _ice_expert(w: World) -> Action:
    tray, freezer = w.find("ice cube tray"), w.find("freezer")
    step = _fill(w, tray) or place(w, tray, freezer)
    if step is None and freezer.get("isOpen"):
        step = w.action("close", freezer)
    return step or w.action("wait")


# ----- bake-bread
def _bread_setup(w: World, rng) -> None:
    make(w, "heater", name="oven", type_="Oven", rate=_pick(rng, (40, 50, 60)), top=250, prefix="in",
         closed=True)
    home = _cupboard(w) if rng.random() < 0.5 else None
    make(w, "item", into=home, name="flour", type_="Ingredient")
    make(w, "item", name="egg", type_="Ingredient")
    w.recipes.append(Recipe(("flour", "egg"), ("dough", {}), into="flour"))
    _distractors(w, rng, ("apple", "banana", "book", "bowl"))


def _bread_score(w: World):
    d = next((o for o in w.walk() if o.type == "Dough"), None)
    if d is not None and d.get("isBurnt"):
        return 1, True, False
    points = (d is not None) + bool(d is not None and d.get("isCooked")) \
        + bool(d is not None and d.get("isCooked") and w.held(d))
    return points, points == 3, points == 3


def _bread_expert(w: World) -> Action:
    oven = w.find("oven")
    d = next((o for o in w.walk() if o.type == "Dough"), None)
    if d is None:
        flour, egg = w.find("flour"), w.find("egg")
        return fetch(w, flour) or fetch(w, egg) or w.action("mix", flour, egg)
    if d.get("isCooked"):
        return fetch(w, d)
    step = place(w, d, oven)
    if step is None and oven.get("isOpen"):
        step = w.action("close", oven)
    return step or (w.action("turn on", oven) if not oven.get("isOn") else w.action("wait"))


# ----- make-tea
def _tea_setup(w: World, rng) -> None:
    make(w, "heater", name="stove", rate=_pick(rng, (15, 20, 25)))
    kettle = make(w, "container", name="kettle", type_="Kettle", liquid=True)
    make(w, "water", into=kettle, temperature=_pick(rng, (10, 15, 20)))
    home = _cupboard(w) if rng.random() < 0.5 else None
    make(w, "item", into=home, name="tea bag", type_="Ingredient")
    w.recipes.append(Recipe(("tea bag", "water"), ("drink", {"name": "tea"}), into="water",
                            min_temperature=(("water", 60),)))
    _distractors(w, rng, ("apple", "book", "cup", "spoon"))


def _tea_score(w: World):
    if _named(w, "steam") is not None:
        return 0, True, False
    won = _named(w, "tea") is not None
    return int(won), won, won


def _tea_expert(w: World) -> Action:
    kettle, stove, bag = w.find("kettle"), w.find("stove"), w.find("tea bag")
    water = _named(w, "water", "ice")
    step = fetch(w, bag)
    if step is None and water is not None and water.get("temperature") >= 70 - 10 * w.held(kettle):
        step = fetch(w, kettle) or w.action("mix", bag, water)
    return step or place(w, kettle, stove) or (
        w.action("turn on", stove) if not stove.get("isOn") else w.action("wait"))


# ----- refrigerate-food
PERISHABLES = ("milk", "cheese", "meat", "yogurt", "butter")


def _fridge_setup(w: World, rng) -> None:
    fridge = make(w, "cooler", name="fridge", type_="Fridge", rate=_pick(rng, (3, 4, 5)), low=4)
    cupboard = _cupboard(w) if rng.random() < 0.5 else None
    names = rng.choice(PERISHABLES, size=int(rng.integers(2, 4)), replace=False)
    w.memo["perishable"] = [make(w, "food", into=cupboard if cupboard is not None and i == 0 else None,
                                 name=str(n), perishable=True).uuid for i, n in enumerate(names)]
    make(w, "food", name="apple", perishable=False)
    if rng.random() < 0.3:
        w.move(w.find("apple"), fridge)
    _distractors(w, rng, ("book", "bowl", "spoon"), most=1)


def _fridge_score(w: World):
    foods = [w.objects.get(u) for u in w.memo["perishable"]]
    fridge = w.find("fridge")
    cold = sum(_inside(w, f, fridge) for f in foods)
    if any(f is None for f in foods):  # one was eaten
        return cold, True, False
    won = cold == len(foods) and all(f.get("temperature") <= 8 for f in foods)
    return cold, won, won


def _fridge_expert(w: World) -> Action:
    fridge = w.find("fridge")
    for u in w.memo["perishable"]:
        step = place(w, w.objects[u], fridge)
        if step is not None:
            return step
    return w.action("close", fridge) if fridge.get("isOpen") else w.action("wait")


# ----- melt-chocolate
def _choc_setup(w: World, rng) -> None:
    make(w, "heater", name="microwave", type_="Microwave", rate=_pick(rng, (8, 10, 12)), top=100,
         prefix="in", closed=True)
    bowl = make(w, "container", name="bowl", type_="Bowl")
    make(w, "chocolate", into=bowl, burn=90)
    make(w, "food", name="strawberry")
    w.recipes.append(Recipe(("strawberry", "melted chocolate"), ("food", {"name": "chocolate strawberry"}),
                            into="strawberry"))
    _distractors(w, rng, ("apple", "banana", "book", "spoon"))


def _choc_score(w: World):
    if _named(w, "chocolate strawberry") is not None:
        return 2, True, True
    if _named(w, "burnt chocolate") is not None or _named(w, "strawberry") is None:
        return 0, True, False
    return int(_named(w, "melted chocolate") is not None), False, False


def _choc_expert(w: World) -> Action:
    bowl, oven, berry = w.find("bowl"), w.find("microwave"), w.find("strawberry")
    choc = next(o for o in w.walk() if o.type == "Chocolate")
    step = fetch(w, berry)
    if step is not None:
        return step
    melted = choc.get("stateOfMatter") == "liquid"
    if melted and w.held(bowl):
        return w.action("mix", berry, choc)
    if choc.get("temperature") >= 45 or (melted and oven.get("isOpen")):
        return fetch(w, bowl)
    step = place(w, bowl, oven) or (w.action("close", oven) if oven.get("isOpen") else None)
    return step or (w.action("turn on", oven) if not oven.get("isOn") else w.action("wait"))


_THINGS = ("Cup", "Bowl", "Food", "Item")
GAMES: dict[str, Game] = {g.name: g for g in (
    Game("boil-water", "Your task is to boil water.", _boil_setup, _boil_score, _boil_expert,
         ("Stove", "Sink", "Pot", "Cupboard", "Water") + _THINGS,
         "The player gets one point and wins the game when any water boils (turns into steam)."),
    Game("make-ice", "Your task is to make ice cubes.", _ice_setup, _ice_score, _ice_expert,
         ("Freezer", "Sink", "IceCubeTray", "Water") + _THINGS,
         "The player gets one point and wins the game when there is ice in the game."),
    Game("bake-bread", "Your task is to bake bread and take it.", _bread_setup, _bread_score, _bread_expert,
         ("Oven", "Cupboard", "Ingredient", "Dough") + _THINGS,
         "The player gets one point when there is dough (or bread), one more when it is baked into bread, "
         "and one more when the bread is in the inventory; 3 points win the game.\n"
         "The player loses the game (with 1 point) if the bread burns.",
         recipes="- mix flour and egg: makes dough in the container that held the flour."),
    Game("make-tea", "Your task is to make a cup of tea.", _tea_setup, _tea_score, _tea_expert,
         ("Stove", "Kettle", "Cupboard", "Water", "Ingredient", "Drink") + _THINGS,
         "The player gets one point and wins the game when there is tea.\n"
         "The player loses the game if the water boils (turns into steam).",
         recipes="- mix tea bag and water: needs water at 60 degrees or more; makes tea in the container "
                 "that held the water."),
    Game("refrigerate-food", "Your task is to keep the perishable food cold in the fridge.", _fridge_setup,
         _fridge_score, _fridge_expert, ("Fridge", "Cupboard", "Food", "Bowl", "Item"),
         "The score is the number of perishable foods (isPerishable) inside the fridge.\n"
         "The player wins when every perishable food is in the fridge at 8 degrees or colder.\n"
         "The player loses the game if a perishable food is eaten."),
    Game("melt-chocolate", "Your task is to make a chocolate strawberry.", _choc_setup, _choc_score,
         _choc_expert, ("Microwave", "Bowl", "Chocolate", "Food", "Item"),
         "The player gets one point while there is melted chocolate.\n"
         "The player gets two points and wins the game when there is a chocolate strawberry.\n"
         "The player loses the game if the chocolate burns or the strawberry is eaten.",
         recipes="- mix strawberry and melted chocolate: makes a chocolate strawberry in the container that "
                 "held the strawberry."),
)}


def check_game(name: str) -> Game:
    if name not in GAMES:
        raise ValueError(f"unknown text game {name!r}; known games: {', '.join(GAMES)}")
    return GAMES[name]


def choose_action(game: Game, w: World, rng: np.random.Generator, policy: str, noise: float = 0.0,
                  invalid_rate: float = 0.0) -> Action:
    """One action of ``policy``: "expert" (its scripted action; with probability ``noise`` a
    uniformly drawn valid action instead) or "random" (a uniformly drawn valid action); either
    way, with probability ``invalid_rate`` a possible action that fails (its transition only
    changes by the tick), when there is one."""
    if invalid_rate > 0 and rng.random() < invalid_rate:
        failing = [a for a in w.possible_actions() if w.check(a) is not None]
        if failing:
            return failing[int(rng.integers(len(failing)))]
    if policy == "expert" and not (noise > 0 and rng.random() < noise):
        return game.expert(w)
    valid = w.valid_actions()
    return valid[int(rng.integers(len(valid)))]
