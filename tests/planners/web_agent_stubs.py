"""Stubs for the MPC web agent tests: a three-page site as a state machine, scripted policies,
a world model that tells the truth (or a fixed lie) and a value read from a table."""

from __future__ import annotations

from types import SimpleNamespace

from worldmodels.envs.web.actions import ActionError, format_action, parse_action

ORIGIN = "http://stub.test"


def tree(page: str, extra: str = "") -> str:
    """A WebArena-style tree of the stub page ``page`` (home, a, b)."""
    lines = [f"Tab 0 (current): {page}", "",
             f"[1] RootWebArea '{page}' focused: True url: {ORIGIN}/{page}",
             f"\t[2] link 'A' url: {ORIGIN}/a", f"\t[3] link 'B' url: {ORIGIN}/b",
             "\t[4] textbox 'Note'"]
    return "\n".join(lines + ([f"\t[5] StaticText {extra!r}"] if extra else []))


TRANSITIONS = {"click [2]": "a", "click [3]": "b", "scroll [down]": None, "go_back": "home"}


class StubEnv:
    """``reset`` to home; ``click [2]`` -> a, ``click [3]`` -> b, ``scroll [down]`` stays,
    ``type [4] [..] [..]`` writes the note; anything else is invalid. Success: page b."""

    def __init__(self):
        self.server = SimpleNamespace(url=ORIGIN)
        self.executed: list[str] = []

    def reset(self, site, seed=0, family=None):
        self.page, self.note, self.executed = "home", "", []
        self.task = SimpleNamespace(objective="Open page B.", site=site, family=family)
        return tree(self.page)

    @property
    def observation(self):
        return tree(self.page, self.note)

    def step(self, action):
        self.executed.append(action)
        a = parse_action(action)
        if isinstance(a, ActionError):
            return self.observation, {"valid": False, "error": a.message, "done": False,
                                      "answer": None}
        if a.verb == "stop":
            return self.observation, {"valid": True, "error": None, "done": True,
                                      "answer": a.text}
        if a.verb == "type" and a.element_id == "4":
            self.note = a.text
        elif format_action(a) in TRANSITIONS:
            self.page = TRANSITIONS[format_action(a)] or self.page
        else:
            return self.observation, {"valid": False, "error": "unknown id", "done": False,
                                      "answer": None}
        return self.observation, {"valid": True, "error": None, "done": False, "answer": None}

    def success(self):
        return self.page == "b"


class ListPolicy:
    """Proposes ``actions`` (cycled to n); records each call's n."""

    def __init__(self, actions):
        self.actions, self.calls = list(actions), []

    def propose(self, state, n, rng):
        self.calls.append(n)
        return [self.actions[i % len(self.actions)] for i in range(n)]


class TruthWM:
    """Predicts the stub site's true next tree (from the state's page); records the calls."""

    def __init__(self):
        self.calls = []

    def predict(self, state, actions):
        self.calls.append(list(actions))
        env = StubEnv()
        out = []
        for a in actions:
            env.reset("stub")
            env.page = state.url.rsplit("/", 1)[1]
            out.append(env.step(a)[0])
        return out


class LyingWM(TruthWM):
    """Predicts the stub page ``page``'s tree for every candidate, whatever the truth."""

    def __init__(self, page: str = "a"):
        super().__init__()
        self.page = page

    def predict(self, state, actions):
        self.calls.append(list(actions))
        return [tree(self.page)] * len(actions)


class TableValue:
    """Value of a predicted state = ``table[its last action]`` (default 0)."""

    def __init__(self, table):
        self.table, self.calls = dict(table), 0

    def values(self, objective, states):
        self.calls += 1
        return [self.table.get(s.previous_actions[-1], 0.0) for s in states]


# factories for settings given as pkg.module:factory (wm webagent eval on the stub site)
def wrong_policy():
    return ListPolicy(["click [2]", "click [2]", "click [3]"])


def b_value():
    return TableValue({"click [3]": 1.0})
