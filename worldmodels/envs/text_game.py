"""A small text-game simulator: objects with properties and containment, actions, ticks, scores.

Our own engine (not a port of ByteSized32's code) whose states are written in exactly the
GPT-simulator record format (``../shared/reference/language.md`` §3)::

    state  = {observation, look, inventory, taskDesc, lastAction, objects, max_UUID}
    object = {name, uuid, type, properties, contains}      # contains = object *names*

An object's record ``name`` is ``"<name> (ID: <uuid>)"``; the room (the root, uuid 1) and the
agent (uuid 0) are objects too, listed first; ``objects`` is the depth-first walk of the
containment tree from the room. ``max_UUID`` is the next free uuid: a created object takes
``uuid = max_UUID`` and ``max_UUID`` grows by one (as in the real records, where it is the
"UUID base" of the prompt).

One step (`World.step`), as GPT-simulator's ``get_game_states`` records it: the action is
applied (``action_state``), then one clock tick (``tick_state``), then the score. The tick, in
order: (1) every object with a ``temperature`` moves toward its source -- up by
``tempIncreasePerTick`` to ``maxTemperature`` under an active heater, down by
``tempDecreasePerTick`` to ``minTemperature`` under an active cooler (the nearest enclosing
device; one with ``requiresClosed`` works only while closed), otherwise toward
``ROOM_TEMPERATURE`` by ``AMBIENT_RATE``; (2) states follow temperatures: a substance is solid at
or below ``meltingPoint``, gas at or above ``boilingPoint``, liquid between, and takes the
matching ``solidName``/``liquidName``/``gasName``; ``cookTemperature`` reached sets ``isCooked``
(name ``cookedName``), ``burnTemperature`` reached sets ``isBurnt`` (name ``burntName``), both
for good; (3) a sink that is on fills every empty liquid container in it with a new ``water``.

Object kinds, the games and their rules texts live in ``text_game_parts`` / ``text_game_games``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

ROOM_TEMPERATURE = 20
AMBIENT_RATE = 2  # degrees per tick toward the room temperature, away from any device
AGENT_UUID, ROOM_UUID = 0, 1
NO_ARG_VERBS = ("look", "inventory", "wait")
PHASE_NAME_KEY = {"solid": "solidName", "liquid": "liquidName", "gas": "gasName"}


class GameObject:
    """One object: a base ``name`` (without the ID), ``uuid``, ``type`` (class name in the
    records), ``properties`` (JSON scalars only) and ordered ``contents``."""

    __slots__ = ("name", "uuid", "type", "properties", "contents", "parent")

    def __init__(self, name: str, uuid: int, type_: str, properties: dict):
        self.name, self.uuid, self.type, self.properties = name, uuid, type_, properties
        self.contents: list[GameObject] = []
        self.parent: GameObject | None = None

    @property
    def ref(self) -> str:
        """The record name, ``"pot (ID: 5)"``; ``contains`` lists these and actions use them."""
        return f"{self.name} (ID: {self.uuid})"

    def get(self, key: str, default=None):
        return self.properties.get(key, default)

    def record(self) -> dict:
        return {"name": self.ref, "uuid": self.uuid, "type": self.type,
                "properties": dict(self.properties), "contains": [c.ref for c in self.contents]}

    def __repr__(self) -> str:
        return f"GameObject({self.ref}, {self.type})"


@dataclass(frozen=True)
class Action:
    """A verb with its objects' uuids and the text the records show as ``lastAction``."""

    verb: str
    args: tuple[int, ...]
    text: str


@dataclass(frozen=True)
class Recipe:
    """``mix A and B`` with these two input names makes ``product`` (a kind from
    ``text_game_parts.KINDS`` and its keyword arguments) in the container that held input
    ``into``; ``min_temperature`` maps an input name to the least temperature it needs."""

    inputs: tuple[str, str]
    product: tuple[str, dict]
    into: str
    min_temperature: tuple[tuple[str, int], ...] = ()


