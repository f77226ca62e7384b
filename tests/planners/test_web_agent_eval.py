"""Statistics, failure analysis, log reading/rendering, the eval runner (resume, report) and
the `wm webagent` command line, on the stub site and hand-made logs (no browser)."""

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from web_agent_stubs import ListPolicy, StubEnv, TableValue, TruthWM, tree  # noqa: E402

from planners.web_agent import AgentConfig, JsonlLog, run_agent_episode  # noqa: E402
from planners.web_eval import WebAgentEvalConfig, parse_setting, run_eval  # noqa: E402
from planners.web_logs import read_episodes, render_episode  # noqa: E402
from planners.web_stats import (  # noqa: E402
    classify_failure,
    failure_table,
    mcnemar_exact,
    paired_bootstrap,
    value_agreement,
    wilson,
)
from worldmodels.cli import app  # noqa: E402
from worldmodels.records import RecordError  # noqa: E402

runner = CliRunner()


def test_wilson_matches_hand_computed_intervals():
    # 3/10: c = (0.3 + 1.92073/10) / 1.384146 = 0.355507; h = 1.959964/1.384146 *
    # sqrt(0.021 + 3.841459/400) = 0.247716  (also statsmodels' proportion_confint 'wilson')
    lo, hi = wilson(3, 10)
    assert lo == pytest.approx(0.107791, abs=1e-6) and hi == pytest.approx(0.603222, abs=1e-6)
    assert wilson(0, 10) == pytest.approx((0.0, 0.277533), abs=1e-6)
    assert wilson(10, 10) == pytest.approx((0.722467, 1.0), abs=1e-6)
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson(4, 3)


def test_mcnemar_exact_matches_the_binomial_by_hand():
    a = [True] * 5 + [False] + [True] * 3 + [False] * 2
    b = [False] * 5 + [True] + [True] * 3 + [False] * 2
    r = mcnemar_exact(a, b)  # 5 vs 1 discordant: 2 * (C(6,0) + C(6,1)) / 2^6 = 14/64
    assert (r["a_only"], r["b_only"], r["n"]) == (5, 1, 11)
    assert r["p_value"] == pytest.approx(0.21875)
    assert mcnemar_exact([False] * 6, [True] * 6)["p_value"] == pytest.approx(2 / 64)
    assert mcnemar_exact([True, False], [True, False])["p_value"] == 1.0
    scipy = pytest.importorskip("scipy.stats")  # an independent implementation
    assert r["p_value"] == pytest.approx(scipy.binomtest(1, 6, 0.5).pvalue)


def test_paired_bootstrap_interval():
    same = [True, False, True]
    assert paired_bootstrap(same, same) == {"diff": 0.0, "low": 0.0, "high": 0.0}
    assert paired_bootstrap([False] * 4, [True] * 4) == {"diff": 1.0, "low": 1.0, "high": 1.0}
    a, b = [False] * 10 + [True] * 10, [True] * 5 + [False] * 5 + [True] * 10
    r = paired_bootstrap(a, b, resamples=500)
    assert r["diff"] == 0.25 and r["low"] < 0.25 < r["high"] and 0 <= r["low"]
    assert r == paired_bootstrap(a, b, resamples=500)  # seeded


def _ep(steps, success=False):
    return {"episode": "x", "start": {}, "steps": steps, "end": {"success": success}}


def _step(i, choice, ref, kept, proposals=None, matched=True, value_real=None, info=None):
    return {"step": i, "choice": choice, "reference_action": ref, "kept": kept,
            "proposals": proposals or [{"action": k["action"]} for k in kept],
            "prediction_matched": matched, "value_real": value_real, "info": info or {}}


