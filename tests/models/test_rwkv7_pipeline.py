"""RWKV-7 through the generic pipelines on the toy text task: ``run_pretrain`` with
``model.family=rwkv7`` trains and writes a world model that ``WorldModel.from_pretrained``
loads (through ``load_backbone``) and predicts with; ``run_rlvr`` with a LoRA adapter on the
r/k/v/o projections runs a GRPO step and exports it as adapter + base.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/models/test_rwkv7_pipeline.py
"""

import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "text"))
import toy_text  # noqa: E402  (registers the "toy_text" task)

from worldmodels.evaluate import EvalConfig  # noqa: E402
from worldmodels.models import BackboneConfig, LoRAConfig, lora  # noqa: E402
from worldmodels.pipelines import RLVRConfig, run_pretrain, run_rlvr  # noqa: E402
from worldmodels.train.grpo_config import GRPOConfig  # noqa: E402
from worldmodels.world_model import WorldModel  # noqa: E402


def test_rwkv7_pretrain_predict_and_rlvr_with_lora(tmp_path):
    cfg = toy_text.pretrain_config(tmp_path / "pre", steps=60)
    cfg = dataclasses.replace(cfg, model=BackboneConfig(family="rwkv7", preset="test"))
    res = run_pretrain(cfg)
    rows = [json.loads(line) for line in (tmp_path / "pre" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert res["step"] == 60 and losses[-1] < 0.6 * losses[0], losses
    assert json.loads((tmp_path / "pre" / "backbone" / "config.json").read_text())["model_type"] == "wm_rwkv7"

    wm = WorldModel.from_pretrained(tmp_path / "pre", device="cpu", max_new_tokens=12)
    assert type(wm.model).__name__ == "RWKV7ForCausalLM"
    pred = wm.predict(["box closed, lamp off", "tap on"], ["open box", "wait"], n_samples=2, top_k=1)
    assert len(pred["text"]) == 4 and pred["text"][0::2] == pred["text"][1::2]

    out = tmp_path / "rl"
    run_rlvr(RLVRConfig(
        init=str(tmp_path / "pre"), out=str(out), reward="toy_text:state_f1_reward",
        lora=LoRAConfig(enabled=True, r=4, merge_on_export=False),  # default targets: r/k/v/o
        grpo=GRPOConfig(num_generations=4, prompts_per_step=2, mini_batch_prompts=2,
                        learning_rate=1e-2, beta=0.05, max_steps=1, device="cpu", eval_steps=0,
                        save_steps=0),
        eval=EvalConfig(items=4, batch_size=4, bootstrap=0)), progress=False)
    assert lora.is_adapter_dir(out / "backbone")
    rl = WorldModel.from_pretrained(out, device="cpu")
    assert lora.is_peft_model(rl.model)
    targets = {n.split(".")[-4] for n, _ in rl.model.named_parameters() if "lora_A" in n}
    assert targets == {"r_proj", "k_proj", "v_proj", "o_proj"}
