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


# ---------------------------------------------------------------- stop ids, early exit, padding
def count_forwards(model):
    """Wrap ``model.forward`` so each call is counted in the returned list's length."""
    calls, inner = [], model.forward

    def forward(*a, **kw):
        calls.append(kw["input_ids"].shape[1])
        return inner(*a, **kw)

    model.forward = forward
    return calls


def test_early_exit_skips_the_model_once_every_row_stopped():
    model = tiny_lm(7)
    prompt = torch.randint(0, V, (8, 5), generator=torch.Generator().manual_seed(0))
    calls = count_forwards(model)
    # the only allowed token is the stop id: every row stops at token 1 of a 50-token segment
    out = rollout(model, prompt, [Segment("generate", 50, allowed=(3, 4), stop_ids=(3,))], pad_id=9)
    assert len(calls) == 1
    assert (out.completion_ids[:, 0] == 3).all() and (out.completion_ids[:, 1:] == 9).all()
    assert out.stopped.all() and (out.lengths == 1).all()
    assert out.loss_mask.sum() == 8 and (out.logprobs[:, 1:] == 0).all()
    assert torch.equal(out.attention_mask, torch.cat([torch.ones(8, 6), torch.zeros(8, 49)], 1).long())
    # a stop id that is never allowed: no row stops, all 50 steps run
    calls.clear()
    out = rollout(model, prompt, [Segment("generate", 50, allowed=(0, 3), stop_ids=(3,))], pad_id=9)
    assert len(calls) == 50 and not out.stopped.any() and (out.lengths == 50).all()
    assert out.loss_mask.all() and out.attention_mask.all()
    # rows stop at different steps: the model runs until the last one stops, no further
    calls.clear()
    out = rollout(model, prompt, [Segment("generate", 50, allowed=(1, 4), stop_ids=(1, 2))],
                  temperature=3.0, generator=torch.Generator().manual_seed(4))
    assert out.stopped.all() and out.lengths.unique().numel() > 1
    assert len(calls) == int(out.lengths.max()) < 50


def test_stop_flags_and_lengths_with_several_stop_ids():
    model = tiny_lm(8)
    B, P = 32, 3
    prompt = torch.randint(0, V, (B, P), generator=torch.Generator().manual_seed(0))
    force = torch.randint(20, 30, (B, 2), generator=torch.Generator().manual_seed(1))
    segs = [Segment("generate", 6, allowed=(1, 11), stop_ids=(1, 2)),
            Segment("force", 2, tokens=force),
            Segment("generate", 4, allowed=(3, 8), stop_ids=(3,))]
    out = rollout(model, prompt, segs, temperature=3.0, pad_id=0,
                  generator=torch.Generator().manual_seed(1))
    c = out.completion_ids
    kinds = set()
    for r in range(B):
        real, stops = [], []
        for lo, hi, ids in ((0, 6, (1, 2)), (8, 12, (3,))):
            hits = [j for j in range(lo, hi) if int(c[r, j]) in ids]
            end = hits[0] + 1 if hits else hi
            stops.append(bool(hits))
            real += list(range(lo, end))
            assert (c[r, end:hi] == 0).all()
        real += [6, 7]
        kinds.add(tuple(stops))
        want = torch.zeros(12, dtype=torch.bool)
        want[real] = True
        assert torch.equal(out.attention_mask[r, P:].bool(), want)
        want[6:8] = False
        assert torch.equal(out.loss_mask[r], want)
        assert bool(out.stopped[r]) == all(stops) and int(out.lengths[r]) == len(real)
    assert torch.equal(c[:, 6:8], force) and (out.attention_mask[:, :P] == 1).all()
    assert {(True, True), (False, True), (True, False)} <= kinds  # all cases occur in this draw
    lp = sequence_logprobs(model, out.sequences, P, segs, 3.0, attention_mask=out.attention_mask)
    torch.testing.assert_close(lp, out.logprobs, atol=1e-5, rtol=1e-5)
    # without a mask, the completion's padding is recomputed from the stop ids
    torch.testing.assert_close(sequence_logprobs(model, out.sequences, P, segs, 3.0), lp, atol=1e-6, rtol=0)


def left_pad(rows, pad=0):
    P = max(r.shape[0] for r in rows)
    ids = torch.full((len(rows), P), pad, dtype=torch.long)
    mask = torch.zeros(len(rows), P, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, P - len(r):], mask[i, P - len(r):] = r, True
    return ids, mask


