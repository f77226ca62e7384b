"""The text-game path end to end through the commands, on hand-made records: `wm pretrain
text-game` (a BPE trained on the corpus, a few SFT steps), `wm rlvr text-game` (one GRPO step
with the task-specific reward), `wm eval text-game` (accuracy tables, JSON + markdown), and the
world model's predict.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/text_game/test_text_game_pipeline.py
"""

import json

import pytest
import tg_records as R
import yaml
from typer.testing import CliRunner

from worldmodels.commands.eval import app as eval_app
from worldmodels.commands.pretrain import app as pretrain_app
from worldmodels.commands.rlvr import app as rlvr_app
from worldmodels.world_model import WorldModel

runner = CliRunner()
SFT_STEPS = 20


def rows(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tg_e2e")
    train = R.write_records(d / "train.jsonl", copies=4)
    test = R.write_records(d / "test.jsonl")
    sft, rl = d / "sft", d / "rlvr"
    res = runner.invoke(pretrain_app, [
        "text-game", "--train", str(train), "--test", str(test), "--style", "compact", "--preset", "test",
        "--steps", str(SFT_STEPS), "--out", str(sft), "--set", "task.bpe_vocab_size=400",
        "--set", "task.max_new_tokens=24", "--set", "model.max_positions=512", "--set", "train.batch_size=4",
        "--set", "train.optim.lr=3e-3", "--set", "train.optim.warmup_steps=2", "--set", "train.device=cpu",
        "--set", "train.precision=fp32", "--set", "train.eval_every=0", "--set", "train.save_every=0",
        "--set", "train.log_every=5", "--set", "train.tensorboard=false"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(rlvr_app, [
        "text-game", "--init", str(sft), "--reward", "task_specific", "--out", str(rl), "--steps", "1",
        "--set", "grpo.num_generations=2", "--set", "grpo.prompts_per_step=2", "--set", "grpo.mini_batch_prompts=2",
        "--set", "grpo.device=cpu", "--set", "eval.items=2", "--set", "eval.batch_size=2",
        "--set", "task.rl_sampling=true", "--set", "task.rl_unchanged_ratio=0.4"])
    assert res.exit_code == 0, res.output
    return d, sft, rl


def test_sft_trains_and_writes_a_text_game_world_model(runs):
    _, sft, _ = runs
    meta = json.loads((sft / "worldmodel.json").read_text())
    assert meta["kind"] == "text_game" and meta["prompt_style"] == "compact" and meta["tokenizer"] == "tokenizer"
    assert (sft / "tokenizer" / "tokenizer.json").is_file()
    losses = [r["loss"] for r in rows(sft) if "loss" in r]
    assert rows(sft)[-1]["step"] == SFT_STEPS and losses[-1] < losses[0]


def test_rlvr_step_logs_the_reward_and_held_out_metrics(runs):
    _, _, rl = runs
    last = [r for r in rows(rl) if "reward" in r][-1]
    assert last["step"] == 1 and 0.0 <= last["reward"] <= 1.3
    assert {"eval/accuracy", "eval/task_specific", "eval/parsed"} <= set(last)
    meta = json.loads((rl / "worldmodel.json").read_text())
    assert meta["kind"] == "text_game" and meta["reward"] == "task_specific"
    assert meta["rl_sampling"] is True and meta["rl_unchanged_ratio"] == 0.4  # the override is recorded


def test_eval_writes_accuracy_tables(runs):
    d, _, rl = runs
    res = runner.invoke(eval_app, ["text-game", "--model", str(rl), "--items", "5", "--batch-size", "5",
                                   "--device", "cpu", "--out", str(d / "eval"), "--max-new-tokens", "8"])
    assert res.exit_code == 0, res.output
    data = json.loads((d / "eval" / "eval.json").read_text())
    tables = data["accuracy_tables"]
    assert tables["sources"]["no_change"]["overall"]["unchanged"] == pytest.approx(
        {"n": 1, "accuracy": 1.0, "task_specific": 0.3, "parsed": 1.0})
    assert tables["sources"]["no_change"]["overall"]["changed"]["accuracy"] == 0.0
    assert tables["sources"]["model"]["overall"]["all"]["n"] == 5
    assert tables["prompt_tokens"]["reductions"] == {"none": 5}
    assert "## Accuracy % (records)" in (d / "eval" / "eval.md").read_text()
    assert {"accuracy", "task_specific", "parsed"} <= set(data["metrics"])
    items = json.loads((d / "eval" / "eval_items.json").read_text())  # what `wm eval compare` pairs
    assert len(items["index"]) == 5 and "per_item" not in data
    assert sum(items["metrics"]["accuracy"]) / 5 == pytest.approx(data["metrics"]["accuracy"]["mean"])
    assert set(items["baselines"]["no_change"]["accuracy"]) <= {0.0, 1.0}  # one greedy answer per item
    res = runner.invoke(eval_app, ["compare", "--a", str(d / "eval"), "--b", str(d / "eval"),
                                   "--metric", "accuracy", "--out", str(d / "cmp.json")])
    assert res.exit_code == 0, res.output
    cmp = json.loads((d / "cmp.json").read_text())
    assert cmp["items"] == 5 and cmp["diff"]["mean"] == 0.0 and cmp["a_better"] == cmp["b_better"] == 0.0
    assert cmp["higher_is_better"] is True and items["higher_is_better"]["accuracy"] is True
    res = runner.invoke(eval_app, ["compare", "--a", str(d / "eval"), "--b", str(d / "eval"), "--metric", "nope"])
    assert res.exit_code == 2 and "no metric 'nope'" in res.output
    res = runner.invoke(eval_app, ["compare", "--a", str(d / "eval"), "--b", str(d / "absent"), "--metric", "accuracy"])
    assert res.exit_code == 2 and "no eval_items.json" in res.output
    res = runner.invoke(eval_app, ["text-game", "--model", str(d / "absent")])
    assert res.exit_code == 2 and "not a world model directory" in res.output


def test_world_model_predicts_states(runs):
    _, _, rl = runs
    wm = WorldModel.from_pretrained(rl, device="cpu", max_new_tokens=8)
    state = {**R.lamp_on()["current_state"], "game": "lamp-room", "score": dict(R.SCORE0)}
    pred = wm.predict([state], ["turn on lamp (ID: 2)"], n_samples=2, top_k=1)
    assert len(pred["text"]) == 2 and len(pred["diff"]) == 2 and pred["text"][0] == pred["text"][1]


def test_bad_reward_and_existing_run_exit_2(runs):
    d, sft, rl = runs
    res = runner.invoke(rlvr_app, ["text-game", "--init", str(sft), "--reward", "nope", "--out", str(d / "x")])
    assert res.exit_code == 2 and "unknown reward 'nope'" in res.output
    res = runner.invoke(rlvr_app, ["text-game", "--init", str(sft), "--out", str(rl), "--steps", "1",
                                   "--set", "grpo.device=cpu"])
    assert res.exit_code == 2 and "--resume" in res.output


def test_an_hf_backbone_brings_its_own_tokenizer(tmp_path):
    from worldmodels.commands.text_game import PretrainTextGameConfig
    from worldmodels.config import load_config

    cfg = load_config(PretrainTextGameConfig, None, ["model.family=hf", f"model.path={tmp_path / 'lm'}"])
    assert cfg.task.tokenizer == str(tmp_path / "lm")  # the directory's tokenizer, not a new BPE
    cfg = load_config(PretrainTextGameConfig, None, ["model.family=hf", f"model.path={tmp_path / 'lm'}",
                                                     f"task.tokenizer={tmp_path / 'tok'}"])
    assert cfg.task.tokenizer == str(tmp_path / "tok")
    assert load_config(PretrainTextGameConfig, None, []).task.tokenizer is None  # llama: BPE on the corpus


def test_max_minutes_stops_a_text_game_run_inside_its_step_budget(tmp_path):
    train = R.write_records(tmp_path / "train.jsonl", copies=2)
    out = tmp_path / "sft"
    res = runner.invoke(pretrain_app, [
        "text-game", "--train", str(train), "--test", str(train), "--style", "compact", "--preset", "test",
        "--steps", "100000", "--max-minutes", "0.03", "--out", str(out), "--set", "task.bpe_vocab_size=400",
        "--set", "task.max_new_tokens=24",
        "--set", "model.max_positions=512", "--set", "train.batch_size=2", "--set", "train.device=cpu",
        "--set", "train.eval_every=0", "--set", "train.save_every=0", "--set", "train.log_every=1",
        "--set", "train.tensorboard=false"])
    assert res.exit_code == 0, res.output
    steps = [r["step"] for r in rows(out) if "step" in r]
    assert 0 < max(steps) < 100000  # stopped by the 1.8 s budget, not the step count
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["max_minutes"] == 0.03
