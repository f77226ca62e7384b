"""Rollout engine speed paths give the same samples as the plain path.

Shared prefill (one prefill per group of identical prompts), the static cache and compaction
(stopped rows left out of the decode steps) only change how the model is called: with the same
generator, the sampled tokens, stop flags and lengths are identical and the log-probs equal to
float rounding (bit for bit between shared and plain prefill on the same cache). How often and
on how many rows the model ran is read with a hook on the embedding layer (the number of rows
each forward fed).
"""

import warnings

import pytest
import torch
from rollout_toys import padded_group_request
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from worldmodels.tasks.base import RolloutRequest
from worldmodels.train.rollout import DecodeConfig, rollout, sequence_logprobs
from worldmodels.train.rollout_cache import cache_keyword, output_cache

V = 40
PLAIN = DecodeConfig(share_prefill=False, cache="dynamic", compact=False)  # the engine before sharing


def tiny_lm(arch="llama", seed=0):
    torch.manual_seed(seed)
    if arch == "gpt2":  # learned absolute positions: a position off by one changes the logits
        return GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=64, n_embd=32, n_layer=2, n_head=4)).eval()
    cfg = LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      tie_word_embeddings=False, attn_implementation="sdpa")
    return LlamaForCausalLM(cfg).eval()


def rows_fed(model):
    """A list that records the batch size of every forward of ``model`` (via its embeddings)."""
    seen = []
    model.get_input_embeddings().register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    return seen


def grouped_request(G=3, seed=4):
    """GRPO's layout (``rollout_toys.padded_group_request``): 4 left-padded prompts each
    repeated G times, stop ids, a forced stretch and a second generated stretch."""
    return padded_group_request(G, seed, V)


def assert_same(a, b, atol=0.0):
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert torch.equal(a.stopped, b.stopped) and torch.equal(a.lengths, b.lengths)
    assert torch.equal(a.attention_mask, b.attention_mask) and torch.equal(a.loss_mask, b.loss_mask)
    torch.testing.assert_close(a.logprobs, b.logprobs, atol=atol, rtol=0)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("cache", ["dynamic", "auto"])
