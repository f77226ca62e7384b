"""Object kinds of the text-game engine and the rules texts that describe them.

``make(world, kind, into=None, **kw)`` creates one object of a kind (``KINDS``) with a new uuid;
the keyword arguments set its name and parameters (rates, temperatures). The rules texts follow
the style of ByteSized32's human-written rules (``../shared/data/bytesized32/rules/``): object
rules are one block per record ``type``, joined by ``==========`` with the World block last (the
faithful prompt drops the last block, as RLVR-World does); action rules one block per verb.
"""

from __future__ import annotations

from worldmodels.envs.text_game import ROOM_TEMPERATURE, GameObject, World


def _box(prefix: str = "in", openable: bool = False, is_open: bool = True, moveable: bool = True) -> dict:
    return {"isContainer": True, "isMoveable": moveable, "isOpenable": openable, "isOpen": is_open,
            "containerPrefix": prefix}


def _thing(moveable: bool = True) -> dict:
    return {"isContainer": False, "isMoveable": moveable}


def container(w, into, name="pot", type_="Pot", prefix="in", openable=False, is_open=True,
              liquid=False, moveable=True):
    props = _box(prefix, openable, is_open, moveable)
    if liquid:
        props["isLiquidContainer"] = True
    return w.add(name, type_, props, into)


def heater(w, into, name="stove", type_="Stove", rate=20, top=200, prefix="on", closed=False):
    """A device that heats what it holds by ``rate`` per tick up to ``top`` while on (and, if
    ``closed``, while its door is shut)."""
    props = _box(prefix, openable=closed, is_open=not closed, moveable=False)
    props |= {"isDevice": True, "isActivatable": True, "isOn": False, "maxTemperature": top,
              "tempIncreasePerTick": rate}
    if closed:
        props["requiresClosed"] = True
    return w.add(name, type_, props, into)


def cooler(w, into, name="fridge", type_="Fridge", rate=4, low=4):
    """Always on; cools what it holds by ``rate`` per tick down to ``low`` while closed."""
    props = _box("in", openable=True, is_open=False, moveable=False)
    props |= {"isDevice": True, "isActivatable": False, "isOn": True, "minTemperature": low,
              "tempDecreasePerTick": rate, "requiresClosed": True}
    return w.add(name, type_, props, into)


def sink(w, into, water_temperature=15):
    props = _box("in", moveable=False) | {"isDevice": True, "isActivatable": True, "isOn": False,
                                          "waterTemperature": water_temperature}
    return w.add("sink", "Sink", props, into)


def _phase(t: int, melt: int, boil: int) -> str:
    return "solid" if t <= melt else "gas" if t >= boil else "liquid"


def substance(w, into, type_="Water", temperature=ROOM_TEMPERATURE, names=("ice", "water", "steam"),
              melt=0, boil=100, burn=None, burnt_name=None):
    state = _phase(temperature, melt, boil)
    props = _thing(moveable=False) | {
        "temperature": temperature, "solidName": names[0], "liquidName": names[1], "gasName": names[2],
        "meltingPoint": melt, "boilingPoint": boil, "stateOfMatter": state}
    if burn is not None:
        props |= {"burnTemperature": burn, "isBurnt": False, "burntName": burnt_name}
    return w.add(names[("solid", "liquid", "gas").index(state)], type_, props, into)


def water(w, into, temperature=ROOM_TEMPERATURE):
    return substance(w, into, "Water", temperature)


def chocolate(w, into, temperature=ROOM_TEMPERATURE, burn=90):
    return substance(w, into, "Chocolate", temperature, ("chocolate", "melted chocolate", "chocolate vapour"),
                     melt=35, boil=300, burn=burn, burnt_name="burnt chocolate")


def food(w, into, name="apple", perishable=None, temperature=ROOM_TEMPERATURE):
    props = _thing() | {"isEdible": True, "temperature": temperature}
    if perishable is not None:
        props["isPerishable"] = perishable
    return w.add(name, "Food", props, into)


def item(w, into, name="book", type_="Item"):
    return w.add(name, type_, _thing(), into)


def dough(w, into, cook=150, burn=220):
    props = _thing() | {"temperature": ROOM_TEMPERATURE, "cookTemperature": cook, "isCooked": False,
                        "cookedName": "bread", "burnTemperature": burn, "isBurnt": False,
                        "burntName": "burnt bread"}
    return w.add("dough", "Dough", props, into)


def drink(w, into, name="tea"):
    return w.add(name, "Drink", _thing(moveable=False), into)


