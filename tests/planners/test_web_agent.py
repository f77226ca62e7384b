"""The MPC web agent loop on a stub site (no browser): argmax of the value, top-B by frequency,
the stop rules, unparseable and invalid candidates, the failure stops, the policy-only modes
and the JSONL log."""

import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from web_agent_stubs import ListPolicy, LyingWM, StubEnv, TableValue, TruthWM, tree  # noqa: E402

from planners.web_agent import (  # noqa: E402
    STEP_FIELDS,
    AgentConfig,
    JsonlLog,
    count_proposals,
    plan_step,
    run_agent_episode,
    same_tree,
    tree_delta,
)
from planners.web_components import AgentState, RandomPolicy  # noqa: E402
from worldmodels.envs.web.actions import parse_action  # noqa: E402


def state(page="home"):
    return AgentState("Open page B.", f"http://stub.test/{page}", tree(page), (), "stub", "b")


def run(policy, wm=None, value=None, log=None, **cfg):
    env = StubEnv()
    end = run_agent_episode(env, policy, wm, value, "stub", "b", 0, AgentConfig(**cfg), log)
    return env, end


def test_loop_executes_the_argmax_of_the_value_over_the_predictions():
    policy = ListPolicy(["click [2]"] * 5 + ["click [3]"] * 3 + ["scroll [down]"] * 2)
    wm, value = TruthWM(), TableValue({"click [3]": 0.9, "click [2]": 0.1, "scroll [down]": 0.5})
    records = []
    env, end = run(policy, wm, value, records.append, candidates=10, max_steps=1)
    assert env.executed == ["click [3]"] and end["success"]  # not the most frequent click [2]
    step = records[1]
    assert [k["action"] for k in step["kept"]] == ["click [2]", "click [3]", "scroll [down]"]
    assert [k["value"] for k in step["kept"]] == [0.1, 0.9, 0.5]
    assert step["choice"] == "click [3]" and step["reason"] == "argmax"
    assert wm.calls == [["click [2]", "click [3]", "scroll [down]"]]
    assert step["kept"][1]["predicted"] == tree("b") == step["next_observation"]
    assert step["prediction_matched"] and step["prediction_exact"]
    assert step["value_real"] == 0.9  # the value of what really happened


def test_equal_values_pick_the_first_kept():
    d = plan_step(state(), ListPolicy(["scroll [down]", "click [3]", "click [3]"]), TruthWM(),
                  TableValue({}), AgentConfig(candidates=3), random.Random(0))
    assert [k["action"] for k in d.kept] == ["click [3]", "scroll [down]"]
    assert d.choice == "click [3]"


def test_weighted_vote_picks_count_times_value_where_argmax_and_vote_differ():
    # counts 5/3/2, values .3/.6/.8: vote -> click [2], argmax -> scroll, 5*.3=1.5 < 3*.6=1.8 >
    # 2*.8=1.6 -> click [3]
    policy = ListPolicy(["click [2]"] * 5 + ["click [3]"] * 3 + ["scroll [down]"] * 2)
    value = TableValue({"click [2]": 0.3, "click [3]": 0.6, "scroll [down]": 0.8})
    picks = {sel: plan_step(state(), policy, TruthWM(), value,
                            AgentConfig(candidates=10, selection=sel), random.Random(0))
             for sel in ("argmax", "weighted_vote")}
    assert picks["argmax"].choice == "scroll [down]" and picks["argmax"].reason == "argmax"
    assert picks["weighted_vote"].choice == "click [3]"
    assert picks["weighted_vote"].reason == "weighted_vote"
    flat = TableValue({"click [2]": 0.5, "click [3]": 0.5, "scroll [down]": 0.5})
    d = plan_step(state(), policy, TruthWM(), flat,
                  AgentConfig(candidates=10, selection="weighted_vote"), random.Random(0))
    assert d.choice == "click [2]"  # equal values: the vote
    with pytest.raises(ValueError, match="selection"):
        AgentConfig(selection="softmax")


def test_top_b_by_frequency_ties_first_seen_and_canonical_counting():
    raw = ["scroll [up]", "click [2]", "click  [2] ", "hover [3]", "scroll [UP]", "go_back",
           "click[2]", "hover [3]"]
    proposals, ranked = count_proposals(raw)
    assert [(p["action"], p["count"]) for p in ranked] == [
        ("click [2]", 3), ("scroll [up]", 2), ("hover [3]", 2), ("go_back", 1)]
    d = plan_step(state(), ListPolicy(raw), TruthWM(), TableValue({}),
                  AgentConfig(candidates=8, branching=3), random.Random(0))
    assert [k["action"] for k in d.kept] == ["click [2]", "scroll [up]", "hover [3]"]
    assert sum(p["count"] for p in d.proposals) == 8


