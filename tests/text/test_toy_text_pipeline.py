"""The toy text task end to end through the generic pipelines: run_pretrain (full and LoRA),
run_rlvr with LoRA (one step, then resume, bit-exact against two steps straight), export merged
and as adapter + base, WorldModel.from_pretrained + predict, and evaluate.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/text
"""

import json
from pathlib import Path

import pytest
import torch
import toy_text
from safetensors.torch import load_file

from worldmodels.evaluate import EvalConfig, evaluate
from worldmodels.models import BackboneConfig, LoRAConfig, load_backbone, lora, make_backbone
from worldmodels.pipelines import RLVRConfig, run_pretrain, run_rlvr
from worldmodels.train.grpo_config import GRPOConfig
from worldmodels.world_model import WorldModel

TIMING = {"time_s", "step_time_s", "gen_tokens_per_s"}  # wall-clock fields, the only ones that may differ


def records(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_pretrain_writes_a_world_model_that_loads_and_predicts(pretrained):
    out, res = pretrained
    meta = json.loads((out / "worldmodel.json").read_text())
    assert meta["kind"] == "toy_text" and meta["tokenizer"] == "tokenizer"
    rows = records(out)
    losses = [r["loss"] for r in rows if "loss" in r]
    assert res["step"] == toy_text.PRETRAIN_STEPS
    assert losses[-1] < 0.25 * rows[0]["unigram_entropy"] and losses[-1] < losses[0]

    # max_new_tokens raised to 16 on load: rows stop at EOS (<= 9 tokens), so the rollout exits early
    wm = WorldModel.from_pretrained(out, device="cpu", max_new_tokens=16)
    tok = wm.task.tokenizer
    assert isinstance(wm.task, toy_text.ToyTextTask) and tok.chat_template == toy_text.CHAT_TEMPLATE
    assert tok.get_vocab() == toy_text.build_tokenizer().get_vocab()  # saved and reloaded as built
    calls = []
    hook = wm.model.register_forward_hook(lambda *a: calls.append(1))
    states = ["box closed, lamp off", "tap on", "door open, radio off, tap on"]
    actions = ["open box", "wait", "turn off radio"]
    pred = wm.predict(states, actions, n_samples=2, top_k=1)  # greedy
    hook.remove()
    assert len(pred["text"]) == 6 and pred["stopped"].all()
    assert pred["text"][0::2] == pred["text"][1::2]  # samples of one input adjacent; greedy: equal
    assert len(calls) == int(pred["lengths"].max()) < 16  # one forward per sampled token, then exit
    with pytest.raises(ValueError, match=r"word\(s\) \['jump'\] not in the toy vocabulary"):
        wm.predict(["box open"], ["jump box"])


def test_evaluate_scores_the_model_and_the_no_change_baseline(pretrained, tmp_path):
    out, _ = pretrained
    wm = WorldModel.from_pretrained(out, device="cpu")
    data = wm.task.dataset("test")
    res = evaluate(wm.model, wm.task, data, EvalConfig(items=64, n_samples=2, batch_size=32, bootstrap=200),
                   examples=2, out_dir=tmp_path / "ex")
    assert res["items"] == 64 and set(res["metrics"]) == {"exact_match", "state_f1"}
    for name, v in res["metrics"].items():
        assert 0 <= v["mean"] <= v["best_of_n"] <= 1, name
        assert v["ci95"][0] <= v["mean"] <= v["ci95"][1], name
    # the baseline's values by hand: "no change" is exact on unchanged items, and with k objects
    # of which one changed it gets k-1 of k pairs right (F1 = (k-1)/k)
    items = toy_text.make_items(64, seed=1)
    unchanged = [it["state"] == it["next"] for it in items]
    k = [len(it["state"].split(",")) for it in items]
    base = res["baselines"]["no_change"]
    assert base["exact_match"]["mean"] == pytest.approx(sum(unchanged) / 64)
    f1 = [1 if u else (n - 1) / n for u, n in zip(unchanged, k, strict=True)]
    assert base["state_f1"]["mean"] == pytest.approx(sum(f1) / 64)
    assert res["metrics"]["state_f1"]["mean"] > 0.5  # learned the format and most of the world
    assert len(res["examples"]) == 2 and "predicted: " in Path(res["examples"][0]).read_text()


def test_pretrain_with_lora_trains_the_adapter_only(tmp_path):
    cfg = toy_text.pretrain_config(tmp_path / "lora", steps=4, lora=LoRAConfig(
        enabled=True, r=4, target_modules=["q_proj", "v_proj"]))
    run_pretrain(cfg)
    ckpt = tmp_path / "lora" / "checkpoints" / "step_00000004" / "model"
    assert sorted(p.name for p in ckpt.iterdir()) == [lora.ADAPTER_CONFIG, lora.ADAPTER_WEIGHTS]
    merged = load_backbone(tmp_path / "lora" / "backbone")  # exported merged (the default)
    assert not lora.is_peft_model(merged)
    torch.manual_seed(cfg.train.seed)  # the base run_pretrain built, rebuilt independently
    base = make_backbone(BackboneConfig(preset="test", max_positions=64), len(toy_text.build_tokenizer()))
    want, changed = base.state_dict(), []
    for name, w in merged.state_dict().items():
        if any(t in name for t in ("q_proj", "v_proj")):
            changed.append(not torch.equal(w, want[name]))
        else:
            assert torch.equal(w, want[name]), name  # frozen: bit-identical to the base
    assert len(changed) == 4 and all(changed)  # 2 layers x (q, v): base + the learned B @ A


def rlvr_config(init, out, max_steps, merge):
    return RLVRConfig(
        init=str(init), out=str(out), reward="toy_text:state_f1_reward",
        lora=LoRAConfig(enabled=True, r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.05,
                        merge_on_export=merge),
        grpo=GRPOConfig(num_generations=4, prompts_per_step=4, mini_batch_prompts=2, learning_rate=1e-2,
                        beta=0.05, max_steps=max_steps, device="cpu", eval_steps=0, save_steps=1),
        eval=EvalConfig(items=8, batch_size=8, bootstrap=0))


def test_rlvr_lora_resume_is_bit_exact_and_exports_both_ways(pretrained, tmp_path):
    pre, _ = pretrained
    a, b = tmp_path / "straight", tmp_path / "resumed"
    run_rlvr(rlvr_config(pre, a, 2, merge=False), progress=False)  # adapter + base on export
    run_rlvr(rlvr_config(pre, b, 1, merge=True), progress=False)   # merged on export
    with pytest.raises(FileExistsError, match="pass --resume"):
        run_rlvr(rlvr_config(pre, b, 2, merge=True), progress=False)
    run_rlvr(rlvr_config(pre, b, 2, merge=True), resume=True, progress=False)

    rows_a, rows_b = records(a), records(b)
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b] == [0, 1, 2]
    # the interrupted run also evaluated at its last step (1): the only extra values it logged
    extra = {k for k in rows_b[1] if k.startswith("eval/")}
    assert extra == {"eval/exact_match", "eval/state_f1"} and not extra & set(rows_a[1])
    rows_b[1] = {k: v for k, v in rows_b[1].items() if k not in extra}
    assert rows_a == rows_b  # every other logged value, bit for bit
    assert "reward/toy_text:state_f1_reward" in rows_a[1] and "eval/exact_match" in rows_a[2]
    wa = load_file(str(a / "checkpoints" / "step_00000002" / "model" / lora.ADAPTER_WEIGHTS))
    wb = load_file(str(b / "checkpoints" / "step_00000002" / "model" / lora.ADAPTER_WEIGHTS))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)

    rec = json.loads((a / "backbone" / lora.BASE_FILE).read_text())
    assert rec["base"] == str((pre / "backbone").resolve())
    assert (b / "backbone" / "config.json").is_file() and not lora.is_adapter_dir(b / "backbone")
    for d in (a, b):
        meta = json.loads((d / "worldmodel.json").read_text())
        assert meta["kind"] == "toy_text" and meta["rlvr_step"] == 2 and (d / "tokenizer").is_dir()
    ma, mb = WorldModel.from_pretrained(a, device="cpu"), WorldModel.from_pretrained(b, device="cpu")
    m0 = WorldModel.from_pretrained(pre, device="cpu")
    assert lora.is_peft_model(ma.model) and not lora.is_peft_model(mb.model)
    lm = ma.task.lm_batch(ma.task.collate(ma.task.dataset("test")[:8]))
    kw = dict(input_ids=lm["input_ids"], attention_mask=lm["attention_mask"])
    with torch.no_grad():
        la, lb, l0 = ma.model(**kw).logits, mb.model(**kw).logits, m0.model(**kw).logits
    torch.testing.assert_close(la, lb, rtol=1e-5, atol=1e-5)  # merging only rounds W + B @ A
    assert (la - l0).abs().max() > 1e-3  # RLVR moved the model
    states, actions = ["box closed, lamp off", "radio on"], ["open box", "turn off radio"]
    assert ma.predict(states, actions, top_k=1)["text"] == mb.predict(states, actions, top_k=1)["text"]