def tiny_gpt2(seed=0):
    """Learned absolute positions: a row fed at shifted positions gives other logits (RoPE
    would not notice a uniform shift)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=64, n_embd=32, n_layer=2,
                                      n_head=4)).eval()


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_padded_stopping_rows_equal_each_row_alone(arch):
    """Left-padded prompts + rows stopping at different steps (greedy): every row's tokens and
    log-probs equal the same row rolled out alone, and ``sequence_logprobs`` with the rollout's
    attention mask reproduces them (post-stop padding is never attended to)."""
    model = tiny_lm(9) if arch == "llama" else tiny_gpt2(9)
    g = torch.Generator().manual_seed(3)
    rows = [torch.randint(0, V, (n,), generator=g) for n in (2, 7, 4, 5, 3, 6)]
    prompt, mask = left_pad(rows, pad=17)
    B, P = prompt.shape
    force = torch.randint(20, 30, (B, 2), generator=g)

    def segs(stop, f):
        return [Segment("generate", 7, allowed=(0, 20), stop_ids=stop), Segment("force", 2, tokens=f),
                Segment("generate", 3, allowed=(30, 40))]

    free = rollout(model, prompt, segs((), force), top_k=1, prompt_mask=mask)
    stop = (int(free.completion_ids[0, 1]), int(free.completion_ids[3, 3]))  # seen at two steps
    out = rollout(model, prompt, segs(stop, force), top_k=1, prompt_mask=mask, pad_id=5)
    assert out.stopped.any() and out.lengths.unique().numel() >= 2  # rows end at different steps
    lp = sequence_logprobs(model, out.sequences, P, segs(stop, force), attention_mask=out.attention_mask)
    torch.testing.assert_close(lp, out.logprobs, atol=1e-5, rtol=1e-5)
    for r, p in enumerate(rows):
        s = segs(stop, force[r : r + 1])
        alone = rollout(model, p[None], s, top_k=1, pad_id=5)
        assert torch.equal(out.completion_ids[r], alone.completion_ids[0])
        assert torch.equal(out.stopped[r], alone.stopped[0]) and out.lengths[r] == alone.lengths[0]
        torch.testing.assert_close(out.logprobs[r], alone.logprobs[0], atol=1e-5, rtol=0)
        lp_alone = sequence_logprobs(model, alone.sequences, len(p), s, attention_mask=alone.attention_mask)
        torch.testing.assert_close(lp[r], lp_alone[0], atol=1e-5, rtol=0)


def test_positions_from_mask():
    from worldmodels.train.rollout import positions_from_mask

    m = torch.tensor([[0, 0, 1, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1, 1]])
    assert positions_from_mask(m).tolist() == [[0, 0, 0, 1, 2, 2, 3], [0, 1, 2, 3, 4, 5, 6]]
    assert positions_from_mask(m.bool()).dtype == torch.long


class _PastKeyValuesLM(torch.nn.Module):
    """An older-transformers-style forward: the cache goes in and out as ``past_key_values``."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                use_cache=None, logits_to_keep=0):
        from types import SimpleNamespace

        from worldmodels.train.rollout import cache_keyword

        key = cache_keyword(self.inner)
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=use_cache, logits_to_keep=logits_to_keep, **{key: past_key_values})
        return SimpleNamespace(logits=out.logits, past_key_values=getattr(out, key))


class _KwargsWrapper(torch.nn.Module):
    """A peft-like wrapper whose forward takes ``**kwargs``."""

    def __init__(self, inner):
        super().__init__()
        self.base = inner

    def get_base_model(self):
        return self.base

    def forward(self, *args, **kwargs):
        return self.base(*args, **kwargs)


def test_cache_keyword_follows_the_forward_signature_without_warnings():
    import inspect
    import warnings

    from worldmodels.train.rollout import cache_keyword

    model = tiny_lm(10)
    new_api = "cache" in inspect.signature(type(model).forward).parameters
    assert cache_keyword(model) == ("cache" if new_api else "past_key_values")
    assert cache_keyword(_KwargsWrapper(model)) == cache_keyword(model)
    assert cache_keyword(_PastKeyValuesLM(model)) == "past_key_values"
    prompt, mask = left_pad([torch.arange(3), torch.arange(5)])
    segs = [Segment("generate", 6, allowed=(0, 20), stop_ids=(4,)),
            Segment("force", 1, tokens=torch.full((2, 1), 30))]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        ref = rollout(model, prompt, segs, top_k=1, prompt_mask=mask)
        for m in (_KwargsWrapper(model), _PastKeyValuesLM(model)):
            out = rollout(m, prompt, segs, top_k=1, prompt_mask=mask)
            assert torch.equal(out.sequences, ref.sequences)
            torch.testing.assert_close(out.logprobs, ref.logprobs, atol=1e-6, rtol=0)