def test_unparseable_candidates_are_dropped_and_never_crash():
    raw = ["fly [1]", "click [x]", "", "click [3]", None, 42, "type [4] no brackets"]
    policy, value = ListPolicy(raw), TableValue({"click [3]": 1.0})
    d = plan_step(state(), policy, TruthWM(), value, AgentConfig(candidates=7), random.Random(0))
    assert [k["action"] for k in d.kept] == ["click [3]"] and d.choice == "click [3]"
    bad = [p for p in d.proposals if not p["parsed"]]
    assert len(bad) == 6 and all(p["error"] for p in bad)
    # nothing parseable: a failed step, nothing executed, the loop goes on to the limit
    records = []
    env, end = run(ListPolicy(["garbage", None]), TruthWM(), value, records.append,
                   candidates=4, max_steps=3)
    assert env.executed == [] and end["steps"] == 3 and end["failed_steps"] == 3
    assert records[1]["reason"] == "no_candidate" and records[1]["choice"] is None
    assert not records[1]["valid"] and records[1]["error"] == "no parseable candidate"
    json.dumps(records)  # non-str proposals are logged as their repr


def test_stop_ends_the_episode_at_once_without_the_world_model():
    wm = TruthWM()
    records = []
    env, end = run(ListPolicy(["click [2]", "stop [done]"]), wm, TableValue({}), records.append,
                   candidates=4)
    assert end["reason"] == "stop" and end["answer"] == "done" and end["steps"] == 1
    assert env.executed == ["stop [done]"] and wm.calls == [] and not end["success"]
    assert records[1]["reason"] == "stop"


def test_parsed_stop_rule_and_the_substring_compat_differ():
    policy = ["type [4] [stop it] [0]", "click [2]"]
    assert parse_action(policy[0]).verb == "type"
    wm = TruthWM()
    value = TableValue({"click [2]": 1.0})
    env, end = run(ListPolicy(policy), wm, value, candidates=2, max_steps=1)
    assert env.executed == ["click [2]"] and len(wm.calls) == 1  # parsed: scored, argmax
    wm = TruthWM()
    records = []
    env, end = run(ListPolicy(policy), wm, value, records.append, candidates=2, max_steps=2,
                   stop_rule="substring")
    # RLVR-World: the candidate containing "stop" is taken at once, unscored; it is a type
    # action, so the env types it and the episode goes on (it is no real stop)
    assert env.executed[0] == "type [4] [stop it] [0]" and records[1]["reason"] == "stop"
    assert wm.calls == [] and end["steps"] == 2 and end["reason"] == "max_steps"
    assert "stop it" in records[1]["next_observation"]


def test_repeated_failures_and_repeated_actions_end_the_episode():
    env, end = run(ListPolicy(["click [99]"]), TruthWM(), TableValue({}), candidates=2,
                   max_steps=10, repeating_action_failure_th=5)
    assert end["reason"] == "repeated_failures" and end["steps"] == 5
    assert end["failed_steps"] == 5 and env.executed == ["click [99]"] * 5
    env, end = run(ListPolicy(["scroll [down]"]), TruthWM(), TableValue({}), candidates=2,
                   max_steps=10, repeating_action_failure_th=3)
    assert end["reason"] == "repeated_action" and end["steps"] == 3 and end["failed_steps"] == 0
    # a valid step resets the consecutive-failure count
    env, end = run(ListPolicy(["click [99]"] * 2 + ["scroll [down]"] * 2), TruthWM(),
                   TableValue({"scroll [down]": 1.0}), candidates=4, max_steps=4,
                   repeating_action_failure_th=2)
    assert end["reason"] == "repeated_action" and end["failed_steps"] == 0


def test_policy_only_modes_skip_world_model_and_value():
    policy = ListPolicy(["click [2]", "click [3]", "click [3]"])
    env, end = run(policy, None, None, candidates=3, max_steps=1, mode="policy_vote")
    assert env.executed == ["click [3]"] and policy.calls == [3]
    policy = ListPolicy(["click [2]", "click [3]", "click [3]"])
    env, end = run(policy, None, None, candidates=3, max_steps=1, mode="policy_sample")
    assert env.executed == ["click [2]"] and policy.calls == [1]
    with pytest.raises(ValueError, match="needs a world model"):
        run(policy, None, None)


def test_log_lines_hold_the_fields_and_round_trip(tmp_path):
    path = tmp_path / "ep.jsonl"
    policy = ListPolicy(["click [2]", "click [3]", "stop []"])
    value = TableValue({"click [3]": 1.0})
    with JsonlLog(path) as log:
        end = run(ListPolicy(["click [2]", "click [3]"]), TruthWM(), value, log, candidates=2,
                  max_steps=2)[1]
        run(policy, TruthWM(), value, log, candidates=3, max_steps=2)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [r["type"] for r in lines] == ["episode_start", "step", "step", "episode_end",
                                          "episode_start", "step", "episode_end"]
    assert lines[3] == end
    for r in (lines[1], lines[2], lines[5]):
        assert set(STEP_FIELDS) <= set(r)
    s = lines[1]
    assert s["observation"] == tree("home") and s["next_observation"] == tree("b")
    assert s["proposals"] == [{"action": "click [2]", "parsed": True, "error": None, "count": 1},
                              {"action": "click [3]", "parsed": True, "error": None, "count": 1}]
    assert lines[2]["previous_actions"] == ["click [3]"] and lines[2]["url"].endswith("/b")
    assert set(s["timing"]) >= {"policy_s", "world_model_s", "value_s", "env_s"}
    assert lines[0]["config"]["candidates"] == 2 and lines[0]["objective"] == "Open page B."


