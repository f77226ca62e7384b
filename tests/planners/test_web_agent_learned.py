"""The learned web world model as the agent's world model: a tiny `wm pretrain web` model
predicts one tree per candidate, malformed output keeps the current tree and is counted, and
the loop runs with it on the stub site."""

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web_task"))

from web_agent_stubs import ListPolicy, StubEnv, TableValue, tree  # noqa: E402
from web_records import CART, EMPTY_CART, records  # noqa: E402

from planners.web_agent import AgentConfig, run_agent_episode  # noqa: E402
from planners.web_components import AgentState, load_component  # noqa: E402
from planners.web_world_model import LearnedWebWorldModel  # noqa: E402
from worldmodels.commands.pretrain import app as pretrain_app  # noqa: E402

STATE = AgentState("Buy a mug", "http://shop.test:7770/cart", CART, (), "shop", "cheapest")


class FakeWorldModel:
    """Stands in for WorldModel.predict: row i's diff text and tree from ``outputs``."""

    def __init__(self, outputs):
        self.outputs, self.calls = outputs, []

    def predict(self, context, actions, n_samples=1, **kw):
        self.calls.append((context, actions, n_samples, kw))
        return {"text": [t for t, _ in self.outputs], "next_tree": [x for _, x in self.outputs]}


def test_malformed_output_keeps_the_current_tree_and_is_counted():
    wm = LearnedWebWorldModel.__new__(LearnedWebWorldModel)
    wm.model = FakeWorldModel([("New items:\n[8] StaticText 'x'", EMPTY_CART), ("garbage", None)])
    wm.temperature, wm.top_p, wm.generator, wm.malformed_total = 1.0, 0.95, None, 0
    trees = wm.predict(STATE, ["click [6]", "hover [5]"])
    assert trees == [EMPTY_CART, CART]
    assert wm.last_info == {"malformed": 1, "texts": ["New items:\n[8] StaticText 'x'", "garbage"]}
    context, actions, n, kw = wm.model.calls[0]
    assert actions == ["click [6]", "hover [5]"] and n == 1 and kw["top_p"] == 0.95
    assert context[0] == {"observation": CART, "url": STATE.url, "objective": "Buy a mug",
                          "previous_actions": []}
    assert wm.predict(STATE, []) == [] and wm.malformed_total == 1


@pytest.fixture(scope="module")
def tiny_web_wm(tmp_path_factory):
    d = tmp_path_factory.mktemp("web_wm")
    data = d / "web.json"
    data.write_text(json.dumps(records() * 2))
    sets = {"task.bpe_vocab_size": 300, "task.max_new_tokens": 16, "model.max_positions": 256,
            "train.batch_size": 2, "train.device": "cpu", "train.precision": "fp32",
            "train.eval_every": 0, "train.save_every": 0, "train.tensorboard": "false"}
    res = CliRunner().invoke(pretrain_app, [
        "web", "--train", str(data), "--test", str(data), "--style", "compact", "--preset",
        "test", "--steps", "2", "--out", str(d / "wm"),
        *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")]])
    assert res.exit_code == 0, res.output
    return d / "wm"


def test_a_trained_web_world_model_drives_the_loop(tiny_web_wm):
    wm = load_component("world_model", str(tiny_web_wm))
    assert isinstance(wm, LearnedWebWorldModel)
    trees = wm.predict(STATE, ["click [6]", "hover [5]", "scroll [down]"])
    assert len(trees) == 3 and all(isinstance(t, str) for t in trees)
    assert len(wm.last_info["texts"]) == 3 and 0 <= wm.last_info["malformed"] <= 3
    records_ = []
    env = StubEnv()
    end = run_agent_episode(env, ListPolicy(["click [2]", "click [3]"]), wm,
                            TableValue({"click [3]": 1.0}), "stub", "b", 0,
                            AgentConfig(candidates=2, max_steps=1), records_.append)
    step = records_[1]
    assert end["success"] and step["choice"] == "click [3]"
    assert step["info"]["world_model"]["malformed"] >= 0
    assert step["prediction_matched"] in (True, False) and step["observation"] == tree("home")


def test_max_new_tokens_sets_the_answer_budget(tiny_web_wm):
    wm = LearnedWebWorldModel(tiny_web_wm, max_new_tokens=2)
    assert wm.model.task.max_new_tokens == 2  # the recipe's 16 otherwise
    outs, predict = [], wm.model.predict
    wm.model.predict = lambda *a, **kw: outs.append(predict(*a, **kw)) or outs[-1]
    wm.predict(STATE, ["click [6]", "hover [5]"])
    assert max(int(n) for n in outs[0]["lengths"]) <= 2  # tokens generated per candidate
    assert LearnedWebWorldModel(tiny_web_wm).model.task.max_new_tokens == 16
    opts = {"max_new_tokens": 3, "seed": 1}  # what wm webagent value-check passes
    assert load_component("world_model", str(tiny_web_wm), options=opts).model.task.max_new_tokens == 3
    with pytest.raises(ValueError, match="max_new_tokens"):
        LearnedWebWorldModel(tiny_web_wm, max_new_tokens=0)


def test_live_origins_are_shown_as_the_training_data_fixed_origin():
    live = "http://127.0.0.1:41234"
    state = AgentState("Buy a mug", f"{live}/cart", CART.replace("'Mug'", f"'Mug' url: {live}/p/1"),
                       (f"goto [{live}/cart]",), "shop", "cheapest")
    wm = LearnedWebWorldModel.__new__(LearnedWebWorldModel)
    wm.model = FakeWorldModel([("Updated items:\n...", "[1] link 'x' url: http://localhost:shop/p/2")])
    wm.temperature, wm.top_p, wm.generator, wm.malformed_total = 1.0, None, None, 0
    wm.fixed_origin = True
    assert wm.predict(state, [f"goto [{live}/p/2]"]) == [f"[1] link 'x' url: {live}/p/2"]
    context, actions, _, _ = wm.model.calls[0]
    assert actions == ["goto [http://localhost:shop/p/2]"]
    assert context[0]["url"] == "http://localhost:shop/cart"
    assert context[0]["previous_actions"] == ["goto [http://localhost:shop/cart]"]
    assert "url: http://localhost:shop/p/1" in context[0]["observation"]
