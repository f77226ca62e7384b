"""The RWKV-7 model: padding is invisible, the cache continues a sequence exactly, rows that
stop inside a decode batch do not disturb the others; save/load round trips (ours and fla's
directory layout) through ``load_backbone``; the ``rwkv7`` family builds, trains (chunked
gradients == token-by-token gradients), takes LoRA on its r/k/v/o projections.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/models/test_rwkv7_model.py
"""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rwkv7_toys import V, random_model  # noqa: E402

from worldmodels.models import BackboneConfig, count_params, load_backbone, make_backbone  # noqa: E402
from worldmodels.models.rwkv7 import RWKV7Config, RWKV7State  # noqa: E402
from worldmodels.strict_load import WeightsMismatch  # noqa: E402
from worldmodels.train.rollout_cache import output_cache

ATOL = 2e-5


def ids(B, T, seed=0):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_left_padded_rows_equal_unpadded_rows():
    model = random_model(1, chunk_size=8)
    rows = [ids(1, n, seed=n)[0] for n in (5, 19, 12)]
    T = max(len(r) for r in rows)
    batch = torch.full((3, T), 7)
    mask = torch.zeros(3, T, dtype=torch.long)
    for i, r in enumerate(rows):
        batch[i, T - len(r):], mask[i, T - len(r):] = r, 1
    out = model(batch, attention_mask=mask, use_cache=True)
    for i, r in enumerate(rows):
        alone = model(r[None], use_cache=True)
        torch.testing.assert_close(out.logits[i, T - len(r):], alone.logits[0], atol=ATOL, rtol=0)
        for la, lb in zip(output_cache(out).layers, output_cache(alone).layers, strict=True):
            for a, b in zip(la, lb, strict=True):
                torch.testing.assert_close(a[i], b[0], atol=ATOL, rtol=0)


@torch.no_grad()
@pytest.mark.parametrize("mode", ["chunk", "recurrent"])
def test_cache_continuation_equals_full_forward(mode):
    """Prefill k tokens, then 1 token at a time and a block of 6: the logits equal one forward
    over the whole sequence; the cache counts the tokens seen."""
    model = random_model(2, attn_mode=mode, chunk_size=16)
    x = ids(2, 40, seed=3)
    full = model(x).logits
    out = model(x[:, :25], use_cache=True)
    got = [out.logits]
    cache = output_cache(out)
    for t in range(25, 34):
        got.append(model(x[:, t:t + 1], cache=cache).logits)
    got.append(model(x[:, 34:], past_key_values=cache).logits)  # the older keyword works too
    torch.testing.assert_close(torch.cat(got, 1), full, atol=ATOL, rtol=0)
    assert cache.get_seq_length() == 40 and len(cache) == model.config.num_hidden_layers


@torch.no_grad()
def test_stopped_rows_in_a_decode_batch_do_not_disturb_the_others():
    """Decode with a mask over everything fed: a row whose new tokens are padding (mask 0)
    keeps its state, and a later real token continues it as if the padding never happened;
    the other rows are unaffected."""
    model = random_model(3)
    x = ids(2, 30, seed=4)
    out = model(x[:, :10], attention_mask=torch.ones(2, 10), use_cache=True)
    cache, mask = output_cache(out), torch.ones(2, 10, dtype=torch.long)
    logits = {0: [], 1: []}
    for t in range(10, 30):
        real = torch.tensor([1, 0 if 15 <= t < 22 else 1])  # row 1 pauses for 7 steps
        mask = torch.cat([mask, real[:, None]], 1)
        step = model(x[:, t:t + 1], attention_mask=mask, cache=cache).logits[:, -1]
        for r in (0, 1):
            if real[r]:
                logits[r].append(step[r])
    ref0 = model(x[:1]).logits[0, 10:]
    keep = torch.tensor([t for t in range(30) if not 15 <= t < 22])
    ref1 = model(x[1:, keep]).logits[0, 10:]
    torch.testing.assert_close(torch.stack(logits[0]), ref0, atol=ATOL, rtol=0)
    torch.testing.assert_close(torch.stack(logits[1]), ref1, atol=ATOL, rtol=0)


