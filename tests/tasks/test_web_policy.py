"""The web-agent policy task (behaviour cloning) on synthetic episode records: loading and the
agent filter, the action grammar, the prompt and its reduction (the objective and the action are
never cut), the loss mask, the metrics by hand, and `wm pretrain web-policy` (--help, 2 steps,
the saved model's predict).

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/tasks/test_web_policy.py
"""

import json
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner
from web_agent_records import HATS, OBJECTIVE, records

from worldmodels.records import RecordError
from worldmodels.tasks.base import IGNORE_INDEX
from worldmodels.tasks.web_agent_config import WebPolicyTaskConfig
from worldmodels.tasks.web_agent_data import PromptTooLong, action_verb
from worldmodels.tasks.web_policy import WebPolicyTask, action_metrics

runner = CliRunner()


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    p = tmp_path_factory.mktemp("web_policy") / "episodes.json"
    p.write_text(json.dumps(records()))
    return p


@pytest.fixture(scope="module")
def task(episodes):
    cfg = WebPolicyTaskConfig(train=str(episodes), test=str(episodes), bpe_vocab_size=400)
    return WebPolicyTask.for_pretrain(cfg)


@pytest.mark.parametrize("text, verb", [
    ("click [12]", "click"), (" hover [3] ", "hover"), ("type [6] [green hat] [1]", "type"),
    ("type [6] [mug]", "type"), ("press [Ctrl+v]", "press"), ("scroll [down]", "scroll"), ("scroll [UP]", "scroll"),
    ("goto [http://localhost:shop/]", "goto"), ("go_back", "go_back"), ("stop []", "stop"), ("stop [42]", "stop"),
    ("new_tab", "new_tab"), ("tab_focus [1]", "tab_focus"),
    ("click [abc]", None), ("click 12", None), ("scroll [left]", None), ("go_back [1]", None), ("jump [3]", None),
    ("click [4] then click [5]", None), ("", None), (None, None), ("press []", None),
])
def test_action_verb_follows_the_webarena_grammar(text, verb):
    assert action_verb(text) == verb


def test_scripted_steps_by_default_random_ones_with_the_knob(task, episodes):
    steps = task.transitions("train")
    assert len(steps) == 6 and {s.agent for s in steps} == {"scripted"}
    assert [s.action for s in steps][:4] == ["click [4]", "scroll [down]", "click [9]", "stop []"]
    with_random = WebPolicyTask(task.tokenizer, train=str(episodes), test=str(episodes), include_random=True)
    assert len(with_random.transitions("train")) == 9
    limited = WebPolicyTask(task.tokenizer, train=str(episodes), test=str(episodes), max_train=2)
    assert len(limited.transitions("train")) == 2


def test_a_missing_field_names_the_file_record_and_field(task, tmp_path):
    recs = records()
    del recs[1]["agent"]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(recs))
    t = WebPolicyTask(task.tokenizer, train=str(p), test=str(p))
    with pytest.raises(RecordError, match=r"bad\.json: record 1: missing field 'agent'"):
        t.transitions("train")


