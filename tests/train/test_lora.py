"""LoRA end to end: GRPO's reference is the base model (adapter disabled, no copy), adapter
checkpoints resume bit-exactly, export merged or as adapter + base, strict adapter loads.

    OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/train/test_lora.py
"""

import copy
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grpo_toys import LMTask, StopReward, StopTask, V, tiny_model  # noqa: E402

from worldmodels.models import LoRAConfig, load_backbone, lora  # noqa: E402
from worldmodels.strict_load import WeightsMismatch  # noqa: E402
from worldmodels.train.grpo import GRPOTrainer  # noqa: E402
from worldmodels.train.grpo_config import GRPOConfig  # noqa: E402
from worldmodels.train.rollout import sequence_logprobs  # noqa: E402

TIMING = {"gen_tokens_per_s", "step_time_s"}  # wall-clock metrics, the only ones that may differ


def lora_cfg(**kw):
    base = dict(enabled=True, r=4, lora_alpha=8.0, target_modules=["q_proj", "v_proj", "up_proj"],
                init_lora_weights=False)  # B random too: the adapter changes the model from the start
    base.update(kw)
    return LoRAConfig(**base)


def grpo_cfg(**kw):
    base = dict(num_generations=4, prompts_per_step=4, mini_batch_prompts=2, learning_rate=1e-2,
                beta=0.05, max_steps=2, device="cpu", eval_steps=0, save_steps=1)
    base.update(kw)
    return GRPOConfig(**base)


@pytest.fixture
def base_dir(tmp_path):
    tiny_model(seed=0).save_pretrained(tmp_path / "base")
    return tmp_path / "base"


def lora_model(base_dir, seed=1, **kw):
    torch.manual_seed(seed)  # the adapter's initial values
    return lora.apply_lora(load_backbone(base_dir), lora_cfg(**kw))


def test_reference_logprobs_are_the_base_models_without_a_copy(base_dir, monkeypatch):
    base = load_backbone(base_dir).eval()  # the base before LoRA, loaded independently
    copies = []
    real = copy.deepcopy
    monkeypatch.setattr(copy, "deepcopy", lambda x, *a, **k: (
        copies.append(type(x).__name__) if isinstance(x, torch.nn.Module) else None) or real(x, *a, **k))
    tr = GRPOTrainer(grpo_cfg(), StopTask(), lora_model(base_dir), StopReward())
    assert tr.ref_model is None and tr.ref_from_adapter and copies == []
    chunk = tr._rollout_chunk(0, 0, 0, [0, 1, 2])  # left-padded prompts, early stops
    assert chunk.attention_mask is not None and not chunk.attention_mask.all()
    with torch.no_grad():
        want = sequence_logprobs(base, chunk.sequences, chunk.prompt_len, chunk.segments,
                                 attention_mask=chunk.attention_mask)
    assert torch.equal(chunk.ref_logprobs, want)
    mask = chunk.loss_mask
    assert (chunk.old_logprobs[mask] - want[mask]).abs().max() > 1e-3  # the policy is not the base
    assert all(p.requires_grad for n, p in tr.model.named_parameters() if "lora_" in n)


def test_lora_grpo_resume_is_bit_exact(base_dir, tmp_path):
    """2 steps straight == 1 step, save, reload everything from disk, 1 step (LoRA dropout on:
    the updates' dropout stream is seeded per step, not carried in the process)."""
    c = grpo_cfg()
    straight = []
    a = GRPOTrainer(c, StopTask(), lora_model(base_dir, lora_dropout=0.1), StopReward(),
                    out_dir=tmp_path / "a", log_fn=straight.append)
    a.train(progress=False)
    ckpt = tmp_path / "a" / "checkpoints" / "step_00000001"
    saved = sorted(p.name for p in (ckpt / "model").iterdir())
    assert saved == ["adapter_config.json", "adapter_model.safetensors"]  # the adapter only
    trainable = {n for n, p in a.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    n_opt = sum(len(g["params"]) for g in a.optimizer.param_groups)
    assert n_opt == len(trainable)  # the optimizer holds the adapter's parameters only
    resumed = []
    torch.manual_seed(123)  # a "fresh process": other global RNG state, other initial adapter
    b = GRPOTrainer(c, StopTask(), lora_model(base_dir, seed=7, lora_dropout=0.1), StopReward(),
                    out_dir=tmp_path / "b", log_fn=resumed.append)
    assert b.resume(ckpt) and b.step == 1
    b.train(progress=False)
    for (n, p), q in zip(a.model.named_parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q), n
    last_a, last_b = straight[-1], resumed[-1]
    assert last_a["step"] == last_b["step"] == 2
    assert {k: v for k, v in last_a.items() if k not in TIMING} == {
        k: v for k, v in last_b.items() if k not in TIMING}


@pytest.mark.parametrize("merge", [True, False])
def test_export_round_trip_logits(base_dir, tmp_path, merge):
    model = lora_model(base_dir).eval()
    x = torch.randint(0, V, (2, 9))
    with torch.no_grad():
        before = model(input_ids=x).logits
        with model.disable_adapter():
            base_logits = model(input_ids=x).logits
    out = lora.export(model, tmp_path / "exported", merge=merge)
    files = {p.name for p in out.iterdir()}
    loaded = load_backbone(out).eval()
    with torch.no_grad():
        after = loaded(input_ids=x).logits
        still = model(input_ids=x).logits
    assert torch.equal(still, before) and lora.is_peft_model(model)  # export left the policy as is
    assert (before - base_logits).abs().max() > 1e-3
    if merge:
        assert "config.json" in files and lora.BASE_FILE not in files and not lora.is_peft_model(loaded)
        torch.testing.assert_close(after, before, rtol=0, atol=1e-5)  # merged weights round W + BA
    else:
        assert files == {lora.ADAPTER_CONFIG, lora.ADAPTER_WEIGHTS, lora.BASE_FILE}
        assert json.loads((out / lora.BASE_FILE).read_text()) == {"base": str(base_dir.resolve()),
                                                                  "vocab_size": V}
        assert lora.is_peft_model(loaded) and torch.equal(after, before)


def test_grown_vocabulary_adapter_round_trip(base_dir, tmp_path):
    """hf family with resize_embeddings + LoRA (embeddings in modules_to_save): the adapter
    export records the grown vocabulary and loads back to the same logits."""
    from worldmodels.models import BackboneConfig, make_backbone

    cfg = BackboneConfig(family="hf", path=str(base_dir), resize_embeddings=True,
                         lora=lora_cfg(modules_to_save=["embed_tokens", "lm_head"]))
    model = make_backbone(cfg, V + 5).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:  # as if trained: the new rows differ from any fresh init
                p.add_(0.05 * torch.randn_like(p))
    x = torch.randint(0, V + 5, (2, 7))
    with torch.no_grad():
        want = model(input_ids=x).logits
    out = lora.export(model, tmp_path / "adapter", merge=False)
    assert json.loads((out / lora.BASE_FILE).read_text())["vocab_size"] == V + 5
    state = torch.get_rng_state()
    loaded = load_backbone(out)
    assert torch.equal(torch.get_rng_state(), state)  # loading draws nothing from the global RNG
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=x).logits, want)