@torch.no_grad()
def test_cache_row_operations():
    model = random_model(4)
    x = ids(2, 6, seed=5)
    cache = output_cache(model(x, use_cache=True))
    wkv = cache.layers[1][1].clone()
    cache.batch_repeat_interleave(3)
    assert cache.batch_size == 6 and torch.equal(cache.layers[1][1][2], wkv[0])
    assert torch.equal(cache.layers[1][1][3], wkv[1])
    cache.batch_select_indices(torch.tensor([5, 0]))
    assert torch.equal(cache.layers[1][1], wkv.flip(0))
    assert cache.layers[1][1].dtype == torch.float32
    cache.crop(6)  # no-op
    with pytest.raises(ValueError, match="cannot drop tokens"):
        cache.crop(3)
    with pytest.raises(TypeError, match="RWKV7State"):
        model(x, cache=object())


def test_save_pretrained_load_backbone_round_trip_is_exact(tmp_path):
    model = random_model(5)
    model.save_pretrained(tmp_path / "bb")
    cfg = json.loads((tmp_path / "bb" / "config.json").read_text())
    assert cfg["model_type"] == "wm_rwkv7"
    loaded = load_backbone(tmp_path / "bb")
    assert type(loaded).__name__ == "RWKV7ForCausalLM" and not loaded.training
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    assert loaded.config.g_norm_eps == model.config.g_norm_eps == 64e-5
    x = ids(2, 9, seed=6)
    with torch.no_grad():
        assert torch.equal(model(x).logits, loaded(x).logits)


def test_fla_directory_loads_and_strict_errors_name_the_key(tmp_path):
    """An fla-style directory (model_type rwkv7, fla's config fields, fla's tensor names =
    ours) loads through load_backbone; a missing tensor is named."""
    from safetensors.torch import save_file

    model = random_model(6)
    c = model.config
    fla = {"model_type": "rwkv7", "hidden_size": c.hidden_size, "num_hidden_layers": c.num_hidden_layers,
           "head_dim": c.head_dim, "decay_low_rank_dim": c.decay_low_rank_dim,
           "a_low_rank_dim": c.a_low_rank_dim, "v_low_rank_dim": c.v_low_rank_dim,
           "gate_low_rank_dim": c.gate_low_rank_dim, "intermediate_size": c.intermediate_size,
           "hidden_act": "sqrelu", "norm_first": True, "norm_bias": True, "norm_eps": 1e-5,
           "attn": None, "fuse_norm": False, "vocab_size": V, "tie_word_embeddings": False,
           "value_dim": [c.hidden_size] * c.num_hidden_layers}
    d = tmp_path / "fla"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(fla))
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, d / "model.safetensors")
    loaded = load_backbone(d)
    assert loaded.config.g_norm_eps == pytest.approx(c.head_dim * 1e-5)  # fla's eps rule
    assert all(torch.equal(loaded.state_dict()[k], sd[k]) for k in sd)
    del sd["model.layers.1.attn.v_lora.lora.2.bias"]
    save_file(sd, d / "model.safetensors")
    with pytest.raises(WeightsMismatch, match=r"missing key.*model\.layers\.1\.attn\.v_lora\.lora\.2\.bias"):
        load_backbone(d)
    (d / "config.json").write_text(json.dumps(fla | {"attn": {"layers": [0]}}))
    with pytest.raises(ValueError, match="hybrid"):
        load_backbone(d)


def test_family_presets_and_config_validation():
    from worldmodels.models.llama import build_backbone as llama

    model = make_backbone(BackboneConfig(family="rwkv7", preset="tiny"), vocab_size=300)
    n = count_params(model, exclude_embeddings=True)
    n_llama = count_params(llama("tiny", 300), exclude_embeddings=True)
    assert abs(n - n_llama) / n_llama < 0.1, (n, n_llama)
    assert model.config.vocab_size == 300
    with pytest.raises(ValueError, match="preset"):
        BackboneConfig(family="rwkv7", preset="huge")
    with pytest.raises(ValueError, match="head_dim"):
        RWKV7Config(hidden_size=40, head_dim=16)
    with pytest.raises(ValueError, match="chunk_size"):
        RWKV7Config(hidden_size=32, head_dim=16, chunk_size=65)
    with pytest.raises(ValueError, match="attn_mode"):
        RWKV7Config(hidden_size=32, head_dim=16, attn_mode="parallel")


