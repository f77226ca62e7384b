"""The web agent's learned components (``planners.web_learned``) on tiny models trained for one
step on synthetic episode records: LMPolicy (n strings, one batched rollout, reproducible from the
rng), LearnedValue (equal to the value task's read-out, with the caller's objective), LikertJudge
(the score parser by hand, averaging, never raises, in [0, 1]), and ``load_component``.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/planners/test_web_learned.py
"""

import json
import random

import pytest
from typer.testing import CliRunner

from planners.web_components import AgentState, load_component
from planners.web_learned import (
    LearnedValue,
    LikertJudge,
    LMPolicy,
    _state_dict,
    likert_score,
    to_live,
)
from tests.tasks.web_agent_records import CART, HATS, HOME, OBJECTIVE, records

runner = CliRunner()
SETS = {"task.bpe_vocab_size": 400, "model.max_positions": 1024, "train.batch_size": 4, "train.device": "cpu",
        "train.precision": "fp32", "train.eval_every": 0, "train.save_every": 0, "train.log_every": 1,
        "train.tensorboard": "false"}


def state(obs: str, prev=(), objective: str = OBJECTIVE) -> AgentState:
    return AgentState(objective, "http://localhost:shop/", obs, tuple(prev), "shop", "cheapest")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    from worldmodels.commands.pretrain import app

    d = tmp_path_factory.mktemp("web_learned")
    data = d / "episodes.json"
    data.write_text(json.dumps(records()))
    out = {}
    for name in ("web-policy", "web-value"):
        out[name] = d / name
        res = runner.invoke(app, [name, "--train", str(data), "--test", str(data), "--preset", "test", "--steps", "1",
                                  "--out", str(out[name]), *[a for k, v in SETS.items() for a in ("--set", f"{k}={v}")]])
        assert res.exit_code == 0, res.output
    return out


def test_lm_policy_returns_n_strings_from_one_rollout_reproducibly(dirs):
    policy = LMPolicy(dirs["web-policy"])
    policy.wm.task.max_new_tokens = 8
    calls = []
    generate = policy.wm.generate

    def counting(req, **kw):
        calls.append(req.batch_size)
        return generate(req, **kw)

    policy.wm.generate = counting
    s = state(HATS, ["click [4]"])
    a = policy.propose(s, 5, random.Random(3))
    assert len(a) == 5 and all(isinstance(x, str) for x in a) and calls == [5]
    assert policy.propose(s, 5, random.Random(3)) == a
    assert policy.propose(s, 5, random.Random(4)) != a  # an untrained model: different draws differ
    assert policy.last_info["n"] == 5 and 0 <= policy.last_info["parsed"] <= 5
    assert policy.propose(s, 0, random.Random(3)) == []
    with pytest.raises(ValueError, match="web_policy model is needed"):
        LMPolicy(dirs["web-value"])


def test_learned_value_is_the_task_readout_with_the_callers_objective(dirs):
    value = LearnedValue(dirs["web-value"], batch_size=2)
    states = [state(HOME, objective="something else"), state(HATS, ["click [4]"]), state(CART, ["click [9]"])]
    got = value.values(OBJECTIVE, states)
    assert len(got) == 3 and all(0.0 <= v <= 1.0 for v in got)
    task = value.wm.task
    for s, v in zip(states, got, strict=True):
        item = task.encode(task_step(s), 0, with_target=False)
        want = task.expected_values(value.wm.model, task.collate([item]))[0].item()
        assert v == pytest.approx(want, abs=1e-5)
    assert value.values(OBJECTIVE, []) == [] and value.last_info["states"] == 0


def task_step(s: AgentState):
    from worldmodels.tasks.web_policy import state_step

    return state_step({"objective": OBJECTIVE, "url": s.url, "observation": s.observation,
                       "previous_actions": list(s.previous_actions)})


def test_live_origins_become_the_training_records_fixed_origin_and_back(dirs, monkeypatch):
    live = AgentState(OBJECTIVE, "http://127.0.0.1:5555/", HATS + "\n\t[20] link 'Cart' url: "
                      "http://127.0.0.1:5555/cart", ("goto [http://127.0.0.1:5555/]",), "shop", "cheapest")
    d = _state_dict(live)
    assert d["url"] == "http://localhost:shop/" and "url: http://localhost:shop/cart" in d["observation"]
    assert d["previous_actions"] == ["goto [http://localhost:shop/]"] and "127.0.0.1" not in str(d)
    assert _state_dict(live, fixed=False)["url"] == "http://127.0.0.1:5555/"
    assert to_live("goto [http://localhost:shop/cart]", live) == "goto [http://127.0.0.1:5555/cart]"
    assert to_live("click [4]", live) == "click [4]"
    policy = LMPolicy(dirs["web-policy"])
    policy.wm.task.max_new_tokens = 2
    seen = []
    encode = policy.wm.task.encode
    monkeypatch.setattr(policy.wm.task, "encode", lambda s, *a, **k: seen.append(s) or encode(s, *a, **k))
    monkeypatch.setattr(policy.wm.task, "decode", lambda b, out: {"text": ["goto [http://localhost:shop/cart]"] * 2,
                                                                 "verb": ["goto"] * 2})
    assert policy.propose(live, 2, random.Random(0)) == ["goto [http://127.0.0.1:5555/cart]"] * 2
    assert seen[0].url == "http://localhost:shop/" and "127.0.0.1" not in seen[0].observation


def test_likert_score_by_hand():
    assert likert_score("[Rationale]: fine.\n[Score]: 4") == 4
    assert likert_score("[Score]:5") == 5 and likert_score("[Score]: 3 then [Score]: 5") == 3
    assert likert_score("[Score]: 7") == 0 and likert_score("[Score]: 0") == 0
    assert likert_score("Score: 4") == 0 and likert_score("") == 0 and likert_score(None) == 0
    assert likert_score("[Score]: 99999999999999999999") == 0


def test_likert_judge_averages_and_never_raises(dirs, monkeypatch):
    judge = LikertJudge(dirs["web-policy"], samples=3, max_new_tokens=6, max_obs_tokens=64)
    got = judge.values(OBJECTIVE, [state(HATS), state(CART, ["click [9]"])])  # a random tiny LM
    assert len(got) == 2 and all(0.0 <= v <= 1.0 for v in got)
    assert len(judge.last_info["scores"]) == 2 and all(len(s) == 3 for s in judge.last_info["scores"])
    monkeypatch.setattr(judge, "_answers", lambda text: ["[Score]: 5", "[Score]: 2", "no score"])
    assert judge.values(OBJECTIVE, [state(HATS)]) == [pytest.approx((5 + 2 + 0) / 3 / 5)]
    assert OBJECTIVE in judge.prompt(OBJECTIVE, state(HATS)) and "[Score]: <1-5>" in judge.prompt(OBJECTIVE, state(HATS))


def test_load_component_resolves_the_directories(dirs):
    assert isinstance(load_component("policy", str(dirs["web-policy"])), LMPolicy)
    assert isinstance(load_component("value", str(dirs["web-value"])), LearnedValue)