def test_failure_categories_at_the_decisive_step():
    ok = _step(0, "click [1]", "click [1]", [{"action": "click [1]", "value": 0.0}])
    # the script's action was not kept (only proposed once, outvoted)
    s = _step(1, "click [2]", "click [9]", [{"action": "click [2]", "value": 0.0}],
              proposals=[{"action": "click [2]"}, {"action": "click [9]"}])
    assert classify_failure(_ep([ok, s])) == ("no_good_candidate", {
        "step": 1, "not_proposed": False, "oracle_better_candidate": None})
    kept = [{"action": "click [2]", "value": 0.9}, {"action": "click [9]", "value": 0.4}]
    # over-optimistic wrong prediction of the chosen action
    s = _step(1, "click [2]", "click [9]", kept, matched=False, value_real=0.1)
    assert classify_failure(_ep([ok, s]))[0] == "wrong_prediction"
    # right prediction, the value preferred it anyway
    s = _step(1, "click [2]", "click [9]", kept, matched=True, value_real=0.9,
              info={"world_model": {"true_success": {"click [2]": False, "click [9]": True}}})
    cat, d = classify_failure(_ep([ok, s]))
    assert cat == "wrong_value" and d["oracle_better_candidate"] is True
    # a wrong prediction that was not over-optimistic is the value's fault
    s = _step(1, "click [2]", "click [9]", kept, matched=False, value_real=0.95)
    assert classify_failure(_ep([ok, s]))[0] == "wrong_value"
    # the stop short-circuit executed a kept stop (unscored) while the reference was kept
    stop = _step(1, "stop []", "click [9]", [{"action": "stop []"}, {"action": "click [9]"}])
    assert classify_failure(_ep([ok, dict(stop, reason="stop")]))[0] == "early_stop"
    s = _step(1, "click [2]", "click [9]", [{"action": "click [2]"}, {"action": "click [9]"}])
    assert classify_failure(_ep([ok, dict(s, reason="vote")]))[0] == "policy_choice"
    assert classify_failure(_ep([ok]))[0] == "no_deviation"
    assert classify_failure(_ep([_step(0, "go_back", None, [])]))[0] == "no_reference"
    table = failure_table([_ep([ok, s]), _ep([ok]), _ep([ok], success=True)])
    assert table["failures"] == 2 and table["policy_choice"] == 1 and table["no_deviation"] == 1


def _log(tmp_path, policy=("click [2]", "click [3]"), **cfg):
    path = tmp_path / "log.jsonl"
    with JsonlLog(path) as log:
        run_agent_episode(StubEnv(), ListPolicy(policy), TruthWM(),
                          TableValue({"click [3]": 1.0}), "stub", "b", 0,
                          AgentConfig(candidates=2, max_steps=2, **cfg), log)
    return path