class World:
    """The game state and its rules. ``score_fn(world) -> (score, gameOver, gameWon)``."""

    def __init__(self, game: str, task_desc: str, room: str = "kitchen",
                 score_fn: Callable[[World], tuple[int, bool, bool]] | None = None):
        self.game, self.task_desc = game, task_desc
        self.max_uuid = 0
        self.objects: dict[int, GameObject] = {}
        self.recipes: list[Recipe] = []
        self.score_fn = score_fn or (lambda w: (0, False, False))
        self.memo: dict = {}  # game-specific bookkeeping (e.g. the uuids a score counts)
        box = {"isContainer": True, "isMoveable": False, "isOpenable": False, "isOpen": True,
               "containerPrefix": "in"}
        self.agent = self._create("agent", "Agent", dict(box), None)
        self.root = self._create(room, "World", dict(box), None)
        self.move(self.agent, self.root)
        self.last_action = ""
        self.observation = self.look()

    # ----- the object tree
    def _create(self, name: str, type_: str, props: dict, into: GameObject | None) -> GameObject:
        obj = GameObject(name, self.max_uuid, type_, props)
        self.objects[obj.uuid] = obj
        self.max_uuid += 1
        if into is not None:
            self.move(obj, into)
        return obj

    def add(self, name: str, type_: str, props: dict, into: GameObject | None = None) -> GameObject:
        """A new object with ``uuid = max_UUID`` (then ``max_UUID += 1``), placed in ``into``
        (default: the room)."""
        return self._create(name, type_, props, into if into is not None else self.root)

    def move(self, obj: GameObject, dest: GameObject) -> None:
        if obj.parent is not None:
            obj.parent.contents.remove(obj)
        dest.contents.append(obj)
        obj.parent = dest

    def remove(self, obj: GameObject) -> None:
        """Take ``obj`` (and whatever it contains) out of the game."""
        for c in list(obj.contents):
            self.remove(c)
        if obj.parent is not None:
            obj.parent.contents.remove(obj)
        obj.parent = None
        del self.objects[obj.uuid]

    def walk(self, obj: GameObject | None = None) -> Iterator[GameObject]:
        """Depth-first from the room: the order of a state's ``objects``."""
        obj = obj or self.root
        yield obj
        for c in obj.contents:
            yield from self.walk(c)

    def find(self, name: str) -> GameObject | None:
        """The first object (walk order) whose current base name is ``name``."""
        return next((o for o in self.walk() if o.name == name), None)

    def find_all(self, pred: Callable[[GameObject], bool]) -> list[GameObject]:
        return [o for o in self.walk() if pred(o)]

    def ancestors(self, obj: GameObject) -> Iterator[GameObject]:
        p = obj.parent
        while p is not None:
            yield p
            p = p.parent

    def accessible(self, obj: GameObject) -> bool:
        """In the game and not inside a closed container."""
        return obj.uuid in self.objects and all(p.get("isOpen", True) for p in self.ancestors(obj))

    def held(self, obj: GameObject) -> bool:
        """In the agent's inventory, directly or inside something carried."""
        return any(p is self.agent for p in self.ancestors(obj))

    # ----- records
    def state(self) -> dict:
        """The state in the GPT-simulator record format."""
        return {"observation": self.observation, "look": self.look(), "inventory": self.inventory(),
                "taskDesc": self.task_desc, "lastAction": self.last_action,
                "objects": [o.record() for o in self.walk()], "max_UUID": self.max_uuid}

    def score_state(self) -> dict:
        score, over, won = self.score_fn(self)
        return {"score": score, "gameOver": bool(over), "gameWon": bool(won)}

    def step(self, action: Action) -> dict:
        """Apply ``action``, tick, score; the record fields of this transition (no game/state_id)."""
        current, current_score = self.state(), self.score_state()
        self.observation = self.act(action)
        self.last_action = action.text
        action_state = self.state()
        self.tick()
        return {"current_state": current, "action_state": action_state, "tick_state": self.state(),
                "current_score_state": current_score, "next_score_state": self.score_state()}

    # ----- text
    def describe(self, obj: GameObject) -> str:
        """``a sink (ID: 2) that is currently on and that contains: a pot (ID: 3) ...``"""
        article = ("some" if obj.get("stateOfMatter") in ("liquid", "gas") else
                   "an" if obj.name[:1] in "aeiou" else "a")
        parts = []
        if obj.get("isActivatable") is not None:
            parts.append(f"is currently {'on' if obj.get('isOn') else 'off'}")
        if obj.get("isContainer"):
            if not obj.get("isOpen"):
                parts.append("is closed")
            elif obj.contents:
                verb = "has on it" if obj.get("containerPrefix") == "on" else "contains"
                parts.append(f"{verb}: " + ", ".join(self.describe(c) for c in obj.contents))
            else:
                parts.append("has nothing on it" if obj.get("containerPrefix") == "on" else "is empty")
        return f"{article} {obj.ref}" + (" that " + " and that ".join(parts) if parts else "")

    def look(self) -> str:
        room = self.root.name
        seen = "".join(f"\t{self.describe(o)}\n" for o in self.root.contents if o is not self.agent)
        return f"You find yourself in a {room}.  In the {room}, you see: \n\tyourself\n{seen}"

    def inventory(self) -> str:
        if not self.agent.contents:
            return "Your inventory is empty."
        items = "".join(f"\t{self.describe(o)}\n" for o in self.agent.contents)
        return f"You have the following items in your inventory:\n{items}"

    # ----- actions
    def action(self, verb: str, *objs: GameObject) -> Action:
        """The action ``verb`` on ``objs`` with its text (e.g. ``put pot (ID: 5) on stove (ID: 2)``)."""
        refs = [o.ref for o in objs]
        if verb in NO_ARG_VERBS:
            text = verb
        elif verb == "put":
            text = f"put {refs[0]} {objs[1].get('containerPrefix', 'in')} {refs[1]}"
        elif verb == "mix":
            text = f"mix {refs[0]} and {refs[1]}"
        else:
            text = f"{verb} {refs[0]}"
        return Action(verb, tuple(o.uuid for o in objs), text)

    def possible_actions(self) -> list[Action]:
        """Every action the parser would accept on the objects in view (many of them fail),
        like ByteSized32's possible actions; `valid_actions` keeps those that succeed."""
        seen = [o for o in self.walk() if o is not self.root and o is not self.agent
                and self.accessible(o)]
        acts = [self.action(v) for v in NO_ARG_VERBS]
        for o in seen:
            acts += [self.action(v, o) for v in ("examine", "take", "open", "close", "turn on",
                                                  "turn off", "eat")]
        for o in self.agent.contents:
            acts += [self.action("put", o, d) for d in seen if d is not o and d.get("isContainer")]
        held = [o for o in seen if self.held(o)]
        acts += [self.action("mix", a, b) for i, a in enumerate(held) for b in held[i + 1:]]
        return acts

    def valid_actions(self) -> list[Action]:
        """The possible actions whose preconditions hold (`check` finds nothing wrong)."""
        return [a for a in self.possible_actions() if self.check(a) is None]

    def recipe_for(self, a: GameObject, b: GameObject) -> Recipe | None:
        return next((r for r in self.recipes if sorted(r.inputs) == sorted((a.name, b.name))), None)

    def check(self, action: Action) -> str | None:
        """Why ``action`` fails here (the observation it gets), or None when it succeeds."""
        if action.verb in NO_ARG_VERBS:
            return None
        objs = [self.objects.get(u) for u in action.args]
        if any(o is None or not self.accessible(o) for o in objs) or not objs:
            return "You don't see that here."
        o, v = objs[0], action.verb
        if v == "examine":
            return None
        if v == "take":
            if o.parent is self.agent:
                return f"The {o.ref} is already in your inventory."
            return None if o.get("isMoveable") else f"You can't take the {o.ref}."
        if v in ("open", "close"):
            if not o.get("isOpenable"):
                return f"The {o.ref} can't be opened or closed."
            return None if o.get("isOpen") == (v == "close") else f"The {o.ref} is already {v}d."
        if v in ("turn on", "turn off"):
            if not o.get("isActivatable"):
                return f"You can't {v} the {o.ref}."
            return None if o.get("isOn") == (v == "turn off") else f"The {o.ref} is already {v[5:]}."
        if v == "eat":
            if not o.get("isEdible"):
                return f"You can't eat the {o.ref}."
            return None if self.held(o) else f"You need to take the {o.ref} first."
        if v == "put":
            d = objs[1]
            if o.parent is not self.agent:
                return f"You need to take the {o.ref} first."
            if not d.get("isContainer") or d is o or d is self.agent or o in self.ancestors(d):
                return f"You can't put things in the {d.ref}."
            return None if d.get("isOpen") else f"The {d.ref} is closed."
        if v == "mix":
            return self._check_mix(objs[0], objs[1])
        return f"I don't know how to {v}."

    def _check_mix(self, a: GameObject, b: GameObject) -> str | None:
        if not (self.held(a) and self.held(b)) or a is b:
            return "You need to hold both things to mix them."
        recipe = self.recipe_for(a, b)
        if recipe is None:
            return f"Mixing the {a.ref} and the {b.ref} makes nothing."
        for name, least in recipe.min_temperature:
            obj = a if a.name == name else b
            if obj.get("temperature", ROOM_TEMPERATURE) < least:
                return f"The {obj.ref} is not hot enough."
        return None

    def act(self, action: Action) -> str:
        """Apply ``action`` (only the action, no tick); returns the observation."""
        problem = self.check(action)
        if problem is not None:
            return problem
        v = action.verb
        objs = [self.objects[u] for u in action.args]
        if v == "look":
            return self.look()
        if v == "inventory":
            return self.inventory()
        if v == "wait":
            return "You wait."
        o = objs[0]
        if v == "examine":
            return self.describe(o)[0].upper() + self.describe(o)[1:] + "."
        if v == "take":
            source = o.parent
            self.move(o, self.agent)
            return f"The {o.ref} is removed from the {source.ref}. You put the {o.ref} in your inventory."
        if v == "put":
            self.move(o, objs[1])
            return f"The {o.ref} is placed {objs[1].get('containerPrefix')} the {objs[1].ref}."
        if v in ("open", "close"):
            o.properties["isOpen"] = v == "open"
            return f"The {o.ref} is now {v}{'d' if v == 'close' else ''}."
        if v in ("turn on", "turn off"):
            o.properties["isOn"] = v == "turn on"
            return f"The {o.ref} is now turned {v[5:]}."
        if v == "eat":
            self.remove(o)
            return f"You eat the {o.ref}."
        return self._mix(objs[0], objs[1])

    def _mix(self, a: GameObject, b: GameObject) -> str:
        from worldmodels.envs.text_game_parts import make

        recipe = self.recipe_for(a, b)
        dest = (a if a.name == recipe.into else b).parent
        kind, kwargs = recipe.product
        self.remove(a)
        self.remove(b)
        product = make(self, kind, into=dest, **kwargs)
        return f"You mix the {a.ref} and the {b.ref} and get {product.ref}."

    # ----- the clock
    def _thermal_source(self, obj: GameObject) -> GameObject | None:
        """The nearest enclosing heater/cooler if it is working, else None (ambient)."""
        for p in self.ancestors(obj):
            if "tempIncreasePerTick" in p.properties or "tempDecreasePerTick" in p.properties:
                works = p.get("isOn", True) and (not p.get("requiresClosed") or not p.get("isOpen"))
                return p if works else None
        return None

    def tick(self) -> None:
        """One clock tick: temperatures, then states of matter / cooking, then sinks fill."""
        for obj in list(self.walk()):
            if "temperature" in obj.properties:
                obj.properties["temperature"] = self._next_temperature(obj)
                _update_state(obj)
        for sink in self.find_all(lambda o: o.type == "Sink" and o.get("isOn")):
            for c in list(sink.contents):
                if c.get("isLiquidContainer") and not c.contents:
                    from worldmodels.envs.text_game_parts import make

                    make(self, "water", into=c, temperature=sink.get("waterTemperature", ROOM_TEMPERATURE))

    def _next_temperature(self, obj: GameObject) -> int:
        t = obj.properties["temperature"]
        src = self._thermal_source(obj)
        if src is not None and "tempIncreasePerTick" in src.properties:
            top = src.properties["maxTemperature"]
            return min(top, t + src.properties["tempIncreasePerTick"]) if t < top else t
        if src is not None:
            low = src.properties["minTemperature"]
            return max(low, t - src.properties["tempDecreasePerTick"]) if t > low else t
        if t > ROOM_TEMPERATURE:
            return max(ROOM_TEMPERATURE, t - AMBIENT_RATE)
        return min(ROOM_TEMPERATURE, t + AMBIENT_RATE)


def _update_state(obj: GameObject) -> None:
    """States of matter, cooking and burning follow the temperature; the name follows them."""
    p, t = obj.properties, obj.properties["temperature"]
    if "stateOfMatter" in p:
        p["stateOfMatter"] = ("solid" if t <= p["meltingPoint"] else
                              "gas" if t >= p["boilingPoint"] else "liquid")
        obj.name = p[PHASE_NAME_KEY[p["stateOfMatter"]]]
    if "cookTemperature" in p and t >= p["cookTemperature"]:
        p["isCooked"] = True
    if "burnTemperature" in p and t >= p["burnTemperature"]:
        p["isBurnt"] = True
    if p.get("isBurnt"):
        obj.name = p["burntName"]
    elif p.get("isCooked"):
        obj.name = p["cookedName"]
