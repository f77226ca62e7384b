"""Rollout engine: vocab masks, forced segments, KV-cache == full forward log-probs, padding."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from worldmodels.tasks.base import repeat_batch
from worldmodels.train.rollout import Segment, rollout, segment_masks, sequence_logprobs

V = 40


def tiny_lm(seed=0, attn="sdpa"):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      tie_word_embeddings=False, attn_implementation=attn)
    return LlamaForCausalLM(cfg).eval()


def segments(B, gen=None):
    g = torch.Generator().manual_seed(1)
    return [Segment("generate", 6, allowed=(0, 10)),
            Segment("force", 3, tokens=torch.randint(20, 30, (B, 3), generator=g)),
            Segment("generate", 5, allowed=(10, 20)),
            Segment("generate", 2, allowed=(38, 40))]


def test_vocab_masks_forced_tokens_and_loss_mask():
    model = tiny_lm()
    B, P = 16, 5
    prompt = torch.randint(0, V, (B, P), generator=torch.Generator().manual_seed(0))
    segs = segments(B)
    out = rollout(model, prompt, segs, temperature=2.0, generator=torch.Generator().manual_seed(3))
    c = out.completion_ids
    assert out.sequences.shape == (B, P + 16) and torch.equal(out.sequences[:, :P], prompt)
    assert ((c[:, :6] >= 0) & (c[:, :6] < 10)).all()
    assert torch.equal(c[:, 6:9], segs[1].tokens)
    assert ((c[:, 9:14] >= 10) & (c[:, 9:14] < 20)).all()
    assert ((c[:, 14:] >= 38) & (c[:, 14:] < 40)).all()
    assert out.loss_mask[:, :6].all() and not out.loss_mask[:, 6:9].any() and out.loss_mask[:, 9:].all()
    assert (out.logprobs[:, 6:9] == 0).all() and (out.logprobs[out.loss_mask] < 0).all()
    assert torch.isfinite(out.logprobs).all()
    # high temperature: several distinct tokens get sampled (the sampler is not degenerate)
    assert c[:, :6].unique().numel() > 3


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_kv_cache_logprobs_equal_full_forward(temperature):
    model = tiny_lm(1)
    B, P = 6, 7
    prompt = torch.randint(0, V, (B, P), generator=torch.Generator().manual_seed(5))
    segs = segments(B)
    out = rollout(model, prompt, segs, temperature=temperature, top_k=8,
                  generator=torch.Generator().manual_seed(2))
    lp = sequence_logprobs(model, out.sequences, P, segs, temperature=temperature)
    torch.testing.assert_close(lp, out.logprobs, atol=1e-5, rtol=1e-5)
    # independent reference: plain full-vocab log_softmax on a fresh forward pass
    with torch.no_grad():
        logits = model(out.sequences).logits[:, P - 1 : -1].float()
    ref = (logits[:, 9:14, 10:20] / temperature).log_softmax(-1)
    tgt = out.completion_ids[:, 9:14] - 10
    torch.testing.assert_close(lp[:, 9:14], ref.gather(-1, tgt[..., None])[..., 0], atol=1e-5, rtol=0)


def test_sequence_logprobs_is_differentiable():
    model = tiny_lm(2).train()
    B, P = 3, 4
    prompt = torch.randint(0, V, (B, P))
    segs = segments(B)
    out = rollout(model, prompt, segs)
    lp = sequence_logprobs(model, out.sequences, P, segs)
    lp.sum().backward()
    assert model.lm_head.weight.grad is not None and model.lm_head.weight.grad.abs().sum() > 0


def test_top_k_1_matches_generate_greedy():
    model = tiny_lm(3)
    prompt = torch.randint(0, V, (4, 6), generator=torch.Generator().manual_seed(9))
    out = rollout(model, prompt, [Segment("generate", 10)], top_k=1)
    ref = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=10,
                         min_new_tokens=10, do_sample=False, pad_token_id=0, eos_token_id=None)
    assert torch.equal(out.sequences, ref)


def test_top_p_restricts_to_nucleus():
    model = tiny_lm(4)
    prompt = torch.randint(0, V, (64, 3), generator=torch.Generator().manual_seed(1))
    out = rollout(model, prompt, [Segment("generate", 1)], top_p=1e-6,
                  generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        greedy = model(prompt).logits[:, -1].argmax(-1)
    assert torch.equal(out.completion_ids[:, 0], greedy)


def test_left_padded_prompts_match_unpadded():
    model = tiny_lm(5)
    short = torch.randint(0, V, (1, 4), generator=torch.Generator().manual_seed(1))
    long = torch.randint(0, V, (1, 7), generator=torch.Generator().manual_seed(2))
    padded = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), short], 1), long])
    mask = torch.ones_like(padded, dtype=torch.bool)
    mask[0, :3] = False
    segs = [Segment("generate", 5, allowed=(0, 20))]
    out = rollout(model, padded, segs, top_k=1, prompt_mask=mask)
    for row, p in enumerate([short, long]):
        ref = rollout(model, p, segs, top_k=1)
        assert torch.equal(out.completion_ids[row], ref.completion_ids[0])
        torch.testing.assert_close(out.logprobs[row], ref.logprobs[0], atol=1e-5, rtol=0)
    full_mask = torch.cat([mask, torch.ones(2, 5, dtype=torch.bool)], 1)
    lp = sequence_logprobs(model, out.sequences, 7, segs, attention_mask=full_mask)
    torch.testing.assert_close(lp, out.logprobs, atol=1e-5, rtol=1e-5)


def test_stop_token_pads_rest_of_segment():
    model = tiny_lm(6)
    prompt = torch.randint(0, V, (32, 3), generator=torch.Generator().manual_seed(0))
    segs = [Segment("generate", 8, allowed=(1, 6), stop_ids=(1,))]
    out = rollout(model, prompt, segs, temperature=3.0, generator=torch.Generator().manual_seed(1))
    c, m = out.completion_ids, out.loss_mask
    stopped = 0
    for r in range(32):
        hits = (c[r] == 1).nonzero()
        if len(hits):
            j = int(hits[0])
            stopped += 1
            assert m[r, : j + 1].all() and not m[r, j + 1 :].any() and (c[r, j + 1 :] == 0).all()
        else:
            assert m[r].all()
    assert stopped > 0
    assert torch.equal(segment_masks(c, segs), m)
    lp = sequence_logprobs(model, out.sequences, 3, segs, temperature=3.0)
    torch.testing.assert_close(lp, out.logprobs, atol=1e-5, rtol=1e-5)


def test_bad_segments_raise():
    with pytest.raises(ValueError, match="force Segment needs tokens"):
        Segment("force", 3)
    with pytest.raises(ValueError, match="kind"):
        Segment("sample", 3)
    model = tiny_lm()
    with pytest.raises(ValueError, match="exceeds the model vocabulary"):
        rollout(model, torch.zeros(1, 2, dtype=torch.long), [Segment("generate", 1, allowed=(0, 99))])


def test_repeat_batch_item_major():
    b = {"x": torch.tensor([[1], [2]]), "names": ["a", "b"], "k": 3}
    r = repeat_batch(b, 3)
    assert r["x"][:, 0].tolist() == [1, 1, 1, 2, 2, 2]
    assert r["names"] == ["a", "a", "a", "b", "b", "b"] and r["k"] == 3
