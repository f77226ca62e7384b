"""The web-agent value task on synthetic episode records: the success-to-go labels by hand, their
digits, the prompt (objective never cut), the expectation read-out against a hand softmax on a tiny
model, ROC AUC and the sampled metrics by hand, and `wm pretrain web-value` (--help, 2 steps).

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/tasks/test_web_value.py
"""

import json
import math
from dataclasses import fields

import pytest
import torch
from typer.testing import CliRunner
from web_agent_records import CART, HATS, LABELS, OBJECTIVE, records

from worldmodels.records import RecordError
from worldmodels.tasks.web_agent_config import WebValueTaskConfig
from worldmodels.tasks.web_agent_data import (
    VALUE_FIELDS,
    load_agent_steps,
    success_to_go,
    value_bucket,
    value_labels,
)
from worldmodels.tasks.web_value import WebValueTask, digit_expectation, roc_auc

runner = CliRunner()


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    p = tmp_path_factory.mktemp("web_value") / "episodes.json"
    p.write_text(json.dumps(records()))
    return p


@pytest.fixture(scope="module")
def task(episodes):
    return WebValueTask.for_pretrain(WebValueTaskConfig(train=str(episodes), test=str(episodes), bpe_vocab_size=400))


@pytest.fixture(scope="module")
def tiny_model(task):
    from worldmodels.models import BackboneConfig, make_backbone

    torch.manual_seed(0)
    return make_backbone(BackboneConfig(preset="test", max_positions=512), task.vocab_size).eval()


def test_labels_by_hand(episodes):
    steps = load_agent_steps(episodes, VALUE_FIELDS)
    assert value_labels(steps, 0.8) == pytest.approx(LABELS)
    assert value_labels(steps, 0.5)[:2] == pytest.approx([0.25, 0.5])
    # the success step is the first later step whose check holds; none recorded: the last step
    assert success_to_go(0, False, [3, 5], True, 6, 0.9) == pytest.approx(0.9 ** 3)
    assert success_to_go(1, False, [], True, 6, 0.9) == pytest.approx(0.9 ** 4)
    assert success_to_go(4, True, [], False, 6, 0.9) == 1.0  # the check holds now: 1 whatever the end
    assert success_to_go(2, False, [5], False, 6, 0.9) == 0.0
    with pytest.raises(ValueError, match="last step"):
        success_to_go(5, False, [], True, 6, 0.9)


def test_a_contradictory_episode_names_the_record(tmp_path):
    recs = records()
    recs[3]["success"] = recs[2]["success"] = False  # episode 0 "succeeds" with no step after 3
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(recs))
    with pytest.raises(RecordError, match=r"bad\.json: record 3: episode_success is true"):
        value_labels(load_agent_steps(p, VALUE_FIELDS), 0.8)
    del recs[0]["episode_steps"]
    p.write_text(json.dumps(recs))
    with pytest.raises(RecordError, match=r"record 0: missing field 'episode_steps'"):
        load_agent_steps(p, VALUE_FIELDS)


def test_digits_of_the_labels(task):
    assert [value_bucket(v) for v in (0.0, 0.05, 0.0556, 0.5, 0.64, 0.8, 1.0, 1.7)] == [0, 0, 1, 5, 6, 7, 9, 9]
    items = task.dataset("train")
    assert len(items) == 9  # random episodes included by default
    assert [task.tokenizer.decode(it["answer"].tolist()) for it in items] == list("679900000")
    assert [it["success"] for it in items] == [False, False, True, True] + [False] * 5


def test_prompt_is_the_objective_and_the_next_tree(task, episodes):
    it = task.dataset("train")[1]  # scroll on the hats page: the next state is HATS
    prompt = task.tokenizer.decode(it["prompt"].tolist())
    assert f"OBJECTIVE: {OBJECTIVE}\nOBSERVATION:\n{HATS}\n" in prompt
    assert CART in task.tokenizer.decode(task.dataset("train")[2]["prompt"].tolist())
    short = WebValueTask(task.tokenizer, train=str(episodes), test=str(episodes),
                         max_prompt_tokens=it["prompt_tokens"] - 6)
    cut = short.tokenizer.decode(short.dataset("train")[1]["prompt"].tolist())
    assert f"OBJECTIVE: {OBJECTIVE}" in cut and "more lines cut)" in cut and "Add red hat" not in cut
    only = WebValueTask(task.tokenizer, train=str(episodes), test=str(episodes), include_random=False)
    assert len(only.dataset("train")) == 6


