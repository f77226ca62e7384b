"""Hand-made text-game records in the GPT-simulator format (not a test module).

One small world (a room with a lamp, a box and an apple in the box) and five transitions whose
rewards are worked out by hand in the tests: a property change, a removal, a creation, a
score-only change and an unchanged one. ``write_records`` writes them (and copies) as JSONL.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

SCORE0 = {"score": 0, "gameOver": False, "gameWon": False}


def obj(name: str, uuid: int, typ: str, props: dict, contains=()) -> dict:
    return {"name": f"{name} (ID: {uuid})", "uuid": uuid, "type": typ, "properties": dict(props),
            "contains": list(contains)}


def world() -> list[dict]:
    """room 1 > agent 0, lamp 2, box 3 > apple 4. Units per object (properties + contains):
    room 2, agent 2, lamp 2, box 3, apple 2 = 11."""
    return [obj("room", 1, "World", {"isContainer": True}, ["agent (ID: 0)", "lamp (ID: 2)", "box (ID: 3)"]),
            obj("agent", 0, "Agent", {"isContainer": True}),
            obj("lamp", 2, "Lamp", {"isOn": False}),
            obj("box", 3, "Box", {"isOpen": False, "isContainer": True}, ["apple (ID: 4)"]),
            obj("apple", 4, "Apple", {"isSliced": False})]


def state(objects: list[dict], action: str, max_uuid: int = 5) -> dict:
    return {"observation": "", "look": "", "inventory": "", "taskDesc": "Your task is to eat the apple.",
            "lastAction": action, "objects": objects, "max_UUID": max_uuid}


def record(state_id: int, action: str, nxt: list[dict], next_score: dict | None = None,
           game: str = "lamp-room", current: list[dict] | None = None, max_uuid: int = 5) -> dict:
    cur = current if current is not None else world()
    return {"current_state": state(copy.deepcopy(cur), "look", max_uuid),
            "action_state": state(copy.deepcopy(nxt), action, max_uuid),
            "tick_state": state(copy.deepcopy(nxt), action, max_uuid),
            "current_score_state": dict(SCORE0), "next_score_state": dict(next_score or SCORE0),
            "game": game, "state_id": state_id}


def lamp_on() -> dict:
    """Property change: the lamp's isOn False -> True."""
    nxt = world()
    nxt[2]["properties"]["isOn"] = True
    return record(1, "turn on lamp (ID: 2)", nxt)


def eat_apple() -> dict:
    """Removal: the apple disappears, the box's contains empties, the score goes to 1.
    Target units: room 2, agent 2, lamp 2, box 3 = 9."""
    nxt = [o for o in world() if o["uuid"] != 4]
    nxt[3]["contains"] = []
    return record(2, "eat apple (ID: 4)", nxt, {"score": 1, "gameOver": False, "gameWon": False})


def slice_apple() -> dict:
    """Creation: apple slice 5 appears in the box, the apple is sliced.
    Target units: 11 + slice 2 = 13 (a missing slice is 1 wrong unit); gold units: box
    contains, apple isSliced."""
    nxt = world()
    nxt[3]["contains"] = ["apple (ID: 4)", "apple slice (ID: 5)"]
    nxt[4]["properties"]["isSliced"] = True
    nxt.append(obj("apple slice", 5, "AppleSlice", {"isSliced": True}))
    return record(3, "slice apple (ID: 4)", nxt)


def answer_three() -> dict:
    """Score-only change: objects unchanged, score 0 -> 1 and the game is won."""
    return record(4, "answer 3", world(), {"score": 1, "gameOver": True, "gameWon": True})


def look() -> dict:
    """Unchanged."""
    return record(5, "look around", world())


def all_records() -> list[dict]:
    return [lamp_on(), eat_apple(), slice_apple(), answer_three(), look()]


def write_records(path: Path, records: list[dict] | None = None, copies: int = 1) -> Path:
    """The records (``copies`` times, state ids made distinct) as one JSON object a line."""
    recs = records if records is not None else all_records()
    lines = []
    for c in range(copies):
        for r in recs:
            lines.append(json.dumps({**r, "state_id": 100 * c + r["state_id"]}))
    path.write_text("\n".join(lines) + "\n")
    return path
