"""The web path end to end through the commands, on the synthetic WMA file: `wm pretrain web` (a
BPE trained on the corpus, a few SFT steps), the world model's predict, `evaluate` with the
"no change" baseline, `wm rlvr web --reward f1` (two steps straight vs one + --resume: bit-exact),
`wm eval web` (JSON + markdown), and the commands' one-line errors.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/web_task/test_web_pipeline.py
"""

import json

import pytest
from typer.testing import CliRunner
from web_records import CART, records

from worldmodels.commands.eval import app as eval_app
from worldmodels.commands.pretrain import app as pretrain_app
from worldmodels.commands.rlvr import app as rlvr_app
from worldmodels.evaluate import EvalConfig, compare_runs, evaluate
from worldmodels.world_model import WorldModel

runner = CliRunner()
SFT_STEPS = 60
TIMING = {"time_s", "step_time_s", "gen_tokens_per_s"}  # wall-clock fields, the only ones that may differ


def rows(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def rlvr_args(init, out, steps):
    return ["web", "--init", str(init), "--reward", "f1", "--out", str(out), "--steps", str(steps),
            "--set", "grpo.num_generations=2", "--set", "grpo.prompts_per_step=2",
            "--set", "grpo.mini_batch_prompts=2", "--set", "grpo.device=cpu", "--set", "grpo.save_steps=1",
            "--set", "grpo.eval_steps=0", "--set", "eval.items=2", "--set", "eval.batch_size=2",
            "--set", "task.max_new_tokens=24"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("web_e2e")
    data = d / "web.json"
    data.write_text(json.dumps(records() * 3))
    sft = d / "sft"
    sets = {"task.bpe_vocab_size": 400, "task.max_new_tokens": 24, "model.max_positions": 256,
            "train.batch_size": 4, "train.optim.lr": 3e-3, "train.optim.warmup_steps": 2, "train.device": "cpu",
            "train.precision": "fp32", "train.eval_every": 0, "train.save_every": 0, "train.log_every": 5,
            "train.tensorboard": "false"}
    res = runner.invoke(pretrain_app, ["web", "--train", str(data), "--test", str(data), "--style", "compact",
                                       "--preset", "test", "--steps", str(SFT_STEPS), "--out", str(sft),
                                       *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")]])
    assert res.exit_code == 0, res.output
    return d, data, sft


def test_sft_writes_a_web_world_model(runs):
    sft = runs[2]
    meta = json.loads((sft / "worldmodel.json").read_text())
    recorded = {k: meta[k] for k in ("kind", "prompt_style", "diff_mode", "target", "tokenizer")}
    assert recorded == {"kind": "web", "prompt_style": "compact", "diff_mode": "clean", "target": "diff",
                        "tokenizer": "tokenizer"}
    assert (sft / "tokenizer" / "tokenizer.json").is_file()
    logged = rows(sft)
    losses = [r["loss"] for r in logged if "loss" in r]
    assert logged[-1]["step"] == SFT_STEPS and losses[-1] < losses[0]


def test_predict_and_evaluate_with_the_no_change_baseline(runs, tmp_path):
    _, _, sft = runs
    wm = WorldModel.from_pretrained(sft, device="cpu", max_new_tokens=8)
    pred = wm.predict([{"observation": CART}], ["click [6]"], n_samples=2, top_k=1)
    assert len(pred["text"]) == 2 and pred["text"][0] == pred["text"][1] and len(pred["next_tree"]) == 2
    ds = wm.task.dataset("test")[:4]
    res = evaluate(wm.model, wm.task, ds, EvalConfig(items=4, batch_size=4, bootstrap=0), out_dir=tmp_path)
    assert {"precision", "recall", "f1", "exact", "parsed"} <= set(res["metrics"])
    base = res["baselines"]["no_change"]  # by hand: F1 0, 2/3, 1, 1 (test_web_task)
    assert base["f1"]["mean"] == pytest.approx((0 + 2 / 3 + 1 + 1) / 4)
    assert base["exact"]["mean"] == pytest.approx(0.5)
    assert base["no_change"]["mean"] == 1.0  # the baseline says "no change" on every item
    assert 0.0 <= res["metrics"]["no_change"]["mean"] <= 1.0
    items = res["per_item"]  # a diagnostic: no direction, so compare never calls one run better
    assert items["higher_is_better"]["no_change"] is None and items["higher_is_better"]["f1"] is True
    cmp = compare_runs([items], [{**items, "metrics": {**items["metrics"], "no_change": [1.0] * 4}}], "no_change")
    assert cmp["a_better"] is None and cmp["b_better"] is None and cmp["diff"]["mean"] <= 0
    # two samples per item: pass@k for the right/wrong metrics only, never for the continuous F1
    two = evaluate(wm.model, wm.task, ds, EvalConfig(items=4, batch_size=4, n_samples=2, bootstrap=0))
    assert {m for m, v in two["metrics"].items() if "pass_at_k" in v} == {"exact", "parsed"}
    assert two["metrics"]["exact"]["pass_at_k"]["2"] == pytest.approx(two["metrics"]["exact"]["best_of_n"])


def test_rlvr_f1_resume_is_bit_exact(runs):
    d, _, sft = runs
    a, b = d / "rl_straight", d / "rl_resumed"
    assert runner.invoke(rlvr_app, rlvr_args(sft, a, 2)).exit_code == 0
    res = runner.invoke(rlvr_app, rlvr_args(sft, b, 1))
    assert res.exit_code == 0, res.output
    res = runner.invoke(rlvr_app, rlvr_args(sft, b, 2))
    assert res.exit_code == 2 and "--resume" in res.output
    res = runner.invoke(rlvr_app, ["web", "--out", str(b), "--steps", "2", "--resume"])
    assert res.exit_code == 0, res.output

    def clean(run):
        return [{k: v for k, v in r.items() if k not in TIMING and not k.startswith("eval/")} for r in rows(run)]

    ra, rb = clean(a), clean(b)
    assert [r["step"] for r in ra if "reward" in r] == [1, 2] and ra == rb
    last = [r for r in ra if "reward" in r][-1]
    assert 0.0 <= last["reward"] <= 1.0
    assert any(r.get("grad_norm", 0) > 0 for r in ra)  # rewards differed within a group: a real update
    meta = json.loads((b / "worldmodel.json").read_text())
    assert meta["kind"] == "web" and meta["reward"] == "f1" and meta["max_new_tokens"] == 24


def test_eval_command_writes_site_tables(runs):
    d, _, sft = runs
    opts = {"--model": sft, "--items": 12, "--batch-size": 6, "--device": "cpu", "--out": d / "eval",
            "--max-new-tokens": 8}
    res = runner.invoke(eval_app, ["web", *[str(a) for kv in opts.items() for a in kv]])
    assert res.exit_code == 0, res.output
    data = json.loads((d / "eval" / "eval.json").read_text())
    base = data["site_tables"]["sources"]["no_change"]
    assert base["site=shop.test:7770"]["f1"] == pytest.approx(0.5) and base["all"]["n"] == 12
    assert base["site=find.test:9999"]["f1"] == pytest.approx(5 / 6)  # by hand (test_web_task)
    assert data["site_tables"]["reductions"] == {"none": 12}
    assert "## Per site" in (d / "eval" / "eval.md").read_text()
    res = runner.invoke(eval_app, ["web", "--model", str(d / "absent")])
    assert res.exit_code == 2 and "not a world model directory" in res.output


def test_bad_inputs_exit_2_with_one_line(runs, tmp_path):
    d, data, sft = runs
    res = runner.invoke(rlvr_app, ["web", "--init", str(sft), "--reward", "nope", "--out", str(d / "x")])
    assert res.exit_code == 2 and "unknown reward 'nope'" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"objective": "x"}]))
    res = runner.invoke(pretrain_app, ["web", "--train", str(bad), "--test", str(bad), "--out", str(tmp_path / "o"),
                                       "--preset", "test", "--steps", "1"])
    assert res.exit_code == 2 and "bad.json" in res.output and "neither WebArena nor Mind2Web" in res.output
    res = runner.invoke(pretrain_app, ["web", "--set", "task.diff_mode=exact", "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "task.diff_mode must be one of" in res.output


def test_help_lists_every_set_key():
    from dataclasses import fields

    from worldmodels.tasks.web_config import WebOverrides, WebTaskConfig

    out = runner.invoke(pretrain_app, ["web", "--help"], terminal_width=200).output
    assert all(f"task.{f.name}" in out for f in fields(WebTaskConfig))
    out = runner.invoke(rlvr_app, ["web", "--help"], terminal_width=200).output
    assert all(f"task.{f.name}" in out for f in fields(WebOverrides)) and "grpo.num_generations" in out


def test_tiny_recipes_load():
    from pathlib import Path

    from worldmodels.commands.web import PretrainWebConfig, RLVRWebConfig
    from worldmodels.config import load_config

    recipes = Path(__file__).resolve().parents[2] / "data" / "recipes"
    pre = load_config(PretrainWebConfig, recipes / "web_pretrain_tiny.yaml", [])
    assert pre.model.preset == "tiny" and pre.task.prompt_style == "compact" and pre.task.on_overflow == "reduce"
    assert pre.task.max_prompt_tokens + pre.task.max_new_tokens <= pre.model.max_positions
    rl = load_config(RLVRWebConfig, recipes / "web_rlvr_tiny.yaml", [])
    assert rl.reward == "f1" and rl.grpo.num_generations == 5


def test_x5_recipes_differ_from_the_small_ones_only_in_data_and_budget():
    """web_x5.yaml / web_pretrain_x5.yaml (the 2026-12-01 experiment): web_small.yaml with five times
    the episodes, and web_pretrain_small.yaml on that data with a 35-minute fitted budget."""
    from dataclasses import asdict
    from pathlib import Path

    from worldmodels.commands.web import PretrainWebConfig
    from worldmodels.config import load_config
    from worldmodels.envs.web.build import WebDataConfig

    recipes = Path(__file__).resolve().parents[2] / "data" / "recipes"
    small, x5 = (asdict(load_config(WebDataConfig, recipes / n, [])) for n in ("web_small.yaml", "web_x5.yaml"))
    assert {k for k in small if small[k] != x5[k]} == {"episodes_per_family", "out"}
    assert x5["episodes_per_family"] == 5 * small["episodes_per_family"]

    def flat(d, pre=""):
        return {k2: v2 for k, v in d.items()
                for k2, v2 in (flat(v, f"{pre}{k}.").items() if isinstance(v, dict) else [(pre + k, v)])}

    a, b = (flat(asdict(load_config(PretrainWebConfig, recipes / n, [])))
            for n in ("web_pretrain_small.yaml", "web_pretrain_x5.yaml"))
    assert {k for k in a if a[k] != b[k]} == {"out", "task.train", "task.test", "train.steps", "train.max_minutes"}
    assert (b["task.train"], b["task.test"]) == (f"{x5['out']}/train.json", f"{x5['out']}/test.json")
    assert b["train.max_minutes"] == 35 and b["train.fit_schedule"]
