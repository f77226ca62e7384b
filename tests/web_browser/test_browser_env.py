"""The browser environment on the local sites (system Chromium via Playwright; skipped with the
reason when either is missing). One browser for the whole module."""

import pytest

pytest.importorskip("playwright", reason="Playwright missing: pip install -e '.[browser]'")
pytest.importorskip("flask", reason="Flask missing: pip install -e '.[web]'")

from worldmodels.envs.web.agents import RandomAgent, ScriptedAgent, find, run_episode  # noqa: E402
from worldmodels.envs.web.browser import WebEnv, find_chromium  # noqa: E402
from worldmodels.envs.web.tasks import TASK_FAMILIES  # noqa: E402


@pytest.fixture(scope="module")
def env():
    try:
        find_chromium()
    except RuntimeError as e:
        pytest.skip(str(e))
    with WebEnv() as e:
        yield e


@pytest.mark.parametrize("site, family", [(s, f) for s in TASK_FAMILIES for f in TASK_FAMILIES[s]])
def test_scripted_agent_reaches_success(env, site, family):
    env.reset(site, 0, family)
    assert not env.success()  # not solved before acting
    ep = run_episode(env, ScriptedAgent(site, family), site, 0, family, max_steps=15)
    assert ep["success"] and ep["stopped"], [(s["action"], s["error"]) for s in ep["steps"]]
    assert all(s["valid"] for s in ep["steps"])
    assert env.task.success(env.db_path)
    # the records for the learned policy / value model (issue #22)
    steps = ep["steps"]
    assert [s["success"] for s in steps][-2:] == [True, True]  # solved by the step before stop
    assert not steps[0]["success"] and steps[-1]["action"] == "stop []"
    assert all(s["episode_success"] and s["episode_steps"] == len(steps) and s["seed"] == 0
               and s["agent"] == "scripted" and s["noise"] == 0.0 for s in steps)


def test_random_agent_is_a_logged_failure(env):
    ep = run_episode(env, RandomAgent(0), "shop", 0, "cheapest", max_steps=6)
    assert not ep["success"] and not ep["stopped"] and len(ep["steps"]) == 6
    assert ep["agent"] == "random" and ep["noise"] == 0.0
    assert ep["steps"][-1]["success"] == ep["success"]  # not stopped: the last check is the episode's
    assert all(s["agent"] == "random" and not s["episode_success"] and s["episode_steps"] == 6
               for s in ep["steps"])
    first = ep["steps"][0]
    assert first["objective"] == ep["objective"] and first["previous_actions"] == []
    assert ep["steps"][1]["previous_actions"] == [first["action"]]
    assert first["next_observation"] == ep["steps"][1]["observation"]


def test_same_seed_same_observations_and_ids(env):
    def trace():
        obs = [env.reset("shop", 3, "cheapest")]
        link = find(obs[-1], "link", env.task.params["category"])
        obs.append(env.step(f"click [{link.id}]")[0])
        link = find(obs[-1], "link", url_end=f"/product/{env.task.params['product_id']}")
        obs.append(env.step(f"click [{link.id}]")[0])
        return obs

    a, b = trace(), trace()
    assert a == b and len(set(a)) == 3


def test_invalid_actions_change_nothing(env):
    obs = env.reset("shop", 0, "cheapest")
    url = env.page.url
    link = find(obs, "link", "Cart")
    for action, fragment in [("click [999999]", "unknown id 999999"),
                             (f"type [{link.id}] [hello] [1]", "cannot type into a link"),
                             ("scroll [sideways]", "down or up"), ("fly [1]", "unknown action")]:
        got, info = env.step(action)
        assert not info["valid"] and fragment in info["error"]
        assert got == obs and env.page.url == url
    assert env._observe() == obs  # the page itself is unchanged


@pytest.mark.parametrize("target", ["http://example.com/", "https://127.0.0.1:{port}/",
                                    "http://localhost:{port}/", "file:///etc/passwd",
                                    "http://127.0.0.1:1/", "http://127.0.0.1:99999999/",
                                    "http://127.0.0.1:{port}@evil.example/", "/cart"])
def test_goto_outside_the_site_is_refused(env, target):
    obs = env.reset("shop", 0)
    got, info = env.step(f"goto [{target.format(port=env.server.port)}]")
    assert not info["valid"] and "own origin" in info["error"] and got == obs
    ok, info = env.step(f"goto [{env.server.url}/cart]")
    assert info["valid"] and env.page.url == env.server.url + "/cart"


def test_server_listens_on_loopback_only(env):
    env.reset("forum", 0)
    assert env.server.host == "127.0.0.1" and env.page.url.startswith("http://127.0.0.1:")


def test_two_parallel_contexts_match_sequential(env):
    from worldmodels.envs.web.agents import run_parallel

    jobs = [{"site": "shop", "family": "cheapest", "seed": s, "agent": 0.0, "max_steps": 8}
            for s in (0, 1)]
    got = run_parallel(jobs, workers=2)
    assert [r["seed"] for r in got] == [0, 1] and all(r["success"] for r in got)
    ref = run_episode(env, ScriptedAgent("shop", "cheapest"), "shop", 1, "cheapest", max_steps=8)
    assert [s["action"] for s in got[1]["steps"]] == [s["action"] for s in ref["steps"]]


PER_NODE_JS = """function() {
  if (this.nodeType == 3) { var r = document.createRange(); r.selectNode(this);
    var b = r.getBoundingClientRect().toJSON(); r.detach(); return b; }
  return this.getBoundingClientRect().toJSON(); }"""


def test_batched_bounds_equal_webarena_per_node_query(env):
    """Our one-call bounds equal WebArena's query, one resolveNode + callFunctionOn per node."""
    env.reset("admin", 0)
    nodes = env._cdp.send("Accessibility.getFullAXTree", {})["nodes"]
    slow = {}
    for n in nodes:
        if "backendDOMNodeId" not in n or n["nodeId"] in slow:
            continue
        try:
            obj = env._cdp.send("DOM.resolveNode", {"backendNodeId": n["backendDOMNodeId"]})
            r = env._cdp.send("Runtime.callFunctionOn", {
                "objectId": obj["object"]["objectId"], "functionDeclaration": PER_NODE_JS,
                "returnByValue": True})["result"]["value"]
            slow[n["nodeId"]] = (r["x"], r["y"], r["width"], r["height"])
        except Exception:
            slow[n["nodeId"]] = None
    fast = env._bounds(nodes)
    assert fast == slow and len(fast) > 100 and any(v is None for v in fast.values())
