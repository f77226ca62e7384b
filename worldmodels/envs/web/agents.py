"""Agents acting through the browser's observation text, and trajectory recording.

- :class:`ScriptedAgent`: one script per task family (``SCRIPTS``), finding elements by role and
  name in the current tree (:mod:`worldmodels.web_tree`) and emitting grammar strings;
  with probability ``noise`` a step is a random valid action instead.
- :class:`RandomAgent`: a uniformly random valid action (click a link/button, type into a text
  field, scroll, go back) each step; never stops early.
- :func:`run_episode`: records per step (objective, url, previous actions, observation, action,
  next observation, valid, error) and the task's success at the end.
- :func:`run_parallel`: ``workers`` threads, each owning its own :class:`~.browser.WebEnv`
  (Playwright's sync API is bound to the thread that started it, so threads rather than a
  shared browser; each has its own Chromium process, so the work runs in parallel outside
  the GIL).
"""

from __future__ import annotations

import random
import threading

from ...web_tree import Node, element_nodes, parse_tree
from .browser import TEXT_INPUT_ROLES, WebEnv

__all__ = ["find", "page_url", "RandomAgent", "ScriptedAgent", "SCRIPTS", "run_episode",
           "run_parallel"]

_CLICKABLE = frozenset({"link", "button", "checkbox", "radio", "tab", "menuitem"})
_WORDS = ("hello", "red", "42", "test", "shirt", "garden")


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


class RandomAgent:
    """A random valid action from the current observation (``seed`` fixes the draws)."""

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)

    def act(self, obs: str, task=None, history: list[str] | None = None) -> str:
        nodes = element_nodes(parse_tree(obs))
        options = [f"click [{n.id}]" for n in nodes if n.role in _CLICKABLE]
        options += [f"type [{n.id}] [{self.rng.choice(_WORDS)}] [{self.rng.randint(0, 1)}]"
                    for n in nodes if n.role in TEXT_INPUT_ROLES]
        options += ["scroll [down]", "scroll [up]", "go_back"]
        return self.rng.choice(options)


def _script_shop_cheapest(obs, task, history, memory):
    p = task.params
    if history and history[-1].startswith("click") and "/cart" in page_url(obs):
        return "stop []"
    if page_url(obs).endswith(f"/product/{p['product_id']}"):
        button = find(obs, "button", "Add to cart")
        return f"click [{button.id}]" if button else None
    link = find(obs, "link", url_end=f"/product/{p['product_id']}")
    if link:
        return f"click [{link.id}]"
    link = find(obs, "link", p["category"])
    return f"click [{link.id}]" if link else None


def _script_admin_order_status(obs, task, history, memory):
    p = task.params
    if history and history[-1].startswith("click") and "saved" in obs.lower():
        return "stop []"
    if not page_url(obs).endswith(f"/orders/{p['order_id']}"):
        origin = "/".join(page_url(obs).split("/")[:3])
        return f"goto [{origin}/orders/{p['order_id']}]"
    box = find(obs, "combobox", "Status")
    if history and history[-1].startswith("type"):
        button = find(obs, "button", "Save")
        return f"click [{button.id}]" if button else None
    if box is None:
        return None
    if "expanded: True" not in box.properties:
        return f"click [{box.id}]"
    return f"type [{box.id}] [{p['status']}] [1]"


def _script_forum_upvote(obs, task, history, memory):
    p = task.params
    password = task.objective.split("(password ")[1].split(")")[0]
    if memory.get("voted"):
        return "stop []"
    vote = find(obs, "button", f"Upvote post {p['post_id']}")
    if find(obs, "button", "Log out") is None:
        user, pw = find(obs, "textbox", "Username"), find(obs, "textbox", "Password")
        if user and not any(h.startswith(f"type [{user.id}]") for h in history):
            return f"type [{user.id}] [{p['user']}] [0]"
        if pw:
            return f"type [{pw.id}] [{password}] [1]"
        return f"click [{find(obs, 'link', 'Log in').id}]"
    if vote:
        memory["voted"] = True
        return f"click [{vote.id}]"
    title = task.objective.split("thread '")[1].rsplit("'", 1)[0]
    link = find(obs, "link", title)
    if link:
        return f"click [{link.id}]"
    visited = {h for h in history}
    for n in element_nodes(parse_tree(obs)):  # sub-forums not yet visited, in page order
        if n.role == "link" and "/f/" in _url(n) and f"goto [{_url(n)}]" not in visited:
            return f"goto [{_url(n)}]"
    return f"goto [{'/'.join(page_url(obs).split('/')[:3])}/]"


#: (site, family) -> script(obs, task, history, memory) -> action or None (stuck: a random action).
SCRIPTS = {("shop", "cheapest"): _script_shop_cheapest,
           ("admin", "order_status"): _script_admin_order_status,
           ("forum", "upvote"): _script_forum_upvote}


class ScriptedAgent:
    """The family's script; with probability ``noise`` (and whenever the script finds nothing
    to do) a :class:`RandomAgent` action instead. KeyError naming the scripted families."""

    def __init__(self, site: str, family: str, noise: float = 0.0, seed: int = 0):
        if (site, family) not in SCRIPTS:
            raise KeyError(f"no script for {site}/{family}; scripted: {sorted(SCRIPTS)}")
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        self.script, self.noise = SCRIPTS[(site, family)], noise
        self.random = RandomAgent(seed)
        self.memory: dict = {}  # the script's own notes within an episode

    def act(self, obs: str, task, history: list[str]) -> str:
        if not history:
            self.memory = {}
        if self.random.rng.random() < self.noise:
            return self.random.act(obs)
        action = self.script(obs, task, history, self.memory)
        return action if action is not None else self.random.act(obs)


def run_episode(env: WebEnv, agent, site: str, seed: int, family: str,
                max_steps: int = 15) -> dict:
    """One episode: ``{"site", "family", "seed", "objective", "steps": [...], "success",
    "stopped"}``; each step ``{"objective", "url", "previous_actions", "observation",
    "action", "next_observation", "valid", "error"}``. Ends at ``stop`` or ``max_steps``."""
    obs = env.reset(site, seed, family)
    history: list[str] = []
    steps, stopped = [], False
    for _ in range(max_steps):
        action = agent.act(obs, env.task, history)
        url = env.page.url
        nxt, info = env.step(action)
        steps.append({"objective": env.task.objective, "url": url,
                      "previous_actions": list(history), "observation": obs, "action": action,
                      "next_observation": nxt, "valid": info["valid"], "error": info["error"]})
        history.append(action)
        obs = nxt
        if info["done"]:
            stopped = True
            break
    return {"site": site, "family": family, "seed": seed, "objective": env.task.objective,
            "steps": steps, "success": env.success(), "stopped": stopped}


def run_parallel(jobs: list[dict], workers: int = 2, chromium: str | None = None) -> list[dict]:
    """Run ``jobs`` (keyword dicts for :func:`run_episode` plus ``agent``: ``"random"`` or a
    noise level for the scripted agent) on ``workers`` threads, each with its own
    :class:`WebEnv`; results in job order. Errors in a worker are re-raised here."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    results: list = [None] * len(jobs)
    errors: list = []

    def work(k: int) -> None:
        try:
            with WebEnv(chromium) as env:
                for i in range(k, len(jobs), workers):
                    job = dict(jobs[i])
                    kind = job.pop("agent", 0.0)
                    agent = (RandomAgent(job["seed"]) if kind == "random" else
                             ScriptedAgent(job["site"], job["family"], float(kind), job["seed"]))
                    results[i] = run_episode(env, agent, **job)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(min(workers, len(jobs)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