def test_readout_equals_a_hand_softmax_expectation(task, tiny_model):
    items = task.dataset("train")
    batch = task.collate([items[1], items[4]])  # different lengths: one row is left-padded
    got = task.expected_values(tiny_model, batch)
    for row, it in enumerate((items[1], items[4])):
        with torch.no_grad():
            logits = tiny_model(input_ids=it["prompt"].long()[None]).logits[0, -1].double().tolist()
        z = [logits[i] for i in task.digit_ids]
        m = max(z)
        e = [math.exp(x - m) for x in z]
        want = sum(d * x for d, x in enumerate(e)) / sum(e) / 9
        assert got[row].item() == pytest.approx(want, abs=1e-5)
    assert digit_expectation(torch.zeros(1, task.vocab_size), task.digit_ids).item() == pytest.approx(0.5)
    big = torch.zeros(1, task.vocab_size)
    big[0, task.digit_ids[7]] = 50.0
    assert digit_expectation(big, task.digit_ids).item() == pytest.approx(7 / 9)


def test_roc_auc_and_sampled_metrics_by_hand(task):
    assert roc_auc([0.9, 0.4, 0.6, 0.1], [True, False, True, False]) == 1.0
    assert roc_auc([0.5, 0.5, 0.2], [True, False, False]) == pytest.approx((0.5 + 1) / 2)
    assert roc_auc([0.3], [True]) is None
    batch = task.collate(task.dataset("train")[:4])  # labels 0.64, 0.8, 1, 1; success F F T T
    pred = {"digit": [6, None, 9, 7], "value": torch.tensor([6 / 9, 0.0, 1.0, 7 / 9])}
    m = task.metrics(pred, task.reward_items(batch))
    assert m["mae"].tolist() == pytest.approx([abs(6 / 9 - 0.64), 0.8, 0.0, 2 / 9], abs=1e-6)
    # threshold (1 + 0.8) / 2 = 0.9: 6/9 no (right), 0 no (right), 1 yes (right), 7/9 no (wrong)
    assert m["success_accuracy"].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert m["parsed"].tolist() == [1.0, 0.0, 1.0, 1.0]
    zero = task.metrics(task.baselines(batch)["zero"], task.reward_items(batch))
    assert zero["mae"].tolist() == pytest.approx([0.64, 0.8, 1.0, 1.0])


def test_value_report_and_sampled_rollout(task, tiny_model):
    from worldmodels.evaluate import EvalConfig, evaluate

    rep = task.value_report(tiny_model, "test", batch_size=4)
    assert rep["n"] == 9 and 0 <= rep["mae"] <= 1 and 0 <= rep["auc"] <= 1
    assert rep["mean_label"] == pytest.approx(sum(LABELS) / 9)
    res = evaluate(tiny_model, task, task.dataset("test"), EvalConfig(items=9, n_samples=2, bootstrap=0))
    assert res["metrics"]["parsed"]["mean"] == 1.0  # the rollout may only emit digits
    assert res["baselines"]["zero"]["mae"]["mean"] == pytest.approx(sum(LABELS) / 9)


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match=r"task.gamma must be in \(0, 1\]"):
        WebValueTaskConfig(gamma=0.0)
    with pytest.raises(ValueError, match="task.prompt_style must be one of"):
        WebValueTaskConfig(prompt_style="instruct")


def test_cli_help_and_a_two_step_run(episodes, tmp_path):
    from worldmodels.commands.pretrain import app
    from worldmodels.world_model import WorldModel

    out = runner.invoke(app, ["web-value", "--help"], terminal_width=200).output
    assert all(f"task.{f.name}" in out for f in fields(WebValueTaskConfig)) and "web_value_tiny.yaml" in out
    run = tmp_path / "value"
    sets = {"task.bpe_vocab_size": 400, "task.gamma": 0.5, "model.max_positions": 512, "train.batch_size": 4,
            "train.device": "cpu", "train.precision": "fp32", "train.eval_every": 0, "train.save_every": 0,
            "train.log_every": 1, "train.tensorboard": "false"}
    res = runner.invoke(app, ["web-value", "--train", str(episodes), "--test", str(episodes), "--preset", "test",
                              "--steps", "2", "--out", str(run),
                              *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")]])
    assert res.exit_code == 0, res.output
    meta = json.loads((run / "worldmodel.json").read_text())
    assert meta["kind"] == "web_value" and meta["gamma"] == 0.5
    wm = WorldModel.from_pretrained(run, device="cpu")
    assert [it["value"] for it in wm.task.dataset("test")][:2] == pytest.approx([0.25, 0.5])


def test_tiny_recipe_loads():
    from pathlib import Path

    from worldmodels.commands.web_agent_models import PretrainWebValueConfig
    from worldmodels.config import load_config

    recipes = Path(__file__).resolve().parents[2] / "data" / "recipes"
    cfg = load_config(PretrainWebValueConfig, recipes / "web_value_tiny.yaml", [])
    assert cfg.model.preset == "tiny" and cfg.task.include_random is True and cfg.task.gamma == 0.8
    assert cfg.task.max_prompt_tokens + 1 <= cfg.model.max_positions