def test_read_episodes_keeps_the_last_complete_attempt_and_names_bad_lines(tmp_path):
    path = _log(tmp_path)
    lines = path.read_text().splitlines()
    # an interrupted attempt (start + one step, no end) after the complete one
    path.write_text("\n".join(lines + lines[:2]) + "\n")
    eps = read_episodes(path)
    assert len(eps) == 1 and eps[0]["end"]["success"] and len(eps[0]["steps"]) == 2
    assert read_episodes(path, complete_only=False)[0]["end"] is None
    bad = json.loads(lines[1])
    del bad["kept"]
    path.write_text(lines[0] + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(RecordError, match=r"log.jsonl: line 2: field 'kept'"):
        read_episodes(path)
    path.write_text(lines[1] + "\n")
    with pytest.raises(RecordError, match="before its episode_start"):
        read_episodes(path)


def test_show_renders_a_logged_episode(tmp_path):
    path = _log(tmp_path)
    text = render_episode(read_episodes(path)[0])
    assert "Objective: Open page B." in text and "-> click [3]  (x1)  value 1.000" in text
    assert "chose: click [3] (argmax)" in text and "End: SUCCESS" in text
    assert "+ [1] RootWebArea 'b'" in text  # the predicted and the real change
    r = runner.invoke(app, ["webagent", "show", str(path)])
    assert r.exit_code == 0 and r.output.strip() == text.strip()
    r = runner.invoke(app, ["webagent", "show", str(path), "--episode", "nope"])
    assert r.exit_code == 2 and "no episode 'nope'" in r.output


def test_eval_runs_settings_on_the_same_episodes_resumes_and_reports(tmp_path):
    cfg = WebAgentEvalConfig(
        tasks=["stub/b"], episodes=3, seed=5, out=str(tmp_path / "ev"), reference="none",
        settings=["alone=web_agent_stubs:wrong_policy,none,none,policy_vote",
                  "mpc=web_agent_stubs:wrong_policy,web_agent_stubs:TruthWM,"
                  "web_agent_stubs:b_value"],
        agent=AgentConfig(candidates=3, max_steps=2))
    env = StubEnv()
    res, md = run_eval(cfg, env=env)
    alone, mpc = res["settings"]["alone"], res["settings"]["mpc"]
    assert alone["overall"]["successes"] == 0 and mpc["overall"]["successes"] == 3
    assert mpc["per_site"]["stub"]["ci95"] == pytest.approx(list(wilson(3, 3)))
    c = res["comparisons"][0]
    assert (c["a"], c["b"], c["n"], c["b_only"]) == ("alone", "mpc", 3, 3)
    assert c["p_value"] == pytest.approx(0.25)  # 2 * 0.5^3
    assert mpc["cost"]["per_step"]["policy_samples"] == 3
    assert mpc["cost"]["per_step"]["world_model_predictions"] == 2
    assert alone["failures"]["no_reference"] == 3
    assert "| mpc | 100.0% [43.9, 100.0] (n=3)" in md
    assert json.loads((tmp_path / "ev" / "results.json").read_text())["comparisons"][0]["n"] == 3
    log = tmp_path / "ev" / "logs" / "mpc.jsonl"
    before = log.read_text()
    res2, _ = run_eval(cfg, env=env)  # resumed: nothing runs again
    assert log.read_text() == before
    assert res2["settings"]["mpc"]["overall"] == mpc["overall"]
    cfg.settings = ["mpc=web_agent_stubs:wrong_policy,none,none"]
    with pytest.raises(ValueError, match="setting 'mpc' was run as"):
        run_eval(cfg, env=env)


def test_settings_are_parsed_and_checked():
    s = parse_setting("alone=runs/policy,none,none")
    assert (s.policy, s.world_model, s.value, s.mode) == ("runs/policy", "none", "none",
                                                          "policy_vote")
    assert parse_setting("m=random,oracle,oracle").mode == "mpc"
    for bad, msg in [("noname", "expected 'name="), ("a=random,oracle", "expected"),
                     ("a=random,none,oracle,mpc", "needs a world model"),
                     ("a=random,oracle,oracle,fast", "not one of")]:
        with pytest.raises(ValueError, match=msg):
            parse_setting(bad)


def test_cli_bad_inputs_exit_2(tmp_path, monkeypatch):
    import worldmodels.envs.web.browser as browser

    class NoBrowser:  # a bad component must fail before a browser starts (none is left open)
        def __init__(self, *a, **k):
            raise AssertionError("a browser was started before the components loaded")

    monkeypatch.setattr(browser, "WebEnv", NoBrowser)
    r = runner.invoke(app, ["webagent", "run", "--world-model", "none", "--mode", "mpc",
                            "--log", str(tmp_path / "l.jsonl")])
    assert r.exit_code == 2 and "needs a world model" in r.output
    r = runner.invoke(app, ["webagent", "eval", "--setting", "x=random", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "name=policy,world_model,value" in r.output
    r = runner.invoke(app, ["webagent", "run", "--policy", str(tmp_path / "missing"),
                            "--log", str(tmp_path / "l.jsonl")])
    assert r.exit_code == 2 and "no such directory" in r.output


def test_a_log_holds_one_setting(tmp_path):
    from planners.web_eval import run_episodes

    log = tmp_path / "l.jsonl"
    s = parse_setting("a=web_agent_stubs:wrong_policy,none,none")
    ends = run_episodes(s, [("stub", "b", 0)], AgentConfig(max_steps=1), log, env=StubEnv(),
                        reference="none")
    assert len(ends) == 1 and read_episodes(log)[0]["start"]["setting"]["name"] == "a"
    assert run_episodes(s, [("stub", "b", 0)], AgentConfig(max_steps=1), log, env=StubEnv(),
                        reference="none") == []
    other = parse_setting("a=random,none,none")
    with pytest.raises(ValueError, match="holds episode stub/b/0 run with setting"):
        run_episodes(other, [("stub", "b", 1)], AgentConfig(max_steps=1), log, env=StubEnv())


def test_report_summarises_separately_run_logs_on_their_common_episodes(tmp_path):
    def one(name, spec, episodes):
        cfg = WebAgentEvalConfig(tasks=["stub/b"], episodes=episodes, seed=5, out=str(tmp_path / name),
                                 reference="none", settings=[f"{name}={spec}"],
                                 agent=AgentConfig(candidates=3, max_steps=2))
        run_eval(cfg, env=StubEnv())
        return tmp_path / name / "logs" / f"{name}.jsonl"

    alone = one("alone", "web_agent_stubs:wrong_policy,none,none,policy_vote", 4)
    mpc = one("mpc", "web_agent_stubs:wrong_policy,web_agent_stubs:TruthWM,web_agent_stubs:b_value", 2)
    res = CliRunner().invoke(app, ["webagent", "report", f"alone={alone}", f"mpc={mpc}",
                                   "--out", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert out["settings"]["alone"]["overall"]["n"] == 4 and out["settings"]["mpc"]["overall"]["n"] == 2
    c = out["comparisons"][0]
    assert (c["a"], c["b"], c["n"], c["b_only"]) == ("alone", "mpc", 2, 2)  # paired on the 2 common
    assert c["p_value"] == pytest.approx(0.5)  # 2 * 0.5^2
    bad = CliRunner().invoke(app, ["webagent", "report", f"alone={alone}", "--compare", "alone:x",
                                   "--out", str(tmp_path / "rep2")])
    assert bad.exit_code == 2 and "alone:x" in bad.output
    missing = CliRunner().invoke(app, ["webagent", "report", "x=/nonexistent.jsonl", "--out", str(tmp_path / "r3")])
    assert missing.exit_code == 2 and "nonexistent" in missing.output


class _SeqPolicy:
    """Proposes the next action of ``seq`` at each step (n copies)."""

    def __init__(self, seq):
        self.seq = list(seq)

    def propose(self, state, n, rng):
        return [self.seq.pop(0)] * n


def test_value_data_from_logs_labels_the_policy_success_to_go(tmp_path):
    """``wm webagent value-data``: one record per logged step, the state after it, the step's own
    task check; ``value_labels`` then gives gamma^(steps to the success) or 0 (hand-computed);
    live origins are written as the data builder's fixed origin; ``--add`` records come first and
    are checked for the value fields; an old log without the per-step check, and two logs holding
    the same episode (whose labels would merge), are refused."""
    from worldmodels.tasks.web_agent_data import VALUE_FIELDS, load_agent_steps, value_labels

    log = tmp_path / "ep.jsonl"
    with JsonlLog(log) as lg:  # a -> b (the check holds) -> stop; then a, a (never)
        run_agent_episode(StubEnv(), _SeqPolicy(["click [2]", "click [3]", "stop []"]), None, None,
                          "stub", "b", 0, AgentConfig(candidates=1, max_steps=4, mode="policy_sample"), lg)
        run_agent_episode(StubEnv(), _SeqPolicy(["click [2]", "click [2]"]), None, None, "stub", "b", 1,
                          AgentConfig(candidates=1, max_steps=2, mode="policy_sample"), lg)
    live = tmp_path / "live.jsonl"  # the real sites' origins are 127.0.0.1:<port>
    live.write_text(log.read_text().replace("http://stub.test", "http://127.0.0.1:4567"))
    demo = {"objective": "o", "url": "http://localhost:stub/", "previous_actions": [], "observation": "t",
            "current_action": "click [1]", "next_state_acctree": "t2", "site": "stub", "family": "b",
            "agent": "0.0", "success": True, "episode_success": True, "episode_steps": 1, "episode": 7,
            "step": 0}  # the value fields only ("seed" is optional)
    base = tmp_path / "base.json"
    base.write_text(json.dumps([demo]))
    out = tmp_path / "value.json"
    r = runner.invoke(app, ["webagent", "value-data", str(live), "--out", str(out), "--add", str(base)])
    assert r.exit_code == 0, r.output
    assert "6 records (1 added, 5 steps of 2 logged episodes, 1 successful)" in r.output
    recs = json.loads(out.read_text())
    assert recs[0] == demo
    rows = recs[1:]
    assert [(x["episode"], x["step"], x["success"], x["episode_success"]) for x in rows] == [
        (0, 0, False, True), (0, 1, True, True), (0, 2, True, True),
        (1, 0, False, False), (1, 1, False, False)]
    assert rows[0]["next_state_acctree"] == tree("a").replace("http://stub.test", "http://localhost:stub")
    assert rows[1]["previous_actions"] == ["click [2]"] and rows[1]["current_action"] == "click [3]"
    assert "127.0.0.1" not in json.dumps(rows)
    only = tmp_path / "only.json"
    only.write_text(json.dumps(rows))
    steps = load_agent_steps(only, VALUE_FIELDS)
    assert value_labels(steps, gamma=0.8) == pytest.approx([0.8, 1.0, 1.0, 0.0, 0.0])
    old = tmp_path / "old.jsonl"  # a log from before steps carried the check
    old.write_text("\n".join(json.dumps({k: v for k, v in json.loads(x).items() if k != "success"}
                                        if '"type": "step"' in x else json.loads(x))
                             for x in log.read_text().splitlines()))
    r = runner.invoke(app, ["webagent", "value-data", str(old), "--out", str(tmp_path / "o.json")])
    assert r.exit_code == 2 and "episode 'stub/b/0' step 0: field 'success'" in r.output
    # an added record lacking a value field is refused naming file, record and field
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{k: v for k, v in demo.items() if k != "episode_steps"}]))
    r = runner.invoke(app, ["webagent", "value-data", str(live), "--out", str(tmp_path / "b.json"), "--add", str(bad)])
    assert r.exit_code == 2 and "bad.json" in r.output and "episode_steps" in r.output
    # the same seeds from two logs would merge into one episode's labels: refused, naming both
    again = tmp_path / "again.jsonl"
    again.write_text(live.read_text())
    r = runner.invoke(app, ["webagent", "value-data", str(live), str(again), "--out", str(tmp_path / "d.json")])
    assert r.exit_code == 2 and "again.jsonl" in r.output and "live.jsonl" in r.output
    assert "seed 0" in r.output and not (tmp_path / "d.json").exists()


class _TreeValue:
    """Value of a predicted state = its tree read as a float; records the objectives."""

    def __init__(self):
        self.objectives = []

    def values(self, objective, states):
        self.objectives.append(objective)
        return [float(s.observation) for s in states]


class _TableWM:
    """Predicts ``table[action]`` (default "0.1") as the next tree; records the calls."""

    def __init__(self, table):
        self.table, self.calls = table, []

    def predict(self, state, actions):
        self.calls.append(list(actions))
        return [self.table.get(a, "0.1") for a in actions]


def test_value_agreement_scores_the_logged_predictions_with_each_rule():
    """By hand: step 0 counts 5/3/2, values .3/.6/.8, script click [3]: vote click [2], argmax
    scroll, weighted vote click [3] (1.5 < 1.8 > 1.6); step 5 counts 4/2, values .6/.3, script
    click [3]: all three right. Steps 1-4 are skipped (stop, one candidate, script not kept, no
    script) and a policy-only step is not counted at all."""
    def kept(*items):
        return [{"action": a, "count": c, "predicted": p} for a, c, p in items]

    def step(i, reason, k, ref):
        return {"step": i, "reason": reason, "kept": k, "reference_action": ref, "url": "u",
                "observation": "t", "previous_actions": []}

    three = kept(("click [2]", 5, "0.3"), ("click [3]", 3, "0.6"), ("scroll [down]", 2, "0.8"))
    steps = [step(0, "argmax", three, "click [3]"),
             step(1, "stop", kept(("stop []", 4, "")), "click [3]"),
             step(2, "argmax", kept(("click [3]", 9, "0.5")), "click [3]"),
             step(3, "weighted_vote", kept(("click [2]", 5, "0.1"), ("go_back", 1, "0.2")), "click [3]"),
             step(4, "argmax", three, None),
             step(5, "weighted_vote", kept(("click [3]", 4, "0.6"), ("click [2]", 2, "0.3")), "click [3]"),
             step(6, "vote", [{"action": "click [3]", "count": 2}], "click [3]")]
    ep = {"episode": "stub/b/0", "start": {"objective": "Open page B.", "site": "stub", "family": "b"},
          "steps": steps, "end": {"success": False}}
    v = _TreeValue()
    r = value_agreement([ep], v)
    assert r["steps"] == 2 and r["hits"] == {"vote": 1, "argmax": 1, "weighted_vote": 2}
    assert r["skipped"] == {"stop": 1, "single_candidate": 1, "reference_not_kept": 1, "no_reference": 1}
    assert r["by_task"] == {"stub/b": {"steps": 2, "vote": 1, "argmax": 1, "weighted_vote": 2}}
    assert v.objectives == ["Open page B."] * 2
    again = _TableWM({"click [2]": "0.9"})  # predicted again: click [2] looks best everywhere
    r = value_agreement([ep], v, world_model=again)
    assert r["hits"] == {"vote": 1, "argmax": 0, "weighted_vote": 0}
    assert again.calls == [["click [2]", "click [3]", "scroll [down]"], ["click [3]", "click [2]"]]
    steps[0]["kept"][1].pop("predicted")
    with pytest.raises(ValueError, match="step 0: a kept candidate has no 'predicted'"):
        value_agreement([ep], v)
    assert value_agreement([ep], v, world_model=again)["steps"] == 2  # not needed when predicted again


def test_value_check_cli_rescores_a_logged_mpc_step(tmp_path):
    log = tmp_path / "mpc.jsonl"
    with JsonlLog(log) as lg:  # kept click [2] (2 votes), click [3] (1); the script says click [3]
        run_agent_episode(StubEnv(), ListPolicy(["click [2]", "click [2]", "click [3]"]), TruthWM(),
                          TableValue({}), "stub", "b", 0, AgentConfig(candidates=3, max_steps=1), lg,
                          reference=ListPolicy(["click [3]"]))
    out = tmp_path / "check.json"
    r = runner.invoke(app, ["webagent", "value-check", str(log), "--value", "web_agent_stubs:b_value",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"| {log} | 1 | 0 | 1 | 1 |" in r.output  # b_value: click [3] 1.0, click [2] 0
    assert json.loads(out.read_text())["logs"][str(log)]["hits"] == {"vote": 0, "argmax": 1, "weighted_vote": 1}
    bad = runner.invoke(app, ["webagent", "value-check", str(log), "--value", "oracle:0.8"])
    assert bad.exit_code == 2 and "live site" in bad.output
    again = runner.invoke(app, ["webagent", "value-check", str(log), "--value", "web_agent_stubs:b_value",
                                "--world-model", "web_agent_stubs:TruthWM"])
    assert again.exit_code == 0 and f"| {log} | 1 | 0 | 1 | 1 |" in again.output, again.output
    bad = runner.invoke(app, ["webagent", "value-check", str(log), "--value", "web_agent_stubs:b_value",
                              "--world-model", "oracle"])
    assert bad.exit_code == 2 and "--world-model 'oracle'" in bad.output
    bad = runner.invoke(app, ["webagent", "value-check", str(log), "--value", "web_agent_stubs:b_value",
                              "--max-new-tokens", "512"])
    assert bad.exit_code == 2 and "--max-new-tokens needs --world-model" in bad.output
    alone = tmp_path / "alone.jsonl"
    with JsonlLog(alone) as lg:
        run_agent_episode(StubEnv(), ListPolicy(["click [3]"]), None, None, "stub", "b", 0,
                          AgentConfig(candidates=2, max_steps=1, mode="policy_vote"), lg,
                          reference=ListPolicy(["click [3]"]))
    r = runner.invoke(app, ["webagent", "value-check", str(alone), "--value", "web_agent_stubs:b_value"])
    assert r.exit_code == 0 and f"| {alone} | 0 | 0 | 0 | 0 |" in r.output and "mode mpc" in r.output
