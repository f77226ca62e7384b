"""The padded, stopping rollout on a CUDA device in bf16 against the CPU fp32 result.

Marked ``gpu``: the default suite deselects it; on a lent device::

    python -m pytest -q -m gpu tests/gpu/test_cuda_rollout.py

Left-padded prompts of different lengths, answers that stop at different steps (several stop
ids), a forced stretch after them and a second generated stretch, greedy (``top_k=1``): the
CUDA bf16 rollout must pick the same tokens as the CPU fp32 one (the model is initialised with
large weights so greedy choices have clear margins; the test checks the margins on CPU first)
and give close log-probs; its ``sequence_logprobs`` with ``out.attention_mask`` must reproduce
its own log-probs. The request is built on the CPU: the rollout moves prompts, prompt mask and
forced tokens to the model's device.
"""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from worldmodels.train.rollout import Segment, rollout, sequence_logprobs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

V, H = 64, 64
SCALE = 4.0  # output-layer scale: larger gives more peaked greedy choices


def make_model():
    """A tiny Llama whose greedy choices have clear margins (bf16 rounding cannot flip them):
    large token embeddings, and an output layer that maps the current token to one target in
    each generate range; the layers still add a context-dependent part to every logit."""
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=V, hidden_size=H, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      tie_word_embeddings=False, initializer_range=0.09, attn_implementation="sdpa")
    model = LlamaForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        emb = model.model.embed_tokens.weight.normal_(0, 1, generator=g)
        unit = emb / emb.norm(dim=1, keepdim=True)
        head = torch.zeros(V, H)
        head.index_add_(0, torch.randint(0, 40, (V,), generator=g), unit)
        head.index_add_(0, torch.randint(50, 64, (V,), generator=g), unit)
        model.lm_head.weight.copy_(head * SCALE)
    return model


def make_request():
    g = torch.Generator().manual_seed(5)
    lens = (3, 11, 6, 9, 4, 8, 12, 5)
    P = max(lens)
    prompt = torch.zeros(len(lens), P, dtype=torch.long)
    mask = torch.zeros(len(lens), P, dtype=torch.bool)
    for i, n in enumerate(lens):
        prompt[i, P - n:] = torch.randint(0, V, (n,), generator=g)
        mask[i, P - n:] = True
    force = torch.randint(40, 50, (len(lens), 3), generator=g)
    return prompt, mask, force


def segments(force, stop_ids):
    return [Segment("generate", 12, allowed=(0, 40), stop_ids=stop_ids),
            Segment("force", 3, tokens=force),
            Segment("generate", 6, allowed=(50, 64))]


def compare(device: str, dtype: torch.dtype):
    """Asserts the properties above for ``model.to(device, dtype)`` against CPU fp32."""
    model = make_model()
    prompt, mask, force = make_request()
    P = prompt.shape[1]
    free = rollout(model, prompt, segments(force, ()), top_k=1, prompt_mask=mask)
    stop_ids = (int(free.completion_ids[0, 2]), int(free.completion_ids[3, 6]))
    segs = segments(force, stop_ids)
    ref = rollout(model, prompt, segs, top_k=1, prompt_mask=mask, pad_id=63)
    assert ref.stopped.any() and ref.lengths.unique().numel() >= 3, "the draw must mix lengths"
    with torch.no_grad():  # precondition: greedy choices are clear in fp32
        full = model(input_ids=ref.sequences, attention_mask=ref.attention_mask,
                     position_ids=(ref.attention_mask.cumsum(1) - 1).clamp(min=0)).logits[:, P - 1:-1]
    masked = torch.full_like(full, float("-inf"))
    masked[:, :12, :40], masked[:, 15:, 50:] = full[:, :12, :40], full[:, 15:, 50:]
    top2 = masked.topk(2, -1).values
    margin = (top2[..., 0] - top2[..., 1])[ref.loss_mask]
    # bf16 moves these logits by <= 0.2 (measured on CPU), so a margin > 0.5 cannot flip
    assert margin.min() > 0.5, f"fp32 greedy margin {margin.min():.3g} too small for a bf16 check"

    dev_model = make_model().to(device, dtype)
    out = rollout(dev_model, prompt, segs, top_k=1, prompt_mask=mask, pad_id=63)
    assert out.completion_ids.device.type == torch.device(device).type
    assert torch.equal(out.completion_ids.cpu(), ref.completion_ids)
    assert torch.equal(out.attention_mask.cpu(), ref.attention_mask)
    assert torch.equal(out.stopped.cpu(), ref.stopped) and torch.equal(out.lengths.cpu(), ref.lengths)
    # (attending to the padding instead moves some log-probs by ~0.4 and changes tokens)
    torch.testing.assert_close(out.logprobs.cpu(), ref.logprobs, atol=0.08, rtol=0)
    with torch.no_grad():
        lp = sequence_logprobs(dev_model, out.sequences, P, segs, attention_mask=out.attention_mask)
    torch.testing.assert_close(lp.float(), out.logprobs, atol=0.08, rtol=0)
    return (out.logprobs.cpu() - ref.logprobs).abs().max().item()


def test_padded_stopping_rollout_cuda_bf16_matches_cpu_fp32():
    err = compare("cuda", torch.bfloat16)
    print(f"max |log-prob difference| bf16 CUDA vs fp32 CPU: {err:.4f}")
