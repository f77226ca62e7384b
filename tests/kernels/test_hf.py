"""transformers integration: a tiny Llama with attn_implementation="wm_triton" vs "sdpa".

    TRITON_INTERPRET=1 .venv/bin/pytest -q tests/kernels/test_hf.py
"""

import copy
import inspect

import pytest
import torch

from kernels.attention import register_with_transformers
from kernels.attention.hf import CALLS

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def models():
    from transformers import LlamaConfig, LlamaForCausalLM

    name = register_with_transformers()
    cfg = LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      bos_token_id=None, eos_token_id=None, pad_token_id=None)
    torch.manual_seed(0)
    ref = LlamaForCausalLM._from_config(copy.deepcopy(cfg), attn_implementation="sdpa")
    ours = LlamaForCausalLM._from_config(copy.deepcopy(cfg), attn_implementation=name)
    ours.load_state_dict(ref.state_dict())
    assert ref.config._attn_implementation == "sdpa"
    assert ours.config._attn_implementation == name
    return ref, ours


def test_same_logits_and_gradients_and_kernel_runs(models):
    ref, ours = models
    ids = torch.randint(0, 97, (2, 19), generator=torch.Generator().manual_seed(1))
    before = CALLS["triton"]
    out_ref = ref(ids, labels=ids)
    out_ours = ours(ids, labels=ids)
    assert CALLS["triton"] - before == 2  # one call per layer: the kernel really ran
    torch.testing.assert_close(out_ours.logits, out_ref.logits, rtol=1e-5, atol=1e-5)
    ref.zero_grad()
    ours.zero_grad()
    out_ref.loss.backward()
    out_ours.loss.backward()
    for (name, p_ref), p_ours in zip(ref.named_parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(p_ours.grad, p_ref.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_padded_batch_falls_back_to_sdpa(models):
    ref, ours = models
    ids = torch.randint(0, 97, (2, 12), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[0, :4] = 0  # left padding in the first row
    before = CALLS["triton"]
    with torch.no_grad():
        a = ref(ids, attention_mask=mask).logits
        b = ours(ids, attention_mask=mask).logits
    assert CALLS["triton"] == before
    torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)


def test_decode_steps_with_kv_cache_fall_back(models):
    ref, ours = models
    ids = torch.randint(0, 97, (2, 7), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        pre = ours(ids, use_cache=True)  # prefill: q_len == k_len, causal -> kernel
        before, before_sdpa = CALLS["triton"], CALLS["sdpa"]
        nxt = pre.logits[:, -1:].argmax(-1)  # (B,1)
        # the cache keyword of the installed transformers (5.24: cache=, older: past_key_values=)
        kw = "cache" if "cache" in inspect.signature(ours.forward).parameters else "past_key_values"
        step = ours(nxt, **{kw: getattr(pre, kw)}, use_cache=True)
        assert CALLS["triton"] == before and CALLS["sdpa"] == before_sdpa + 2
        full = ref(torch.cat([ids, nxt], 1)).logits[:, -1]
        torch.testing.assert_close(step.logits[:, -1], full, rtol=1e-5, atol=1e-5)
        g_ref = ref.generate(ids, max_new_tokens=4, do_sample=False)
        g_ours = ours.generate(ids, max_new_tokens=4, do_sample=False)
    assert torch.equal(g_ours, g_ref)


def test_name_with_flash_is_rejected():
    with pytest.raises(ValueError, match="flash"):
        register_with_transformers("my_flash_attn")
