"""The MPC web agent on a real local site in Chromium (skipped with the reason when Playwright,
Flask or Chromium is missing): the oracle world model predicts exactly what the browser then
shows, oracle world model + oracle value reach success, the random policy alone does not."""

import json

import pytest

pytest.importorskip("playwright", reason="Playwright missing: pip install -e '.[browser]'")
pytest.importorskip("flask", reason="Flask missing: pip install -e '.[web]'")

from planners.web_agent import AgentConfig, JsonlLog, run_agent_episode  # noqa: E402
from planners.web_components import (  # noqa: E402
    AgentState,
    EpisodeInfo,
    OracleValue,
    OracleWorldModel,
    RandomPolicy,
    ScriptedPolicy,
    next_state,
)
from worldmodels.envs.web.agents import find, page_url  # noqa: E402


@pytest.fixture(scope="module")
def oracle():
    o = OracleWorldModel()
    yield o
    o.close()


def test_oracle_mpc_solves_shop_cheapest_and_predicts_exactly(web_env, oracle, tmp_path):
    cfg = AgentConfig(candidates=8, branching=3, max_steps=8)
    with JsonlLog(tmp_path / "log.jsonl") as log:
        end = run_agent_episode(web_env, ScriptedPolicy(noise=0.5), oracle, OracleValue(oracle),
                                "shop", "cheapest", 0, cfg, log)
    records = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["type"] == "step"]
    assert end["success"] and end["reason"] == "stop", [(s["choice"], s["error"]) for s in steps]
    scored = [s for s in steps if s["reason"] == "argmax"]
    assert scored and any(len(s["kept"]) > 1 for s in scored)  # noise gave real alternatives
    for s in scored:  # the oracle's prediction is what the browser then showed, exactly
        assert s["prediction_exact"], s["choice"]
        chosen = next(k for k in s["kept"] if k["action"] == s["choice"])
        assert chosen["value"] == max(k["value"] for k in s["kept"])
        assert s["info"]["world_model"]["browser_steps"] >= 1
    # the step that added the product: the only kept candidate with value 1
    add = [s for s in scored if any(k["value"] == 1.0 for k in s["kept"])]
    assert add and add[0]["value_real"] == 1.0
    assert sum(k["value"] for k in add[0]["kept"]) == 1.0


def test_random_policy_alone_fails(web_env):
    cfg = AgentConfig(max_steps=5, mode="policy_sample")
    end = run_agent_episode(web_env, RandomPolicy(), None, None, "shop", "cheapest", 0, cfg)
    assert not end["success"] and end["steps"] == 5 and end["reason"] == "max_steps"


def test_oracle_progress_value_is_the_scripts_success_to_go(web_env, oracle):
    obs = web_env.reset("shop", 0, "cheapest")
    oracle.begin_episode(EpisodeInfo("shop", "cheapest", 0, web_env.server.url, web_env.task))
    value = OracleValue(oracle, gamma=0.8, horizon=5)
    s = AgentState(web_env.task.objective, page_url(obs), obs, (), "shop", "cheapest")
    category = f"click [{find(obs, 'link', web_env.task.params['category']).id}]"
    cart = f"click [{find(obs, 'link', 'Cart').id}]"
    v = value.values(s.objective, [next_state(s, a, obs) for a in (category, cart)])
    # from the category page the script clicks the product, then "Add to cart": 2 steps; on the
    # cart page it stops at once (its stop rule), so the task never holds
    assert v == [pytest.approx(0.8 ** 2), 0.0]
    assert value.last_info["browser_steps"] >= 3