def test_adapter_loads_are_strict(base_dir, tmp_path):
    from worldmodels.train.checkpoint import load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "run", 1, {"model": lora_model(base_dir)})
    with pytest.raises(WeightsMismatch, match=r"lora_alpha saved 8\.0 vs model 16\.0") as e:
        load_checkpoint(path, {"model": lora_model(base_dir, lora_alpha=16.0)}, restore_rng=False)
    assert str(path / "model") in str(e.value)
    with pytest.raises(WeightsMismatch, match=r"r saved 4 vs model 2"):
        load_checkpoint(path, {"model": lora_model(base_dir, r=2)}, restore_rng=False)
    with pytest.raises(WeightsMismatch, match="holds a LoRA adapter, but LlamaForCausalLM has none"):
        load_checkpoint(path, {"model": load_backbone(base_dir)}, restore_rng=False)
    full = save_checkpoint(tmp_path / "full", 1, {"model": load_backbone(base_dir)})
    with pytest.raises(FileNotFoundError, match="adapter_model.safetensors: missing"):
        load_checkpoint(full, {"model": lora_model(base_dir)}, restore_rng=False)
    # tampered adapter weights: a key gone
    from safetensors.torch import load_file, save_file

    f = path / "model" / lora.ADAPTER_WEIGHTS
    state = load_file(str(f))
    gone = sorted(state)[0]
    state.pop(gone)
    save_file(state, str(f))
    with pytest.raises(WeightsMismatch, match=r"1 missing key\(s\)"):
        load_checkpoint(path, {"model": lora_model(base_dir)}, restore_rng=False)


def test_adapter_dir_names_a_missing_base(base_dir, tmp_path):
    out = lora.export(lora_model(base_dir), tmp_path / "adapter", merge=False)
    rec = json.loads((out / lora.BASE_FILE).read_text())
    rec["base"] = str(tmp_path / "gone")
    (out / lora.BASE_FILE).write_text(json.dumps(rec))
    with pytest.raises(FileNotFoundError, match=r"lora_base\.json: base backbone .*gone \(field 'base'\)"):
        load_backbone(out)
    (out / lora.BASE_FILE).write_text("{}")
    with pytest.raises(ValueError, match=r"lora_base\.json: expected"):
        load_backbone(out)
    built = lora.apply_lora(tiny_model(), lora_cfg())  # base not from a directory: say so
    with pytest.raises(ValueError, match=r"pass base=<dir with config.json or a .gguf file> or export with merge=True"):
        lora.export(built, tmp_path / "nowhere", merge=False)


def test_mle_with_lora_trains_and_checkpoints_the_adapter_only(base_dir, tmp_path):
    from worldmodels.train.mle import train_mle
    from worldmodels.train.mle_config import MLEConfig, OptimConfig

    model = lora_model(base_dir)
    frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    adapter = {n: p.clone() for n, p in model.named_parameters() if p.requires_grad}
    cfg = MLEConfig(steps=2, batch_size=8, device="cpu", eval_every=0, save_every=0, log_every=1,
                    tensorboard=False, precision="fp32", optim=OptimConfig(lr=1e-2, warmup_steps=0))
    train_mle(model, LMTask(), cfg, tmp_path / "run")
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    assert any(not torch.equal(p, adapter[n]) for n, p in model.named_parameters() if n in adapter)
    ckpt = tmp_path / "run" / "checkpoints" / "step_00000002" / "model"
    assert sorted(p.name for p in ckpt.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