def test_prompt_holds_every_field_and_the_answer_is_the_action(task):
    it = task.dataset("train")[2]  # click [9] after two actions
    prompt = task.tokenizer.decode(it["prompt"].tolist())
    for part in (f"OBJECTIVE: {OBJECTIVE}", "URL: http://localhost:shop/", "PREVIOUS ACTIONS:\nclick [4]\nscroll [down]",
                 "OBSERVATION:\n" + HATS):
        assert part in prompt
    assert it["reduction"] == "none"
    assert task.tokenizer.decode(it["answer"].tolist()) == "click [9]<|endoftext|>"
    lm = task.lm_batch(task.collate(task.dataset("train")[:3]))
    row = lm["labels"][2]
    assert task.tokenizer.decode(row[row != IGNORE_INDEX].tolist()) == "click [9]<|endoftext|>"
    assert (lm["labels"][lm["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_a_long_prompt_loses_tree_lines_never_the_objective_or_the_action(task, episodes):
    full = task.dataset("train")[2]["prompt_tokens"]
    t = WebPolicyTask(task.tokenizer, train=str(episodes), test=str(episodes), max_prompt_tokens=full - 8)
    it = t.dataset("train")[2]
    prompt = t.tokenizer.decode(it["prompt"].tolist())
    assert it["reduction"] == "tree_cut" and it["prompt_tokens"] <= full - 8
    assert f"OBJECTIVE: {OBJECTIVE}" in prompt and "scroll [down]" in prompt and "more lines cut)" in prompt
    assert "[1] RootWebArea 'Hats'" in prompt and "Add red hat" not in prompt  # the tree's end goes first
    assert t.tokenizer.decode(it["answer"].tolist()) == "click [9]<|endoftext|>"
    tiny = WebPolicyTask(task.tokenizer, train=str(episodes), test=str(episodes), max_prompt_tokens=20)
    with pytest.raises(PromptTooLong, match=r"episodes\.json: record 0: .*objective is never cut"):
        tiny.dataset("train")
    strict = WebPolicyTask(task.tokenizer, train=str(episodes), test=str(episodes), max_prompt_tokens=full - 8,
                           on_overflow="error")
    with pytest.raises(PromptTooLong, match="on_overflow=reduce"):
        strict.dataset("train")


def test_previous_actions_are_the_last_n(task, episodes):
    t = WebPolicyTask(task.tokenizer, train=str(episodes), test=str(episodes), max_previous_actions=1)
    prompt = t.tokenizer.decode(t.dataset("train")[3]["prompt"].tolist())  # 3 previous actions
    assert "PREVIOUS ACTIONS:\nclick [9]\nOBSERVATION" in prompt


def test_metrics_by_hand(task):
    assert action_metrics("click [9]", "click [9]") == {"exact": 1.0, "action_type": 1.0, "parsed": 1.0}
    assert action_metrics(" click [8] ", "click [9]") == {"exact": 0.0, "action_type": 1.0, "parsed": 1.0}
    assert action_metrics("scroll [down]", "click [9]") == {"exact": 0.0, "action_type": 0.0, "parsed": 1.0}
    assert action_metrics("clik [9", "click [9]") == {"exact": 0.0, "action_type": 0.0, "parsed": 0.0}
    assert action_metrics(None, "click [9]") == {"exact": 0.0, "action_type": 0.0, "parsed": 0.0}
    batch = task.collate(task.dataset("train")[:3])
    preds = {"text": ["click [4]", "scroll [up]", "nonsense"]}
    m = task.metrics(preds, task.reward_items(batch))
    assert m["exact"].tolist() == [1.0, 0.0, 0.0] and m["action_type"].tolist() == [1.0, 1.0, 0.0]
    assert m["parsed"].tolist() == [1.0, 1.0, 0.0]
    base = task.baselines(batch)["repeat_last"]["text"]
    assert base == ["scroll [down]", "click [4]", "scroll [down]"]


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="task.prompt_style must be one of"):
        WebPolicyTaskConfig(prompt_style="rlvr_world")
    with pytest.raises(ValueError, match="task.max_previous_actions must be >= 1"):
        WebPolicyTaskConfig(max_previous_actions=0)


def test_cli_help_lists_every_task_key():
    from worldmodels.commands.pretrain import app

    out = runner.invoke(app, ["web-policy", "--help"], terminal_width=200).output
    assert all(f"task.{f.name}" in out for f in fields(WebPolicyTaskConfig))
    assert "compact | instruct" in out and "web_policy_tiny.yaml" in out


def test_two_step_run_writes_a_policy_that_proposes(episodes, tmp_path):
    from worldmodels.commands.pretrain import app
    from worldmodels.world_model import WorldModel

    out = tmp_path / "policy"
    sets = {"task.bpe_vocab_size": 400, "model.max_positions": 1024, "train.batch_size": 4, "train.device": "cpu",
            "train.precision": "fp32", "train.eval_every": 0, "train.save_every": 0, "train.log_every": 1,
            "train.tensorboard": "false"}
    res = runner.invoke(app, ["web-policy", "--train", str(episodes), "--test", str(episodes), "--preset", "test",
                              "--steps", "2", "--out", str(out), "--style", "instruct",
                              *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")]])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "worldmodel.json").read_text())
    assert meta["kind"] == "web_policy" and meta["prompt_style"] == "instruct" and meta["include_random"] is False
    wm = WorldModel.from_pretrained(out, device="cpu", max_new_tokens=6)
    state = {"objective": OBJECTIVE, "url": "http://localhost:shop/", "observation": HATS, "previous_actions": []}
    torch.manual_seed(0)
    pred = wm.predict([state], None, n_samples=3)
    assert len(pred["text"]) == 3 and all(isinstance(t, str) for t in pred["text"])
    assert len(pred["verb"]) == 3
    bad = runner.invoke(app, ["web-policy", "--set", "task.on_overflow=cut", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "task.on_overflow must be one of" in bad.output


def test_tiny_recipe_loads():
    from worldmodels.commands.web_agent_models import PretrainWebPolicyConfig
    from worldmodels.config import load_config

    recipes = Path(__file__).resolve().parents[2] / "data" / "recipes"
    cfg = load_config(PretrainWebPolicyConfig, recipes / "web_policy_tiny.yaml", [])
    assert cfg.model.preset == "tiny" and cfg.task.include_random is False
    assert cfg.task.max_prompt_tokens + cfg.task.max_new_tokens <= cfg.model.max_positions
