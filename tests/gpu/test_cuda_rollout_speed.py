"""The rollout engine's CUDA-graph decode step gives what the eager path gives, on a CUDA device.

Marked ``gpu``: the default suite deselects it; on a lent device::

    python -m pytest -q -m gpu tests/gpu/test_cuda_rollout_speed.py

GRPO-like request (4 left-padded prompts x group 3, stop ids, a forced stretch, a second
generated stretch), fp32: ``DecodeConfig(cuda_graphs=True)`` (``torch.compile`` mode
"reduce-overhead" of the one-token step on the static cache) against the eager static path and
the plain path (no shared prefill, dynamic cache, no compaction): the same greedy tokens, the
same temperature-1 samples from one CUDA generator, log-probs equal to float rounding; a second
call replays the captured graphs on the reused cache and gives the same again.
"""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from worldmodels.tasks.base import RolloutRequest, repeat_batch
from worldmodels.train.rollout import DecodeConfig, Segment, rollout

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

V, H = 64, 64
PLAIN = DecodeConfig(share_prefill=False, cache="dynamic", compact=False)


def make_model():
    """A tiny Llama whose greedy choices have clear margins (large embeddings, an output layer
    mapping each token to targets in the generate ranges), so kernel-level rounding differences
    between the eager and the compiled step cannot flip a greedy choice."""
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
        model.lm_head.weight.copy_(head * 4.0)
    return model


def grouped_request(stop_ids=(), G=3):
    g = torch.Generator().manual_seed(5)
    lens = (3, 11, 6, 9)
    P = max(lens)
    prompt = torch.zeros(len(lens), P, dtype=torch.long)
    mask = torch.zeros(len(lens), P, dtype=torch.bool)
    for i, n in enumerate(lens):
        prompt[i, P - n:] = torch.randint(0, V, (n,), generator=g)
        mask[i, P - n:] = True
    force = torch.randint(40, 50, (len(lens), 3), generator=g)
    b = repeat_batch({"prompt": prompt, "mask": mask, "force": force}, G)
    segs = [Segment("generate", 12, allowed=(0, 40), stop_ids=stop_ids),
            Segment("force", 3, tokens=b["force"]),
            Segment("generate", 6, allowed=(50, 64))]
    return RolloutRequest(b["prompt"], segs, b["mask"], pad_id=63, group_size=G)


def same(a, b, atol):
    assert torch.equal(a.completion_ids.cpu(), b.completion_ids.cpu())
    assert torch.equal(a.attention_mask.cpu(), b.attention_mask.cpu())
    assert torch.equal(a.stopped.cpu(), b.stopped.cpu()) and torch.equal(a.lengths.cpu(), b.lengths.cpu())
    torch.testing.assert_close(a.logprobs.cpu(), b.logprobs.cpu(), atol=atol, rtol=0)


def test_cuda_graph_decode_step_equals_the_eager_path():
    model = make_model()
    free = rollout(model, grouped_request(), top_k=1).completion_ids  # CPU, no stops
    # stop ids seen at different steps of different groups: answers of mixed lengths
    req = grouped_request((int(free[0, 2]), int(free[3, 6])))
    model = model.cuda()
    graphs = DecodeConfig(cuda_graphs=True)
    for kw in ({"top_k": 1}, {"temperature": 1.0}):
        def run(cfg, kw=kw):
            return rollout(model, req, decode=cfg, generator=torch.Generator("cuda").manual_seed(7), **kw)

        eager, plain = run(DecodeConfig()), run(PLAIN)
        same(eager, plain, atol=1e-4)
        first, replay = run(graphs), run(graphs)
        same(first, eager, atol=1e-4)
        same(replay, first, atol=0)
    assert eager.stopped.any() and eager.lengths.unique().numel() >= 2
