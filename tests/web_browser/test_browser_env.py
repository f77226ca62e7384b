"""The browser environment on the local sites (system Chromium via Playwright; skipped with the
reason when either is missing). One browser for the whole module."""

import pytest

pytest.importorskip("playwright", reason="Playwright missing: pip install -e '.[browser]'")
pytest.importorskip("flask", reason="Flask missing: pip install -e '.[web]'")

from worldmodels.envs.web.agents import RandomAgent, ScriptedAgent, find, run_episode  # noqa: E402
from worldmodels.envs.web.tasks import TASK_FAMILIES  # noqa: E402


@pytest.mark.parametrize("site, family", [(s, f) for s in TASK_FAMILIES for f in TASK_FAMILIES[s]])
def test_scripted_agent_reaches_success(web_env, site, family):
    web_env.reset(site, 0, family)
    assert not web_env.success()  # not solved before acting
    ep = run_episode(web_env, ScriptedAgent(site, family), site, 0, family, max_steps=15)
    assert ep["success"] and ep["stopped"], [(s["action"], s["error"]) for s in ep["steps"]]
    assert all(s["valid"] for s in ep["steps"])
    assert web_env.task.success(web_env.db_path)
    # the records for the learned policy / value model (issue #22)
    steps = ep["steps"]
    assert [s["success"] for s in steps][-2:] == [True, True]  # solved by the step before stop
    assert not steps[0]["success"] and steps[-1]["action"] == "stop []"
    assert all(s["episode_success"] and s["episode_steps"] == len(steps) and s["seed"] == 0
               and s["agent"] == "scripted" and s["noise"] == 0.0 for s in steps)


def test_random_agent_is_a_logged_failure(web_env):
    ep = run_episode(web_env, RandomAgent(0), "shop", 0, "cheapest", max_steps=6)
    assert not ep["success"] and not ep["stopped"] and len(ep["steps"]) == 6
    assert ep["agent"] == "random" and ep["noise"] == 0.0
    assert ep["steps"][-1]["success"] == ep["success"]  # not stopped: the last check is the episode's
    assert all(s["agent"] == "random" and not s["episode_success"] and s["episode_steps"] == 6
               for s in ep["steps"])
    first = ep["steps"][0]
    assert first["objective"] == ep["objective"] and first["previous_actions"] == []
    assert ep["steps"][1]["previous_actions"] == [first["action"]]
    assert first["next_observation"] == ep["steps"][1]["observation"]


def test_same_seed_same_observations_and_ids(web_env):
    def trace():
        obs = [web_env.reset("shop", 3, "cheapest")]
        link = find(obs[-1], "link", web_env.task.params["category"])
        obs.append(web_env.step(f"click [{link.id}]")[0])
        link = find(obs[-1], "link", url_end=f"/product/{web_env.task.params['product_id']}")
        obs.append(web_env.step(f"click [{link.id}]")[0])
        return obs

    a, b = trace(), trace()
    assert a == b and len(set(a)) == 3


def test_invalid_actions_change_nothing(web_env):
    obs = web_env.reset("shop", 0, "cheapest")
    url = web_env.page.url
    link = find(obs, "link", "Cart")
    for action, fragment in [("click [999999]", "unknown id 999999"),
                             (f"type [{link.id}] [hello] [1]", "cannot type into a link"),
                             ("scroll [sideways]", "down or up"), ("fly [1]", "unknown action")]:
        got, info = web_env.step(action)
        assert not info["valid"] and fragment in info["error"]
        assert got == obs and web_env.page.url == url
    assert web_env._observe() == obs  # the page itself is unchanged


@pytest.mark.parametrize("target", ["http://example.com/", "https://127.0.0.1:{port}/",
                                    "http://localhost:{port}/", "file:///etc/passwd",
                                    "http://127.0.0.1:1/", "http://127.0.0.1:99999999/",
                                    "http://127.0.0.1:{port}@evil.example/", "/cart"])
def test_goto_outside_the_site_is_refused(web_env, target):
    obs = web_env.reset("shop", 0)
    got, info = web_env.step(f"goto [{target.format(port=web_env.server.port)}]")
    assert not info["valid"] and "own origin" in info["error"] and got == obs
    ok, info = web_env.step(f"goto [{web_env.server.url}/cart]")
    assert info["valid"] and web_env.page.url == web_env.server.url + "/cart"


def test_server_listens_on_loopback_only(web_env):
    web_env.reset("forum", 0)
    assert web_env.server.host == "127.0.0.1" and web_env.page.url.startswith("http://127.0.0.1:")


def test_two_parallel_contexts_match_sequential(web_env):
    from worldmodels.envs.web.agents import run_parallel

    jobs = [{"site": "shop", "family": "cheapest", "seed": s, "agent": 0.0, "max_steps": 8}
            for s in (0, 1)]
    got = run_parallel(jobs, workers=2)
    assert [r["seed"] for r in got] == [0, 1] and all(r["success"] for r in got)
    ref = run_episode(web_env, ScriptedAgent("shop", "cheapest"), "shop", 1, "cheapest", max_steps=8)
    assert [s["action"] for s in got[1]["steps"]] == [s["action"] for s in ref["steps"]]


PER_NODE_JS = """function() {
  if (this.nodeType == 3) { var r = document.createRange(); r.selectNode(this);
    var b = r.getBoundingClientRect().toJSON(); r.detach(); return b; }
  return this.getBoundingClientRect().toJSON(); }"""


def test_batched_bounds_equal_webarena_per_node_query(web_env):
    """Our one-call bounds equal WebArena's query, one resolveNode + callFunctionOn per node."""
    web_env.reset("admin", 0)
    nodes = web_env._cdp.send("Accessibility.getFullAXTree", {})["nodes"]
    slow = {}
    for n in nodes:
        if "backendDOMNodeId" not in n or n["nodeId"] in slow:
            continue
        try:
            obj = web_env._cdp.send("DOM.resolveNode", {"backendNodeId": n["backendDOMNodeId"]})
            r = web_env._cdp.send("Runtime.callFunctionOn", {
                "objectId": obj["object"]["objectId"], "functionDeclaration": PER_NODE_JS,
                "returnByValue": True})["result"]["value"]
            slow[n["nodeId"]] = (r["x"], r["y"], r["width"], r["height"])
        except Exception:
            slow[n["nodeId"]] = None
    fast = web_env._bounds(nodes)
    assert fast == slow and len(fast) > 100 and any(v is None for v in fast.values())