def test_tiny_preset_trains_and_chunked_gradients_equal_recurrent():
    torch.manual_seed(0)
    model = make_backbone(BackboneConfig(family="rwkv7", preset="test"), vocab_size=V).train()
    x = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8] * 5])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model(x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    # every parameter gets a gradient once the zero-initialised output layers moved
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # chunked vs token-by-token time-mix: same gradients through the whole model
    grads = {}
    for mode in ("chunk", "recurrent"):
        for layer in model.model.layers:
            layer.attn.mode, layer.attn.chunk_size = mode, 8
        model.zero_grad()
        model(x[:, :21], labels=x[:, :21]).loss.backward()
        grads[mode] = {n: p.grad.clone() for n, p in model.named_parameters()}
    for n, g in grads["chunk"].items():
        torch.testing.assert_close(g, grads["recurrent"][n], atol=1e-5, rtol=1e-4, msg=n)


def test_gradient_checkpointing_and_lora_targets():
    from worldmodels.models import LoRAConfig, enable_gradient_checkpointing

    model = random_model(7).train()
    x = ids(2, 12, seed=8)
    model(x, labels=x).loss.backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    enable_gradient_checkpointing(model)
    assert all(layer.gradient_checkpointing for layer in model.model.layers)
    model(x, labels=x).loss.backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, ref[n], atol=1e-6, rtol=1e-5, msg=n)
    lora = make_backbone(BackboneConfig(family="rwkv7", preset="test", lora=LoRAConfig(enabled=True)), V)
    trained = [n.split(".") for n, p in lora.named_parameters() if p.requires_grad]
    assert {n[-3] for n in trained} == {"lora_A", "lora_B"}
    assert {n[-4] for n in trained} == {"r_proj", "k_proj", "v_proj", "o_proj"}
    assert isinstance(output_cache(lora(x[:, :3], use_cache=True)), RWKV7State)


@torch.no_grad()
def test_generate_feeds_one_token_per_step_and_equals_greedy_rollout():
    from worldmodels.train.rollout import Segment, rollout

    model = random_model(8)
    x = ids(2, 6, seed=9)
    seen = []
    hook = model.get_input_embeddings().register_forward_hook(lambda m, i, o: seen.append(o.shape[1]))
    try:
        gen = model.generate(x, max_new_tokens=5, do_sample=False, pad_token_id=0)
    finally:
        hook.remove()
    assert seen == [6, 1, 1, 1, 1]  # the state carries the prefix
    greedy = rollout(model, x, [Segment("generate", 5)], top_k=1)
    assert torch.equal(gen[:, 6:], greedy.completion_ids)


def test_bf16_autocast_keeps_the_time_mix_in_float32():
    """Under CPU bf16 autocast (mle.py's precision=bf16) the WKV products stay float32 (bf16
    matmuls there would be off by ~1e-2); the whole model stays close to float32."""
    from worldmodels.models.rwkv7_ops import wkv7

    g = torch.Generator().manual_seed(0)
    r, k, v = (torch.randn(1, 64, 2, 16, generator=g) for _ in range(3))
    log_w = -0.6 * torch.ones(1, 64, 2, 16)
    kk = torch.nn.functional.normalize(torch.randn(1, 64, 2, 16, generator=g), dim=-1)
    args = (r, log_w, k, v, -kk, kk * 0.5, None)
    ref, _ = wkv7(*args, mode="chunk", chunk_size=64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, S = wkv7(*args, mode="chunk", chunk_size=64)
    assert got.dtype == S.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    model = random_model(9)
    x = ids(2, 70, seed=10)
    with torch.no_grad():
        full = model(x).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(x).logits.float()
    assert (half - full).abs().max() < 0.05 * full.abs().max()


def test_tied_round_trip_and_resized_pth(tmp_path):
    """A tied model reloads tied (lm_head is not saved); a bf16 BlinkDL file loads as float32
    through model.path, grown to the task's vocabulary only with resize_embeddings."""
    from rwkv7_toys import blinkdl_state_dict

    from worldmodels.models.rwkv7 import build_backbone

    tied = build_backbone("test", 30, tie_word_embeddings=True)
    tied.save_pretrained(tmp_path / "tied")
    back = load_backbone(tmp_path / "tied")
    assert back.lm_head.weight.data_ptr() == back.model.embeddings.weight.data_ptr()
    assert torch.equal(back.lm_head.weight, tied.lm_head.weight)
    torch.save({k: v.to(torch.bfloat16) for k, v in blinkdl_state_dict().items()}, tmp_path / "m.pth")
    with pytest.raises(ValueError, match=r"reads 50 token ids but the task needs 60.*resize_embeddings"):
        make_backbone(BackboneConfig(family="rwkv7", path=str(tmp_path / "m.pth")), 60)
    grown = make_backbone(BackboneConfig(family="rwkv7", path=str(tmp_path / "m.pth"),
                                         resize_embeddings=True), 60)
    assert grown.lm_head.weight.shape == (60, 64) and grown.lm_head.weight.dtype == torch.float32
    assert grown(ids(1, 5)).logits.shape == (1, 5, 60)