def test_prediction_mismatch_is_logged():
    records = []
    run(ListPolicy(["click [3]"]), LyingWM("a"), TableValue({}), records.append, candidates=1,
        max_steps=1)
    assert records[1]["prediction_matched"] is False and records[1]["prediction_exact"] is False


def test_same_tree_ignores_ids_and_tree_delta_lists_changes():
    a = tree("home")
    assert same_tree(a, a.replace("[2] link", "[7] link"))
    assert not same_tree(a, tree("b"))
    d = tree_delta(tree("home"), tree("home", "hello"))
    assert d == {"added": ["[5] StaticText 'hello'"], "removed": []}


def test_random_policy_draws_valid_actions_reproducibly():
    s = state()
    a = RandomPolicy().propose(s, 30, random.Random(3))
    assert a == RandomPolicy().propose(s, 30, random.Random(3)) and len(a) == 30
    allowed = {"click [2]", "click [3]", "scroll [down]", "scroll [up]", "go_back"}
    assert all(x in allowed or x.startswith("type [4] [") for x in a)
    assert len(set(a)) > 3


def test_config_is_validated():
    for bad in ({"candidates": 0}, {"branching": 1.5}, {"stop_rule": "regex"}, {"mode": "x"}):
        with pytest.raises(ValueError, match="AgentConfig"):
            AgentConfig(**bad)


def test_scripted_policy_notes_follow_the_executed_actions(monkeypatch):
    from planners.web_components import EpisodeInfo, ScriptedPolicy
    from worldmodels.envs.web import agents

    def script(obs, task, history, memory):  # votes once, then stops (like forum/upvote)
        if memory.get("voted"):
            return "stop []"
        memory["voted"] = True
        return "click  [3]"

    monkeypatch.setitem(agents.SCRIPTS, ("stub", "b"), script)
    p = ScriptedPolicy()
    p.begin_episode(EpisodeInfo("stub", "b", 0, "http://stub.test", object()))
    s = state()
    # proposing the vote three times does not make the script believe it voted
    assert p.propose(s, 3, random.Random(0)) == ["click  [3]"] * 3
    after = AgentState(s.objective, s.url, tree("b"), ("click [3]",), "stub", "b")
    assert p.propose(after, 2, random.Random(0)) == ["stop []"] * 2
    other = AgentState(s.objective, s.url, tree("a"), ("scroll [down]",), "stub", "b")
    assert p.propose(other, 1, random.Random(0)) == ["click  [3]"]


def test_oracle_value_settings_are_checked():
    from planners.web_components import OracleValue, OracleWorldModel, load_component

    o = OracleWorldModel()  # no browser until it predicts
    assert load_component("value", "oracle:0.8", o).gamma == 0.8
    assert load_component("value", "oracle", o).gamma is None
    for bad in ("oracle:2", "oracle:x"):
        with pytest.raises(ValueError, match="oracle:<gamma"):
            load_component("value", bad, o)
    with pytest.raises(ValueError, match="horizon"):
        OracleValue(o, 0.5, horizon=0)


def test_oracle_value_ignores_the_prediction_so_any_world_model_chooses_alike():
    """The oracle value scores a candidate's *true* outcome (replayed on the site), so with it
    a learned world model's setting makes the oracle world model's choices: docs/web_agent.md."""
    from planners.web_components import OracleValue

    class StubOracle:  # the part of OracleWorldModel that OracleValue reads
        episode = None

        def begin_episode(self, episode):
            self.episode = episode

        def outcome(self, parent, action):
            return {"success": action == "click [3]"}

    policy = ["click [2]"] * 5 + ["click [3]"] * 3 + ["scroll [down]"] * 2
    runs = {}
    for name, wm in (("truth", TruthWM()), ("lie", LyingWM("home"))):
        records = []
        env, end = run(ListPolicy(policy), wm, OracleValue(StubOracle()), records.append,
                       candidates=10, max_steps=1)
        runs[name] = (env.executed, end["success"], [k["value"] for k in records[1]["kept"]],
                      records[1]["prediction_matched"])
    assert runs["truth"][:3] == runs["lie"][:3] == (["click [3]"], True, [0.0, 1.0, 0.0])
    assert runs["truth"][3] is True and runs["lie"][3] is False  # the predictions did differ