KINDS = {"container": container, "heater": heater, "cooler": cooler, "sink": sink, "water": water,
         "chocolate": chocolate, "food": food, "item": item, "dough": dough, "drink": drink}


def make(w: World, kind: str, into: GameObject | None = None, **kw) -> GameObject:
    """A new object of ``kind`` (uuid ``max_UUID``) in ``into`` (default: the room)."""
    if kind not in KINDS:
        raise ValueError(f"unknown object kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return KINDS[kind](w, into if into is not None else w.root, **kw)


# ----- rules texts (by record type and by verb)
OBJECT_RULES = {
    "Pot": "Object: Pot\nDescription: a pot that can hold water.\nProperties:\n"
           "- A pot is a container that is always open and not openable.\n"
           "- A pot can hold liquids (isLiquidContainer) and can be moved.\n",
    "Kettle": "Object: Kettle\nDescription: a kettle to heat water on a stove.\nProperties:\n"
              "- A kettle is a container that is always open and not openable.\n"
              "- A kettle can hold liquids (isLiquidContainer) and can be moved.\n",
    "IceCubeTray": "Object: IceCubeTray\nDescription: an ice cube tray that holds water to freeze.\n"
                   "Properties:\n- An ice cube tray is a container that is always open.\n"
                   "- It can hold liquids (isLiquidContainer) and can be moved.\n",
    "Bowl": "Object: Bowl\nDescription: a bowl.\nProperties:\n"
            "- A bowl is an open container that can be moved.\n",
    "Cup": "Object: Cup\nDescription: a cup.\nProperties:\n"
           "- A cup is an open container that can hold liquids (isLiquidContainer) and be moved.\n",
    "Cupboard": "Object: Cupboard\nDescription: a cupboard that stores things.\nProperties:\n"
                "- A cupboard is an openable container (isOpenable); things inside a closed cupboard "
                "cannot be seen or taken.\n- A cupboard cannot be moved.\n",
    "Stove": "Object: Stove\nDescription: a stove, a heating device things are put on.\nProperties:\n"
             "- A stove is a container with the prefix 'on' and a device that can be turned on or off.\n"
             "- Per tick, while the stove is on, every object on it (directly or inside a container on it) "
             "that has a temperature gets tempIncreasePerTick degrees hotter, up to maxTemperature.\n",
    "Oven": "Object: Oven\nDescription: an oven, a heating device with a door.\nProperties:\n"
            "- An oven is an openable container and a device that can be turned on or off. It starts closed.\n"
            "- Per tick, while the oven is on and closed (requiresClosed), every object inside it that has "
            "a temperature gets tempIncreasePerTick degrees hotter, up to maxTemperature.\n",
    "Microwave": "Object: Microwave\nDescription: a microwave oven with a door.\nProperties:\n"
                 "- A microwave is an openable container and a device that can be turned on or off.\n"
                 "- Per tick, while the microwave is on and closed (requiresClosed), every object inside it "
                 "that has a temperature gets tempIncreasePerTick degrees hotter, up to maxTemperature.\n",
    "Fridge": "Object: Fridge\nDescription: a fridge, a cooling device with a door.\nProperties:\n"
              "- A fridge is an openable container that cannot be moved. It starts closed.\n"
              "- A fridge is always on and cannot be turned off (isActivatable is false).\n"
              "- Per tick, while the fridge is closed, every object inside it that has a temperature gets "
              "tempDecreasePerTick degrees colder, down to minTemperature.\n",
    "Freezer": "Object: Freezer\nDescription: a freezer, a cooling device with a door.\nProperties:\n"
               "- A freezer is an openable container that cannot be moved. It starts closed.\n"
               "- A freezer is always on and cannot be turned off.\n"
               "- Per tick, while the freezer is closed, every object inside it that has a temperature gets "
               "tempDecreasePerTick degrees colder, down to minTemperature.\n",
    "Sink": "Object: Sink\nDescription: a sink that fills containers with water.\nProperties:\n"
            "- A sink is a container and a device that can be turned on or off. It cannot be moved.\n"
            "- Per tick, while the sink is on, every empty container in the sink that can hold liquids "
            "(isLiquidContainer) is filled with new water (a new object with a new ID) at the sink's "
            "waterTemperature.\n",
    "Water": "Object: Water\nDescription: water, a substance.\nProperties:\n"
             "- Water has a temperature, a melting point of 0 and a boiling point of 100. It cannot be taken.\n"
             "- Per tick, after its temperature changes: at or below the melting point it is solid and "
             "called ice; at or above the boiling point it is gas and called steam; otherwise it is liquid "
             "and called water (stateOfMatter).\n"
             "- When it is not inside a working heating or cooling device, its temperature moves 2 degrees per tick "
             "toward the room temperature of 20.\n",
    "Chocolate": "Object: Chocolate\nDescription: chocolate, a substance that melts.\nProperties:\n"
                 "- Chocolate has a temperature and a melting point of 35. It cannot be taken by itself.\n"
                 "- Per tick, after its temperature changes: at or below 35 it is solid (chocolate), above it "
                 "is liquid (melted chocolate).\n- At or above burnTemperature it becomes burnt chocolate "
                 "for good (isBurnt).\n- When it is not inside a working heating or cooling device, its "
                 "temperature moves 2 degrees per tick toward 20.\n",
    "Food": "Object: Food\nDescription: a food item.\nProperties:\n"
            "- Food can be eaten (isEdible) and has a temperature.\n"
            "- When it is not inside a working heating or cooling device, its temperature moves 2 degrees "
            "per tick toward 20.\n",
    "Ingredient": "Object: Ingredient\nDescription: an ingredient for a recipe (flour, egg).\nProperties:\n"
                  "- An ingredient can be moved and mixed with another ingredient.\n",
    "Dough": "Object: Dough\nDescription: dough that bakes into bread.\nProperties:\n"
             "- Dough has a temperature. When it is not inside a working heating or cooling device, it moves 2 "
             "degrees per tick toward 20.\n"
             "- Per tick, at or above cookTemperature it is cooked for good (isCooked) and called bread; "
             "at or above burnTemperature it is burnt for good (isBurnt) and called burnt bread.\n",
    "Drink": "Object: Drink\nDescription: a drink made by mixing.\nProperties:\n"
             "- A drink cannot be taken by itself; it stays in its container.\n",
    "Item": "Object: Item\nDescription: an ordinary object.\nProperties:\n- An item can be moved.\n",
    "World": "Object: World\nDescription: The world is the root object of the game object tree.  "
             "All the objects are located in it.\nProperties: \n"
             "- The world is a container which means it can hold other objects. \n"
             "- When referring to the world, the prefix to use is \"in\"\n"
             "- The world does not contain a `tick` method, so there is no need to describe changes to "
             "the object properties at each game tick.\n",
}
ACTION_RULES = {
    "look": "look:\nDescription: show the current observation\nRules:\n1. This action will not change any game states\n",
    "inventory": "inventory:\nDescription: show the current items in the inventory\nRules:\n"
                 "1. This action will not change any game states\n",
    "examine": "examine:\nDescription: examine an object\nRules:\n1. This action will not change any game states\n",
    "wait": "wait:\nDescription: do nothing for one tick\nRules:\n1. Only the tick changes the game state\n",
    "take": "take:\nDescription: take an object and put it into the inventory\nRules:\n"
            "1. The object must be moveable (isMoveable)\n2. Every container around it must be open\n"
            "3. An object already in the inventory is not taken again\n",
    "put": "put:\nDescription: put an object from the inventory into a target container\nRules:\n"
           "1. The object must be directly in the inventory\n2. The target must be a container (isContainer) "
           "that is open (isOpen) and not the object itself or inside it\n",
    "open/close": "open/close:\nDescription: open/close a container\nRules:\n"
                  "1. The target must be openable (isOpenable)\n"
                  "2. Opening works only on a closed target and closing only on an open one\n",
    "turn on/off": "turn on/off:\nDescription: turn on/off a device\nRules:\n"
                   "1. The device must be activatable (isActivatable)\n"
                   "2. Turning on works only when it is off (isOn=False), turning off only when it is on\n",
    "eat": "eat:\nDescription: eat a food\nRules:\n1. The food must be edible (isEdible) and in the inventory "
           "(directly or inside a carried container)\n2. The food is removed from the game\n",
    "mix": "mix:\nDescription: mix two things to make a new one\nRules:\n"
           "1. Both must be in the inventory (directly or inside a carried container)\n"
           "2. Only the recipes of this game make something; the inputs are removed and the product is a "
           "new object with a new ID, placed where the recipe says, at the room temperature if it has one\n",
}


def object_rules(types: list[str]) -> str:
    """The object rules text of a game whose objects have these record types (World last)."""
    blocks = [OBJECT_RULES[t] for t in dict.fromkeys(types) if t != "World"] + [OBJECT_RULES["World"]]
    return "\n==========\n".join(blocks) + "\n"


def action_rules(verbs: list[str], recipes: str = "") -> str:
    """The action rules text: one block per verb, then the game's recipes for ``mix``."""
    return "\n".join(ACTION_RULES[v] for v in verbs) + (f"\nRecipes:\n{recipes}\n" if recipes else "")