def test_shared_prefill_samples_equal_plain_prefill(arch, cache):
    """Temperature-1 sampling with one generator: sharing the prefill across each group gives
    the same tokens and log-probs as prefilling every row; the prefill ran on one row per group."""
    model = tiny_lm(arch, 1)
    req = grouped_request(G=3)
    seen = rows_fed(model)
    shared = rollout(model, req, generator=torch.Generator().manual_seed(0),
                     decode=DecodeConfig(cache=cache))
    assert seen[0] == 4  # 12 rows, 4 distinct prompts: one prefill row per group
    seen.clear()
    plain = rollout(model, req, generator=torch.Generator().manual_seed(0),
                    decode=DecodeConfig(share_prefill=False, cache=cache, compact=False))
    assert seen[0] == 12
    assert shared.lengths.unique().numel() >= 3 and shared.stopped.any()  # mixed lengths, stops
    assert shared.completion_ids[:, :8].view(4, 3, 8).unique(dim=1).shape[1] > 1  # samples differ in a group
    assert_same(shared, plain, atol=1e-6)  # a prefill of 4 rows vs 12: matmul rounding may differ
    # the rollout's own log-probs are what one forward over the sequences gives
    lp = sequence_logprobs(model, shared.sequences, req.prompt_ids.shape[1], req.segments,
                           attention_mask=shared.attention_mask)
    torch.testing.assert_close(lp, shared.logprobs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_static_cache_and_compaction_equal_dynamic_cache(arch):
    """The default path (shared prefill, static cache, compaction) against the plain one, at
    temperature 1 and greedy; compaction feeds fewer rows once most rows have stopped."""
    model = tiny_lm(arch, 2)
    req = grouped_request(G=3, seed=6)
    seen = rows_fed(model)
    for kw in ({"temperature": 1.0}, {"temperature": 0.7, "top_p": 0.9}, {"top_k": 1}):
        seen.clear()
        fast = rollout(model, req, generator=torch.Generator().manual_seed(1), **kw)
        fed = list(seen)
        plain = rollout(model, req, generator=torch.Generator().manual_seed(1), decode=PLAIN, **kw)
        assert_same(fast, plain, atol=1e-6)  # static vs dynamic cache: the same sums, other order
    # greedy: the 4 groups stop at different steps, and the batch shrank while they did
    assert fast.lengths.view(4, 3).unique().numel() >= 2
    assert fed[0] == 4 and min(fed) < 12


@pytest.mark.parametrize("grow", [1, 3])
def test_static_cache_growth_equals_dynamic_cache(monkeypatch, grow):
    """The eager static cache starts ``static_grow`` positions past the prompt and grows by that
    much when full: with 1 or 3 it grows several times (across compaction, the forced stretch
    and the second segment), and the samples still equal the plain dynamic path's; the cache
    never outgrows the whole sequence. ``static_grow=0`` allocates it all at once."""
    import worldmodels.train.rollout_cache as rc

    sizes = []
    real_grow = rc.Stepper._grow

    def spy(self, length):
        real_grow(self, length)
        sizes.append(self.alloc)

    monkeypatch.setattr(rc.Stepper, "_grow", spy)
    model = tiny_lm("llama", 2)
    req = grouped_request(G=3, seed=6)
    total = req.prompt_ids.shape[1] + sum(s.length for s in req.segments)
    for g, kw in [(grow, {"temperature": 1.0}), (grow, {"top_k": 1}), (0, {"temperature": 1.0})]:
        sizes.clear()
        fast = rollout(model, req, generator=torch.Generator().manual_seed(1),
                       decode=DecodeConfig(static_grow=g), **kw)
        plain = rollout(model, req, generator=torch.Generator().manual_seed(1), decode=PLAIN, **kw)
        assert_same(fast, plain, atol=1e-6)
        if g:
            assert len(sizes) >= 2 and sizes == sorted(sizes) and sizes[-1] <= total
            assert sizes[0] <= req.prompt_ids.shape[1] + 2 * g + 1
        else:
            assert sizes == []
    with pytest.raises(ValueError, match="static_grow"):
        DecodeConfig(static_grow=-1)


def test_compaction_widens_again_for_a_later_segment():
    """Rows that stopped in the first generate segment come back for the forced tokens and the
    second segment: all 12 rows are fed again after the narrowed steps."""
    model = tiny_lm("llama", 3)
    req = grouped_request(G=3, seed=6)
    seen = rows_fed(model)
    out = rollout(model, req, top_k=1)
    first = req.segments[0].length
    stopped_early = (out.loss_mask[:, :first].sum(1) < first).sum()
    assert stopped_early >= 7, "precondition: most rows stop inside the first segment"
    narrowed = [i for i, n in enumerate(seen) if n < 12][1:]  # after the shared prefill
    assert narrowed and seen[narrowed[-1] + 1] == 12
    assert out.loss_mask[:, 10:].any(1).all()  # every row generated in the second segment


def test_rows_that_differ_within_a_group_fall_back_with_a_warning():
    model = tiny_lm("llama", 4)
    req = grouped_request(G=3)
    req.prompt_ids = req.prompt_ids.clone()
    req.prompt_ids[1, -1] = (req.prompt_ids[1, -1] + 1) % V  # row 1 no longer equals row 0
    seen = rows_fed(model)
    with pytest.warns(UserWarning, match="rows of a group differ"):
        out = rollout(model, req, generator=torch.Generator().manual_seed(0))
    assert seen[0] == 12
    plain = rollout(model, req, generator=torch.Generator().manual_seed(0),
                    decode=DecodeConfig(share_prefill=False))
    assert_same(out, plain)


def test_unexpandable_cache_falls_back_to_prefilling_every_row():
    """A model whose cache is a plain tuple (no ``batch_repeat_interleave``): the shared prefill
    is redone on all rows; the samples are still those of the plain path."""
    from types import SimpleNamespace

    class TupleCacheLM(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids=None, attention_mask=None, position_ids=None,
                    past_key_values=None, use_cache=None, logits_to_keep=0):
            cache = None if past_key_values is None else past_key_values[0]
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             use_cache=True, logits_to_keep=logits_to_keep,
                             **{cache_keyword(self.inner): cache})
            return SimpleNamespace(logits=out.logits, past_key_values=(output_cache(out),))

    inner = tiny_lm("llama", 5)
    req = grouped_request(G=3)
    seen = rows_fed(inner)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = rollout(TupleCacheLM(inner), req, generator=torch.Generator().manual_seed(2))
    assert seen[:2] == [4, 12]
    plain = rollout(inner, req, generator=torch.Generator().manual_seed(2), decode=PLAIN)
    assert_same(out, plain, atol=0)


def test_group_size_validation():
    req = grouped_request(G=3)
    assert req.to("cpu").group_size == 3
    with pytest.raises(ValueError, match="group_size"):
        RolloutRequest(req.prompt_ids, req.segments, req.prompt_mask, group_size=5)  # 12 % 5
    with pytest.raises(ValueError, match="group_size"):
        rollout(tiny_lm(), req.prompt_ids, req.segments, group_size=0)
    with pytest.raises(ValueError, match="DecodeConfig.cache"):
        DecodeConfig(cache="paged")
    with pytest.raises(ValueError, match="cuda_graphs needs a CUDA"):
        rollout(tiny_lm(), req, decode=DecodeConfig(cuda_graphs=True))


def test_static_cache_required_but_unsupported_raises():
    from types import SimpleNamespace

    class NoConfigLM(torch.nn.Module):  # no transformers class: no static cache
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None,
                    use_cache=None, logits_to_keep=0):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             cache=cache, use_cache=use_cache, logits_to_keep=logits_to_keep)
            return SimpleNamespace(logits=out.logits, cache=output_cache(out))

    req = grouped_request(G=3)
    with pytest.raises(ValueError, match="StaticCache"):
        rollout(NoConfigLM(tiny_lm()), req, decode=DecodeConfig(cache="static"))


@pytest.mark.slow
def test_compiled_decode_step_equals_eager():
    """``DecodeConfig(compile=True)`` (inductor on CPU; minutes of compilation, hence slow):
    the same greedy tokens and, at temperature 1 with one generator, the same samples as the
    eager static path; a second call reuses the compiled step and the cache."""
    model = tiny_lm("llama", 7)
    req = grouped_request(G=3, seed=6)
    comp = DecodeConfig(compile=True)
    for kw in ({"top_k": 1}, {"temperature": 1.0}):
        eager = rollout(model, req, generator=torch.Generator().manual_seed(3), **kw)
        for _ in range(2):
            out = rollout(model, req, generator=torch.Generator().manual_seed(3), decode=comp, **kw)
            assert_same(out, eager, atol=1e-5)
